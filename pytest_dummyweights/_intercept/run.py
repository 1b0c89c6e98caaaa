"""One pytest process's interception: its settings, read from the run's options; its recorder; the start-up hook
of the processes it starts and their reports. Made by ``plugin`` at the first use (``--dummy-weights`` at
start-up, else the first marked test), so a run that never intercepts never imports it."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_dummyweights._intercept import patches, subprocesses
from pytest_dummyweights._intercept.session import Interception, InterceptSettings, Recorder
from pytest_dummyweights.errors import DummyWeightsError, InterceptPluginWarning
from pytest_dummyweights.settings import read_setting, read_settings


class InterceptRun:
    """One pytest process's interception: settings, recorder, start-up hook and subprocess reports."""

    def __init__(self, config: pytest.Config, options: Any, *, whole_run: bool) -> None:
        settings = read_settings(options)
        manifest_dir = read_setting(options, "--dummy-manifest-dir", "dummyweights_manifest_dir")
        base = config.rootpath if manifest_dir.source.startswith("ini") else config.invocation_params.dir
        self.report_dir = subprocesses.new_report_dir()
        shared = {
            field.name: getattr(settings, field.name) for field in dataclasses.fields(InterceptSettings) if hasattr(settings, field.name)
        }
        self.settings = InterceptSettings(
            **{
                **shared,
                "store_dir": str(Path(settings.store_dir).resolve()) if settings.store_dir else None,  # a subprocess may run elsewhere
                "manifest_dir": str(base / manifest_dir.text) if manifest_dir.text else None,
                "report_dir": str(self.report_dir),
            }
        )
        self.recorder = Recorder(self.settings, reports=False)
        self.hooks = config.hook
        self.whole = whole_run  # --dummy-weights: every test intercepts, not only marked ones
        self.whole_run = contextlib.ExitStack()
        try:
            self.hook_file = subprocesses.install_run_hook()
        except DummyWeightsError as error:
            self.hook_file = None
            warnings.warn(InterceptPluginWarning(str(error)), stacklevel=1)

    @contextlib.contextmanager
    def active(self, test: str | None, targets: tuple[Any, ...]) -> Iterator[None]:
        """Intercept here and, through the environment variable, in the processes started meanwhile."""
        settings = dataclasses.replace(self.settings, test=test, targets=targets)
        interception = Interception(settings, self.recorder, test, self.hooks)
        patches.activate(interception, interception.patches())
        try:
            with subprocesses.exported(settings.to_json()):
                yield
        finally:
            patches.deactivate(interception)

    def report(self) -> dict[str, Any]:
        """This process's records and cache counts, with those of the subprocesses it started."""
        reports = [self.recorder.report(), *subprocesses.read_reports(self.report_dir)]
        return {
            "records": [record for report in reports for record in report["records"]],
            "stats": [report["stats"] for report in reports if report["stats"] is not None],
        }

    def close(self) -> None:
        self.whole_run.close()
        subprocesses.remove_run_hook(self.hook_file)
        shutil.rmtree(self.report_dir, ignore_errors=True)
