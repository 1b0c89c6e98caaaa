"""Real PaddleFormers classes from the shipped configs, and engine-style models, built by the plugin."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from pytest_dummyweights import mla

REAL_MODELS = """
    import paddle
    import pytest
    from pytest_dummyweights import DummySpec
    from engine_models import SHRINK

    EXPECTED = {
        "qwen3": "Qwen3ForCausalLM",
        "qwen3_moe": "Qwen3MoeForCausalLM",
        "deepseek_v3_unequal": "DeepseekV3ForCausalLM",
        "deepseek_v3_equal": "DeepseekV3ForCausalLM",
        "llama": "LlamaForCausalLM",
    }
    SPECS = [DummySpec(config, overrides=overrides) for config, overrides in SHRINK.values()]

    @pytest.mark.parametrize("dummy_model", SPECS, indirect=True, ids=list(SHRINK))
    def test_real_class_gives_finite_logits(dummy_model, request):
        name = request.node.callspec.id
        assert type(dummy_model).__name__ == EXPECTED[name]
        assert type(dummy_model).__module__.startswith("paddleformers.transformers.")
        config = dummy_model.config
        assert config.num_hidden_layers == 2 and config.vocab_size == 512
        if name.startswith("deepseek"):
            qk = config.qk_nope_head_dim + config.qk_rope_head_dim
            assert (qk == config.v_head_dim) == name.endswith("_equal")
        logits = dummy_model(input_ids=paddle.to_tensor([list(range(1, 9))]), return_dict=True).logits
        assert logits.shape == [1, 8, 512] and logits.dtype == paddle.float32
        assert bool(paddle.isfinite(logits).all()) and float(logits.abs().max()) > 0
    """


@pytest.mark.paddleformers
def test_real_paddleformers_models_from_shipped_configs(inner):
    inner.write("test_real.py", REAL_MODELS)
    result = inner.run("-v")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*deepseek_v3_unequal? PASSED*", "*deepseek_v3_equal? PASSED*"])


ENGINE_MODELS = """
    import numpy as np
    import paddle
    import pytest
    from engine_models import ENGINE
    from engine_models.layers import ENGINE_CONFIG, tensor_digest
    from pytest_dummyweights import DummySpec

    UNEQUAL = dict(ENGINE_CONFIG)  # qk 8 + 4 vs v 8
    EQUAL = {**ENGINE_CONFIG, "qk_nope_head_dim": 4}

    @pytest.mark.dummy_load(UNEQUAL, model=ENGINE)
    def test_quant_method_post_processes_once_on_built_weights(dummy_model):
        quant = dummy_model.quant
        assert quant.weight.dtype == paddle.int8 and not quant.weight.astype("int32").abs().sum().item()
        assert quant.quant_method.seen == [tensor_digest(quant.weight, quant.weight_scale)]
        np.testing.assert_allclose((quant.weight_scale_inv * quant.weight_scale).numpy(), 1.0, rtol=1e-6)
        assert quant.own_calls == 0  # the quant_method's processing replaces the layer's own

    @pytest.mark.dummy_load(UNEQUAL, model=ENGINE)
    def test_float8_layers_post_process_once_on_built_weights(dummy_model):
        for layer, dtype in ((dummy_model.fp8_e4m3, paddle.float8_e4m3fn), (dummy_model.fp8_e5m2, paddle.float8_e5m2)):
            assert layer.weight.dtype == dtype
            wide = layer.weight.astype("float32")
            assert float(wide.abs().max()) > 0 and bool(paddle.isfinite(wide).all())
            assert layer.seen == [tensor_digest(layer.weight, layer.weight_scale)]
            np.testing.assert_array_equal(layer.dequantized.numpy(), (wide * layer.weight_scale).numpy())

    @pytest.mark.parametrize("dummy_model", [DummySpec(UNEQUAL), DummySpec(EQUAL), DummySpec({**UNEQUAL, "mla_placeholders": True})],
                             indirect=True, ids=["unequal", "equal", "placeholders"])
    def test_mla_derived_weights_are_created_and_filled(dummy_model):
        attention, c = dummy_model.attention, dummy_model.attention
        assert attention.k_b_proj_weight.shape == [c.num_heads_per_partition, c.qk_nope_head_dim, c.kv_lora_rank]
        assert attention.v_b_proj_weight.shape == [c.num_heads_per_partition, c.kv_lora_rank, c.v_head_dim]
        names = dict(dummy_model.named_parameters())
        for weight in ("k_b_proj_weight", "v_b_proj_weight"):
            assert names[f"attention.{weight}"] is getattr(attention, weight)
            assert 0.005 < float(getattr(attention, weight).std()) < 0.04  # dummy-filled, std 0.02
        logits = dummy_model(paddle.to_tensor([[1, 2, 3, 4]]))
        assert logits.shape == [1, 4, 64] and bool(paddle.isfinite(logits).all())
        assert attention.value_was_padded == (c.qk_nope_head_dim + c.qk_rope_head_dim != c.v_head_dim)
    """


def test_engine_models(inner):
    inner.write(
        "conftest.py",
        "from engine_models.layers import EngineModel\n\n"
        "def pytest_dummyweights_resolve_model(model_config, spec):\n    return EngineModel\n",
    )
    inner.write("test_engine.py", ENGINE_MODELS)
    result = inner.run("-v")
    result.assert_outcomes(passed=5)


def test_pad_value_returns_its_input_untouched_when_dims_are_equal():
    value = paddle.rand([2, 3, 4, 16])
    assert mla.pad_value(value, 16) is value
    not_a_tensor = np.zeros((2, 16))  # no Paddle op can run on it: nothing is run at all
    assert mla.pad_value(not_a_tensor, 16) is not_a_tensor


def test_pad_value_zero_pads_the_last_dim_when_dims_differ():
    value = paddle.rand([2, 3, 4, 16], dtype="float32") + 1
    padded = mla.pad_value(value, 24)
    assert padded.shape == [2, 3, 4, 24] and padded.dtype == value.dtype
    np.testing.assert_array_equal(padded[..., :16].numpy(), value.numpy())
    assert not padded[..., 16:].abs().sum().item()
    with pytest.raises(ValueError, match="larger than qk_head_dim"):
        mla.pad_value(value, 8)
