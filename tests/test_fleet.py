"""One build per model across the fleet, in real sessions: the plugin's xdist scheduler (``-n 2`` with real
pytest-xdist workers), explicit ``xdist_group`` marks, a crashed worker, ``--dummy-dist=off``, ``-n auto``,
the learned durations, model-aware CI shards and one diff-coverage gate over the union of the shards.

The inner sessions log every build (the post-process hook, cache_support's conftest) and where every test
ran; the assertions read those logs, the keys the workers wrote for the controller, and the run summary.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cache_support import read_log, summary_section, write_conftest
from engine_models import REPO

from pytest_dummyweights._fleet.units import workers_worth_starting

XDIST = ("-p", "xdist", "-n", "2")

# where each test ran; a test session sets FLEET_REVERSE=1 to collect in reverse order (as a shuffling plugin would)
WHERE_CONFTEST = """

@pytest.fixture(autouse=True)
def _where(request):
    _append("ran", {"test": request.node.nodeid, "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"), "pid": os.getpid()})

def pytest_collection_modifyitems(items):
    if os.environ.get("FLEET_REVERSE") == "1":
        items.reverse()
"""

MODEL_TESTS = """
import pytest
from cache_support import Tiny
from engine_models import SHRINK
from pytest_dummyweights import DummySpec

def tiny(name):
    return {"name": name, "width": 4, "depth": 2}

@pytest.mark.dummy_load(tiny("a"), model="cache_support:Tiny")
@pytest.mark.parametrize("i", range(5))
def test_a(dummy_model, i):
    assert dummy_model.name == "a"

@pytest.mark.dummy_load(tiny("b"), model=Tiny)
@pytest.mark.parametrize("i", range(3))
def test_b(dummy_model, i):
    assert dummy_model.name == "b"

@pytest.mark.parametrize("dummy_model", [DummySpec(tiny("c"), model=lambda config: Tiny(config))], indirect=True)
@pytest.mark.parametrize("i", range(3))
def test_c(dummy_model, i):
    assert dummy_model.name == "c"

@pytest.mark.parametrize("i", range(4))
def test_plain(i):
    pass
"""
MODEL_COUNTS = {"a": 5, "b": 3, "c": 3}

REAL_TESTS = """
import pytest
from engine_models import SHRINK

CONFIG, OVERRIDES = SHRINK["qwen3"]

@pytest.mark.dummy_load(str(CONFIG), overrides={**OVERRIDES, "name": "qwen3"}, new_keys=["name"])
@pytest.mark.parametrize("i", range(2))
def test_qwen3(dummy_model, i):
    assert type(dummy_model).__name__ == "Qwen3ForCausalLM"
"""


@pytest.fixture
def logs(inner, tmp_path: Path) -> Path:
    log_dir = tmp_path / "logs"
    write_conftest(inner, log_dir)
    with open(inner.path / "conftest.py", "a") as conftest:
        conftest.write(WHERE_CONFTEST)
    return log_dir


def run_xdist(inner, *args: str) -> pytest.RunResult:
    return inner.run(*XDIST, *args, subprocess=True)


def workers_of(log_dir: Path, prefix: str) -> set[str]:
    """The workers that ran the tests whose node id starts with ``prefix``."""
    return {r["worker"] for r in read_log(log_dir, "ran") if r["test"].split("::")[-1].startswith(prefix)}


def model_of(nodeid: str) -> str:
    return nodeid.split("::")[-1].split("[")[0].removeprefix("test_")


def written_keys(inner) -> list[dict]:
    """The key files the workers wrote into the controller's run directory."""
    paths = sorted(inner.path.glob("runpytest-[0-9]*/dummyweights-fleet/keys-gw*.json"))
    return [json.loads(path.read_text()) for path in paths]


# --- the scheduler: keys equal on every worker, each model built once in total ------------------------


@pytest.mark.paddleformers  # one real PaddleFormers config among the engine-style models
def test_each_model_is_built_once_in_total_by_keys_every_worker_computes_alike(inner, logs) -> None:
    inner.write("test_models.py", MODEL_TESTS)
    inner.write("test_real.py", REAL_TESTS)
    durations = inner.path / "durations.json"
    result = run_xdist(inner, "-v", f"--dummy-durations={durations}", "--dummy-write-durations")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=sum(MODEL_COUNTS.values()) + 4 + 2)
    result.stdout.fnmatch_lines(["scheduling tests via ModelScheduling"])

    first, second = written_keys(inner)
    assert first == second  # the same keys (and groups) on both workers
    keys = first["keys"]
    by_model = collections.defaultdict(set)
    for nodeid, key in keys.items():
        by_model[model_of(nodeid)].add(key)
    assert by_model.pop("plain") == {None}
    assert all(len(found) == 1 and None not in found for found in by_model.values()), by_model
    assert len({key for found in by_model.values() for key in found}) == len(MODEL_COUNTS) + 1  # a, b, c, qwen3

    builds = collections.Counter(b["name"] for b in read_log(logs, "builds") if "name" in b)
    assert builds == dict.fromkeys([*MODEL_COUNTS, "qwen3"], 1)  # once in total, not once per worker
    for name in [*MODEL_COUNTS, "qwen3"]:
        assert len(workers_of(logs, f"test_{name}")) == 1, name

    lines = summary_section(result.outlines)
    per_model = [line for line in lines if re.match(r"^\s+[0-9a-f]{16}\s", line)]
    assert len(per_model) == 4 and all(re.search(r"built 1x on gw[01], served from cache", line) for line in per_model), per_model
    assert not [line for line in lines if " was built on " in line]
    # the learned build seconds are kept under the same keys the workers computed
    learned = json.loads(durations.read_text())
    assert set(learned["models"]) == {key for found in by_model.values() for key in found}
    assert all(entry["build_seconds"] > 0 for entry in learned["models"].values())
    assert len(learned["units"]) == len(MODEL_COUNTS) + 1 + 4  # a unit per model, one per plain test
    assert {nodeid: [key] for nodeid, key in keys.items() if key} == learned["tests"]  # what each test was served


FACTORY_TESTS = """
import pytest

@pytest.fixture
def model(request, dummy_model_factory):
    return dummy_model_factory({"name": request.param, "width": 4, "depth": 2}, model="cache_support:Tiny")

@pytest.mark.parametrize("model", ["a", "b", "c"], indirect=True)
@pytest.mark.parametrize("i", range(4))
def test_shapes(model, i):
    assert model.width == 4
"""


def test_tests_that_build_through_the_factory_are_grouped_from_the_second_run_on(inner, logs) -> None:
    """The factory builds inside the test, out of sight at collection: the durations file remembers which
    models each test was served, and the next run groups them."""
    inner.write("test_factory.py", FACTORY_TESTS)
    durations = inner.path / "durations.json"
    first = run_xdist(inner, f"--dummy-durations={durations}", "--dummy-write-durations")
    assert first.ret == 0, first.stdout.str()
    learned = json.loads(durations.read_text())
    assert len(learned["tests"]) == 12 and len({tuple(keys) for keys in learned["tests"].values()}) == 3
    assert len(learned["units"]) == 3  # the units the next run forms, one per model, which size its worker count
    for old in logs.glob("*.jsonl"):
        old.unlink()

    second = run_xdist(inner, "-v", f"--dummy-durations={durations}")
    assert second.ret == 0, second.stdout.str()
    assert sorted(b["name"] for b in read_log(logs, "builds")) == ["a", "b", "c"]  # once each, in total
    for name in "abc":
        assert len({r["worker"] for r in read_log(logs, "ran") if f"-{name}]" in r["test"]}) == 1, name


GROUP_TESTS = """
import pytest

def tiny(name):
    return {"name": name, "width": 4, "depth": 2}

@pytest.mark.xdist_group("g")
@pytest.mark.parametrize("i", range(3))
def test_grouped(i):
    pass

@pytest.mark.parametrize("i", range(6))
def test_loose(i):
    pass

@pytest.mark.xdist_group(name="h")
@pytest.mark.dummy_load(tiny("a"), model="cache_support:Tiny")
def test_a_in_h(dummy_model):
    pass

@pytest.mark.dummy_load(tiny("a"), model="cache_support:Tiny")
@pytest.mark.parametrize("i", range(2))
def test_a_more(dummy_model, i):
    pass

@pytest.mark.xdist_group("h")
def test_h_without_model():
    pass
"""


def test_explicit_xdist_groups_stay_on_one_worker_with_their_models(inner, logs) -> None:
    """Checked on pytest 9.2 here and on 8.4.2 by the pytest-8 cell (ci/matrix pytest-8): xdist's own loadgroup does not group on 9.2."""
    inner.write("test_groups.py", GROUP_TESTS)
    result = run_xdist(inner, "-v")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=13)
    assert len(workers_of(logs, "test_grouped")) == 1
    # group h and model a are one unit: every test of either on one worker
    assert len(workers_of(logs, "test_a_") | workers_of(logs, "test_h_")) == 1
    assert [b["name"] for b in read_log(logs, "builds")] == ["a"]


CRASH_TESTS = """
import os
import pytest

FLAG = os.path.join(os.environ["DUMMYWEIGHTS_TEST_LOGS"], "crashed-once")

@pytest.mark.dummy_load({"name": "a", "width": 4, "depth": 2}, model="cache_support:Tiny")
@pytest.mark.parametrize("i", range(5))
def test_a(dummy_model, i):
    if i == 1 and not os.path.exists(FLAG):
        open(FLAG, "w").close()
        os._exit(1)  # the worker dies mid-unit

@pytest.mark.parametrize("i", range(2))
def test_plain(i):
    pass
"""


def test_a_crashed_workers_model_is_rebuilt_elsewhere_for_its_remaining_tests(inner, logs) -> None:
    inner.write("test_crash.py", CRASH_TESTS)
    result = run_xdist(inner, "-v")
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(["*worker 'gw?' crashed while running 'test_crash.py::test_a[[]1[]]'*"])
    builds = sorted(read_log(logs, "builds"), key=lambda b: b["start"])
    assert [b["name"] for b in builds] == ["a", "a"] and builds[0]["pid"] != builds[1]["pid"]
    ran = {r["test"].split("::")[-1]: r["pid"] for r in read_log(logs, "ran")}
    assert ran["test_a[0]"] == builds[0]["pid"]
    assert {ran[f"test_a[{i}]"] for i in (2, 3, 4)} == {builds[1]["pid"]}  # the rest, together, on another worker
    notes = [line for line in summary_section(result.outlines) if " was built on 2 workers " in line]
    assert len(notes) == 1 and re.search(r"worker gw\d crashed running test_crash.py::test_a\[1\]", notes[0]), notes


# --- xdist's own modes, when asked for -------------------------------------------------------------


PLAIN_TESTS = """
import pytest

@pytest.mark.parametrize("i", range(4))
def test_plain(i):
    pass
"""


@pytest.mark.parametrize(
    ("args", "ini"),
    [(["--dummy-dist=off"], ""), (["--dist", "load"], ""), ([], "dummyweights_dist = off\n")],
    ids=["option-off", "explicit-dist", "ini-off"],
)
def test_off_or_an_explicit_dist_gives_xdists_scheduling_back(inner, args, ini) -> None:
    inner.write("test_plain.py", PLAIN_TESTS)
    if ini:
        inner.write("pytest.ini", "[pytest]\n" + ini)
    result = run_xdist(inner, "-v", *args)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["scheduling tests via LoadScheduling"])
    assert not list(inner.path.glob("runpytest-[0-9]*/dummyweights-fleet"))


@pytest.mark.parametrize("count", ["auto", "4"])
def test_only_the_workers_the_last_runs_units_can_use_are_started(inner, count) -> None:
    inner.write("test_plain.py", PLAIN_TESTS)
    durations = inner.path / "durations.json"
    durations.write_text(json.dumps({"version": 1, "models": {}, "units": [5.0]}))  # one unit: a second worker saves nothing
    result = inner.run("-p", "xdist", "-n", count, f"--dummy-durations={durations}", subprocess=True)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["1 worker [[]4 items[]]"])
    header = "dummyweights: starting 1 of 4 workers: the last run's work units keep no more busy (--dummy-dist=off starts them all)"
    assert (header in result.outlines) == (count == "4")


def test_the_worker_count_grows_while_a_worker_saves_more_than_its_start() -> None:
    assert workers_worth_starting([8, 1, 1, 1], 4) == 2  # a third worker cannot shorten the 8 s unit
    assert workers_worth_starting([5, 5, 5, 5], 4) == 4
    assert workers_worth_starting([1, 1, 1, 1], 4) == 1  # each extra worker saves under its 2 s start
    assert workers_worth_starting([30], 8) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dummy-shard=4/3"], "--dummy-shard='4/3': write K/N with 1 <= K <= N"),
        (["--dummy-shard=half"], "--dummy-shard='half': write K/N with 1 <= K <= N"),
        (["-p", "xdist", "--dist", "load", "--dummy-dist=model"], "--dummy-dist=model and --dist=load both choose"),
        (["--dummy-write-durations"], "--dummy-write-durations needs --dummy-durations FILE"),
        (["--dummy-durations=broken.json"], "broken.json is not JSON (Expecting property name"),
        (["--dummy-durations=other.json", "--dummy-shard=1/2"], "is not a dummyweights durations file: ValueError: version None"),
    ],
    ids=["shard-range", "shard-text", "dist-twice", "write-without-file", "not-json", "not-durations"],
)
def test_bad_fleet_options_are_one_usage_error(inner, args, message) -> None:
    inner.write("test_plain.py", PLAIN_TESTS)
    (inner.path / "broken.json").write_text("{")
    (inner.path / "other.json").write_text('{"some": "thing"}')
    result = inner.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert len(errors) == 1 and message in errors[0], result.errlines
    assert "Traceback" not in result.stderr.str()


# --- shards ------------------------------------------------------------------------------------------


SHARD_TESTS = """
import pytest

def tiny(name):
    return {"name": name, "width": 4, "depth": 2}

@pytest.mark.parametrize("i", range(15))
def test_loose(i):
    pass  # no model: balanced by count

def use(name):
    return pytest.mark.dummy_load(tiny(name), model="cache_support:Tiny")
"""
SHARD_MODELS = {"p": 4, "q": 3, "r": 2, "s": 2, "t": 1}
SHARD_COUNT = 3


SHARD_CASE = """
@use({name!r})
@pytest.mark.parametrize("i", range({count}))
def test_{name}(dummy_model, i):
    assert dummy_model.name == {name!r}
"""


def shard_tests_source() -> str:
    return SHARD_TESTS + "".join(SHARD_CASE.format(name=name, count=count) for name, count in SHARD_MODELS.items())


def passed_tests(result: pytest.RunResult) -> list[str]:
    """Node ids of the passed tests, from -v output in process (``id PASSED``) or under xdist (``PASSED id``)."""
    found = map(re.compile(r"^(\S+::\S+) PASSED|PASSED (\S+::\S+)").search, result.outlines)
    return sorted(m[1] or m[2] for m in found if m)


def collected(result: pytest.RunResult) -> list[str]:
    return sorted(line for line in result.outlines if line.startswith("test_shards.py::"))


def test_shards_are_complete_disjoint_stable_and_build_only_their_own_models(inner, logs, monkeypatch) -> None:
    inner.write("test_shards.py", shard_tests_source())
    durations = inner.path / "durations.json"
    whole = inner.run("-v", f"--dummy-durations={durations}", "--dummy-write-durations")
    assert whole.ret == 0, whole.stdout.str()
    everything = set(passed_tests(whole))
    assert len(everything) == 15 + sum(SHARD_MODELS.values())
    assert len(json.loads(durations.read_text())["models"]) == len(SHARD_MODELS)

    shards: list[set[str]] = []
    for index in range(1, SHARD_COUNT + 1):
        for old in logs.glob("builds-*.jsonl"):
            old.unlink()
        result = inner.run("-v", f"--dummy-shard={index}/{SHARD_COUNT}", f"--dummy-durations={durations}")
        assert result.ret == 0, result.stdout.str()
        kept = set(passed_tests(result))
        shards.append(kept)
        models_kept = {model_of(test) for test in kept} & set(SHARD_MODELS)
        assert {b["name"] for b in read_log(logs, "builds") if b["name"] in SHARD_MODELS} == models_kept  # only its own
        summary = [line for line in summary_section(result.outlines) if line.startswith(f"shard {index}/{SHARD_COUNT}: ")]
        expected = f"shard {index}/{SHARD_COUNT}: {len(kept)} of {len(everything)} tests, {len(models_kept)} models (the rest deselected)"
        assert summary == [expected]
        if index == 1:  # on xdist workers too: the same tests, and the controller's summary says so
            distributed = run_xdist(inner, "-v", f"--dummy-shard={index}/{SHARD_COUNT}", f"--dummy-durations={durations}")
            assert set(passed_tests(distributed)) == kept
            assert expected in summary_section(distributed.outlines)
        # stable: a second collection, in reverse order (as a shuffling plugin would), keeps the same tests
        monkeypatch.setenv("FLEET_REVERSE", "1")
        again = inner.run("--collect-only", "-q", f"--dummy-shard={index}/{SHARD_COUNT}", f"--dummy-durations={durations}")
        monkeypatch.delenv("FLEET_REVERSE")
        assert set(collected(again)) == kept

    assert set().union(*shards) == everything  # complete
    assert all(not a & b for a, b in itertools.combinations(shards, 2))  # disjoint
    for name in SHARD_MODELS:  # each model's tests in one shard
        assert sum(any(model_of(test) == name for test in shard) for shard in shards) == 1, name
    unkeyed = [sum(model_of(test) == "loose" for test in shard) for shard in shards]
    assert max(unkeyed) - min(unkeyed) <= 1, unkeyed  # tests without a model: balanced by count


# --- one gate over the union of the shards ---------------------------------------------------------

CALC_BASE = """
def add(a, b):
    return a + b
"""
CALC_FEATURE = (
    CALC_BASE
    + """

def sub(a, b):
    return a - b


def mul(a, b):
    result = a * b
    return result


def div(a, b):
    if b == 0:
        raise ZeroDivisionError("b is 0")
    return a / b
"""
)
CALC_TESTS = """
from calc import add, mul, sub

def test_add():
    assert add(1, 2) == 3

def test_sub():
    assert sub(3, 2) == 1

def test_mul():
    assert mul(2, 3) == 6
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_the_combined_gate_of_three_shards_equals_the_unsharded_gate(pytester: pytest.Pytester, monkeypatch) -> None:
    """The flow of docs/sharding.md: each shard keeps its coverage data, ``coverage combine``, then the gate once."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    for name in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{name}_NAME", "Fleet Test")
        monkeypatch.setenv(f"GIT_{name}_EMAIL", "fleet@example.com")
    root = pytester.path
    (root / "calc.py").write_text(CALC_BASE)
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "base")
    git(root, "checkout", "--quiet", "-b", "feature")
    (root / "calc.py").write_text(CALC_FEATURE)
    (root / "test_calc.py").write_text(CALC_TESTS)
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "feature")

    def run(*command: str, data_file: str = ".coverage") -> list[str]:
        done = subprocess.run(
            [sys.executable, "-m", *command], cwd=root, env={**os.environ, "COVERAGE_FILE": data_file}, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout.splitlines()

    pytest_args = ("pytest", "-p", "dummyweights", "-p", "pytest_cov", "-p", "no:cacheprovider", "--cov=calc", "--cov-report=")
    gate = ("pytest_dummyweights", "gate", "--fail-under", "50", "--compare-branch", "main", "--coverage-xml")
    run(*pytest_args, data_file=".coverage.whole")
    run("coverage", "xml", "-o", "whole.xml", data_file=".coverage.whole")
    for index in range(1, 4):
        run(*pytest_args, f"--dummy-shard={index}/3", data_file=f".coverage.shard{index}")
    run("coverage", "combine", ".coverage.shard1", ".coverage.shard2", ".coverage.shard3", data_file=".coverage.combined")
    run("coverage", "xml", "-o", "combined.xml", data_file=".coverage.combined")

    whole, combined = run(*gate, "whole.xml"), run(*gate, "combined.xml")
    assert combined == whole
    assert any(re.search(r"\d+\.\d% of \d+ changed lines covered", line) for line in combined), combined
    assert git(root, "status", "--porcelain", "--", "calc.py", "test_calc.py") == ""  # the user's files untouched


# --- the copyable workflow in docs/sharding.md ------------------------------------------------------


def sharding_workflow() -> str:
    blocks = re.findall(r"^```yaml\n(.*?)^```$", (REPO / "docs" / "sharding.md").read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1
    return blocks[0]


def test_the_sharding_workflow_is_valid_for_github_and_gates_once_over_every_shard(tmp_path: Path) -> None:
    from ruamel.yaml import YAML
    from test_workflow import validate_workflow

    path = tmp_path / "tests.yml"
    path.write_text(sharding_workflow())
    checked = validate_workflow(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    jobs = YAML(typ="safe").load(path.read_text())["jobs"]
    shard_job, gate_job = jobs["shard"], jobs["gate"]
    shards = shard_job["strategy"]["matrix"]["shard"]
    runs = "\n".join(step.get("run", "") for step in shard_job["steps"])
    assert f"--dummy-shard ${{{{ matrix.shard }}}}/{len(shards)}" in runs and "-n auto" in runs and "--cov-report=" in runs
    assert shard_job["env"]["COVERAGE_FILE"] == ".coverage.shard${{ matrix.shard }}"
    assert gate_job["needs"] == "shard"
    gate_runs = [step["run"] for step in gate_job["steps"] if "run" in step]
    order = [
        next(i for i, run in enumerate(gate_runs) if word in run)
        for word in ("coverage combine", "coverage xml", "pytest_dummyweights gate")
    ]
    assert order == sorted(order)


# --- pytest-cov: a late worker's start must not erase what an early one measured ------------------------

# -p plugin of the inner session: gw1 starts (pytest-cov erases the data files) only after gw0 has finished, or
# 3 s after gw0 ran all but its last test (a worker runs its last test once told that nothing follows it), while
# the scheduler holds gw0 for gw1
LATE_START = """
import os
import time
from pathlib import Path

LOGS = Path(os.environ["DUMMYWEIGHTS_TEST_LOGS"])
BEFORE_THE_LAST = {before_the_last}

def pytest_runtest_logfinish(nodeid):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        with open(LOGS / "done.txt", "a") as done:
            done.write(nodeid + "\\n")

def pytest_sessionfinish(session):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        (LOGS / ("finished-" + os.environ["PYTEST_XDIST_WORKER"])).touch()

def _start_late():
    done, give_up, grace_ends = LOGS / "done.txt", time.monotonic() + 60, None
    while not (LOGS / "finished-gw0").exists() and time.monotonic() < give_up:
        if grace_ends is None and done.exists() and len(done.read_text().splitlines()) >= BEFORE_THE_LAST:
            grace_ends = time.monotonic() + 3
        if grace_ends is not None and time.monotonic() > grace_ends:
            return
        time.sleep(0.05)

if os.environ.get("PYTEST_XDIST_WORKER") == "gw1":
    _start_late()
"""
COVERED_TESTS = """
import pytest
from covered import a, b

@pytest.mark.dummy_load({"name": "a", "width": 4, "depth": 2}, model="cache_support:Tiny")
@pytest.mark.parametrize("i", range(2))
def test_a(dummy_model, i):
    assert a.used(i) == i

@pytest.mark.parametrize("i", range(2))
def test_b(i):
    assert b.used(i) == i
"""


def test_a_worker_that_starts_late_does_not_erase_the_coverage_of_one_that_ran_everything(inner, logs) -> None:
    """pytest-cov erases the coverage data files when a worker starts: the scheduler stops no worker (which then
    writes its data) before every worker has started, also when work began with the first worker's collection."""
    inner.write("late_start.py", LATE_START.format(before_the_last=3))
    inner.write("covered/__init__.py", "")
    for name in ("a", "b"):
        inner.write(f"covered/{name}.py", "def used(value):\n    return value\n")
    inner.write("test_covered.py", COVERED_TESTS)
    result = run_xdist(inner, "-p", "late_start", "-p", "pytest_cov", "--cov=covered", "--cov-report=json:coverage.json")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*4 passed*"])
    assert {r["worker"] for r in read_log(logs, "ran")} == {"gw0"}  # gw0 ran everything while gw1 was starting
    files = json.loads((inner.path / "coverage.json").read_text())["files"]
    assert {name: files[f"covered/{name}.py"]["missing_lines"] for name in ("a", "b")} == {"a": [], "b": []}
