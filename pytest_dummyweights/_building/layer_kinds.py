"""What kind each layer of a raw config is: a dense or a mixture-of-experts MLP, full or sliding-window
attention, as DeepSeek/GLM-4-MoE (``first_k_dense_replace``, ``moe_layer_freq``), Qwen-MoE
(``decoder_sparse_step``, ``mlp_only_layers``) and Qwen2/Qwen3 (``layer_types``, ``max_window_layers``) declare it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EXPERT_COUNT_KEYS = ("n_routed_experts", "num_experts", "num_local_experts")


def expert_key(raw: Mapping[str, Any]) -> str | None:
    """The key holding the number of routed experts, when the config routes to any."""
    return next((k for k in EXPERT_COUNT_KEYS if isinstance(raw.get(k), int) and raw[k] > 0), None)


def sliding_by_depth(raw: Mapping[str, Any]) -> bool:
    """Qwen2/Qwen3 style: layers from ``max_window_layers`` on use the sliding window."""
    return bool(raw.get("use_sliding_window")) and raw.get("sliding_window") is not None and isinstance(raw.get("max_window_layers"), int)


def mlp_kind(raw: Mapping[str, Any], index: int) -> str:
    if expert_key(raw) is None:
        return "dense"
    if "first_k_dense_replace" in raw:  # DeepSeek, GLM-4-MoE
        sparse = index >= (raw["first_k_dense_replace"] or 0) and index % (raw.get("moe_layer_freq") or 1) == 0
    elif "decoder_sparse_step" in raw or "mlp_only_layers" in raw:  # Qwen-MoE
        sparse = index not in (raw.get("mlp_only_layers") or []) and (index + 1) % (raw.get("decoder_sparse_step") or 1) == 0
    else:  # every layer routes (Mixtral-like)
        sparse = True
    return "moe" if sparse else "dense"


def attention_kind(raw: Mapping[str, Any], index: int) -> str:
    if isinstance(raw.get("layer_types"), list):
        return raw["layer_types"][index]
    if sliding_by_depth(raw):
        return "sliding_attention" if index >= raw["max_window_layers"] else "full_attention"
    return "full_attention"


def layer_kinds(raw: Mapping[str, Any]) -> list[str]:
    return [f"{mlp_kind(raw, i)}/{attention_kind(raw, i)}" for i in range(raw["num_hidden_layers"])]
