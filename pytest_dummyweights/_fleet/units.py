"""Work units: the tests that must run in one process so that each model is built once.

Tests that share a model (by fleet key: the one ``dummy_model`` builds, known at collection, or those an
earlier run served the test) or an explicit ``xdist_group`` mark form one unit; a test with neither is a
unit of its own. A unit's estimated cost is its model's learned build seconds plus a small
share per test, so the costly models go out first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from pytest_dummyweights._fleet.durations import Durations

WORKER_START_SECONDS = 2.0  # a worker's start: Python, pytest, collection, Paddle's import
TEST_SECONDS = 0.05  # a test's own share of a unit's cost; builds dominate, and tests are not timed ahead


@dataclasses.dataclass
class Unit:
    """Tests (indices into the collection, in collection order) that run on one worker."""

    tests: list[int]
    models: tuple[str, ...] = ()  # fleet keys of the models its tests use, sorted
    groups: tuple[str, ...] = ()  # explicit xdist_group names, sorted
    cost: float = 0.0

    @property
    def label(self) -> str:
        """A stable name: its first model, else its first group, else its first test's index."""
        return self.models[0] if self.models else f"group:{self.groups[0]}" if self.groups else f"test:{self.tests[0]}"


def models_of(nodeids: Sequence[str], keys: Mapping[str, str | None], durations: Durations) -> dict[str, list[str]]:
    """Each test's models: its key at collection, else those an earlier run served it."""
    return {nodeid: [key] if (key := keys.get(nodeid)) else durations.tests.get(nodeid, []) for nodeid in nodeids}


def connected(labels: Sequence[Sequence[str]]) -> list[list[int]]:
    """The indices of ``labels`` in groups, two indices that share a label (directly or through others) in one;
    each group in index order, the groups by their first index."""
    parent = list(range(len(labels)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    first_of: dict[str, int] = {}
    for index, names in enumerate(labels):
        for name in names:
            other = first_of.setdefault(name, index)
            parent[root(index)] = root(other)
    members: dict[int, list[int]] = {}
    for index in range(len(labels)):
        members.setdefault(root(index), []).append(index)
    return list(members.values())


def make_units(
    nodeids: Sequence[str], models: Mapping[str, Sequence[str]], groups: Mapping[str, Sequence[str]], durations: Durations
) -> list[Unit]:
    """The units of a collection, most costly first (ties: collection order)."""
    labels = [
        [f"model:{key}" for key in models.get(nodeid, ())] + [f"group:{name}" for name in groups.get(nodeid, ())] for nodeid in nodeids
    ]
    units = []
    for tests in connected(labels):
        keys = tuple(sorted({key for i in tests for key in models.get(nodeids[i], ())}))
        named = tuple(sorted({name for i in tests for name in groups.get(nodeids[i], ())}))
        cost = sum(durations.build_seconds_of(key) for key in keys) + TEST_SECONDS * len(tests)
        units.append(Unit(tests, keys, named, cost))
    return sorted(units, key=lambda unit: (-unit.cost, unit.tests[0]))


def predicted_seconds(unit_seconds: Sequence[float], workers: int) -> float:
    """The run's length when units go out longest first to the least-loaded of ``workers``."""
    loads = [0.0] * workers
    for seconds in sorted(unit_seconds, reverse=True):
        loads[loads.index(min(loads))] += seconds
    return max(loads)


def workers_worth_starting(unit_seconds: Sequence[float], most: int) -> int:
    """The number of workers, up to ``most``, that finishes soonest once each worker's start is paid for:
    the predicted run plus ``WORKER_START_SECONDS`` per worker, the fewest workers on a tie."""
    return min(range(1, most + 1), key=lambda workers: predicted_seconds(unit_seconds, workers) + WORKER_START_SECONDS * workers)
