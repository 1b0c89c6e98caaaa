"""Shared by the outer tests and the inner pytest sessions they run (tests/ is on their sys.path).

``SHRINK``: overrides that keep each shipped config's real architecture but make it tiny.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"

NARROW = {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512}
_TINY = {"num_hidden_layers": 2, **NARROW}
_DEEPSEEK = {
    **_TINY,
    "num_key_value_heads": 4,
    "first_k_dense_replace": 1,
    "n_routed_experts": 16,
    "n_group": 4,
    "topk_group": 2,
    "num_experts_per_tok": 4,
    "seq_length": 8,
    "moe_intermediate_size": 32,
    "q_lora_rank": 32,
    "kv_lora_rank": 32,
}
SHRINK = {
    "qwen3": (CONFIGS / "qwen3-0.6b", {**_TINY, "head_dim": 16}),
    "qwen3_moe": (CONFIGS / "qwen3-30b-a3b", {**_TINY, "head_dim": 16, "num_experts": 8, "moe_intermediate_size": 32}),
    # as published, qk (nope + rope) and v head dims differ; here 16 + 8 vs 16
    "deepseek_v3_unequal": (CONFIGS / "deepseek-v3", {**_DEEPSEEK, "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 16}),
    "deepseek_v3_equal": (CONFIGS / "deepseek-v3", {**_DEEPSEEK, "qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 16}),
    "llama": (CONFIGS / "llama-3.2-1b", {**_TINY, "head_dim": 16}),
}

ZOO = "engine_models.layers:ParamZoo"
ENGINE = "engine_models.layers:EngineModel"


def zoo_config(tag: str = "", **params: tuple[str, list[int]]) -> dict:
    """A dict config for ``ParamZoo``: one parameter per keyword, ``name=(dtype, shape)``."""
    return {
        "model_type": "param_zoo",
        "tag": tag,
        "params": {name: list(spec) for name, spec in (params or {"w": ("float32", [4, 4])}).items()},
    }


# every floating dtype, several chunks each (values are written chunk by chunk)
ZOO_PARAMS = {f"w_{dtype}": (dtype, [3, 40000]) for dtype in ("float16", "bfloat16", "float32", "float64", "float8_e4m3fn", "float8_e5m2")}
