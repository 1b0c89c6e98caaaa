"""One process's interception: the run's settings as plain data, the cache its builds go through, and its records.

``InterceptSettings`` is what the environment variable carries to subprocesses, so a subprocess builds exactly as
the run does (seed, device, storage and value store, checkpoint check, cache). A ``Recorder`` belongs to a pytest
session or to a subprocess: its builds share one ``ModelCache`` (models are handed out unshared), and each
interception leaves a record (the call, what it returned or raised, the test, the process) for the run's summary.
An ``Interception`` is what ``patches`` activates: the settings, the recorder, the test it serves and, in the
pytest process, the project's hooks (a subprocess has no conftest).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from pytest_dummyweights._cache.stats import CacheStats
from pytest_dummyweights._intercept import from_pretrained, patches
from pytest_dummyweights._intercept.subprocesses import worker_id, write_report
from pytest_dummyweights._intercept.targets import InterceptTarget
from pytest_dummyweights.errors import folded
from pytest_dummyweights.spec import DummySpec


@dataclasses.dataclass(frozen=True)
class InterceptSettings:
    """The run's settings an interception builds with, as plain data."""

    seed: int
    device: str
    storage: str | None
    store_dir: str | None  # absolute: a subprocess may run elsewhere
    scales: str
    smoke: bool
    checkpoint_check: str
    cache_bytes: int | None
    cache_enabled: bool
    isolation: str
    manifest_dir: str | None  # absolute
    report_dir: str  # where subprocesses write their reports
    targets: tuple[InterceptTarget, ...] = ()
    test: str | None = None  # the test being served, as subprocesses name it in their records

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> InterceptSettings:
        data = json.loads(text)
        return cls(**{**data, "targets": tuple(InterceptTarget(**target) for target in data["targets"])})

    def spec(self, **fields: Any) -> DummySpec:
        """A spec built with the run's settings and no real weights."""
        return DummySpec(
            seed=self.seed,
            device=self.device,
            storage=self.storage,
            store_dir=self.store_dir,
            scales=self.scales,
            smoke=self.smoke,
            checkpoint_check=self.checkpoint_check,
            real_weights=False,
            **fields,
        )


class Recorder:
    """A pytest session's or a subprocess's interceptions: the cache their builds share, and their records.

    A subprocess's recorder (``reports=True``) writes its report after every interception; so does a child forked
    from any recorder's process, which starts with no records of its own.
    """

    def __init__(self, settings: InterceptSettings, *, reports: bool) -> None:
        self.settings = settings
        self.reports = reports
        self.records: list[dict[str, Any]] = []
        self._cache: Any = None
        self._lock = threading.RLock()  # a build may load another model (a tower) through an intercepted call
        _recorders.add(self)

    @property
    def cache(self) -> Any:
        """The ``ModelCache`` of this process's interceptions, made on first use (Paddle is imported then)."""
        if self._cache is None:
            # lazy: the cache, its budget and the device import Paddle, which a process that never loads a model never needs
            from pytest_dummyweights._cache.budget import default_budget_bytes, workers_per_device
            from pytest_dummyweights._cache.model_cache import ModelCache
            from pytest_dummyweights._runtime.device import resolve_device

            budget = self.settings.cache_bytes
            if budget is None:  # the share the plugin's own cache takes, as a worker of this run
                workers = workers_per_device(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
                budget = default_budget_bytes(resolve_device(self.settings.device, worker_id()), workers)
            self._cache = ModelCache(budget, enabled=self.settings.cache_enabled, isolation=self.settings.isolation)
        return self._cache

    def serve(self, call: str, test: str | None, build: Callable[[Any], tuple[Any, str]]) -> Any:
        """``build(cache)`` returns what the intercepted call returns, and what to say about it; recorded either way."""
        with self._lock:
            stats = self.cache.stats
            built, hits = stats.built, stats.hits
            started = time.perf_counter()
            try:
                result, detail = build(self.cache)
            except BaseException as error:
                self._record(call, test, "failed", folded(error), started)
                raise
            outcome = "reused" if stats.hits > hits else "built" if stats.built > built else "fed"
            self._record(call, test, outcome, detail, started)
            return result

    def _record(self, call: str, test: str | None, outcome: str, detail: str, started: float) -> None:
        seconds = time.perf_counter() - started
        where = "subprocess" if self.reports else "pytest"
        self.records.append(
            {"call": call, "outcome": outcome, "detail": detail, "seconds": seconds, "test": test, "pid": os.getpid(), "where": where}
        )
        if self.reports:
            write_report(self.settings.report_dir, self.report())

    def report(self) -> dict[str, Any]:
        """Plain data: the records, and the cache's counts for the summary's model lines."""
        return {"records": list(self.records), "stats": None if self._cache is None else self._cache.stats.to_report()}

    def after_fork(self) -> None:
        self.reports, self.records, self._lock = True, [], threading.RLock()
        if self._cache is not None:
            self._cache.stats = CacheStats()


_recorders: weakref.WeakSet[Recorder] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for recorder in list(_recorders):
        recorder.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


@dataclasses.dataclass
class Interception:
    """What ``patches`` activates: the settings, where builds and records go, the test served, the project's hooks."""

    settings: InterceptSettings
    recorder: Recorder
    test: str | None = None
    hooks: Any = None  # pytest's hook relay in the pytest process; None in a subprocess

    def serve(self, call: str, build: Callable[[Any], tuple[Any, str]]) -> Any:
        return self.recorder.serve(call, self.test, build)

    def patches(self) -> list[patches.Patch]:
        return [*from_pretrained.PATCHES, *(target.patch() for target in self.settings.targets)]


def start_in_subprocess(payload: str) -> Interception:
    """Intercept in this process until it ends, as the run that set the variable does."""
    settings = InterceptSettings.from_json(payload)
    interception = Interception(settings, Recorder(settings, reports=True), settings.test)
    patches.activate(interception, interception.patches())
    return interception


def summary_lines(records: list[dict[str, Any]], verbosity: int) -> list[str]:
    """Nothing when nothing was intercepted; the counts; with -v, each interception."""
    if not records:
        return []
    outcomes = {outcome: sum(record["outcome"] == outcome for record in records) for outcome in ("built", "reused", "fed", "failed")}
    in_pytest = sum(record["where"] == "pytest" for record in records)
    subprocesses = {record["pid"] for record in records if record["where"] == "subprocess"}
    counts = ", ".join(f"{count} {outcome}" for outcome, count in outcomes.items() if count)
    lines = [
        f"interceptions: {len(records)} checkpoint loads given dummy weights ({counts}): {in_pytest} in pytest, "
        f"{len(records) - in_pytest} in {len(subprocesses)} subprocesses"
    ]
    if verbosity > 0:
        for record in records:
            where = f"subprocess {record['pid']}" if record["where"] == "subprocess" else "pytest"
            lines.append(
                f"  {record['test'] or 'outside tests'}: {record['call']} -> {record['outcome']}: {record['detail']} "
                f"({record['seconds']:.2f} s, {where})"
            )
    return lines
