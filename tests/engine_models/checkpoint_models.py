"""An engine-style model whose ``load_weights`` does what inference engines' loaders do with a checkpoint.

Per-projection checkpoint tensors (Hugging Face names and ``[out, in]`` layout) are written into
stacked QKV and gate/up weights; a float8 linear takes its weight and ``weight_scale_inv``; an MLA
layer derives ``k_b_proj_weight``/``v_b_proj_weight`` from ``kv_b_proj``, which the model never holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import paddle
from paddle.nn.initializer import Constant

from pytest_dummyweights import mla

CHECKPOINT_CONFIG = {
    "model_type": "engine_checkpoint_test",
    "hidden_size": 32,
    "intermediate_size": 48,
    "vocab_size": 64,
    "num_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "kv_lora_rank": 16,
    "qk_nope_head_dim": 8,
    "qk_rope_head_dim": 4,
    "v_head_dim": 8,
}
STACKED = {"q_proj": "qkv_proj", "k_proj": "qkv_proj", "v_proj": "qkv_proj", "gate_proj": "gate_up_proj", "up_proj": "gate_up_proj"}


class StackedLinear(paddle.nn.Layer):
    """Several projections in one ``[in, sum(outs)]`` weight; the checkpoint holds each as ``[out, in]``."""

    def __init__(self, in_features: int, parts: dict[str, int]) -> None:
        super().__init__()
        self.parts = parts
        self.weight = self.create_parameter([in_features, sum(parts.values())])

    def load_part(self, part: str, tensor: paddle.Tensor) -> None:
        names = list(self.parts)
        start = sum(self.parts[name] for name in names[: names.index(part)])
        with paddle.no_grad():
            self.weight[:, start : start + self.parts[part]] = tensor.T.astype(self.weight.dtype)


class Float8Linear(paddle.nn.Layer):
    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = self.create_parameter([in_features, out_features], dtype="float8_e4m3fn", default_initializer=Constant(0))
        self.weight_scale_inv = self.create_parameter([1], dtype="float32")


class GQAttention(paddle.nn.Layer):
    def __init__(self, c) -> None:
        super().__init__()
        self.qkv_proj = StackedLinear(
            c.hidden_size,
            {
                "q_proj": c.num_heads * c.head_dim,
                "k_proj": c.num_key_value_heads * c.head_dim,
                "v_proj": c.num_key_value_heads * c.head_dim,
            },
        )
        self.o_proj = paddle.nn.Linear(c.num_heads * c.head_dim, c.hidden_size, bias_attr=False)


class MLAttention(paddle.nn.Layer):
    """The engines' combined-KV convention: the derived weights appear only when ``kv_b_proj`` is loaded."""

    def __init__(self, c) -> None:
        super().__init__()
        self.num_heads_per_partition, self.kv_lora_rank = c.num_heads, c.kv_lora_rank
        self.qk_nope_head_dim, self.v_head_dim = c.qk_nope_head_dim, c.v_head_dim
        qk_head_dim = mla.qk_head_dim(c.qk_nope_head_dim, c.qk_rope_head_dim)
        self.q_proj = paddle.nn.Linear(c.hidden_size, c.num_heads * qk_head_dim, bias_attr=False)
        self.kv_a_proj_with_mqa = paddle.nn.Linear(c.hidden_size, c.kv_lora_rank + c.qk_rope_head_dim, bias_attr=False)
        self.o_proj = paddle.nn.Linear(c.num_heads * c.v_head_dim, c.hidden_size, bias_attr=False)

    def derive_from_kv_b(self, kv_b: paddle.Tensor) -> None:
        """``kv_b_proj.weight`` ``[heads * (nope + v), rank]`` -> ``k_b`` ``[heads, nope, rank]``, ``v_b`` ``[heads, rank, v]``."""
        per_head = kv_b.reshape([self.num_heads_per_partition, self.qk_nope_head_dim + self.v_head_dim, self.kv_lora_rank])
        derived = {
            "k_b_proj_weight": per_head[:, : self.qk_nope_head_dim, :],
            "v_b_proj_weight": per_head[:, self.qk_nope_head_dim :, :].transpose([0, 2, 1]),
        }
        for attribute, value in derived.items():
            param = self.create_parameter(list(value.shape), dtype=self.q_proj.weight.dtype)
            param.set_value(value.astype(param.dtype).contiguous())
            self.add_parameter(attribute, param)


class DecoderLayer(paddle.nn.Layer):
    def __init__(self, c, attention: type) -> None:
        super().__init__()
        self.input_layernorm = paddle.nn.LayerNorm(c.hidden_size, bias_attr=False)
        self.self_attn = attention(c)
        self.mlp = paddle.nn.Layer()
        self.mlp.gate_up_proj = StackedLinear(c.hidden_size, {"gate_proj": c.intermediate_size, "up_proj": c.intermediate_size})
        self.mlp.down_proj = Float8Linear(c.intermediate_size, c.hidden_size)


class EngineCheckpointModel(paddle.nn.Layer):
    """Layer 0: grouped-query attention with stacked QKV; layer 1: MLA. Both: stacked gate/up, float8 down."""

    def __init__(self, config) -> None:
        super().__init__()
        self.model = paddle.nn.Layer()
        self.model.embed_tokens = paddle.nn.Embedding(config.vocab_size, config.hidden_size)
        self.model.layers = paddle.nn.LayerList([DecoderLayer(config, GQAttention), DecoderLayer(config, MLAttention)])
        self.model.norm = paddle.nn.LayerNorm(config.hidden_size, bias_attr=False)
        self.lm_head = paddle.nn.Linear(config.hidden_size, config.vocab_size, bias_attr=False)

    def load_weights(self, weights: Iterable[tuple[str, paddle.Tensor]]) -> None:
        """Map each checkpoint tensor to what holds it; a name nothing loads is an error. ``loaded_tensors``
        counts what it took: the tests' witness that this loader, not the plugin, ran."""
        layers = dict(self.named_sublayers())
        params = dict(self.named_parameters())
        self.loaded_tensors = 0
        for name, tensor in weights:
            self.loaded_tensors += 1
            owner, projection, leaf = re.fullmatch(r"(?:(.*)\.)?([^.]+)\.([^.]+)", name).groups()
            stacked = layers.get(f"{owner}.{STACKED.get(projection)}")
            if isinstance(stacked, StackedLinear) and leaf == "weight":
                stacked.load_part(projection, tensor)
            elif projection == "kv_b_proj":
                layers[owner].derive_from_kv_b(tensor)
            elif name in params:
                transposed = leaf == "weight" and isinstance(layers[name.rpartition(".")[0]], (paddle.nn.Linear, Float8Linear))
                value = tensor.T if transposed else tensor
                if value.shape != params[name].shape:  # Paddle's copy_ does not check; engines' default loaders do
                    raise ValueError(f"checkpoint tensor {name!r} has shape {value.shape}, the parameter {params[name].shape}")
                params[name].copy_(value.astype(params[name].dtype).contiguous())
            else:
                raise KeyError(f"checkpoint tensor {name!r}: nothing in {type(self).__name__} loads it")


def checkpoint_tensors(c) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The checkpoint an engine would load into this model: Hugging Face names, ``[out, in]`` linears."""
    qk_head_dim = mla.qk_head_dim(c.qk_nope_head_dim, c.qk_rope_head_dim)
    tensors = {"model.embed_tokens.weight": ("BF16", (c.vocab_size, c.hidden_size))}
    attention = {
        0: {
            "q_proj": (c.num_heads * c.head_dim, c.hidden_size),
            "k_proj": (c.num_key_value_heads * c.head_dim, c.hidden_size),
            "v_proj": (c.num_key_value_heads * c.head_dim, c.hidden_size),
            "o_proj": (c.hidden_size, c.num_heads * c.head_dim),
        },
        1: {
            "q_proj": (c.num_heads * qk_head_dim, c.hidden_size),
            "kv_a_proj_with_mqa": (c.kv_lora_rank + c.qk_rope_head_dim, c.hidden_size),
            "kv_b_proj": (c.num_heads * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank),
            "o_proj": (c.hidden_size, c.num_heads * c.v_head_dim),
        },
    }
    for layer, projections in attention.items():
        prefix = f"model.layers.{layer}"
        tensors[f"{prefix}.input_layernorm.weight"] = ("BF16", (c.hidden_size,))
        tensors.update({f"{prefix}.self_attn.{name}.weight": ("BF16", shape) for name, shape in projections.items()})
        tensors[f"{prefix}.mlp.gate_proj.weight"] = ("BF16", (c.intermediate_size, c.hidden_size))
        tensors[f"{prefix}.mlp.up_proj.weight"] = ("BF16", (c.intermediate_size, c.hidden_size))
        tensors[f"{prefix}.mlp.down_proj.weight"] = ("F8_E4M3", (c.hidden_size, c.intermediate_size))
        tensors[f"{prefix}.mlp.down_proj.weight_scale_inv"] = ("F32", (1,))
    tensors["model.norm.weight"] = ("BF16", (c.hidden_size,))
    tensors["lm_head.weight"] = ("BF16", (c.vocab_size, c.hidden_size))
    return tensors
