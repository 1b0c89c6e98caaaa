"""Run statistics: what each process built and served, merged across xdist workers, and the summary lines.

Each worker sends its ``CacheStats.to_report()`` (plain data, as xdist's ``workeroutput`` needs) to
the controller, which merges them with ``CacheStats.from_reports``. Nothing here claims more than
happened: bytes of distinct models (what a real-weights run reads at least once) are kept apart
from bytes served to tests (a cache hit reads nothing).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from pytest_dummyweights.vocabulary import human_bytes


@dataclasses.dataclass
class ModelRecord:
    """One distinct model (by fingerprint): what it is and how often it was built and served from the cache."""

    description: str
    nbytes: int  # virtual: every parameter byte
    resident: int = 0  # pages touched when built: copied parameters, and mapped pages read or written
    shared: int = 0  # of those, pages shared with the value store (other workers map the same pages)
    builds: int = 0
    hits: int = 0
    build_seconds: float = 0.0  # measured inside the build, lock waits excluded: the fleet's learned cost
    fleet_key: str | None = None  # the key the scheduler and the shards group its tests by (fingerprint.fleet_key)
    workers: list[str] = dataclasses.field(default_factory=list)  # the xdist workers that built it


@dataclasses.dataclass
class RepairRecord:
    """A model a test left changed, and what the cache did about it."""

    test: str
    model: str
    what: str


@dataclasses.dataclass
class CacheStats:
    """One process's counts, or the run's once merged."""

    built: int = 0
    build_seconds: float = 0.0
    built_bytes: int = 0  # every build counts, rebuilds and other workers' builds included
    hits: int = 0
    evictions: int = 0
    lock_wait_seconds: float = 0.0
    served_bytes: int = 0  # bytes of the models handed to tests, hits included
    repairs: list[RepairRecord] = dataclasses.field(default_factory=list)
    models: dict[str, ModelRecord] = dataclasses.field(default_factory=dict)  # by fingerprint
    notes: list[str] = dataclasses.field(default_factory=list)  # what the user should know: fallbacks, once each
    checks_passed: int = 0  # builds whose checkpoint check found nothing
    checks_failed: int = 0  # builds whose checkpoint check failed (checkpoint_check error or warn)
    real_loaded: int = 0  # builds that loaded a checkpoint's real weights
    real_bytes: int = 0  # checkpoint bytes those builds read
    test_models: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # test -> fleet keys it was served from the cache

    def record_build(self, key: str, model: ModelRecord, seconds: float, notes: list[str], worker: str | None = None) -> None:
        self.built += 1
        self.build_seconds += seconds
        self.built_bytes += model.nbytes
        known = self.models.setdefault(key, model)
        known.builds += 1
        known.build_seconds += seconds
        if worker is not None and worker not in known.workers:
            known.workers.append(worker)
        self.notes += [note for note in notes if note not in self.notes]

    def record_checkpoint(self, report: Any, real_bytes: int) -> None:
        """A build's checkpoint check (a ``CheckReport``, or None when none ran) and the real bytes it read."""
        if report is not None:
            self.checks_passed += report.ok
            self.checks_failed += not report.ok
        if real_bytes:
            self.real_loaded += 1
            self.real_bytes += real_bytes

    def record_hit(self, key: str) -> None:
        self.hits += 1
        self.models[key].hits += 1

    def to_report(self) -> dict[str, Any]:
        """Plain data for xdist's ``workeroutput``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_reports(cls, reports: Iterable[dict[str, Any]]) -> CacheStats:
        """The run's stats from each process's report; models built by several workers count once."""
        total = cls()
        for report in reports:
            for field in (
                "built",
                "build_seconds",
                "built_bytes",
                "hits",
                "evictions",
                "lock_wait_seconds",
                "served_bytes",
                "checks_passed",
                "checks_failed",
                "real_loaded",
                "real_bytes",
            ):
                setattr(total, field, getattr(total, field) + report[field])
            total.repairs.extend(RepairRecord(**repair) for repair in report["repairs"])
            total.test_models.update(report["test_models"])
            total.notes += [note for note in report["notes"] if note not in total.notes]
            for key, model in report["models"].items():
                known = total.models.setdefault(key, ModelRecord(**{**model, "builds": 0, "hits": 0, "build_seconds": 0.0, "workers": []}))
                known.builds += model["builds"]
                known.hits += model["hits"]
                known.build_seconds += model["build_seconds"]
                known.workers += [worker for worker in model["workers"] if worker not in known.workers]
        return total

    def summary_lines(self, verbosity: int) -> list[str]:
        """Nothing when no model was served; one line with -q; the counts by default; per model with -v."""
        if not self.built and not self.hits and not self.checks_failed:
            return []
        counts = (
            f"{self.built} built in {self.build_seconds:.2f} s ({human_bytes(self.built_bytes)}), "
            f"{self.hits} cache hits, {self.evictions} evictions, {len(self.repairs)} isolation repairs, "
            f"{self.lock_wait_seconds:.2f} s waiting for the build lock"
        )
        distinct = sum(model.nbytes for model in self.models.values())
        sizes = (
            f"{len(self.models)} distinct models, {human_bytes(distinct)} (a real-weights run reads at least this); "
            f"{human_bytes(self.served_bytes)} served to tests"
        )
        repairs = [f"isolation repaired after {r.test}: {r.model}: {r.what}" for r in self.repairs]
        repairs += self.checkpoint_lines()
        notes = [f"note: {note}" for note in self.notes]
        if verbosity < 0:
            return [f"dummyweights: {counts}; {sizes}", *repairs, *notes]
        resident = sum(model.resident for model in self.models.values())
        shared = sum(model.shared for model in self.models.values())
        memory = f"memory when built: {human_bytes(resident)} resident, of which {human_bytes(shared)} shared with the value store"
        lines = [f"models: {counts}", sizes, memory, *repairs, *notes]
        if verbosity > 0:
            for key, model in sorted(self.models.items(), key=lambda item: item[1].description):
                where = f" on {', '.join(sorted(model.workers))}" if model.workers else ""
                lines.append(
                    f"  {key}  {model.description}  {human_bytes(model.nbytes)} "
                    f"({human_bytes(model.resident)} resident, {human_bytes(model.shared)} shared)  "
                    f"built {model.builds}x{where}, served from cache {model.hits}x"
                )
        return lines

    def checkpoint_lines(self) -> list[str]:
        """Checkpoint checks passed and failed, and real weights loaded; nothing when no checkpoint was named."""
        lines = []
        if self.checks_passed or self.checks_failed:
            lines.append(f"checkpoint checks: {self.checks_passed} passed, {self.checks_failed} failed")
        if self.real_loaded:
            lines.append(f"real weights: {self.real_loaded} models loaded real, {human_bytes(self.real_bytes)} read from checkpoints")
        return lines
