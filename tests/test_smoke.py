"""The finiteness smoke: passes on real models, names the sublayer that made a planted inf, takes a hook."""

from __future__ import annotations

import pytest
from engine_models import SHRINK
from engine_models.quant_models import FP8_CONFIG, Fp8EngineModel

from pytest_dummyweights import DummySpec, DummyWeightsError
from pytest_dummyweights._building.pipeline import build
from pytest_dummyweights._building.smoke import run_smoke


@pytest.mark.paddleformers
@pytest.mark.parametrize("name", list(SHRINK))
def test_smoke_passes_on_every_shipped_config_shrunk(name):
    config, overrides = SHRINK[name]
    result = build(DummySpec(config, overrides=overrides, smoke=True))
    assert result.spec.smoke and result.seconds["smoke"] > 0


@pytest.mark.parametrize(("planted", "class_name"), [("up_proj", "Fp8Linear"), ("down_proj", "UE8M0Linear")])
def test_smoke_names_the_first_sublayer_with_a_non_finite_output(planted, class_name):
    config = {**FP8_CONFIG, "plant_inf": planted}
    with pytest.raises(DummyWeightsError) as raised:
        build(DummySpec(config, model=Fp8EngineModel, scales="neutral", smoke=True))
    message = str(raised.value)
    assert f"sublayer {planted!r} ({class_name}) gave " in message and "the first in execution order" in message
    assert message.startswith("finiteness smoke failed for config <dict>: 256 of 256 output values are not finite")
    assert "\n" not in message
    build(DummySpec(config, model=Fp8EngineModel, scales="neutral"))  # without smoke=True the build says nothing


def test_the_search_removes_its_hooks():
    model = build(DummySpec({**FP8_CONFIG, "plant_inf": "up_proj"}, model=Fp8EngineModel, scales="neutral")).model
    model_config = type("Config", (), {"vocab_size": 64})()
    with pytest.raises(DummyWeightsError, match="sublayer 'up_proj'"):
        run_smoke(model, model_config, DummySpec(FP8_CONFIG))
    assert not any(layer._forward_post_hooks for layer in model.sublayers(include_self=True))


def test_a_failing_forward_pass_is_one_line_with_its_whole_message():
    model = build(DummySpec(FP8_CONFIG, model=Fp8EngineModel, scales="neutral")).model

    def hook(model, model_config, spec):
        raise ValueError("(InvalidArgument) the shapes differ\n  [Hint: Expected 4 == 3.]")

    with pytest.raises(DummyWeightsError) as raised:
        run_smoke(model, None, DummySpec(FP8_CONFIG), hook)
    assert str(raised.value) == (
        "finiteness smoke for config <dict>: the forward pass failed: ValueError: (InvalidArgument) the shapes differ "
        "[Hint: Expected 4 == 3.]; give the model its inputs with a pytest_dummyweights_smoke hook"
    )


@pytest.mark.paddleformers
def test_the_default_input_follows_a_small_seq_length():
    """DeepSeek-V3 reshapes with config.seq_length: the smoke feeds that many tokens."""
    config, overrides = SHRINK["deepseek_v3_equal"]
    for length in (3, 8):
        build(DummySpec(config, overrides={**overrides, "seq_length": length}, smoke=True))


SMOKE_SESSION = """
    import paddle
    import pytest
    from engine_models import ZOO, zoo_config
    from engine_models.quant_models import FP8_CONFIG, FP8_MODEL

    @pytest.mark.dummy_load({**FP8_CONFIG, "plant_inf": "down_proj"}, model=FP8_MODEL, scales="neutral")
    def test_planted(dummy_model):
        pass

    @pytest.mark.dummy_load(zoo_config("no forward"), model=ZOO)
    def test_no_default_input(dummy_model):
        pass

    @pytest.mark.dummy_load(zoo_config("hook"), model=ZOO)
    def test_hook_outputs(dummy_model):
        pass

    @pytest.mark.dummy_load(zoo_config("no smoke"), model=ZOO, smoke=False)
    def test_marker_turns_it_off(dummy_model):
        pass
    """

SMOKE_CONFTEST = """
    import paddle

    def pytest_dummyweights_smoke(model, model_config, spec):
        if getattr(model_config, "tag", "") == "hook":
            return {"logits": paddle.to_tensor([1.0, float("nan")]), "ids": paddle.to_tensor([1, 2])}
        return None
    """


def test_smoke_in_a_session_through_the_ini_option_and_the_hook(inner):
    inner.write("pytest.ini", "[pytest]\ndummyweights_smoke = true\n")
    inner.write("conftest.py", SMOKE_CONFTEST)
    inner.write("test_smoke_session.py", SMOKE_SESSION)
    result = inner.run()
    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines(
        [
            "*test_planted: dummy build of config '<dict>' failed: finiteness smoke failed for config <dict>: "
            "* output values are not finite; sublayer 'down_proj' (UE8M0Linear) gave * non-finite of * values, "
            "the first in execution order*",
            "*test_no_default_input: dummy build of config '<dict>' failed: smoke=True for config <dict>, but ParamZoo is not a causal LM, "
            "so there is no default input: return its outputs from a pytest_dummyweights_smoke(model, model_config, spec) hook*",
            "*test_hook_outputs: dummy build of config '<dict>' failed: finiteness smoke failed for config <dict>: 1 of 2 output values "
            "are not finite; no sublayer's output was non-finite: check what the pytest_dummyweights_smoke hook computes",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
