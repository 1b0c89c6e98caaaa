"""The model each test needs, by fleet key (``fingerprint.fleet_key``), computed where the tests are collected.

Every xdist worker collects the suite and computes the keys itself (they equal on every worker: the fleet
key holds nothing local to a process); it writes them, with the tests' explicit ``xdist_group`` names, into
the run directory the controller named, before it reports its collection. The controller's scheduler reads
them from there: node ids are never edited.

A key is planned as the build plans it (config read, class resolved), without building. A spec that cannot
be planned has no key: its test is a unit of its own, and fails at setup with the build's own message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_dummyweights.spec import DummySpec

KEYS_FILE = "keys-{worker}.json"


class KeyPlanner:
    """Fleet keys of specs, each distinct spec planned once per process."""

    def __init__(self, hooks: Any = None) -> None:
        self.hooks = hooks
        self._known: dict[str, str | None] = {}

    def key_of(self, spec: DummySpec, search_dirs: Sequence[str | os.PathLike]) -> str | None:
        memo = repr((spec, [os.fspath(d) for d in search_dirs]))
        if memo not in self._known:
            self._known[memo] = self._plan(spec, search_dirs)
        return self._known[memo]

    def _plan(self, spec: DummySpec, search_dirs: Sequence[str | os.PathLike]) -> str | None:
        # lazy: planning imports Paddle, which a run whose tests use no dummy_model never needs
        from pytest_dummyweights._building.context import BuildContext
        from pytest_dummyweights._building.pipeline import plan_build
        from pytest_dummyweights._cache.fingerprint import fleet_key

        try:
            return fleet_key(plan_build(spec, BuildContext(search_dirs=tuple(map(Path, search_dirs)), hooks=self.hooks)))
        except Exception:  # the test's setup reports it, with the build's own message
            return None


def write_keys(run_dir: Path, worker: str, keys: Mapping[str, str | None], groups: Mapping[str, Iterable[str]]) -> None:
    """Write this worker's keys atomically, so the controller never reads half a file."""
    data = {"keys": dict(keys), "groups": {nodeid: sorted(names) for nodeid, names in groups.items() if names}}
    path = run_dir / KEYS_FILE.format(worker=worker)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data), encoding="utf-8")
    partial.replace(path)


def read_keys(run_dir: Path, worker: str) -> tuple[dict[str, str | None], dict[str, list[str]]] | None:
    """A worker's keys and groups, or None when it wrote none."""
    try:
        data = json.loads((run_dir / KEYS_FILE.format(worker=worker)).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return data["keys"], data["groups"]
