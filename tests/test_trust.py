"""No test may pass that should fail: the cache never serves another factory's model, a test's changes
never reach the next test, and bad input gives exactly one line (the user's own code keeps its traceback)."""

from __future__ import annotations

import json
import re

import pytest
from cache_support import digest, tiny
from engine_models import SHRINK

from pytest_dummyweights._building.pipeline import build
from pytest_dummyweights.spec import DummySpec

# --- a factory is identified by itself, never by its name ------------------------------------------

FACTORIES = """
import functools
import pytest
from cache_support import OtherTiny, Tiny

CONFIG = {"name": "f", "width": 4, "depth": 2}

lambda_tiny = lambda config: Tiny(config)
lambda_other = lambda config: OtherTiny(config)

def make(cls, config):
    return cls(config)

partial_tiny = functools.partial(make, Tiny)
partial_other = functools.partial(make, OtherTiny)

def closure(cls):
    def build(config):
        return cls(config)
    return build

closure_tiny = closure(Tiny)
closure_other = closure(OtherTiny)

class Registry:  # an arbitrary object a closure holds: it could change between builds
    cls = Tiny

registry = Registry()

def from_registry(config):
    return registry.cls(config)

holder = closure(registry)

@pytest.mark.parametrize("factory, expected", [
    (lambda_tiny, "Tiny"), (lambda_other, "OtherTiny"),
    (partial_tiny, "Tiny"), (partial_other, "OtherTiny"),
    (closure_tiny, "Tiny"), (closure_other, "OtherTiny"),
    (lambda_tiny, "Tiny"),
])
def test_each_factory_gets_its_own_model(dummy_model_factory, factory, expected):
    assert type(dummy_model_factory(CONFIG, model=factory)).__name__ == expected

def make_with_state(state):
    def build(config):
        return Tiny(config)
    build.state = state
    return build

opaque = closure(type("Opaque", (Tiny,), {}))
unsafe = (lambda holder: (lambda config: Tiny(config) if holder else None))(registry)

@pytest.mark.parametrize("round", [1, 2])
def test_an_undescribable_factory_is_not_cached(dummy_model_factory, round):
    assert type(dummy_model_factory(CONFIG, model=unsafe)).__name__ == "Tiny"
"""


def test_lambdas_partials_and_closures_of_one_module_get_their_own_models(inner) -> None:
    inner.write("test_factories.py", FACTORIES)
    result = inner.run("-v")
    result.assert_outcomes(passed=9)
    output = result.stdout.str()
    # 6 distinct factories built once each (the repeated lambda is a hit); the unsafe one twice, uncached
    assert re.search(r"models: 8 built in [\d.]+ s \([^)]*\), 1 cache hits", output), output
    assert (
        len(
            re.findall(
                r"Tiny float32 \(not cached: its factory carries values that cannot be described safely\)\s+\S+ \S+ \([^)]*\)\s+built 2x",
                output,
            )
        )
        == 1
    )


def test_identical_factory_text_in_two_places_still_differs() -> None:
    from pytest_dummyweights._cache.fingerprint import key_text

    def closure(value):
        return lambda config: value

    assert key_text(closure(1)) != key_text(closure(2))
    assert key_text(digest) == "cache_support:digest(defaults=None, kwdefaults=None, closure=tuple())"  # its name leads back to it
    assert key_text(closure(object())) is None
    assert key_text(lambda config: config) != key_text(lambda config: config)  # two objects on one line


# --- what a test changes never reaches the next test ------------------------------------------------

LEAKS = """
import os
import paddle
import pytest

WIDTH = int(os.environ["LEAK_WIDTH"])
STORAGE = os.environ["LEAK_STORAGE"]

def set_one_element(m):
    weight = m.layers[0].weight
    weight.set_value(paddle.where(paddle.arange(WIDTH * WIDTH).reshape([WIDTH, WIDTH]) == 5, paddle.full_like(weight, 9.0), weight))

def copy_into_a_slice(m):
    paddle.assign(paddle.full([1, 4], 7.0), m.layers[0].weight.view([-1])[WIDTH + 1 : WIDTH + 5].view([1, 4]))

MUTATIONS = {
    "set_value_one_element": set_one_element,
    "copy_into_a_slice": copy_into_a_slice,
    "config_attribute": lambda m: setattr(m.config, "width", 99),
    "sublayer_attribute": lambda m: setattr(m.layers[1], "note", "left behind"),
}

@pytest.fixture(params=list(MUTATIONS), scope="class")
def mutation(request):
    return request.param

@pytest.mark.dummy_load({"name": "m", "width": WIDTH, "depth": 2}, model="cache_support:Tiny", storage=STORAGE)
class TestLeak:
    def test_1_mutates(self, dummy_model, record, mutation):
        record(dummy_model, mutation=mutation)
        MUTATIONS[mutation](dummy_model)

    def test_2_next(self, dummy_model, record, mutation):
        record(dummy_model, mutation=mutation, width=dummy_model.config.width,
               note=getattr(dummy_model.layers[1], "note", None))
"""
VALUE_WRITES = {"set_value_one_element", "copy_into_a_slice"}


@pytest.mark.parametrize(
    ("width", "storage", "isolation", "value_writes"),
    [
        (4, "filled", "fast", "restored"),  # small CPU tensors: compared with a kept copy, copied back
        (600, "mapped", "fast", "restored"),  # 1.4 MB weights: mapped, written pages dropped
        (600, "filled", "strict", "rebuilt"),  # large filled weights: every byte digested
    ],
    ids=["small-kept-copy", "mapped-pages", "filled-strict"],
)
def test_each_leak_kind_is_undone_and_the_next_test_sees_a_fresh_build(
    inner, logs, monkeypatch, width, storage, isolation, value_writes
) -> None:
    from cache_support import read_log

    monkeypatch.setenv("LEAK_WIDTH", str(width))
    monkeypatch.setenv("LEAK_STORAGE", storage)
    inner.write("test_leaks.py", LEAKS)
    result = inner.run("-v", "-p", "xdist", "-n", "2", "--dist", "loadfile", f"--dummy-isolation={isolation}", subprocess=True)
    result.assert_outcomes(passed=8)
    fresh = digest(build(DummySpec(tiny("m", width=width), model="cache_support:Tiny", seed=0, device="cpu", storage=storage)).model)
    seen = read_log(logs, "seen")
    nexts = {s["mutation"]: s for s in seen if s["test"].startswith("test_2_next")}
    firsts = {s["mutation"]: s for s in seen if s["test"].startswith("test_1_mutates")}
    assert set(nexts) == set(firsts) == {"set_value_one_element", "copy_into_a_slice", "config_attribute", "sublayer_attribute"}
    for mutation, after in nexts.items():
        assert firsts[mutation]["digest"] == after["digest"] == fresh, mutation  # bit-identical to a fresh build
        assert after["width"] == width and after["note"] is None, mutation
        expected = value_writes if mutation in VALUE_WRITES else "rebuilt"
        assert (after["id"] != firsts[mutation]["id"]) == (expected == "rebuilt"), mutation
    result.stdout.fnmatch_lines(["*isolation repaired after *test_1_mutates*changed config*"])
    result.stdout.fnmatch_lines(["*isolation repaired after *test_1_mutates*added attribute note of layers.1*"])
    if value_writes == "restored":
        result.stdout.fnmatch_lines(
            ["*isolation repaired after *test_1_mutates?set_value_one_element?: Tiny: * of written weights restored"]
        )


@pytest.fixture
def logs(inner, tmp_path):
    from cache_support import write_conftest

    log_dir = tmp_path / "logs"
    write_conftest(inner, log_dir)
    return log_dir


# --- bad input: exactly one line, naming the test, the config and the cause -----------------------

QWEN3 = str(SHRINK["qwen3"][0])

BAD_INPUTS = """
import json
import numpy
import pytest
from engine_models import SHRINK, ZOO, zoo_config
from pytest_dummyweights import DummySpec

QWEN3 = str(SHRINK["qwen3"][0])
TINY = SHRINK["qwen3"][1]

@pytest.mark.parametrize("overrides", [{"num_hidden_layers": "2"}, {"num_hidden_layers": None}, {"num_hidden_layers": -1}],
                         ids=["string", "none", "negative"])
def test_override_of_the_wrong_kind(dummy_model_factory, overrides):
    dummy_model_factory(QWEN3, overrides={**TINY, **overrides})

PUBLISHED = json.loads((SHRINK["qwen3"][0] / "config.json").read_text())

@pytest.mark.parametrize("architectures", [{"a": 1}, "Qwen3ForCausalLM", ["export_model"]], ids=["dict", "string", "not-a-class"])
def test_malformed_architectures(dummy_model_factory, architectures):
    dummy_model_factory({**PUBLISHED, **TINY, "architectures": architectures})

@pytest.mark.parametrize("config", ["/dev/null", "latin1", "loop"])
def test_unreadable_config(dummy_model_factory, config):
    dummy_model_factory(config)

@pytest.mark.parametrize("std", [float("inf"), 1e39, float("nan")])
def test_std_that_cannot_give_values(dummy_model_factory, std):
    dummy_model_factory(zoo_config("s"), model=ZOO, std=std)

@pytest.mark.parametrize("dummy_model", [{"model_type": "qwen3"}], indirect=True)
def test_dict_indirect_parameter(dummy_model):
    pass

def test_numpy_integer_seed_is_a_seed(dummy_model_factory):
    assert dummy_model_factory(zoo_config("n"), model=ZOO, seed=numpy.int64(3)) is not None
"""

BAD_CAUSES = {
    "test_override_of_the_wrong_kind[string]": r"override num_hidden_layers='2' is a string, "
    r"but config .* has an integer there \(28\): pass an integer",
    "test_override_of_the_wrong_kind[none]": r"override num_hidden_layers=None is a NoneType, but config .* has an integer there",
    "test_override_of_the_wrong_kind[negative]": r"override num_hidden_layers=-1 is negative",
    "test_malformed_architectures[dict]": r"'architectures' must be a list of class names",
    "test_malformed_architectures[string]": r"'architectures' must be a list of class names",
    "test_malformed_architectures[not-a-class]": r"PaddleFormers [\d.]+ has 'export_model' there, but it is a function, not a model class",
    "test_unreadable_config[/dev/null]": r"config /dev/null is not a regular file",
    "test_unreadable_config[latin1]": r"latin1/config.json is not UTF-8 text",
    "test_unreadable_config[loop]": r"loop/config.json is not a regular file \(a device, a broken symlink or a symlink loop\)",
    "test_std_that_cannot_give_values[inf]": r"std must be a finite positive number; got inf",
    "test_std_that_cannot_give_values[1e+39]": r"std 1e\+39 cannot give finite float32 values: .* at most 4\.254e\+37",
    "test_std_that_cannot_give_values[nan]": r"std must be a finite positive number; got nan",
    "test_dict_indirect_parameter[dummy_model0]": r"an indirect parameter of dummy_model must be a config path or a DummySpec; got dict",
}


@pytest.mark.paddleformers
def test_each_bad_input_is_one_line_with_no_traceback(inner) -> None:
    inner.write("latin1/config.json", "")
    (inner.path / "latin1/config.json").write_bytes(b'{"model_type": "caf\xe9"}')
    (inner.path / "loop").mkdir()
    (inner.path / "loop/config.json").symlink_to(inner.path / "loop/config.json")
    inner.write("test_bad.py", BAD_INPUTS)
    result = inner.run("-v")
    result.assert_outcomes(passed=1, failed=len(BAD_CAUSES) - 1, errors=1)
    output = result.stdout.str()
    for test, cause in BAD_CAUSES.items():
        lines = [line for line in output.splitlines() if line.startswith(f"test_bad.py::{test}: dummy build of config ")]
        assert len(lines) == 1, (test, lines)  # exactly once
        assert re.search(cause, lines[0]), (test, lines[0])
    assert "Traceback" not in output and "During handling" not in output and "pytest_dummyweights/" not in output
    assert "closest model class" in output


USERS_OWN_CODE = """
import pytest
from engine_models import zoo_config

def broken_factory(config):
    raise RuntimeError("the user's own factory is broken")

def test_factory_raises(dummy_model_factory):
    dummy_model_factory(zoo_config("x"), model=broken_factory)

@pytest.mark.dummy_load(zoo_config("y"))
def test_hook_returns_a_string(dummy_model):
    pass
"""

USERS_CONFTEST = """
def pytest_dummyweights_resolve_model(model_config, spec):
    if model_config.tag == "y":
        return "not a class"
"""


def test_the_users_own_code_keeps_its_traceback_and_a_bad_hook_result_is_one_line(inner) -> None:
    inner.write("conftest.py", USERS_CONFTEST)
    inner.write("test_users_code.py", USERS_OWN_CODE)
    result = inner.run("-v")
    result.assert_outcomes(failed=1, errors=1)
    output = result.stdout.str()
    # the user's frame and exception, with a note naming the step and the config
    result.stdout.fnmatch_lines(
        [
            '*raise RuntimeError("the user\'s own factory is broken")',
            "E*RuntimeError: the user's own factory is broken",
            "*pytest-dummyweights: raised while constructing model='broken_factory' for config <dict>*",
        ]
    )
    assert len(re.findall(r"^E\s+RuntimeError: the user's own factory is broken$", output, re.MULTILINE)) == 1  # reported once
    assert "During handling" not in output
    result.stdout.fnmatch_lines(
        [
            "*test_hook_returns_a_string: dummy build of config * failed: "
            "hook pytest_dummyweights_resolve_model returned str 'not a class', not a class*",
        ]
    )


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (("--dummy-seed=x",), None, "*pytest-dummyweights: --dummy-seed='x': the seed must be a non-negative integer*"),
        ((), "dummyweights_seed = -3", "*pytest-dummyweights: ini dummyweights_seed='-3': the seed must be a non-negative integer*"),
        (
            ("--dummy-seed=18446744073709551616",),
            None,
            "*pytest-dummyweights: --dummy-seed='18446744073709551616': seed must be below 2**64*",
        ),
        (
            (),
            "dummyweights_seed = 99999999999999999999",
            "*pytest-dummyweights: ini dummyweights_seed='99999999999999999999': seed must be below 2**64*",
        ),
        ((), "dummyweights_cache_bytes = lots", "*pytest-dummyweights: ini dummyweights_cache_bytes='lots': not a size*"),
        (
            ("--dummy-device=gpu:99",),
            None,
            "*pytest-dummyweights: --dummy-device='gpu:99': device 'gpu:99' does not exist: Paddle sees no GPU*",
        ),
        (("--dummy-isolation=paranoid",), None, "*argument --dummy-isolation: invalid choice: 'paranoid'*"),
        # every ini key is named in its error
        ((), "dummyweights_smoke = maybe", "*pytest-dummyweights: ini dummyweights_smoke: invalid truth value 'maybe': use true*"),
        ((), "dummyweights_real_weights = maybe", "*pytest-dummyweights: ini dummyweights_real_weights: invalid truth value 'maybe'*"),
        ((), "dummyweights_device = tpu", "*pytest-dummyweights: ini dummyweights_device='tpu': unknown device 'tpu'*"),
        ((), "dummyweights_isolation = paranoid", "*pytest-dummyweights: ini dummyweights_isolation='paranoid': use one of fast, strict*"),
        ((), "dummyweights_scales = loud", "*pytest-dummyweights: ini dummyweights_scales='loud': unknown scales preset 'loud'*"),
        ((), "dummyweights_storage = disk", "*pytest-dummyweights: ini dummyweights_storage='disk': use one of mapped, filled*"),
        ((), "dummyweights_checkpoint_check = loud", "*pytest-dummyweights: ini dummyweights_checkpoint_check='loud': use one of error*"),
    ],
)
def test_bad_settings_stop_the_run_naming_the_option_or_ini_key(inner, args, ini, message) -> None:
    if ini:
        inner.write("pytest.ini", f"[pytest]\n{ini}\n")
    inner.write("test_nothing.py", "def test_nothing():\n    pass\n")
    result = inner.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


@pytest.mark.paddleformers
@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--set", 'num_hidden_layers="2"'], "error: override num_hidden_layers='2' is a string*"),
        (["--std", "inf"], "error: std must be a finite positive number; got inf"),
        (["--std", "1e39"], "error: std 1e+39 cannot give finite float32 values*"),
        (["--set", 'architectures={"a": 1}'], "error: override architectures={'a': 1} is a dict, but config * has a list there*"),
        (
            ["--set", 'architectures=["export_model"]'],
            "error: no model class found for 'export_model'*it is a function, not a model class*",
        ),
        (["--device", "gpu:99"], "error: device 'gpu:99' does not exist*"),
    ],
)
def test_the_build_command_gives_the_same_one_line_errors(capsys, monkeypatch, args, error) -> None:
    import fnmatch

    from engine_models import REPO

    from pytest_dummyweights import cli

    monkeypatch.chdir(REPO)
    assert cli.main(["build", "configs/qwen3-0.6b", *args]) == 2
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error:")]  # PaddleFormers' import chatter may come first
    assert not out and len(errors) == 1 and errors[0] == err.splitlines()[-1], err
    assert fnmatch.fnmatchcase(errors[0], error), err


def test_a_user_factory_error_in_the_build_command_keeps_its_traceback(tmp_path) -> None:
    import subprocess
    import sys

    (tmp_path / "broken.py").write_text("def factory(config):\n    raise ValueError('bug in my factory')\n")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mine"}))
    done = subprocess.run(
        [sys.executable, "-m", "pytest_dummyweights", "build", "config.json", "--model", "broken:factory"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)},
    )
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "raise ValueError('bug in my factory')" in done.stderr
    assert "pytest-dummyweights: raised while constructing" in done.stderr


@pytest.mark.parametrize(
    ("overrides", "cause"),
    [
        ({"num_hidden_layers": 10**12}, "num_hidden_layers=1000000000000 is beyond the int32 range Paddle keeps sizes in"),
        ({"num_hidden_layers": 50_000}, "num_hidden_layers=50000 is more than 10,000 layers, far beyond any published model"),
    ],
    ids=["beyond-int32", "absurd-depth"],
)
def test_sizes_no_model_could_have_are_one_error_not_a_hang(overrides, cause) -> None:
    """Found by the property test: Qwen3's config class loops over num_hidden_layers, forever for 10**12."""
    from pytest_dummyweights.errors import DummyWeightsError

    with pytest.raises(DummyWeightsError, match=re.escape(cause)):
        build(DummySpec(QWEN3, overrides=overrides, device="cpu"))


@pytest.mark.parametrize("new_keys", [None, 3], ids=["none", "integer"])
def test_new_keys_that_are_not_a_collection_are_one_error(new_keys) -> None:
    """Found by the property test on Python 3.13: ``new_keys=None`` was a TypeError from inside the plugin."""
    from engine_models import ZOO, zoo_config

    from pytest_dummyweights.errors import DummyWeightsError

    expected = f"new_keys must be a collection of key names, e.g. ['brand_new']; got {new_keys!r}"
    with pytest.raises(DummyWeightsError, match=re.escape(expected)):
        build(DummySpec(zoo_config(), model=ZOO, new_keys=new_keys, device="cpu"))
