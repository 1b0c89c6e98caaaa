"""Demo suite: the real PaddleFormers classes, built from the real published configs, with dummy weights.

Run it with ``bash ci/demo``. Every test prints what it was given; the run summary counts builds,
cache hits, the bytes of the distinct models built, and their resident and shared memory.
"""

import paddle
import pytest

from pytest_dummyweights import DummySpec

TOKENS = [[101, 2023, 2003, 1037, 7099, 3793, 2005, 7953]]
MOE_SHRINK = {"num_hidden_layers": 2, "num_experts": 16, "hidden_size": 512, "moe_intermediate_size": 256, "intermediate_size": 1024}
DEEPSEEK_SHRINK = {
    "num_hidden_layers": 2,
    "first_k_dense_replace": 1,
    "n_routed_experts": 16,
    "n_group": 4,
    "topk_group": 2,
    "num_experts_per_tok": 4,
    "hidden_size": 512,
    "intermediate_size": 1024,
    "moe_intermediate_size": 256,
    "seq_length": len(TOKENS[0]),
}
STRUCTURE = (
    "num_hidden_layers",
    "num_experts",
    "n_routed_experts",
    "first_k_dense_replace",
    "n_group",
    "topk_group",
    "num_experts_per_tok",
)
MOE_WIDTHS = {key: value for key, value in MOE_SHRINK.items() if key not in STRUCTURE}
DEEPSEEK_WIDTHS = {key: value for key, value in DEEPSEEK_SHRINK.items() if key not in STRUCTURE}


def describe(model):
    parameters = model.parameters()
    count = sum(int(p.numel()) for p in parameters)
    nbytes = sum(int(p.numel()) * p.element_size() for p in parameters)
    dtypes = sorted({str(p.dtype).replace("paddle.", "") for p in parameters})
    return f"{type(model).__name__}: {count:,} parameters, {nbytes / 2**20:,.1f} MiB, {'/'.join(dtypes)}"


def logits_of(model):
    with paddle.no_grad():
        output = model(paddle.to_tensor(TOKENS))
    return output.logits if hasattr(output, "logits") else output[0]


@pytest.mark.dummy_load("../configs/qwen3-0.6b")
def test_qwen3_0_6b_at_full_size(dummy_model):
    """The published Qwen3-0.6B config as it is: all 28 layers, float32 on CPU."""
    logits = logits_of(dummy_model)
    print(f"\n  built {describe(dummy_model)}; logits {list(logits.shape)}")
    assert logits.shape == [1, len(TOKENS[0]), dummy_model.config.vocab_size]
    assert bool(paddle.isfinite(logits).all())


@pytest.mark.dummy_load("../configs/qwen3-0.6b")
def test_same_model_again_comes_from_the_cache(dummy_model):
    """A second test asking for the same spec gets it without a rebuild (see the summary's cache hits)."""
    print(f"\n  served {describe(dummy_model)} from the cache")
    assert not dummy_model.training


@pytest.mark.parametrize(
    "dummy_model",
    [
        DummySpec("../configs/qwen3-30b-a3b", overrides=MOE_SHRINK),
        DummySpec("../configs/deepseek-v3", overrides=DEEPSEEK_SHRINK),
        DummySpec("../configs/llama-3.2-1b", overrides={"num_hidden_layers": 2}),
    ],
    indirect=True,
    ids=["qwen3-moe", "deepseek-v3-mla", "llama-3.2"],
)
def test_real_architectures_shrunk_in_depth(dummy_model):
    """Real MoE, MLA and Llama architectures, made shallow with overrides (the config files are untouched)."""
    logits = logits_of(dummy_model)
    print(f"\n  built {describe(dummy_model)}; logits {list(logits.shape)}")
    assert bool(paddle.isfinite(logits).all())


@pytest.mark.parametrize(
    "dummy_model",
    [
        DummySpec("../configs/deepseek-v3", shrink=True, overrides=DEEPSEEK_WIDTHS),
        DummySpec("../configs/qwen3-30b-a3b", shrink=True, overrides=MOE_WIDTHS),
        DummySpec("../configs/llama-3.2-1b", shrink=True, smoke=True),
    ],
    indirect=True,
    ids=["deepseek-v3", "qwen3-moe", "llama-3.2-real-widths-smoked"],
)
def test_shrink_keeps_every_layer_kind(dummy_model):
    """shrink=True picks the layers and experts (every layer kind, valid routing); overrides only narrow the widths for CPU."""
    config = dummy_model.config
    kinds = ["moe" if hasattr(layer.mlp, "experts") else "dense" for layer in dummy_model.base_model.layers]
    experts = getattr(config, "n_routed_experts", None) or getattr(config, "num_experts", None)
    logits = logits_of(dummy_model)
    print(f"\n  built {describe(dummy_model)}; layers {kinds}, {experts} experts, top-{getattr(config, 'num_experts_per_tok', None)}")
    assert experts is None or ("moe" in kinds and experts >= config.num_experts_per_tok)
    assert len(kinds) == 2 and bool(paddle.isfinite(logits).all())


def test_bfloat16_build_for_a_serving_engine(dummy_model_factory):
    """bfloat16 builds on CPU (forward passes on CPU need float32: Paddle lacks some bfloat16 CPU kernels)."""
    model = dummy_model_factory("../configs/qwen3-0.6b", dtype="bfloat16", overrides={"num_hidden_layers": 4})
    print(f"\n  built {describe(model)}")
    assert all(p.dtype == paddle.bfloat16 for p in model.parameters() if p.dtype != paddle.float32)
