"""Structural tests over the four shipped configs: shapes, parameter counts, a few values, config fields,
and a tiny float32 forward pass. The ``model`` fixture (conftest.py) builds dummy weights or loads a
checkpoint; nothing here knows which."""

from __future__ import annotations

import numpy as np
import paddle

TOKENS = [[1, 2, 3, 4, 5, 6, 7, 8]]  # DeepSeek-V3 entries override seq_length to 8


def only(predicate):
    def mark(test):
        test.models = predicate
        return test

    return mark


def first_values(param, count: int = 8) -> list[float]:
    return param.reshape([-1])[:count].astype("float32").numpy().tolist()


def test_parameter_count_and_architecture(model, entry):
    assert type(model).__name__ == entry["architecture"]
    assert sum(int(np.prod(param.shape)) for param in model.parameters()) == entry["parameters"]


def test_embedding_and_depth_match_the_config(model):
    config = model.config
    embedding = model.get_input_embeddings().weight
    assert list(embedding.shape) == [config.vocab_size, config.hidden_size]
    assert len(model.base_model.layers) == config.num_hidden_layers
    assert config.architectures[0] == type(model).__name__


def test_attention_output_projection_shape(model):
    config = model.config
    head_dim = getattr(config, "v_head_dim", None) or getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    for layer in model.base_model.layers:
        assert list(layer.self_attn.o_proj.weight.shape) == [config.num_attention_heads * head_dim, config.hidden_size]


def test_experts_match_the_config(model):
    config = model.config
    experts = getattr(config, "n_routed_experts", None) or getattr(config, "num_experts", None) or 0
    counts = [len(layer.mlp.experts) for layer in model.base_model.layers if hasattr(layer.mlp, "experts")]
    assert all(count == experts for count in counts)
    assert bool(counts) == (experts > 0)


def test_recorded_values_and_dtypes(model, entry):
    named = dict(model.named_parameters())
    for name, values in entry["values"].items():
        assert first_values(named[name], len(values)) == values, name
    floating = {str(p.dtype) for p in model.parameters() if p.is_floating_point()}
    assert floating <= {f"paddle.{entry['dtype']}", "paddle.float32"}


@only(lambda entry: entry["forward"])
def test_forward_gives_finite_logits(model):
    with paddle.no_grad():
        output = model(paddle.to_tensor(TOKENS))
    logits = output.logits if hasattr(output, "logits") else output[0]
    assert list(logits.shape) == [1, len(TOKENS[0]), model.config.vocab_size]
    assert bool(paddle.isfinite(logits).all())
