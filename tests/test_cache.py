"""The per-worker model cache in real pytest-xdist sessions: built once per worker, isolation repairs,
LRU eviction, ``fresh=True``, ``--no-dummy-cache``, the aggregated summary, and the build lock.

Every inner session logs each build from the post-process hook (which runs inside the build lock) and
each test's view of its model (a sha256 of the parameters); the assertions compare those logs, a fresh
build made here in the outer process, and the plugin's terminal summary.
"""

from __future__ import annotations

import collections
import gc
import importlib.util
from pathlib import Path
from typing import Any, ClassVar

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

from pytest_dummyweights import hookspecs
from pytest_dummyweights._building.pipeline import build, plan_build
from pytest_dummyweights._cache.fingerprint import fingerprint
from pytest_dummyweights._runtime.device import gpu_count, resolve_device, worker_index
from pytest_dummyweights.errors import DummyWeightsError
from pytest_dummyweights.spec import DummySpec
from pytest_dummyweights.vocabulary import human_bytes

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


def planned_key(spec: DummySpec, hooks: Any = None) -> str | None:
    plan = plan_build(spec)
    return fingerprint(plan.spec, plan.loaded_config.raw, plan.factory, hooks=hooks)


def inner_hooks(inner) -> Any:
    """The hooks the inner sessions' tests call: this plugin's hooks, implemented by their conftest.py (which is
    part of the key: another directory's hooks could build the same config differently)."""
    manager = pytest.PytestPluginManager()
    manager.add_hookspecs(hookspecs)
    conftest = inner.path / "conftest.py"
    module_spec = importlib.util.spec_from_file_location("conftest", conftest)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    manager.register(module, name=str(conftest))
    return manager.hook


def key_of(config: dict, hooks: Any = None) -> str | None:
    """The cache key the inner sessions compute for ``config`` (default seed, CPU), with their ``hooks``."""
    return planned_key(DummySpec(config, model=TINY, seed=0, device="cpu"), hooks)


def fresh_digest(config: dict) -> str:
    """Weights of a fresh build in this (outer) process: what every test must see."""
    return digest(build(DummySpec(config, model=TINY, seed=0, device="cpu")).model)


# --- each distinct spec is built at most once per worker; the summary says what happened ----------

SPREAD_TESTS = """
import pytest

def use(name):
    return pytest.mark.dummy_load({"name": name, "width": 4, "depth": 2}, model="cache_support:Tiny")

class Serves:
    def test_serves(self, dummy_model, record, i):
        record(dummy_model)

@use("a")
@pytest.mark.xdist_group("a")
@pytest.mark.parametrize("i", range(6))
class Test_a(Serves):
    pass

@use("b")
@pytest.mark.xdist_group("b")
@pytest.mark.parametrize("i", range(4))
class Test_b(Serves):
    pass

@use("c")
@pytest.mark.xdist_group("c")
@pytest.mark.parametrize("i", range(2))
class Test_c(Serves):
    pass
"""
SPREAD = {"a": 6, "b": 4, "c": 2}


@pytest.mark.parametrize(
    ("dist", "verbosity"),
    [(["--dist", "load"], "-v"), (["--dist", "loadscope"], "-q"), (["--dist", "loadgroup"], None), (["-n", "auto"], "-v")],
    ids=["load-v", "loadscope-q", "loadgroup", "auto-v"],
)
def test_each_spec_is_built_at_most_once_per_worker_and_the_summary_counts_it(inner, logs, dist, verbosity) -> None:
    inner.write("test_spread.py", SPREAD_TESTS)
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
    assert (
        f"{len(SPREAD)} distinct models, {human_bytes(len(SPREAD) * SIZE)} (a real-weights run reads at least this); "
        f"{human_bytes(tests * SIZE)} served to tests" in "\n".join(lines)
    )
    per_model = {m["key"]: (m["built"], m["hits"]) for m in model_lines(result.outlines)}
    if verbosity == "-q":
        assert len(lines) == 1 and lines[0].startswith("dummyweights: "), lines
    elif verbosity is None:
        assert lines[0].startswith("models: ") and not per_model, lines
    else:
        builds_of = collections.Counter(b["name"] for b in builds)
        hooks = inner_hooks(inner)
        assert per_model == {key_of(tiny(n), hooks): (builds_of[n], count - builds_of[n]) for n, count in SPREAD.items()}


# --- a mutating test does not leak into the next one; the summary names it --------------------------

ISOLATION_TESTS = """
import numpy as np
import paddle
import pytest

def weight(model):
    return model.layers[0].weight

def set_value(model):
    weight(model).set_value(paddle.zeros_like(weight(model)))

def inplace_under_no_grad(model):
    with paddle.no_grad():
        weight(model).scale_(2.0)

def setitem_one_element(model):  # element 1 of 16: not one of the probed positions
    with paddle.no_grad():
        weight(model)[0, 1] = 5.0

def optimizer_step(model):
    model.train()
    optimizer = paddle.optimizer.SGD(learning_rate=0.1, parameters=model.parameters())
    model(paddle.ones([3, 4])).sum().backward()
    optimizer.step()

def backward_only(model):  # gradients left behind, weights untouched
    model(paddle.ones([3, 4])).sum().backward()

def train_mode(model):
    model.train()

def add_parameter(model):
    model.add_parameter("extra", model.create_parameter([2]))

def drop_parameter(model):
    model.layers[1].bias = None

def replace_parameter(model):
    model.layers[0].weight = model.create_parameter([4, 4])

def swap_values_in_place(model):  # a numpy write into the storage: no version counter sees it
    np.frombuffer((__import__("ctypes").c_float * 16).from_address(weight(model).data_ptr()), np.float32)[:] *= -1

def forward_hook(model):
    model.register_forward_post_hook(lambda layer, inputs, output: output * 0)

def add_buffer(model):
    model.layers[0].register_buffer("cache", paddle.ones([2]))

def freeze(model):
    weight(model).stop_gradient = True

def untrainable(model):
    model.layers[1].bias.trainable = False

def need_clip(model):
    weight(model).need_clip = False

def optimize_attr(model):  # the next test's optimizer would never update this weight
    weight(model).optimize_attr["learning_rate"] = 0.0

def regularizer(model):
    weight(model).regularizer = paddle.regularizer.L2Decay(0.5)

def uncomparable_regularizer(model):  # no state to compare, but the built value (None) is plain: set back
    weight(model).regularizer = __import__("threading").Lock()

def rename_parameter(model):
    weight(model).name = "renamed"

def parameter_attribute(model):
    weight(model).note = "left behind"

def generation_config(model):  # an attribute object: compared by value, not by identity
    model.generation_config.max_length = 1

def nested_in_place(model):
    model.generation_config.eos_token_id.append(3)

def deep_attribute(model):  # deeper than any comparison goes
    deep = []
    for _ in range(5000):
        deep = [deep]
    model.layers[0].deep = deep

MUTATIONS = {mutate.__name__: mutate for mutate in [
    set_value, inplace_under_no_grad, setitem_one_element, optimizer_step, backward_only, train_mode, add_parameter,
    drop_parameter, replace_parameter, swap_values_in_place, forward_hook, add_buffer, freeze, untrainable, need_clip,
    optimize_attr, regularizer, uncomparable_regularizer, rename_parameter, parameter_attribute, generation_config, nested_in_place,
    deep_attribute,
]}

@pytest.mark.dummy_load({"name": "m", "width": 4, "depth": 2}, model="cache_support:Tiny", fresh=True)
def test_0_reference(dummy_model, record):
    record(dummy_model)

@pytest.fixture(params=list(MUTATIONS), scope="class")
def mutation(request):
    return request.param

@pytest.mark.dummy_load({"name": "m", "width": 4, "depth": 2}, model="cache_support:Tiny")
class TestIsolation:
    def test_1_mutates(self, dummy_model, record, mutation):
        record(dummy_model, mutation=mutation)
        MUTATIONS[mutation](dummy_model)

    def test_2_next(self, dummy_model, record, mutation):
        record(dummy_model, mutation=mutation)
"""
# mutation -> does it change the parameter set or storage (rebuild), or only values, mode, gradients (restore)
MUTATIONS = {
    "set_value": "restore",
    "inplace_under_no_grad": "restore",
    "setitem_one_element": "restore",
    "optimizer_step": "restore",
    "backward_only": "restore",
    "train_mode": "restore",
    "add_parameter": "rebuild",
    "drop_parameter": "rebuild",
    "replace_parameter": "rebuild",
    "swap_values_in_place": "restore",
    "forward_hook": "rebuild",
    "add_buffer": "rebuild",
    "freeze": "restore",
    "untrainable": "restore",
    "need_clip": "restore",
    "optimize_attr": "restore",
    "regularizer": "restore",
    "uncomparable_regularizer": "restore",
    "rename_parameter": "restore",
    "parameter_attribute": "restore",
    "generation_config": "rebuild",
    "nested_in_place": "rebuild",
    "deep_attribute": "rebuild",
}


def view(record: dict) -> tuple:
    """What a test sees of its model: weights, frozen flags, buffers, output of a forward pass, mode, gradients, and
    every Python attribute of its sublayers, parameters and buffers."""
    return tuple(record[key] for key in ("digest", "frozen", "buffers", "output", "training", "grads", "python"))


def test_a_mutating_test_does_not_leak_into_the_next_and_the_summary_names_it(inner, logs) -> None:
    inner.write("test_isolation.py", ISOLATION_TESTS)
    result = run_xdist(inner, "--dist", "loadscope", "-v")  # one class: one worker, in order
    result.assert_outcomes(passed=1 + 2 * len(MUTATIONS))

    seen = seen_by_test(logs)
    fresh = fresh_digest(tiny("m"))
    assert seen["test_0_reference"]["digest"] == fresh
    for name in MUTATIONS:
        before, after = seen[f"test_1_mutates[{name}]"], seen[f"test_2_next[{name}]"]
        assert before["digest"] == fresh, name  # the previous mutation did not leak into this one either
        assert view(after) == view(seen["test_0_reference"]) and not after["training"] and not after["grads"], name
        rebuilt = after["id"] != before["id"]
        assert rebuilt == (MUTATIONS[name] == "rebuild"), name
        assert rebuilt or after["names"] == before["names"], name  # parameter names exactly as built

    lines = summary_section(result.outlines)
    repaired = [line for line in lines if line.startswith("isolation repaired after ")]
    assert [line.split(": ")[0].rpartition("::")[2] for line in repaired] == [f"test_1_mutates[{name}]" for name in MUTATIONS]
    rebuilds = sum(kind == "rebuild" for kind in MUTATIONS.values())
    assert summary_counts(lines)["repairs"] == len(MUTATIONS)
    assert [(m["built"], m["hits"]) for m in model_lines(result.outlines)] == [(2 + rebuilds, 2 * len(MUTATIONS) - 1 - rebuilds)]


# --- least-recently-used eviction under a byte budget ----------------------------------------------

LRU_SEQUENCE = ["a", "b", "a", "c", "a", "b"]  # with room for two: c evicts b (least recent), b then evicts c
SEQUENCE_TESTS = """
import pytest

class TestSequence:
    @pytest.mark.parametrize("name", ["a", "b", "a", "c", "a", "b"])
    def test_request(self, dummy_model_factory, record, name):
        record(dummy_model_factory({"name": name, "width": 4, "depth": 2}, model="cache_support:Tiny"))
"""


@pytest.mark.parametrize("how", ["option-xdist", "ini-in-process"])
def test_eviction_under_a_small_budget_is_least_recently_used(inner, logs, how) -> None:
    inner.write("test_sequence.py", SEQUENCE_TESTS)
    budget = 2 * SIZE
    if how == "ini-in-process":
        inner.write("pytest.ini", f"[pytest]\ndummyweights_cache_bytes = {budget}B\n")
        result = inner.run("-v")
        assert result.ret == 0, result.stdout.str()
    else:
        result = run_xdist(inner, "--dist", "loadscope", f"--dummy-cache-bytes={budget}", "-v")

    assert [b["name"] for b in read_log(logs, "builds")] == ["a", "b", "c", "b"]
    seen = read_log(logs, "seen")
    assert [s["name"] for s in seen] == LRU_SEQUENCE
    assert seen[0]["id"] == seen[2]["id"] == seen[4]["id"]  # a stayed cached: the same object
    assert {s["digest"] for s in seen} == {fresh_digest(tiny("a"))}
    counts = summary_counts(summary_section(result.outlines))
    assert (counts["built"], counts["hits"], counts["evictions"]) == (4, 2, 2)
    per_model = {m["key"]: (m["built"], m["hits"]) for m in model_lines(result.outlines)}
    hooks = inner_hooks(inner)
    assert per_model == {key_of(tiny("a"), hooks): (1, 2), key_of(tiny("b"), hooks): (2, 0), key_of(tiny("c"), hooks): (1, 0)}


# --- fresh=True and --no-dummy-cache ---------------------------------------------------------------

FRESH_TESTS = """
import os
import paddle
import pytest

TINY = {"name": "f", "width": 4, "depth": 2}

@pytest.mark.dummy_load(TINY, model="cache_support:Tiny")
class TestFresh:
    def test_1_cached(self, dummy_model, record):
        record(dummy_model)

    @pytest.mark.dummy_load(TINY, model="cache_support:Tiny", fresh=os.environ["FRESH"] == "1")
    def test_2_private(self, dummy_model, record):
        record(dummy_model)
        dummy_model.layers[0].weight.set_value(paddle.zeros([4, 4]))  # its own copy: may do anything
        dummy_model.train()

    def test_3_cached(self, dummy_model, record):
        record(dummy_model)

    def test_4_cached(self, dummy_model, record):
        record(dummy_model)
"""


def test_fresh_gives_a_private_copy_and_leaves_the_cache_alone(inner, logs, monkeypatch) -> None:
    monkeypatch.setenv("FRESH", "1")
    inner.write("test_fresh.py", FRESH_TESTS)
    result = run_xdist(inner, "--dist", "loadscope", "-v")
    seen = seen_by_test(logs)
    assert seen["test_1_cached"]["id"] == seen["test_3_cached"]["id"] == seen["test_4_cached"]["id"]
    assert seen["test_2_private"]["id"] != seen["test_1_cached"]["id"]
    assert {s["digest"] for s in seen.values()} == {fresh_digest(tiny("f"))}
    assert not any(s["training"] for s in seen.values())
    counts = summary_counts(summary_section(result.outlines))
    assert (counts["built"], counts["hits"], counts["repairs"]) == (2, 2, 0)
    assert [b["name"] for b in read_log(logs, "builds")] == ["f", "f"]


def test_no_dummy_cache_builds_for_every_test(inner, logs, monkeypatch) -> None:
    monkeypatch.setenv("FRESH", "0")
    inner.write("test_fresh.py", FRESH_TESTS)
    result = inner.run("--no-dummy-cache", "-v")  # in-process: no xdist needed to count builds
    assert result.ret == 0, result.stdout.str()
    seen = seen_by_test(logs)
    builds = read_log(logs, "builds")
    assert len(builds) == len(seen) == 4
    assert {s["digest"] for s in seen.values()} == {fresh_digest(tiny("f"))}  # test_2's zeros did not leak
    counts = summary_counts(summary_section(result.outlines))
    assert (counts["built"], counts["hits"], counts["evictions"], counts["repairs"]) == (4, 0, 0, 0)
    assert [(m["built"], m["hits"]) for m in model_lines(result.outlines)] == [(4, 0)]


# --- builds on one device are serialized across workers by the file lock --------------------------

CONTEND_TESTS = """
import os, time
import pytest

LOG_DIR = os.environ["DUMMYWEIGHTS_TEST_LOGS"]

def arrive_and_wait(name):
    '''Both workers ask for their model at the same moment (or fail: the run needs two workers).'''
    open(os.path.join(LOG_DIR, f"arrived-{name}"), "w").close()
    deadline = time.monotonic() + 60
    while len([f for f in os.listdir(LOG_DIR) if f.startswith("arrived-")]) < 2:
        assert time.monotonic() < deadline, "the other worker never arrived"
        time.sleep(0.005)

@pytest.mark.parametrize("name", ["p", "q"])
def test_contend(dummy_model_factory, record, name):
    arrive_and_wait(name)
    record(dummy_model_factory({"name": name, "width": 4, "depth": 2, "sleep": 0.5}, model="cache_support:Tiny"))
"""


def test_two_workers_contending_for_the_build_lock_do_not_overlap(inner, logs) -> None:
    inner.write("test_contend.py", CONTEND_TESTS)
    result = run_xdist(inner, "--dist", "load", "--dummy-storage=filled")  # filled builds write every byte: one at a time
    builds = sorted(read_log(logs, "builds"), key=lambda b: b["start"])
    assert [b["name"] for b in builds] in (["p", "q"], ["q", "p"])
    first, second = builds
    assert first["pid"] != second["pid"]  # two processes
    assert first["end"] <= second["start"]  # the second build began after the first ended
    assert summary_counts(summary_section(result.outlines))["lock_wait"] > 0
    assert list(inner.path.glob("runpytest-*/dummyweights-build-cpu.lock"))  # in the run's shared temp dir


def test_mapped_builds_of_two_workers_share_the_build_lock(inner, logs) -> None:
    """Mapped CPU builds write almost nothing (their parameters map the value store): they need not take turns."""
    inner.write("test_contend.py", CONTEND_TESTS)
    result = run_xdist(inner, "--dist", "load", "--dummy-storage=mapped")
    first, second = sorted(read_log(logs, "builds"), key=lambda b: b["start"])
    assert first["pid"] != second["pid"]
    assert second["start"] < first["end"]  # the second build began while the first was still running
    assert summary_counts(summary_section(result.outlines))["lock_wait"] < 0.5  # neither waited for the other's 0.5 s


# --- keys, worker devices, budgets: plain functions ------------------------------------------------


def test_the_key_changes_with_everything_that_changes_the_model() -> None:
    base = dict(config=tiny("k"), model=TINY, seed=0, device="cpu")
    key = key_of(tiny("k"))
    assert planned_key(DummySpec(**base, fresh=True)) == key  # fresh is how, not what
    assert planned_key(DummySpec(**{**base, "device": "auto"})) == key  # auto resolves first (no GPU)
    variants = [
        {"dtype": "float16"},
        {"seed": 1},
        {"std": 0.5},
        {"overrides": {"width": 8}},
        {"config": {**tiny("k"), "quantization_config": {"bits": 8}}},
        {"model": "cache_support:OtherTiny"},
    ]
    keys = {planned_key(DummySpec(**{**base, **variant})) for variant in variants}
    assert len(keys) == len(variants) and key not in keys


@pytest.mark.skipif(gpu_count() > 0, reason="checks the no-GPU path")
def test_worker_index_and_device_without_a_gpu() -> None:
    assert [worker_index(w) for w in ("gw0", "gw3", "gw12", None, "master", "gwx")] == [0, 3, 12, 0, 0, 0]
    assert resolve_device("auto", "gw1") == resolve_device("cpu", "gw3") == "cpu"
    with pytest.raises(DummyWeightsError, match="no GPU"):
        resolve_device("gpu", "gw1")


def test_the_default_budget_is_shared_by_the_workers_on_a_device() -> None:
    from pytest_dummyweights._cache.budget import default_budget_bytes, workers_per_device

    assert workers_per_device(2) == 2  # no GPU: every worker is on the CPU
    one, two = default_budget_bytes("cpu", 1), default_budget_bytes("cpu", 2)
    assert 0 < two <= one // 2 + 1


def test_set_value_of_one_unprobed_element_is_restored_without_a_rebuild() -> None:
    """Once a known limit of the probes: a small CPU weight is now compared with a copy kept at build time."""
    from pytest_dummyweights._cache.model_cache import ModelCache

    cache = ModelCache(None)
    spec = DummySpec(tiny("u"), model=TINY, seed=0, device="cpu")
    model = cache.get(spec)
    weight = model.layers[0].weight
    values = weight.numpy().copy()
    values[0, 1] += 1  # flat index 1: the probes of 16 elements sit at 0, 2, 4, ...
    weight.set_value(values)
    assert cache.check_loans("test_unprobed") == ["Tiny: 64 B of written weights restored"]
    assert cache.get(spec) is model and digest(model) == fresh_digest(tiny("u"))


class CollectorWitness(dict):
    """A model attribute whose items are read whenever isolation describes the model: it notes whether Python's
    cyclic garbage collector was running then."""

    seen: ClassVar[list[bool]] = []

    def items(self) -> Any:
        CollectorWitness.seen.append(gc.isenabled())
        return super().items()


@pytest.mark.parametrize("enabled", [True, False], ids=["collector on", "collector off"])
def test_a_snapshot_and_a_check_pause_the_collector_and_leave_it_as_they_found_it(enabled: bool) -> None:
    """Describing a giant model allocates millions of tuples it keeps to the end; collections meanwhile would
    traverse them all again and again (``bench/isolation.py``)."""
    from pytest_dummyweights._cache.isolation import Snapshot

    model = build(DummySpec(tiny("collector"), model=TINY, seed=0, device="cpu")).model
    model.witness = CollectorWitness(note="kept")
    CollectorWitness.seen.clear()
    was_enabled = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        snapshot = Snapshot.of(model)
        verdict = snapshot.check(model)
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was_enabled else gc.disable()
    assert verdict.rebuild == [] and verdict.restored == []
    assert CollectorWitness.seen == [False, False]  # described once at the snapshot, once at the check: paused both times
