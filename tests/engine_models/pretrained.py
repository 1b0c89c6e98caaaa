"""Checkpoints as a user downloads them: ``save_pretrained`` files (Hugging Face layout, bfloat16, the tied ``lm_head``
stored once as the embedding) beside the published ``config.json`` (``configs/qwen2.5-0.5b``, with overrides), and a
digest of a model's weights to tell real from dummy.

The checkpoint's values come from a seed the runs never use, so loading it for real and building with dummy
weights give different weights, told apart by value.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from engine_models import CONFIGS, NARROW

QWEN2 = CONFIGS / "qwen2.5-0.5b"
TINY_QWEN2 = {**NARROW, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}
CHECKPOINT_SEED = 1234  # not the runs' seed (0): a checkpoint's values differ from dummy ones
WITNESS = "model.layers.0.mlp.down_proj.weight"


def published_config(overrides: dict | None = None) -> dict:
    return {**json.loads((QWEN2 / "config.json").read_text()), **(overrides or {})}


def write_pretrained(directory: Path, overrides: dict | None = None) -> Path:
    """A Qwen2 checkpoint in the layout and dtype of the published one, with its published-style config.json."""
    from safetensors import safe_open
    from safetensors.paddle import save_file

    from pytest_dummyweights import build_dummy_model

    config = published_config(overrides)
    model = build_dummy_model(config, dtype="bfloat16", seed=CHECKPOINT_SEED)
    model.save_pretrained(str(directory), save_to_hf=True, safe_serialization=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    if config.get("tie_word_embeddings"):  # as published: the tied lm_head is the embedding, stored once
        file = directory / "model.safetensors"
        with safe_open(str(file), framework="paddle") as opened:
            tensors = {name: opened.get_tensor(name) for name in opened.keys() if name != "lm_head.weight"}  # noqa: SIM118
            metadata = opened.metadata()
        save_file(tensors, str(file), metadata=metadata)
    return directory


def weight_digest(model, name: str = WITNESS) -> str:
    """sha256 of one parameter's values, as float32."""
    return hashlib.sha256(model.state_dict()[name].astype("float32").numpy().tobytes()).hexdigest()[:16]


def dummy_digest(overrides: dict | None = None, dtype: str = "bfloat16", name: str = WITNESS) -> str:
    """The digest a dummy build of the checkpoint's config gives (the runs' seed, 0)."""
    from pytest_dummyweights import build_dummy_model

    return weight_digest(build_dummy_model(published_config(overrides), dtype=dtype), name)


def checkpoint_digest(directory: Path, name: str = WITNESS) -> str:
    """The digest of the checkpoint's own tensor (stored transposed: Hugging Face layout)."""
    import paddle
    from safetensors import safe_open

    with safe_open(str(directory / "model.safetensors"), framework="paddle") as file:
        tensor = file.get_tensor(name)
    return hashlib.sha256(paddle.transpose(tensor, [1, 0]).astype("float32").numpy().tobytes()).hexdigest()[:16]
