"""The model-aware xdist scheduler: each work unit (a model's tests, an explicit group, or a lone test) runs on
one worker, so each model is built once in the run.

It follows xdist's scheduler protocol (``xdist.scheduler.protocol.Scheduling``, as ``LoadScopeScheduling``
does). Units go out most costly first; a worker is given its next unit when it has at most two tests left
(a worker needs one queued test beyond the running one to keep going), so the least-loaded worker takes the
next one. Work starts as soon as the first worker has collected: each worker joins when its own collection
is done (and matches the first one's; one that differs is reported as a collection error and gets no work),
instead of all waiting for the slowest start. Workers left without a unit are shut down, but only once every
worker started has reported ready: a worker's start may clear what finished workers left behind (pytest-cov
erases the coverage data files when a worker starts, so a worker that finished before another started would
lose its coverage). A crashed worker's test is reported by xdist; its other pending tests go back to the
queue as units of their own model, so another worker builds that model and runs them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import pytest
from xdist.remote import Producer
from xdist.report import report_collection_diff
from xdist.workermanage import WorkerController

from pytest_dummyweights._fleet.units import Unit, connected

MIN_PENDING = 2  # as LoadScopeScheduling: a worker with more pending tests than this gets no new unit yet


@dataclasses.dataclass
class Crash:
    worker: str
    test: str
    requeued: list[Unit]


class ModelScheduling:
    """xdist's ``Scheduling`` protocol over model-aware work units; ``make_units(nodeids)`` groups the collection."""

    def __init__(
        self, config: pytest.Config, log: Producer, make_units: Callable[[list[str]], list[Unit]], starting: set[WorkerController]
    ) -> None:
        self.config = config
        self.starting = starting  # workers started but not yet ready, kept up to date by the plugin and add_node
        self.log = log.modelsched
        self.make_units = make_units
        self.collection: list[str] | None = None
        self.registered: dict[WorkerController, list[str]] = {}
        self.pending: dict[WorkerController, list[int]] = {}
        self.queue: list[Unit] = []
        self.unit_of: dict[int, Unit] = {}  # test index -> its unit, for the seconds each unit took
        self.placed: dict[str, list[str]] = {}  # fleet key -> workers its tests were sent to
        self.test_seconds: dict[int, float] = {}  # test index -> seconds, for the tests of a unit
        self.crashes: list[Crash] = []

    @property
    def nodes(self) -> list[WorkerController]:
        return list(self.pending)

    @property
    def collection_is_completed(self) -> bool:
        """True from the first worker's collection on: the others join as they finish theirs."""
        return bool(self.registered)

    @property
    def tests_finished(self) -> bool:
        if not self.collection_is_completed or self.queue or self.starting:
            return False
        return all(len(pending) < MIN_PENDING for pending in self.pending.values())

    @property
    def has_pending(self) -> bool:
        return bool(self.queue) or any(self.pending.values())

    def add_node(self, node: WorkerController) -> None:
        assert node not in self.pending
        self.pending[node] = []
        self.starting.discard(node)
        if not self.starting:  # the shutdowns held while a worker was starting
            for other in self.nodes:
                self._refill(other)

    def add_node_collection(self, node: WorkerController, collection: Sequence[str]) -> None:
        assert node in self.pending
        if self.collection is not None and list(collection) != self.collection:
            first = next(iter(self.registered))
            message = report_collection_diff(self.collection, list(collection), first.gateway.id, node.gateway.id)
            self.log(message)
            self.config.hook.pytest_collectreport(report=pytest.CollectReport(node.gateway.id, "failed", message, []))
            del self.pending[node]  # it gets no work
            node.shutdown()
            return
        self.registered[node] = list(collection)

    def mark_test_complete(self, node: WorkerController, item_index: int, duration: float = 0) -> None:
        self.pending[node].remove(item_index)
        if item_index in self.unit_of:
            self.test_seconds[item_index] = self.test_seconds.get(item_index, 0.0) + duration
        self._refill(node)

    def mark_test_pending(self, item: str) -> None:
        """Run ``item`` again (a ``pytest_handlecrashitem`` hook asks for it), before anything else."""
        assert self.collection is not None
        index = self.collection.index(item)
        old = self.unit_of.get(index)
        self.unit_of[index] = again = Unit([index], old.models if old else (), old.groups if old else ())
        self.queue.insert(0, again)
        for node in self.nodes:
            self._refill(node)

    def remove_pending_tests_from_node(self, node: WorkerController, indices: Sequence[int]) -> None:
        raise NotImplementedError("the model scheduler never asks a worker to give tests back")

    def remove_node(self, node: WorkerController) -> str | None:
        """Forget a worker; when it crashed, return its running test and requeue the rest by unit."""
        self.starting.discard(node)
        pending = self.pending.pop(node)  # KeyError for one that died before it was ready, as xdist expects
        if not pending:
            return None
        assert self.collection is not None
        crashed, rest = pending[0], pending[1:]
        requeued: dict[int, Unit] = {}
        for index in rest:
            old = self.unit_of[index]
            unit = requeued.setdefault(id(old), Unit([], old.models, old.groups, old.cost))
            unit.tests.append(index)
        units = sorted(requeued.values(), key=lambda unit: -unit.cost)
        for unit in units:
            for index in unit.tests:
                self.unit_of[index] = unit
        self.queue[:0] = units
        self.crashes.append(Crash(node.gateway.id, self.collection[crashed], units))
        for other in self.nodes:
            self._refill(other)
        return self.collection[crashed]

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is not None:  # another worker joined: it takes work like the others
            for node in self.nodes:
                self._refill(node)
            return
        self.collection = next(iter(self.registered.values()))
        if not self.collection:
            return
        self.queue = self.make_units(self.collection)
        for unit in self.queue:
            for index in unit.tests:
                self.unit_of[index] = unit
        for node in self.nodes:
            self._refill(node)

    def _refill(self, node: WorkerController) -> None:
        if node.shutting_down or node not in self.registered:
            return
        if not self.queue:
            if not self.starting:
                node.shutdown()
            return
        while self.queue and len(self.pending[node]) <= MIN_PENDING:
            self._send_unit(node)

    def _send_unit(self, node: WorkerController) -> None:
        unit = self.queue.pop(0)
        for key in unit.models:
            workers = self.placed.setdefault(key, [])
            if node.gateway.id not in workers:
                workers.append(node.gateway.id)
        self.pending[node].extend(unit.tests)
        node.send_runtest_some(unit.tests)
        if not self.queue and not self.starting:  # idle workers leave now, and free their memory
            for idle in self.nodes:
                if not self.pending[idle] and not idle.shutting_down:
                    idle.shutdown()

    def unit_durations(self, served: Mapping[str, Sequence[str]]) -> list[float]:
        """Seconds of each work unit as the next run will form it, from the test times the workers measured: this
        run's units, joined where their tests were ``served`` one model (a test that builds through the factory is a
        unit of its own until a run has seen which model it builds)."""
        if self.collection is None:
            return []
        collection, indices = self.collection, sorted(self.test_seconds)
        labels = [[f"unit:{id(self.unit_of[i])}", *(f"model:{key}" for key in served.get(collection[i], ()))] for i in indices]
        return [sum(self.test_seconds[indices[j]] for j in group) for group in connected(labels)]
