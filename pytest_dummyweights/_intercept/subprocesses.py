"""Interception in the Python processes a run starts: an environment variable, a start-up hook, and their reports.

While an interception is active, ``PYTEST_DUMMYWEIGHTS_INTERCEPT`` holds the run's settings as JSON (set only for
that time, the previous value put back after). Every Python process reads the ``.pth`` start-up hook at start-up:
a line that looks the variable up and, when it is unset, imports nothing; when it is set, it imports ``startup``,
which intercepts in that process with those settings. Children inherit the variable, so their children (a
``multiprocessing`` spawn, a server's workers) intercept too.

The hook ships in the wheel (``pytest_dummyweights.pth`` beside the package, as coverage.py ships its own), dormant
while the variable is unset: nothing is written into the environment at run time, so a read-only site-packages,
runs side by side in one environment and a run killed halfway need nothing done. An editable install has no
wheel to ship it: there the run writes a copy named after its own process, ``pytest_dummyweights-run-PID.pth``,
into the environment's site-packages and removes it at its end; a copy whose process is gone (a crashed run) is
removed by the next run that writes one. A leftover copy is as dormant as the shipped hook.

Each intercepting process writes its records and cache counts to ``REPORT_DIR/PID.json`` after every
interception (a server that is killed has still reported); the run reads them for its summary.
"""

from __future__ import annotations

import contextlib
import json
import os
import site
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest_dummyweights
from pytest_dummyweights.errors import DummyWeightsError

ENV = "PYTEST_DUMMYWEIGHTS_INTERCEPT"
HOOK_NAME = "pytest_dummyweights.pth"
RUN_HOOK_PREFIX = "pytest_dummyweights-run-"
SHIPPED_HOOK = Path(pytest_dummyweights.__file__).resolve().parent.parent / HOOK_NAME  # the wheel's, or the checkout's


@contextlib.contextmanager
def exported(payload: str) -> Iterator[None]:
    """``ENV`` set to ``payload`` for the duration; its previous value (or its absence) restored after."""
    previous = os.environ.get(ENV)
    os.environ[ENV] = payload
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous


def site_dirs() -> list[Path]:
    """The directories whose ``.pth`` files every Python process of this environment reads at start-up."""
    found = [Path(directory) for directory in site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        found.append(Path(site.getusersitepackages()))
    return [directory.resolve() for directory in found if directory.is_dir()]


def shipped_hook_installed() -> bool:
    """Whether the wheel's hook sits in a site directory (an editable install leaves it in the checkout)."""
    return SHIPPED_HOOK.is_file() and SHIPPED_HOOK.parent in site_dirs()


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_run_hooks(directory: Path) -> None:
    """Remove the run-owned hooks of runs whose process is gone."""
    for path in directory.glob(f"{RUN_HOOK_PREFIX}*.pth"):
        pid = path.stem.removeprefix(RUN_HOOK_PREFIX)
        if pid.isdigit() and not process_alive(int(pid)):
            path.unlink(missing_ok=True)


def install_run_hook() -> Path | None:
    """Make sure new processes run the hook: None when the shipped one is installed, else the path of this
    process's own copy in site-packages (remove it with ``remove_run_hook``)."""
    if shipped_hook_installed():
        return None
    directory = Path(sysconfig.get_paths()["purelib"])
    path = directory / f"{RUN_HOOK_PREFIX}{os.getpid()}.pth"
    try:
        line = SHIPPED_HOOK.read_text(encoding="utf-8")
        remove_stale_run_hooks(directory)
        path.write_text(line, encoding="utf-8")
    except OSError as error:
        raise DummyWeightsError(
            f"cannot write the start-up hook {path} ({error.strerror or error}): Python processes the tests start will load real "
            "weights; install pytest-dummyweights from its wheel (which ships the hook) or make that directory writable"
        ) from None
    return path


def remove_run_hook(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def new_report_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="pytest-dummyweights-reports-"))


def write_report(report_dir: str, report: dict[str, Any]) -> None:
    """This process's report, replaced whole (a reader never sees half of it)."""
    path = Path(report_dir) / f"{os.getpid()}.json"
    if not path.parent.is_dir():  # the run is over and took its directory along: nobody reads this any more
        return
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(report), encoding="utf-8")
    os.replace(temporary, path)


def read_reports(report_dir: Path) -> list[dict[str, Any]]:
    """The reports the run's subprocesses wrote, a process each."""
    reports = []
    for path in sorted(report_dir.glob("*.json")):
        try:
            reports.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as error:
            sys.stderr.write(f"pytest-dummyweights: subprocess report {path} is unreadable ({error}); its interceptions are not counted\n")
    return reports


def worker_id() -> str | None:
    """The xdist worker this process is, or was started by (xdist sets the variable; children inherit it)."""
    return os.environ.get("PYTEST_XDIST_WORKER")
