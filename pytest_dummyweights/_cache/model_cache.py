"""Per-worker cache of built models: each distinct spec is built once per process, least recently used
models are evicted past a byte budget, and a model a test changed is restored or rebuilt (see ``isolation``).

``get`` lends a model to the running test (checked when it ends); ``get_unshared`` hands one to a caller that
owns it, as ``from_pretrained`` does, and reuses it only once nobody holds it (see ``ownership``).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paddle

from pytest_dummyweights._building.context import BuildContext
from pytest_dummyweights._building.pipeline import BuildResult, Plan, execute, plan_build
from pytest_dummyweights._building.shrink import describe_inline
from pytest_dummyweights._cache.build_lock import build_lock, writes_little
from pytest_dummyweights._cache.fingerprint import fingerprint, fleet_key
from pytest_dummyweights._cache.isolation import Snapshot
from pytest_dummyweights._cache.ownership import reference_counts
from pytest_dummyweights._cache.stats import CacheStats, ModelRecord, RepairRecord
from pytest_dummyweights.errors import CheckpointMismatch
from pytest_dummyweights.spec import DummySpec
from pytest_dummyweights.vocabulary import DEFAULT_ISOLATION


@dataclasses.dataclass
class Entry:
    result: BuildResult
    snapshot: Snapshot
    factory: Any  # kept alive so its identity, part of the key, is never reused by another object
    references: tuple[int, ...] = ()  # get_unshared: the reference counts when stored, nobody else holding it


@dataclasses.dataclass
class Loan:
    """A model handed to the running test, checked when the test ends."""

    key: str
    model: paddle.nn.Layer


class ModelCache:
    """Built models of one process (one xdist worker), least recently used evicted past ``budget_bytes``."""

    def __init__(
        self,
        budget_bytes: int | None = None,
        *,
        enabled: bool = True,
        lock_dir: str | os.PathLike | None = None,
        isolation: str = DEFAULT_ISOLATION,
    ):
        self.budget_bytes = budget_bytes
        self.enabled = enabled
        self.lock_dir = Path(lock_dir) if lock_dir is not None else None
        self.isolation = isolation
        self.stats = CacheStats()
        self._entries: collections.OrderedDict[str, Entry] = collections.OrderedDict()
        self._loans: list[Loan] = []

    def get(self, spec: DummySpec, context: BuildContext | None = None) -> paddle.nn.Layer:
        """The model for ``spec``, lent to the running test: from the cache when built before, else built (under the
        device's build lock)."""
        return self._serve(spec, context, lend=True)

    def get_unshared(self, spec: DummySpec, context: BuildContext | None = None) -> paddle.nn.Layer:
        """The model for ``spec``, held by nobody else: nothing is loaned, the caller owns what it gets, as after a real
        load. A cached model is handed out again only once every reference to it and its parts is gone (``ownership``),
        after the isolation check has restored what its last holder changed (or dropped it); otherwise a fresh build."""
        return self._serve(spec, context, lend=False)

    def _serve(self, spec: DummySpec, context: BuildContext | None, *, lend: bool) -> paddle.nn.Layer:
        """``get`` and ``get_unshared``: a lent model is checked when the test ends, an unshared one when asked for again."""
        plan = plan_build(spec, context)
        key = fingerprint(
            plan.spec, plan.loaded_config.raw, plan.factory, plan.checkpoint.identity if plan.checkpoint else None, plan.context.hooks
        )
        kept = key if self.enabled and not spec.fresh else None  # the key to look up and keep the model under, if any
        entry = None if kept is None else self._entries.get(kept)
        if kept is not None and entry is not None and not lend:
            entry = self._reclaim(kept, entry)
        if kept is not None and entry is not None:
            self._entries.move_to_end(kept)
            self.stats.record_hit(kept)
            result = entry.result
        else:
            result = self._build(plan, key)
            if kept is not None and kept not in self._entries:  # an unshared model still held keeps its place
                self._store(kept, Entry(result, Snapshot.of(result.model, self.isolation), plan.factory))
                if not lend and kept in self._entries:
                    self._entries[kept].references = reference_counts(result.model)
        if kept is not None and lend:
            self._loans.append(Loan(kept, result.model))
        self.stats.served_bytes += result.nbytes
        return result.model

    def _reclaim(self, key: str, entry: Entry) -> Entry | None:
        """A model handed out unshared before, once nobody holds it: restored as built; None while it is held, or when
        it cannot be restored (then it is dropped)."""
        if entry.references != reference_counts(entry.result.model):
            return None
        entry.result.model.eval()  # as built: the mode its holder left it in is the holder's, not a repair
        verdict = entry.snapshot.check(entry.result.model)
        what = "; ".join(verdict.rebuild + verdict.restored)
        if what:
            self.stats.repairs.append(RepairRecord("its previous holder", type(entry.result.model).__name__, what))
        if verdict.rebuild:
            del self._entries[key]
            return None
        return entry

    def check_loans(self, test_id: str) -> list[str]:
        """After a test: restore or drop each model it borrowed; returns one line per repaired model."""
        repaired = []
        used = sorted({key for loan in self._loans if (key := self.stats.models[loan.key].fleet_key)})
        if used:
            self.stats.test_models[test_id] = used
        for loan in self._loans:
            entry = self._entries.get(loan.key)
            if entry is None or entry.result.model is not loan.model:
                continue
            verdict = entry.snapshot.check(loan.model)
            if verdict.rebuild:
                del self._entries[loan.key]
            what = "; ".join(verdict.rebuild + verdict.restored)
            if verdict.rebuild:
                what += "; dropped, the next test gets a rebuild"
            if what:
                name = type(loan.model).__name__
                self.stats.repairs.append(RepairRecord(test_id, name, what))
                repaired.append(f"{name}: {what}")
        self._loans.clear()
        return repaired

    def _build(self, plan: Plan, key: str | None) -> BuildResult:
        with self._build_lock(plan):
            started = time.perf_counter()
            try:
                result = execute(plan)
            except CheckpointMismatch:
                self.stats.checks_failed += 1
                raise
        self.stats.record_checkpoint(result.check, result.real_bytes)
        shrunk = f" ({describe_inline(plan.loaded_config.shrink)})" if plan.loaded_config.shrink else ""
        rules = f" ({result.rules_applied.summary_line()})" if result.rules_applied.rules else ""
        real = " (real weights)" if plan.spec.real_weights else ""
        description = f"{type(result.model).__name__} {plan.resolved.dtype}{shrunk}{rules}{real}"
        if key is None:
            key = f"uncached-{id(plan.factory):x}"
            description += " (not cached: its factory carries values that cannot be described safely)"
        memory = result.memory
        record = ModelRecord(description, result.nbytes, resident=memory.resident, shared=memory.shared, fleet_key=fleet_key(plan))
        self.stats.record_build(key, record, time.perf_counter() - started, result.init.messages, plan.context.worker_id)
        return result

    @contextlib.contextmanager
    def _build_lock(self, plan: Plan) -> Iterator[None]:
        """Builds on one device across processes: those that fill memory take turns, so their peaks do not
        add up; mapped CPU builds write almost nothing (their parameters map the shared value store), so they
        share the lock with each other and wait only for a filling build (see ``build_lock``)."""
        if self.lock_dir is None:
            yield
            return
        started = time.perf_counter()
        path = self.lock_dir / f"dummyweights-build-{plan.resolved.device.replace(':', '')}.lock"
        with build_lock(path, shared=writes_little(plan)):
            self.stats.lock_wait_seconds += time.perf_counter() - started
            yield

    def _store(self, key: str, entry: Entry) -> None:
        """Keep ``entry``, evicting least recently used models past the budget; one larger than the budget is not kept.

        The budget counts each model's private resident bytes: mapped pages shared with the value store
        cost no memory of this worker's own, so a giant mapped model does not evict everything.
        """
        size = entry.result.memory.private
        if self.budget_bytes is not None:
            if size > self.budget_bytes:
                return
            held = sum(e.result.memory.private for e in self._entries.values())
            while held + size > self.budget_bytes:
                _, evicted = self._entries.popitem(last=False)
                held -= evicted.result.memory.private
                self.stats.evictions += 1
        self._entries[key] = entry
