"""The per-worker model cache in real pytest-xdist sessions: built once per worker, isolation repairs,
LRU eviction, ``fresh=True``, ``--no-dummy-cache``, the aggregated summary, and the build lock.

Every inner session logs each build from the post-process hook (which runs inside the build lock) and
each test's view of its model (a sha256 of the parameters); the assertions compare those logs, a fresh
build made here in the outer process, and the plugin's terminal summary.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from cache_support import (
    digest,
    model_lines,
    read_log,
    seen_by_test,
    summary_counts,
    summary_section,
    tiny,
    tiny_bytes,
    write_conftest,
)
from pytest_dummyweights.build import build, plan_build
from pytest_dummyweights.cache import fingerprint
from pytest_dummyweights.device import resolve_device, worker_index
from pytest_dummyweights.errors import DummyWeightsError
from pytest_dummyweights.spec import DummySpec
from pytest_dummyweights.summary import human_bytes

TINY = "cache_support:Tiny"
SIZE = tiny_bytes()  # every tiny() config below has the default width and depth
XDIST = ("-p", "xdist", "-n", "2")


@pytest.fixture
def logs(inner, tmp_path: Path) -> Path:
    """The inner session's conftest (build and view logs) and the directory it logs to."""
    log_dir = tmp_path / "logs"
    write_conftest(inner, log_dir)
    return log_dir


def run_xdist(inner, *args: str):
    result = inner.run(*XDIST, *args, subprocess=True)
    assert result.ret == 0, result.stdout.str()
    return result


def key_of(config: dict) -> str:
    """The cache key the inner sessions compute for ``config`` (default seed, CPU)."""
    return fingerprint(plan_build(DummySpec(config, model=TINY, seed=0, device="cpu")))


def fresh_digest(config: dict) -> str:
    """Weights of a fresh build in this (outer) process: what every test must see."""
    return digest(build(DummySpec(config, model=TINY, seed=0, device="cpu")).model)


# --- each distinct spec is built at most once per worker; the summary says what happened ----------

SPREAD_TESTS = """
import pytest

def use(name):
    return pytest.mark.dummy_load({{"name": name, "width": 4, "depth": 2}}, model="cache_support:Tiny")

{classes}
"""
SPREAD_CLASS = """
@use({name!r})
@pytest.mark.xdist_group({name!r})
class Test_{name}:
    @pytest.mark.parametrize("i", range({count}))
    def test_serves(self, dummy_model, record, i):
        record(dummy_model)
"""
SPREAD = {"a": 6, "b": 4, "c": 2}


@pytest.mark.parametrize(
    ("dist", "verbosity"),
    [(["--dist", "load"], "-v"), (["--dist", "loadscope"], "-q"), (["--dist", "loadgroup"], None), (["-n", "auto"], "-v")],
    ids=["load-v", "loadscope-q", "loadgroup", "auto-v"],
)
def test_each_spec_is_built_at_most_once_per_worker_and_the_summary_counts_it(inner, logs, dist, verbosity) -> None:
    classes = "".join(SPREAD_CLASS.format(name=name, count=count) for name, count in SPREAD.items())
    inner.write("test_spread.py", SPREAD_TESTS.format(classes=classes))
    result = run_xdist(inner, *dist, *filter(None, [verbosity]))
    result.assert_outcomes(passed=sum(SPREAD.values()))

    builds, seen = read_log(logs, "builds"), read_log(logs, "seen")
    built_where = collections.Counter((b["pid"], b["name"]) for b in builds)
    assert max(built_where.values()) == 1, built_where  # at most once per worker
    used_where = {(s["pid"], s["name"]) for s in seen}
    assert set(built_where) == used_where  # and built where it was used
    assert {s["digest"] for s in seen} == {fresh_digest(tiny("a"))}
    if dist[1] == "loadscope":  # one class per spec, so one worker builds it. (Not asserted for loadgroup:
        # xdist 3.8 groups by rewriting item._nodeid, which pytest 9.2 no longer reads; it runs as load.)
        assert sorted(b["name"] for b in builds) == sorted(SPREAD)

    lines = summary_section(result.outlines)
    counts = summary_counts(lines)
    tests = sum(SPREAD.values())
    assert counts == {
        "built": len(builds),
        "built_bytes": human_bytes(len(builds) * SIZE),
        "hits": tests - len(builds),
        "evictions": 0,
        "repairs": 0,
        "lock_wait": counts["lock_wait"],
    }
    assert f"checkpoint bytes not read: {human_bytes(tests * SIZE)}" in "\n".join(lines)
    per_model = {m["key"]: (m["built"], m["hits"]) for m in model_lines(result.outlines)}
    if verbosity == "-q":
        assert len(lines) == 1 and lines[0].startswith("dummyweights: "), lines
    elif verbosity is None:
        assert lines[0].startswith("models: ") and not per_model, lines
    else:
        builds_of = collections.Counter(b["name"] for b in builds)
        assert per_model == {key_of(tiny(n)): (builds_of[n], count - builds_of[n]) for n, count in SPREAD.items()}
