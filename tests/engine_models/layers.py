"""Engine-style test models: plain ``paddle.nn.Layer`` classes written the way a Paddle inference engine
writes them (quantized weights with a ``quant_method``, float8 weights, MLA with derived weights).

Each post-processing step records what it saw, so tests can check it ran once, on the built weights.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import paddle
from paddle.nn.initializer import Constant

from pytest_dummyweights import mla


def tensor_digest(*tensors: paddle.Tensor) -> str:
    """sha256 over the tensors' values (float8 is widened exactly to float32 first)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        if tensor.dtype in (paddle.float8_e4m3fn, paddle.float8_e5m2, paddle.bfloat16):
            tensor = tensor.astype("float32")
        digest.update(np.ascontiguousarray(tensor.numpy()).tobytes())
    return digest.hexdigest()


def parameter_digests(model: paddle.nn.Layer) -> dict[str, str]:
    return {name: tensor_digest(param) for name, param in model.named_parameters()}


class WeightOnlyInt8Method:
    """A quant_method: int8 weight plus a float32 per-output-channel scale."""

    def __init__(self) -> None:
        self.seen: list[str] = []  # digest of (weight, scale) at each process_weights_after_loading

    def create_weights(self, layer: paddle.nn.Layer, in_features: int, out_features: int) -> None:
        layer.weight = layer.create_parameter([in_features, out_features], dtype="int8", default_initializer=Constant(0))
        layer.weight_scale = layer.create_parameter([out_features], dtype="float32")

    def process_weights_after_loading(self, layer: paddle.nn.Layer) -> None:
        self.seen.append(tensor_digest(layer.weight, layer.weight_scale))
        layer.weight_scale_inv = 1.0 / layer.weight_scale  # what an engine precomputes from the loaded scale

    def apply(self, layer: paddle.nn.Layer, x: paddle.Tensor) -> paddle.Tensor:
        return paddle.matmul(x, layer.weight.astype(x.dtype) * layer.weight_scale)


class QuantLinear(paddle.nn.Layer):
    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.quant_method = WeightOnlyInt8Method()
        self.quant_method.create_weights(self, in_features, out_features)
        self.own_calls = 0

    def process_weights_after_loading(self) -> None:  # the quant_method's takes precedence: never called
        self.own_calls += 1

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.quant_method.apply(self, x)


class Float8Linear(paddle.nn.Layer):
    """A float8 weight and a float32 scale; no quant_method, its own post-processing dequantizes once."""

    def __init__(self, in_features: int, out_features: int, dtype: str) -> None:
        super().__init__()
        self.weight = self.create_parameter([in_features, out_features], dtype=dtype, default_initializer=Constant(0))
        self.weight_scale = self.create_parameter([1], dtype="float32")
        self.seen: list[str] = []
        self.dequantized = None

    def process_weights_after_loading(self) -> None:
        self.seen.append(tensor_digest(self.weight, self.weight_scale))
        self.dequantized = self.weight.astype("float32") * self.weight_scale

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return paddle.matmul(x, self.dequantized)


class MLAAttention(paddle.nn.Layer):
    """DeepSeek-style attention in the engines' combined-KV convention: ``k_b_proj_weight`` and
    ``v_b_proj_weight`` are not created here (an engine derives them from ``kv_b_proj`` while loading)."""

    def __init__(
        self, hidden_size: int, heads: int, kv_lora_rank: int, qk_nope_head_dim: int, qk_rope_head_dim: int, v_head_dim: int
    ) -> None:
        super().__init__()
        self.num_heads_per_partition = heads
        self.kv_lora_rank = kv_lora_rank
        self.qk_nope_head_dim = qk_nope_head_dim
        self.qk_rope_head_dim = qk_rope_head_dim
        self.v_head_dim = v_head_dim
        self.qk_head_dim = mla.qk_head_dim(qk_nope_head_dim, qk_rope_head_dim)
        self.q_proj = paddle.nn.Linear(hidden_size, heads * self.qk_head_dim, bias_attr=False)
        self.kv_a_proj = paddle.nn.Linear(hidden_size, kv_lora_rank + qk_rope_head_dim, bias_attr=False)
        self.o_proj = paddle.nn.Linear(heads * v_head_dim, hidden_size, bias_attr=False)
        self.value_was_padded: bool | None = None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        b, s, h = x.shape[0], x.shape[1], self.num_heads_per_partition
        q = self.q_proj(x).reshape([b, s, h, self.qk_head_dim])
        kv = self.kv_a_proj(x)
        latent, k_rope = kv[..., : self.kv_lora_rank], kv[..., self.kv_lora_rank :]
        k_nope = paddle.einsum("bsr,hnr->bshn", latent, self.k_b_proj_weight)
        value = paddle.einsum("bsr,hrv->bshv", latent, self.v_b_proj_weight)
        key = paddle.concat([k_nope, k_rope.unsqueeze(2).expand([b, s, h, self.qk_rope_head_dim])], axis=-1)
        padded = mla.pad_value(value, self.qk_head_dim)  # one head dim for q, k and v, as attention kernels want
        self.value_was_padded = padded is not value
        scores = paddle.einsum("bqhd,bkhd->bhqk", q, key) / math.sqrt(self.qk_head_dim)
        out = paddle.einsum("bhqk,bkhd->bqhd", paddle.nn.functional.softmax(scores, axis=-1), padded)
        return self.o_proj(out[..., : self.v_head_dim].reshape([b, s, h * self.v_head_dim]))


class MLAAttentionWithPlaceholders(MLAAttention):
    """The same, declaring the derived weights as ``None`` placeholders, as engine code often does."""

    def __init__(self, *args: int) -> None:
        super().__init__(*args)
        self.k_b_proj_weight = None
        self.v_b_proj_weight = None


class EngineModel(paddle.nn.Layer):
    """A tiny causal LM of engine-style layers, built from a plain config."""

    def __init__(self, config) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.embed = paddle.nn.Embedding(config.vocab_size, hidden)
        attention = MLAAttentionWithPlaceholders if getattr(config, "mla_placeholders", False) else MLAAttention
        self.attention = attention(
            hidden, config.num_heads, config.kv_lora_rank, config.qk_nope_head_dim, config.qk_rope_head_dim, config.v_head_dim
        )
        self.quant = QuantLinear(hidden, hidden)
        self.fp8_e4m3 = Float8Linear(hidden, hidden, "float8_e4m3fn")
        self.fp8_e5m2 = Float8Linear(hidden, hidden, "float8_e5m2")
        self.lm_head = paddle.nn.Linear(hidden, config.vocab_size, bias_attr=False)

    def forward(self, ids: paddle.Tensor) -> paddle.Tensor:
        x = self.embed(ids)
        x = x + self.attention(x)
        x = x + self.quant(x) + self.fp8_e4m3(x) + self.fp8_e5m2(x)
        return self.lm_head(x)


ENGINE_CONFIG = {
    "model_type": "engine_test",
    "hidden_size": 32,
    "vocab_size": 64,
    "num_heads": 2,
    "kv_lora_rank": 16,
    "qk_nope_head_dim": 8,
    "qk_rope_head_dim": 4,
    "v_head_dim": 8,
}


class ParamZoo(paddle.nn.Layer):
    """One parameter per entry of ``config.params``: ``{name: [dtype, shape]}``; for the value rules."""

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        for name, (dtype, shape) in config.params.items():
            floating = dtype in ("float16", "bfloat16", "float32", "float64")
            initializer = None if floating else Constant(0)
            self.add_parameter(name, self.create_parameter(shape, dtype=dtype, default_initializer=initializer))


def make_engine_model(config) -> EngineModel:
    """A factory callable (not a class), for ``model=``."""
    return EngineModel(config)
