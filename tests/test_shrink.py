"""Structure-preserving shrink: every layer kind kept, routing valid, per-layer lists consistent, widths real.

The builds narrow the widths with ``overrides`` (applied after the shrink) so each forward pass stays cheap;
the shrink itself never touches them, which ``test_widths_and_vocabulary_stay_real`` pins.
"""

from __future__ import annotations

import json

import numpy as np
import paddle
import pytest
from engine_models import CONFIGS, NARROW

from pytest_dummyweights import DummyWeightsError, ShrinkWarning, build_dummy_model, cli
from pytest_dummyweights._building.shrink import Change, describe_changes, routing_problem, shrink_config

TOKENS = paddle.to_tensor([list(range(1, 9))])
NARROW_MOE = {**NARROW, "head_dim": 16, "moe_intermediate_size": 32}
NARROW_MLA = {
    **NARROW,
    "num_key_value_heads": 4,
    "moe_intermediate_size": 32,
    "q_lora_rank": 32,
    "kv_lora_rank": 32,
    "qk_nope_head_dim": 16,
    "qk_rope_head_dim": 8,
    "v_head_dim": 16,
    "seq_length": 8,
}

# GLM-4.5-Air's published values for the fields of PaddleFormers 0.4.1's Glm4MoeConfig
GLM4_MOE = {
    "architectures": ["Glm4MoeForCausalLM"],
    "model_type": "glm4_moe",
    "attention_bias": True,
    "head_dim": 128,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "partial_rotary_factor": 0.5,
    "initializer_range": 0.02,
    "intermediate_size": 10944,
    "max_position_embeddings": 131072,
    "moe_intermediate_size": 1408,
    "norm_topk_prob": True,
    "num_attention_heads": 96,
    "n_group": 1,
    "topk_group": 1,
    "n_routed_experts": 128,
    "n_shared_experts": 1,
    "routed_scaling_factor": 1.0,
    "num_experts_per_tok": 8,
    "first_k_dense_replace": 1,
    "num_hidden_layers": 46,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "rope_theta": 1000000,
    "num_nextn_predict_layers": 1,
    "tie_word_embeddings": False,
    "use_qk_norm": False,
    "vocab_size": 151552,
    "pad_token_id": 151329,
    "eos_token_id": [151329, 151336, 151338],
}
# Qwen2 with a sliding window on its last layers, listed explicitly in layer_types
QWEN2_SLIDING = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "num_hidden_layers": 24,
    "max_window_layers": 21,
    "use_sliding_window": True,
    "sliding_window": 4,
    "vocab_size": 151936,
    "rope_theta": 1000000.0,
    "layer_types": ["full_attention"] * 21 + ["sliding_attention"] * 3,
    "rms_norm_eps": 1e-06,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
    "max_position_embeddings": 32768,
}


def shipped(name: str) -> dict:
    return json.loads((CONFIGS / name / "config.json").read_text())


def mlp_kinds(model) -> list[str]:
    return ["moe" if hasattr(layer.mlp, "experts") else "dense" for layer in model.base_model.layers]


def forward_is_finite(model) -> bool:
    with paddle.no_grad():
        output = model(TOKENS)
    logits = output.logits if hasattr(output, "logits") else output[0]
    return logits.shape[:2] == [1, 8] and bool(paddle.isfinite(logits).all())


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("qwen3-0.6b", [("num_hidden_layers", 28, 2), ("max_window_layers", 28, 2)]),
        ("qwen3-30b-a3b", [("num_hidden_layers", 48, 2), ("max_window_layers", 48, 2), ("num_experts", 128, 16)]),
        ("deepseek-v3", [("num_hidden_layers", 61, 2), ("first_k_dense_replace", 3, 1), ("n_routed_experts", 256, 16)]),
        ("llama-3.2-1b", [("num_hidden_layers", 16, 2)]),
    ],
)
def test_shipped_configs_shrink_exactly_so(name, changes):
    result = shrink_config(shipped(name))
    assert result.changes == [Change(*change) for change in changes] and not result.unknown_keys


def test_widths_and_vocabulary_stay_real():
    """Only structure keys change: every width, head dim and the vocabulary are the published ones."""
    for name in ("qwen3-0.6b", "qwen3-30b-a3b", "deepseek-v3", "llama-3.2-1b"):
        raw = shipped(name)
        result = shrink_config(raw)
        changed = {change.key for change in result.changes}
        assert {k: v for k, v in result.raw.items() if k not in changed} == {k: v for k, v in raw.items() if k not in changed}
        assert changed <= {"num_hidden_layers", "max_window_layers", "first_k_dense_replace", "num_experts", "n_routed_experts"}


@pytest.mark.paddleformers
def test_qwen3_0_6b_at_real_widths_builds_and_runs():
    model = build_dummy_model(CONFIGS / "qwen3-0.6b", shrink=True)
    assert len(model.base_model.layers) == 2 and model.config.hidden_size == 1024 and model.config.vocab_size == 151936
    assert forward_is_finite(model)


@pytest.mark.paddleformers
def test_deepseek_v3_keeps_a_dense_and_a_moe_layer_with_valid_routing():
    model = build_dummy_model(CONFIGS / "deepseek-v3", shrink=True, overrides=NARROW_MLA)
    config = model.config
    assert mlp_kinds(model)[: config.num_hidden_layers] == ["dense", "moe"]
    assert config.n_routed_experts == len(model.base_model.layers[1].mlp.experts) == 16
    assert routing_problem(shipped("deepseek-v3") | {"n_routed_experts": 16}, 16) is None
    assert config.num_experts_per_tok <= config.n_routed_experts and config.n_routed_experts % config.n_group == 0
    assert (config.n_routed_experts // config.n_group) * config.topk_group >= config.num_experts_per_tok
    assert forward_is_finite(model)


@pytest.mark.paddleformers
def test_deepseek_v3_keeps_mtp_in_the_config_and_paddleformers_builds_what_its_config_says():
    """PaddleFormers 0.4.1's config class resets num_nextn_predict_layers to 0, so the class builds no MTP layer."""
    assert shrink_config(shipped("deepseek-v3")).raw["num_nextn_predict_layers"] == 1
    model = build_dummy_model(CONFIGS / "deepseek-v3", shrink=True, overrides=NARROW_MLA)
    assert len(model.base_model.layers) == model.config.num_hidden_layers + model.config.num_nextn_predict_layers == 2


@pytest.mark.parametrize(
    ("routing", "experts"),
    [
        ({}, 16),  # twice num_experts_per_tok=8: routing chooses
        ({"num_experts_per_tok": 6}, 16),  # 12 is not divisible by n_group=8
        ({"topk_group": 2}, 32),  # 2 chosen groups must hold 8 experts
        ({"topk_method": "group_limited_greedy", "num_experts_per_tok": 2, "topk_group": 8}, 8),  # one per group is fine
        ({"n_routed_experts": 12, "n_group": 4}, 12),  # no smaller valid count: unchanged
    ],
)
def test_default_experts_are_the_fewest_valid_for_routing(routing, experts):
    raw = {**shipped("deepseek-v3"), **routing}
    assert shrink_config(raw).raw["n_routed_experts"] == experts
    assert routing_problem(raw, experts) is None


def test_deeper_mtp_stack_is_cut_to_one():
    result = shrink_config({**shipped("deepseek-v3"), "num_nextn_predict_layers": 3})
    assert Change("num_nextn_predict_layers", 3, 1) in result.changes


@pytest.mark.paddleformers
@pytest.mark.parametrize(
    ("config", "narrow", "kinds", "experts"),
    [
        (CONFIGS / "qwen3-30b-a3b", NARROW_MOE, ["moe", "moe"], 16),
        (CONFIGS / "llama-3.2-1b", {**NARROW, "head_dim": 16}, ["dense", "dense"], None),
        (GLM4_MOE, NARROW_MOE, ["dense", "moe"], 16),
    ],
    ids=["qwen3-moe", "llama", "glm4-moe"],
)
def test_shrunk_models_build_small_and_run(config, narrow, kinds, experts):
    model = build_dummy_model(config, shrink=True, overrides=narrow)
    assert mlp_kinds(model) == kinds
    if experts is not None:
        assert len(model.base_model.layers[-1].mlp.experts) == experts >= model.config.num_experts_per_tok
    assert forward_is_finite(model)


@pytest.mark.paddleformers
def test_layer_types_shrink_with_the_layer_count():
    """Qwen2 checks layer_types against num_hidden_layers; both kinds of attention are kept, in order."""
    model = build_dummy_model(QWEN2_SLIDING, shrink=True, overrides={k: v for k, v in NARROW.items()})
    assert model.config.layer_types == ["full_attention", "sliding_attention"]
    assert [layer.self_attn.sliding_window for layer in model.base_model.layers] == [None, 4]
    assert forward_is_finite(model)


def test_layer_types_derived_from_max_window_layers():
    raw = {k: v for k, v in QWEN2_SLIDING.items() if k != "layer_types"}
    assert shrink_config(raw).raw["max_window_layers"] == 1
    assert shrink_config(raw, {"layers": 23}).raw["max_window_layers"] == 21  # enough layers: the real first ones


@pytest.mark.parametrize(
    ("changes", "layers", "kinds"),
    [
        ({"first_k_dense_replace": 1, "moe_layer_freq": 2}, 3, ["dense", "dense", "moe"]),
        ({"first_k_dense_replace": 0}, 2, ["moe", "moe"]),
    ],
)
def test_moe_frequency_is_kept(changes, layers, kinds):
    result = shrink_config({**shipped("deepseek-v3"), **changes})
    assert result.raw["num_hidden_layers"] == layers and [k.split("/")[0] for k in result.layer_kinds] == kinds


def test_mlp_only_layers_keep_a_dense_layer():
    result = shrink_config({**shipped("qwen3-30b-a3b"), "mlp_only_layers": [0, 47]})
    assert result.raw["mlp_only_layers"] == [0] and [k.split("/")[0] for k in result.layer_kinds] == ["dense", "moe"]


def test_request_targets_and_optional_vocabulary():
    result = shrink_config(GLM4_MOE, {"layers": 4, "experts": 32, "vocab": 1000})
    assert result.raw["num_hidden_layers"] == 4 and result.raw["first_k_dense_replace"] == 1
    assert result.raw["n_routed_experts"] == 32 and result.raw["vocab_size"] == 1000
    assert result.raw["pad_token_id"] == 999 and result.raw["eos_token_id"] == [999, 998, 997]  # distinct, in range


@pytest.mark.paddleformers
def test_unknown_structure_passes_through_with_a_warning_naming_the_keys():
    raw = {**shipped("llama-3.2-1b"), "no_rope_layers": [1] * 16}
    assert shrink_config(raw).unknown_keys == ["no_rope_layers"]
    with pytest.warns(ShrinkWarning, match="structure keys shrink does not know: no_rope_layers"):
        model = build_dummy_model(raw, shrink=True, overrides={**NARROW, "head_dim": 16})
    assert len(model.base_model.layers) == 16


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (
            {"layers": 1},
            "shrink layers=1 cannot keep the config's 2 layer kind(s) (dense/full_attention, moe/full_attention); ask for at least 2",
        ),
        ({"layers": 62}, "shrink layers=62 is more than the config's num_hidden_layers=61; ask for at most 61"),
        ({"experts": 12}, "shrink experts=12 would break routing: not divisible by n_group=8 and ep_size=1; choose another expert count"),
        (
            {"experts": 8},
            "shrink experts=8 would break routing: fewer than 2 per group (n_group=8, topk_method noaux_tc); choose another expert count",
        ),
        ({"layers": "2"}, "shrink layers must be a positive integer; got str '2'"),
        ({"layers": 2.0}, "shrink layers must be a positive integer; got float 2.0"),
        ({"vocab": 10**6}, "shrink vocab=1000000 is more than the config's vocab_size=129280; ask for at most 129280"),
        ({"layer": 2}, "shrink got unknown key(s) layer; it takes: layers, experts, vocab"),
        ("yes", "shrink must be True, False or a dict such as {'layers': 4, 'experts': 16}; got str: 'yes'"),
    ],
)
def test_bad_requests_are_one_line_errors(request_, error):
    with pytest.raises(DummyWeightsError) as raised:
        build_dummy_model(CONFIGS / "deepseek-v3", shrink=request_)
    assert str(raised.value) == error


def test_experts_on_a_dense_config_is_an_error():
    with pytest.raises(DummyWeightsError, match=r"^shrink experts=4, but the config routes to no experts .*; drop experts$"):
        shrink_config(shipped("llama-3.2-1b"), {"experts": 4})


def test_vocab_on_a_config_without_a_vocabulary_is_an_error():
    raw = {key: value for key, value in shipped("llama-3.2-1b").items() if key != "vocab_size"}
    with pytest.raises(DummyWeightsError, match=r"^shrink vocab=100, but the config has no integer vocab_size \(found None\); drop vocab$"):
        shrink_config(raw, {"vocab": 100})


@pytest.mark.paddleformers
def test_numpy_integers_are_integers_wherever_an_int_is_taken():
    """``np.int64(2)`` used to read "must be a positive integer; got 2"; in overrides, "is an int64"."""
    targets = {"layers": 4, "experts": 32, "vocab": 1000}
    assert shrink_config(GLM4_MOE, {key: np.int64(value) for key, value in targets.items()}) == shrink_config(GLM4_MOE, targets)
    overrides = {**NARROW, "head_dim": np.int32(16), "rms_norm_eps": np.float32(0.5), "tie_word_embeddings": False}
    model = build_dummy_model(CONFIGS / "qwen3-0.6b", shrink={"layers": np.int64(2)}, overrides=overrides)
    assert model.config.num_hidden_layers == 2 and model.config.head_dim == 16 and type(model.config.head_dim) is int
    assert model.config.rms_norm_eps == 0.5 and type(model.config.rms_norm_eps) is float
    assert model.config.tie_word_embeddings is False  # a boolean stays one


@pytest.mark.paddleformers
def test_cli_build_shrink_prints_the_changes(capsys, monkeypatch):
    monkeypatch.chdir(CONFIGS.parent)
    sets = [f"--set={key}={value}" for key, value in NARROW_MOE.items()]
    assert cli.main(["build", "configs/qwen3-30b-a3b", "--shrink-experts", "32", *sets]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if line.startswith("shrink:")] == describe_changes(
        shrink_config(shipped("qwen3-30b-a3b"), {"experts": 32})
    )
    assert "shrink: num_experts 128 -> 32" in out and "shrink: layers moe/full_attention x2" in out


@pytest.mark.paddleformers
def test_marker_shrink_shows_what_changed_with_v(inner):
    inner.write(
        "test_shrunk.py",
        f"""
        import pytest

        @pytest.mark.dummy_load({str(CONFIGS / "deepseek-v3")!r}, shrink=True, overrides={NARROW_MLA!r})
        def test_layers(dummy_model):
            assert len(dummy_model.base_model.layers) == 2
        """,
    )
    result = inner.run("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*DeepseekV3ForCausalLM float32 (shrunk: num_hidden_layers 61 -> 2; first_k_dense_replace 3 -> 1; "
            "n_routed_experts 256 -> 16; layers dense/full_attention x1, moe/full_attention x1; "
            "MTP kept: num_nextn_predict_layers=1)*built 1x*"
        ]
    )
