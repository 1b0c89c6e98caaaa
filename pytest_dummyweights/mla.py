"""Multi-head latent attention (DeepSeek-style): head dimensions, derived weights, value padding.

Paddle inference engines keep MLA's key/value up-projection combined (``kv_b_proj``) and derive
``k_b_proj_weight`` and ``v_b_proj_weight`` from it while loading a checkpoint. A dummy build loads
no checkpoint, so it creates them itself (see :func:`derived_weight_shapes`).
"""

from __future__ import annotations

from typing import Any

MLA_ATTRIBUTES = ("kv_lora_rank", "qk_nope_head_dim", "v_head_dim", "num_heads_per_partition")
DERIVED_WEIGHTS = ("k_b_proj_weight", "v_b_proj_weight")


def is_mla_layer(layer: Any) -> bool:
    """A sublayer following the engines' combined-KV convention."""
    return all(hasattr(layer, name) for name in MLA_ATTRIBUTES)


def derived_weight_shapes(layer: Any) -> dict[str, list[int]]:
    """``k_b_proj_weight``: [heads, qk_nope_head_dim, kv_lora_rank]; ``v_b_proj_weight``: [heads, kv_lora_rank, v_head_dim]."""
    heads, rank = int(layer.num_heads_per_partition), int(layer.kv_lora_rank)
    return {
        "k_b_proj_weight": [heads, int(layer.qk_nope_head_dim), rank],
        "v_b_proj_weight": [heads, rank, int(layer.v_head_dim)],
    }


def qk_head_dim(qk_nope_head_dim: int, qk_rope_head_dim: int) -> int:
    """The query/key head dimension: the part without rotary embedding plus the rotary part."""
    return qk_nope_head_dim + qk_rope_head_dim


def needs_value_padding(v_head_dim: int, qk_head_dim: int) -> bool:
    """Attention kernels that need one head dim for q, k and v need v padded when the dims differ."""
    if v_head_dim > qk_head_dim:
        raise ValueError(f"v_head_dim {v_head_dim} is larger than qk_head_dim {qk_head_dim}: it cannot be padded to it")
    return v_head_dim != qk_head_dim


def pad_value(value: Any, qk_head_dim: int) -> Any:
    """Pad the value's last dim with zeros to ``qk_head_dim``; when they are equal, return ``value`` itself, running no op."""
    v_head_dim = int(value.shape[-1])
    if not needs_value_padding(v_head_dim, qk_head_dim):
        return value
    # lazy: the MLA helpers import without Paddle (they are public API, re-exported by the package)
    import paddle

    zeros = paddle.zeros([*value.shape[:-1], qk_head_dim - v_head_dim], dtype=value.dtype)
    return paddle.concat([value, zeros], axis=-1)
