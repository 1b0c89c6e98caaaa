"""An fp8 engine-style test model with the scales quantized checkpoints carry: per-channel float32
``weight_scale``, a uint8 UE8M0 ``weight_scale_inv`` (exponents, 2^(e-127)), and 0-d ``k_scale``/``v_scale``
calibration scalars of an fp8 KV cache. Written the way a Paddle inference engine writes its layers.

Config flags for the checks of a build: ``plant_inf`` names a linear layer whose post-processing writes
an inf into its derived weight; ``forget_derived`` names one whose post-processing forgets to derive it.
"""

from __future__ import annotations

import math

import paddle
from paddle.nn.initializer import Constant

FP8 = "float8_e4m3fn"
UE8M0_BIAS = 127


def fp8_round_trip(x: paddle.Tensor, scale: paddle.Tensor) -> paddle.Tensor:
    """What an fp8 KV cache does to a value: divide by the scale, store as float8, multiply back."""
    return (x / scale).astype(FP8).astype("float32") * scale


class Fp8Linear(paddle.nn.Layer):
    """float8 weight with a per-output-channel float32 ``weight_scale``; post-processing derives ``dequant_weight``."""

    def __init__(self, in_features: int, out_features: int, plant_inf: bool = False, forget_derived: bool = False) -> None:
        super().__init__()
        self.weight = self.create_parameter([in_features, out_features], dtype=FP8, default_initializer=Constant(0))
        self.weight_scale = self.create_parameter([out_features], dtype="float32")
        self.dequant_weight = None  # a loader derives it from the checkpoint's weight and scale
        self.plant_inf, self.forget_derived = plant_inf, forget_derived

    def dequantize(self) -> paddle.Tensor:
        return self.weight.astype("float32") * self.weight_scale

    def process_weights_after_loading(self) -> None:
        if self.forget_derived:
            return
        self.dequant_weight = self.dequantize()
        if self.plant_inf:
            self.dequant_weight[0, 0] = math.inf  # a sentinel that overflowed

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return paddle.matmul(x, self.dequant_weight)


class UE8M0Linear(Fp8Linear):
    """The scale is a uint8 exponent per output channel (UE8M0): 2^(e-127), as DeepGEMM reads it."""

    def __init__(self, in_features: int, out_features: int, **flags: bool) -> None:
        super().__init__(in_features, out_features, **flags)
        del self.weight_scale
        self.weight_scale_inv = self.create_parameter([out_features], dtype="uint8", default_initializer=Constant(0))

    def dequantize(self) -> paddle.Tensor:
        exponents = self.weight_scale_inv.astype("float32") - UE8M0_BIAS
        return self.weight.astype("float32") * paddle.pow(paddle.to_tensor(2.0), exponents)


class Fp8KVAttention(paddle.nn.Layer):
    """Single-head causal attention whose keys and values pass through an fp8 KV cache with 0-d scales."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.q_proj = paddle.nn.Linear(hidden, hidden, bias_attr=False)
        self.k_proj = paddle.nn.Linear(hidden, hidden, bias_attr=False)
        self.v_proj = paddle.nn.Linear(hidden, hidden, bias_attr=False)
        self.o_proj = paddle.nn.Linear(hidden, hidden, bias_attr=False)
        self.k_scale = self.create_parameter([], dtype="float32")
        self.v_scale = self.create_parameter([], dtype="float32")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        q = self.q_proj(x)
        k = fp8_round_trip(self.k_proj(x), self.k_scale)
        v = fp8_round_trip(self.v_proj(x), self.v_scale)
        scores = paddle.matmul(q, k, transpose_y=True) / math.sqrt(x.shape[-1])
        length = x.shape[1]
        causal = paddle.triu(paddle.full([length, length], -math.inf), diagonal=1)
        return self.o_proj(paddle.matmul(paddle.nn.functional.softmax(scores + causal, axis=-1), v))


class Fp8EngineModel(paddle.nn.Layer):
    """A tiny causal LM: embedding, fp8-KV attention, an fp8 MLP (per-channel and UE8M0 scales), lm head."""

    def __init__(self, config) -> None:
        super().__init__()
        hidden, inner = config.hidden_size, config.intermediate_size
        flags = {
            name: {"plant_inf": getattr(config, "plant_inf", "") == name, "forget_derived": getattr(config, "forget_derived", "") == name}
            for name in ("up_proj", "down_proj")
        }
        self.embed = paddle.nn.Embedding(config.vocab_size, hidden)
        self.attn = Fp8KVAttention(hidden)
        self.up_proj = Fp8Linear(hidden, inner, **flags["up_proj"])
        self.down_proj = UE8M0Linear(inner, hidden, **flags["down_proj"])
        self.lm_head = paddle.nn.Linear(hidden, config.vocab_size, bias_attr=False)

    def forward(self, ids: paddle.Tensor) -> paddle.Tensor:
        x = self.embed(ids)
        x = x + self.attn(x)
        x = x + self.down_proj(paddle.nn.functional.silu(self.up_proj(x)))
        return self.lm_head(x)


FP8_CONFIG = {"model_type": "fp8_engine_test", "hidden_size": 32, "intermediate_size": 64, "vocab_size": 64}
FP8_MODEL = "engine_models.quant_models:Fp8EngineModel"
SCALES = ("attn.k_scale", "attn.v_scale", "up_proj.weight_scale", "down_proj.weight_scale_inv")
