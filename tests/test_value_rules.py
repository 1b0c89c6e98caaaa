"""Value rules after the fill: the published rule by default, neutral scales on request, exact rules on top."""

from __future__ import annotations

import numpy as np
import paddle
import pytest
from engine_models import ZOO, zoo_config
from engine_models.layers import ParamZoo, parameter_digests
from engine_models.quant_models import FP8_CONFIG, SCALES, Fp8EngineModel

from pytest_dummyweights import DummySpec, DummyWeightsError
from pytest_dummyweights._building.config import make_model_config
from pytest_dummyweights._building.construct import construct, post_process
from pytest_dummyweights._building.pipeline import build
from pytest_dummyweights._values import fill
from pytest_dummyweights._values.value_rules import apply_value_rules

IDS = paddle.to_tensor([[1, 2, 3, 4, 5]])


def non_scales(digests: dict[str, str]) -> dict[str, str]:
    return {name: digest for name, digest in digests.items() if name not in SCALES}


def build_fp8(**keywords):
    return build(DummySpec(FP8_CONFIG, model=Fp8EngineModel, **keywords))


def values(param: paddle.Tensor) -> np.ndarray:
    return param.astype("float32").numpy()


def test_neutral_scales_forward_is_finite_and_equals_scales_set_to_one_by_hand():
    neutral = build_fp8(scales="neutral").model
    by_hand = build_fp8().model
    params = dict(by_hand.named_parameters())
    for name in ("attn.k_scale", "attn.v_scale", "up_proj.weight_scale"):
        params[name].set_value(np.ones(params[name].shape, dtype="float32"))
    params["down_proj.weight_scale_inv"].set_value(np.full(params["down_proj.weight_scale_inv"].shape, 127, dtype="uint8"))
    post_process(by_hand, None, DummySpec(FP8_CONFIG), None)  # derive the dequantized weights from the new scales
    assert parameter_digests(neutral) == parameter_digests(by_hand)
    logits = neutral(IDS)
    assert bool(paddle.isfinite(logits).all())
    np.testing.assert_array_equal(logits.numpy(), by_hand(IDS).numpy())


def test_scale_values_are_pinned_for_both_presets():
    """Default: exactly the fill (the published rule); neutral: 1.0, 127 for UE8M0, and nothing else changes."""
    model_config = make_model_config(dict(FP8_CONFIG))
    published = construct(Fp8EngineModel, model_config, "float32")
    fill.initialize_dummy_weights(published, seed=0, std=0.02)
    default = build_fp8().model
    neutral_result = build_fp8(scales="neutral")
    neutral = neutral_result.model
    assert parameter_digests(default) == parameter_digests(published)
    default_params = dict(default.named_parameters())
    assert not values(default_params["down_proj.weight_scale_inv"]).any()  # uint8: zeros, i.e. 2^-127 in UE8M0
    assert values(default_params["up_proj.weight_scale"]).std() == pytest.approx(0.02, rel=0.5)
    assert 0 < abs(float(default_params["attn.k_scale"])) < 0.2
    neutral_params = dict(neutral.named_parameters())
    for name, expected in {
        "attn.k_scale": 1.0,
        "attn.v_scale": 1.0,
        "up_proj.weight_scale": 1.0,
        "down_proj.weight_scale_inv": 127,
    }.items():
        assert (values(neutral_params[name]) == expected).all(), name
    assert neutral_params["attn.k_scale"].shape == []
    assert non_scales(parameter_digests(neutral)) == non_scales(parameter_digests(default))
    counts = {rule.pattern: rule.parameters for rule in neutral_result.rules_applied.rules}
    assert counts == {"<0-d floating point>": 0, "*_scale": 3, "*_scale_inv": 1, "*_scale_2": 0}  # a name beats the 0-d rule
    assert (
        neutral_result.rules_applied.summary_line()
        == "value rules: *_scale=neutral (scales='neutral') 3; *_scale_inv=neutral (scales='neutral') 1"
    )


def test_exact_rules_come_after_the_preset_and_the_last_match_wins():
    rules = {"*.k_scale": 0.5, "attn.*": 2.0, "*.weight_scale_inv": 126, "lm_head.weight": "neutral", "*.typo": 3.0}
    result = build_fp8(scales="neutral", value_rules=rules)
    params = dict(result.model.named_parameters())
    assert float(params["attn.k_scale"]) == 2.0  # "attn.*" is later than "*.k_scale"
    assert (values(params["attn.q_proj.weight"]) == 2.0).all()
    assert (values(params["down_proj.weight_scale_inv"]) == 126).all()  # 0.5 in UE8M0
    assert (values(params["lm_head.weight"]) == 1.0).all()
    assert (values(params["up_proj.weight_scale"]) == 1.0).all()  # the preset still applies where no rule matched
    counts = {rule.pattern: rule.parameters for rule in result.rules_applied.rules if rule.source == "value_rules"}
    assert counts == {"*.k_scale": 0, "attn.*": 6, "*.weight_scale_inv": 1, "lm_head.weight": 1, "*.typo": 0}
    assert "*.typo=3.0 (value_rules) 0" in result.rules_applied.summary_line()


def test_float8_and_0d_parameters_take_constants():
    zoo = build_fp8(value_rules={"up_proj.weight": 0.25, "attn.v_scale": 3.0}).model
    assert (values(zoo.up_proj.weight) == 0.25).all() and zoo.up_proj.weight.dtype == paddle.float8_e4m3fn
    assert float(zoo.attn.v_scale) == 3.0


def test_quantization_config_adds_the_scale_names_it_implies():
    params = {"scales": ("float16", [4, 8]), "qzeros": ("int32", [4, 8])}
    gptq = {**zoo_config(**params), "quantization_config": {"quant_method": "gptq", "bits": 4}}
    quantized = build(DummySpec(gptq, model=ZOO, scales="neutral"))
    assert (values(quantized.model.scales) == 1.0).all() and not values(quantized.model.qzeros).any()
    assert [(r.pattern, r.source, r.parameters) for r in quantized.rules_applied.rules if r.source == "quantization_config"] == [
        ("scales", "quantization_config", 1),
        ("*.scales", "quantization_config", 0),
    ]
    plain = build(DummySpec(zoo_config(**params), model=ZOO, scales="neutral")).model  # no quantization config: "scales" is generic
    assert values(plain.scales).std() > 0.01


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"scales": "neutrall"}, "unknown scales preset 'neutrall': use one of 'default', 'neutral'"),
        ({"value_rules": {"*.k_scale": "one"}}, "value_rules['*.k_scale'] = 'one' is not a number or 'neutral'"),
        ({"value_rules": {"*.k_scale": True}}, "value_rules['*.k_scale'] = True is not a number"),
        ({"value_rules": {"*.k_scale": float("inf")}}, "value_rules['*.k_scale'] = inf is not finite"),
        ({"value_rules": ["*.k_scale"]}, "value_rules must be a dict of name patterns to values"),
        (
            {"value_rules": {"*.weight_scale_inv": 300}},
            "value 300 for parameter 'down_proj.weight_scale_inv' is not representable in uint8 (integers 0..255)",
        ),
        (
            {"value_rules": {"*.weight_scale_inv": 1.5}},
            "value 1.5 for parameter 'down_proj.weight_scale_inv' is not representable in uint8",
        ),
        (
            {"value_rules": {"up_proj.weight": 1000.0}},
            "value 1000.0 for parameter 'up_proj.weight' is not representable in float8_e4m3fn (it becomes 448.0)",
        ),
        (
            {"value_rules": {"*.k_scale": 1e-50}},
            "value 1e-50 for parameter 'attn.k_scale' is not representable in float32 (it becomes 0.0)",
        ),
    ],
)
def test_bad_arguments_are_one_line_errors(keywords, message):
    with pytest.raises(DummyWeightsError) as raised:
        build_fp8(**keywords)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_apply_value_rules_works_on_any_model_without_a_build():
    """A 0-d floating-point parameter is a calibration scalar, whatever its name; a 1-element one is not."""
    params = {"alpha": ("float32", []), "beta": ("float32", [1]), "w": ("bfloat16", [2, 3])}
    model = construct(ParamZoo, make_model_config(zoo_config(**params)), "float32")
    fill.initialize_dummy_weights(model)
    applied = apply_value_rules(model, "neutral", {"w": -2.0})
    # item(): float() of a 1-element array is an error in numpy 2.4 (Python 3.13's pinned numpy)
    assert float(model.alpha) == 1.0 and model.beta.item() != 1.0 and (values(model.w) == -2.0).all()
    assert applied.summary_line() == "value rules: <0-d floating point>=neutral (scales='neutral') 1; w=-2.0 (value_rules) 1"


def test_the_marker_takes_the_rules_and_a_bad_preset_fails_setup_in_one_line(inner):
    inner.write(
        "test_rules.py",
        """
        import pytest
        from engine_models.quant_models import FP8_CONFIG, FP8_MODEL

        @pytest.mark.dummy_load(FP8_CONFIG, model=FP8_MODEL, scales="neutral", value_rules={"*.v_scale": 2.0})
        def test_neutral(dummy_model):
            assert float(dummy_model.attn.k_scale) == 1.0 and float(dummy_model.attn.v_scale) == 2.0

        @pytest.mark.dummy_load(FP8_CONFIG, model=FP8_MODEL)
        def test_default_is_not_served_the_neutral_model(dummy_model):
            assert float(dummy_model.attn.k_scale) != 1.0

        @pytest.mark.dummy_load(FP8_CONFIG, model=FP8_MODEL, scales="unit")
        def test_bad(dummy_model):
            pass
        """,
    )
    result = inner.run("-v")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*Fp8EngineModel float32 (value rules: *_scale=neutral (scales='neutral') 2; "
            "*_scale_inv=neutral (scales='neutral') 1; *.v_scale=2.0 (value_rules) 1)*built 1x*"
        ]
    )
    result.stdout.fnmatch_lines(
        ["*test_bad: dummy build of config '<dict>' failed: unknown scales preset 'unit': use one of 'default', 'neutral'*"]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_ini_scales_neutral_is_the_default_a_marker_can_override(inner):
    inner.write("pytest.ini", "[pytest]\ndummyweights_scales = neutral\n")
    inner.write(
        "test_ini.py",
        """
        import pytest
        from engine_models.quant_models import FP8_CONFIG, FP8_MODEL

        @pytest.mark.dummy_load(FP8_CONFIG, model=FP8_MODEL)
        def test_neutral_from_ini(dummy_model):
            assert float(dummy_model.attn.k_scale) == 1.0

        @pytest.mark.dummy_load(FP8_CONFIG, model=FP8_MODEL, scales="default")
        def test_marker_wins(dummy_model):
            assert float(dummy_model.attn.k_scale) != 1.0
        """,
    )
    inner.run().assert_outcomes(passed=2)
    inner.write("pytest.ini", "[pytest]\ndummyweights_scales = unit\n")
    result = inner.run()
    result.stderr.fnmatch_lines(["*pytest-dummyweights: ini dummyweights_scales='unit': unknown scales preset 'unit'*"])


def test_the_cache_tells_rule_sets_apart_including_their_order():
    from pytest_dummyweights._building.pipeline import plan_build
    from pytest_dummyweights._cache.fingerprint import fingerprint

    def key(**keywords) -> str:
        plan = plan_build(DummySpec(FP8_CONFIG, model=Fp8EngineModel, **keywords))
        return fingerprint(plan.spec, plan.loaded_config.raw, plan.factory)

    ordered, reversed_order = {"*.k_scale": 0.5, "attn.*": 2.0}, {"attn.*": 2.0, "*.k_scale": 0.5}
    keys = [
        key(),
        key(scales="neutral"),
        key(value_rules=ordered),
        key(value_rules=reversed_order),
        key(smoke=True),
        key(allow_unset=["x"]),
    ]
    assert len(set(keys)) == len(keys)
    assert key() == key(scales="default") == key(smoke=False)
