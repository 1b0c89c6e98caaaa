"""Model-aware CI shards: ``--dummy-shard K/N`` keeps the tests of shard K of N, each model's tests in one shard.

The split is a function of the collection and the durations file alone, so every CI machine computes the
same shards: units that use a model go out most costly first (ties by fleet key) to the shard with the least
estimated cost so far (ties: the lowest shard); units without a model are balanced by their number of
tests, in node-id order (not collection order, which plugins such as pytest-randomly shuffle). Together
the N shards hold every test once.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from pytest_dummyweights._fleet.units import Unit


@dataclasses.dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as written: K of K/N
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ValueError("write K/N with 1 <= K <= N, e.g. 2/3 for the second of three shards")
    return Shard(int(match[1]), int(match[2]))


def assign_shards(units: Sequence[Unit], nodeids: Sequence[str], count: int) -> list[int]:
    """The 0-based shard of each unit."""
    shard_of = [0] * len(units)
    cost = [0.0] * count
    with_model = sorted((i for i, unit in enumerate(units) if unit.models), key=lambda i: (-units[i].cost, units[i].models))
    for i in with_model:
        shard_of[i] = target = min(range(count), key=lambda shard: (cost[shard], shard))
        cost[target] += units[i].cost
    tests = [0] * count
    without = sorted((i for i, unit in enumerate(units) if not unit.models), key=lambda i: min(nodeids[t] for t in units[i].tests))
    for i in without:
        shard_of[i] = target = min(range(count), key=lambda shard: (tests[shard], shard))
        tests[target] += len(units[i].tests)
    return shard_of


def tests_of_shard(units: Sequence[Unit], nodeids: Sequence[str], shard: Shard) -> set[int]:
    """Indices of the tests shard ``shard`` keeps."""
    assigned = assign_shards(units, nodeids, shard.count)
    return {test for unit, target in zip(units, assigned, strict=True) if target == shard.index - 1 for test in unit.tests}
