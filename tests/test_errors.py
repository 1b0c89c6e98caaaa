"""Bad input: a clear error at the test's setup naming the test, the config and the cause; no internal
traceback; the other tests of the session are unaffected. One error tree: every error and warning type lives in
``errors`` and is public; warnings are seen under the default filters and under ``ignore::UserWarning``; a foreign
exception is folded into one line that keeps its message."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import subprocess
import sys

import pytest

import pytest_dummyweights
from pytest_dummyweights import BuildContext, DummySpec, DummyWeightsError, errors, execute, plan_build

ERRORS = """
    import pytest
    from engine_models import SHRINK, ZOO, zoo_config
    from pytest_dummyweights import DummySpec

    QWEN3 = str(SHRINK["qwen3"][0])
    TINY = SHRINK["qwen3"][1]

    @pytest.mark.dummy_load("no_such_dir")
    def test_missing_path(dummy_model):
        pass

    @pytest.mark.dummy_load("no_config_json")
    def test_dir_without_config_json(dummy_model):
        pass

    @pytest.mark.dummy_load("malformed")
    def test_malformed_json(dummy_model):
        pass

    @pytest.mark.dummy_load({"model_type": "no_such_type", "architectures": ["NoSuchForCausalLM"]})
    def test_unresolvable_architecture(dummy_model):
        pass

    @pytest.mark.dummy_load(QWEN3, dtype="float99")
    def test_unknown_dtype(dummy_model):
        pass

    @pytest.mark.dummy_load(QWEN3, overrides={**TINY, "num_hiden_layers": 1})
    def test_override_typo(dummy_model):
        pass

    def test_healthy_neighbour(dummy_model_factory):
        assert dummy_model_factory(zoo_config("ok"), model=ZOO).config.tag == "ok"

    @pytest.mark.dummy_load(zoo_config("new"), model=ZOO, overrides={"brand_new": 1}, new_keys=["brand_new"])
    def test_new_key_allowed_explicitly(dummy_model):
        assert dummy_model.config.brand_new == 1

    @pytest.mark.dummy_load(QWEN3, config=QWEN3)
    def test_config_given_twice(dummy_model):
        pass

    @pytest.mark.dummy_load(QWEN3)
    @pytest.mark.parametrize("dummy_model", [QWEN3], indirect=True)
    def test_marker_and_indirect_param(dummy_model):
        pass

    @pytest.mark.dummy_load(QWEN3, dtypes="float32")
    def test_unknown_keyword(dummy_model):
        pass

    @pytest.mark.parametrize("dummy_model", ["no_such_dir"], indirect=True)
    def test_indirect_missing_path(dummy_model):
        pass

    @pytest.mark.dummy_load(zoo_config("bad"), model="engine_models.layers:NoSuchModel")
    def test_bad_model_reference(dummy_model):
        pass

    def test_factory_error(dummy_model_factory):
        dummy_model_factory("no_such_dir")

    @pytest.mark.parametrize("dummy_model", [DummySpec(QWEN3, seed=-1)], indirect=True)
    def test_bad_spec_in_a_parametrize_list(dummy_model):
        pass

    @pytest.mark.dummy_load(QWEN3, seed=2**64)
    def test_seed_beyond_64_bits(dummy_model):
        pass

    @pytest.mark.dummy_load(QWEN3, overrides=TINY)
    @pytest.mark.dummy_load(zoo_config("stacked"), model=ZOO)
    def test_two_markers_on_one_level(dummy_model):
        pass

    @pytest.mark.dummy_load(QWEN3, overrides=TINY)
    @pytest.mark.dummy_load(zoo_config("stacked"), model=ZOO)
    class TestTwoMarkersOnAClass:
        def test_in_the_class(self, dummy_model):
            pass

        @pytest.mark.dummy_load(zoo_config("nearest"), model=ZOO)
        def test_a_nearer_level_wins(self, dummy_model):
            assert dummy_model.config.tag == "nearest"

    @pytest.mark.dummy_load(QWEN3, overrides=TINY, model="paddleformers.transformers:AutoModelForCausalLM")
    def test_auto_class_as_model(dummy_model):
        pass

    def test_factory_spec_and_keywords(dummy_model_factory):
        dummy_model_factory(DummySpec(QWEN3, overrides=TINY), overrides={"num_hidden_layers": 1})

    def test_factory_spec_alone(dummy_model_factory):
        assert dummy_model_factory(DummySpec(zoo_config("alone"), model=ZOO)).config.tag == "alone"
    """

# test -> (config as the user wrote it, pattern of the cause)
EXPECTED = {
    # the test's dir is the rootdir here: looked at once
    "test_missing_path": ("no_such_dir", r"config 'no_such_dir' not found \(looked at: [^,]*no_such_dir\); "),
    "test_dir_without_config_json": ("no_config_json", r"has no config\.json \(it holds: weights\.txt\)"),
    "test_malformed_json": ("malformed", r"is not valid JSON: .* at line 1, column \d+"),
    "test_unresolvable_architecture": (
        "<dict>",
        r"no model class found for 'NoSuchForCausalLM'; looked at: the spec's model= \(not given\); "
        r"hook pytest_dummyweights_resolve_model .*; PaddleFormers [\d.]+ has no model class 'NoSuchForCausalLM'",
    ),
    "test_unknown_dtype": ("qwen3-0.6b", r"unknown dtype 'float99': use one of bfloat16, float16, float32"),
    "test_override_typo": ("qwen3-0.6b", r"override key 'num_hiden_layers' is not in config .*; did you mean 'num_hidden_layers'\?"),
    "test_config_given_twice": ("qwen3-0.6b", r"got the config twice"),
    "test_marker_and_indirect_param": ("qwen3-0.6b", r"both a dummy_load marker and an indirect parametrization"),
    "test_unknown_keyword": ("qwen3-0.6b", r"unknown keyword\(s\) dtypes"),
    "test_indirect_missing_path": ("no_such_dir", r"config 'no_such_dir' not found"),
    "test_bad_model_reference": ("<dict>", r"module 'engine_models\.layers' has no attribute 'NoSuchModel'"),
    # checked when its test sets up, so collection goes on
    "test_bad_spec_in_a_parametrize_list": ("qwen3-0.6b", r"seed must be a non-negative integer; got -1"),
    "test_seed_beyond_64_bits": ("qwen3-0.6b", r"seed must be below 2\*\*64 .*; got 18446744073709551616$"),
    # two on one level are ambiguous: both named (the one nearest the function first, as pytest stores them)
    "test_two_markers_on_one_level": (
        "<dict>",
        r"2 dummy_load markers on function test_two_markers_on_one_level: dummy_load\('<dict>'\) and dummy_load\('[^']*qwen3-0\.6b'\); "
        r"keep one \(the nearest level wins: function, class, module; one level takes one\)",
    ),
    "test_in_the_class": ("<dict>", r"2 dummy_load markers on class TestTwoMarkersOnAClass: dummy_load\('<dict>'\) and dummy_load\("),
    "test_auto_class_as_model": (
        "qwen3-0.6b",
        r"^model='paddleformers\.transformers:AutoModelForCausalLM' is an Auto class, which picks a model class while loading a "
        r"checkpoint \(from_pretrained\), not a model class to construct from a config: name the model class, e\.g\. "
        r"model='paddleformers\.transformers:Qwen3ForCausalLM' \(the config's architectures\[0\]\), or leave model= out$",
    ),
}


@pytest.mark.paddleformers
def test_each_bad_input_errors_at_setup_naming_test_config_and_cause(inner):
    inner.write("no_config_json/weights.txt", "")
    inner.write("malformed/config.json", '{"model_type": "qwen3",,}')
    inner.write("test_bad_input.py", ERRORS)
    result = inner.run("-v", "--strict-markers")
    result.assert_outcomes(passed=4, failed=2, errors=len(EXPECTED))
    output = result.stdout.str()
    for test, (config, cause) in EXPECTED.items():
        assert re.search(rf"^test_bad_input\.py::(\w+::)?{test}\S* ERROR", output, re.MULTILINE), test  # at setup...
        assert re.search(rf"_ ERROR at setup of (\w+\.)?{test}\b", output), test
        line = rf"^test_bad_input\.py::(?:\w+::)?{test}\S*: dummy build of config '([^']*)' failed: (.*)$"
        message = re.search(line, output, re.MULTILINE)
        assert message is not None, test  # ...naming the test...
        assert config in message[1], (test, message[0])  # ...the config...
        assert re.search(cause, message[2]), (test, message[0])  # ...and the cause
    assert re.search(
        r"^test_bad_input\.py::test_factory_error: dummy build of config 'no_such_dir' failed: config 'no_such_dir' not found",
        output,
        re.MULTILINE,
    )
    factory_line = (
        "test_bad_input.py::test_factory_spec_and_keywords: dummy build of config '{}' failed: dummy_model_factory got a DummySpec and "
        "keywords (overrides): pass the DummySpec alone with every field in it (dataclasses.replace(spec, overrides=...)), "
        "or the config with keywords"
    )
    assert re.search(re.escape(factory_line).replace(r"\{\}", r"[^']*qwen3-0\.6b"), output), output  # short: no DummySpec repr
    assert "Traceback" not in output and "pytest_dummyweights/" not in output  # no internal traceback
    result.stdout.fnmatch_lines(["*test_healthy_neighbour PASSED*", "*test_new_key_allowed_explicitly PASSED*"])
    result.stdout.fnmatch_lines(["*test_a_nearer_level_wins PASSED*", "*test_factory_spec_alone PASSED*"])


INTERNAL = {"Malformed", "MapRefused", "_Uncomparable"}  # caught inside the package and reworded: never reach a user
NOT_IMPORTED = {"pytest_dummyweights.__main__"}  # runs the command line when imported


def exception_types_outside_errors() -> set[str]:
    """Error and warning types defined in any module of the package but ``errors``."""
    found = set()
    for module_info in pkgutil.walk_packages(pytest_dummyweights.__path__, "pytest_dummyweights."):
        if module_info.name in NOT_IMPORTED or module_info.name == errors.__name__:
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == module.__name__:
                found.add(name)
    return found


def test_every_error_and_warning_type_lives_in_errors_and_is_public():
    defined = {value for value in vars(errors).values() if inspect.isclass(value) and issubclass(value, BaseException)}
    assert {kind.__name__ for kind in defined} >= {"MissingDependency", "CheckpointMismatch", "GateError", "ShrinkWarning"}
    for kind in defined:
        assert issubclass(kind, errors.DummyWeightsError) or issubclass(kind, errors.DummyWeightsWarning), kind
        assert not issubclass(kind, UserWarning), kind
        assert kind.__name__ in pytest_dummyweights.__all__ and getattr(pytest_dummyweights, kind.__name__) is kind
    assert exception_types_outside_errors() == INTERNAL


WARN_EACH = """
import warnings
from pytest_dummyweights import errors
for name in sorted(vars(errors)):
    kind = getattr(errors, name)
    if isinstance(kind, type) and issubclass(kind, errors.DummyWeightsWarning):
        warnings.warn(kind(f"{name} is seen"), stacklevel=1)
"""
WARNINGS = sorted(name for name, value in vars(errors).items() if inspect.isclass(value) and issubclass(value, errors.DummyWeightsWarning))


@pytest.mark.parametrize("filters", [[], ["-W", "ignore::UserWarning"]], ids=["default", "ignore-UserWarning"])
def test_every_warning_is_shown_by_python(filters):
    done = subprocess.run([sys.executable, *filters, "-c", WARN_EACH], capture_output=True, text=True, check=True)
    shown = re.findall(r"^<string>:\d+: (\w+): \1 is seen$", done.stderr, re.MULTILINE)
    assert shown == WARNINGS, done.stderr


def test_every_warning_is_shown_by_a_pytest_run_that_ignores_user_warnings(inner):
    inner.write("test_warns.py", "def test_warns():\n    exec(" + repr(WARN_EACH) + ")\n")
    result = inner.run("-W", "ignore::UserWarning")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*warnings summary*", *(f"*{name}: {name} is seen" for name in WARNINGS)])


def test_folded_is_one_line_with_the_whole_message():
    assert errors.folded(ValueError("(InvalidArgument) bad shape\n  [Hint: Expected 4 == 3.]\n\n(at op.cc:12)")) == (
        "ValueError: (InvalidArgument) bad shape [Hint: Expected 4 == 3.] (at op.cc:12)"
    )
    assert errors.folded(KeyError("build_seconds")) == "KeyError: 'build_seconds'"
    assert errors.folded(RuntimeError()) == "RuntimeError"


def test_reraised_as_folds_foreign_errors_and_passes_its_own_through():
    with pytest.raises(errors.GateError) as raised, errors.reraised_as(errors.GateError, "reading the XML failed", "write one again"):
        raise OSError("no such file:\n  coverage.xml")
    assert str(raised.value) == "reading the XML failed: OSError: no such file: coverage.xml; write one again"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no foreign traceback
    report = type("Report", (), {"source": "ckpt", "table": lambda self: ["  missing: 1"]})()
    mismatch = pytest.raises(errors.CheckpointMismatch, match=r"^the model does not match checkpoint ckpt: .*\n  missing: 1$")
    with mismatch, errors.reraised_as(errors.DummyWeightsError, "never"):  # the package's own: unchanged
        raise errors.CheckpointMismatch(report)
    with pytest.raises(KeyError), errors.reraised_as(errors.DummyWeightsError, "never", catch=(OSError,)):  # not asked for
        raise KeyError("k")


API_MISUSES = {
    "one path as search_dirs": (lambda: BuildContext(search_dirs="configs"), "search_dirs must be a list of directories"),
    "a number as search_dirs": (lambda: BuildContext(search_dirs=5), "search_dirs must be a list of directories"),
    "a number in search_dirs": (lambda: BuildContext(search_dirs=[".", 1]), "search_dirs must hold paths; got int: 1"),
    "a number as worker_id": (lambda: BuildContext(worker_id=1), "worker_id must be an xdist worker's name"),
    "a path for a spec": (lambda: plan_build("configs/qwen3-0.6b"), "a build takes a DummySpec"),
    "a dict for a context": (lambda: plan_build(DummySpec({}), {"search_dirs": ["."]}), "context must be a BuildContext or None"),
    "a spec for a plan": (lambda: execute(DummySpec({})), "execute takes the Plan that plan_build returned"),
}


@pytest.mark.parametrize("misuse", API_MISUSES)
def test_each_misuse_of_the_build_functions_is_one_line(misuse) -> None:
    call, message = API_MISUSES[misuse]
    with pytest.raises(DummyWeightsError, match=re.escape(message)) as raised:
        call()
    assert "\n" not in str(raised.value)
