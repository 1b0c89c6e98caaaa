"""An engine's loading code, written the way inference engines write it: a weights iterator over safetensors files
and a model loader that builds the model from the checkpoint's config.json and feeds it those weights; the two
``pytest_dummyweights_intercept`` targets of the tests (``TARGETS``). Its checkpoint is sparse: real headers over
holes, so real loading reads zeros and dummy weights are told apart by value."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import SimpleNamespace

import paddle
from safetensors import safe_open

from engine_models.checkpoint_models import CHECKPOINT_CONFIG, EngineCheckpointModel, checkpoint_tensors
from pytest_dummyweights import InterceptTarget
from pytest_dummyweights._checkpoints.sparse import write_sparse_checkpoint

TARGETS = [
    InterceptTarget("engine_models.engine_loader.load_model", "model", model="engine_models.checkpoint_models:EngineCheckpointModel"),
    InterceptTarget("engine_models.engine_loader.safetensors_weights", "weights"),
]


def safetensors_weights(files: Iterable[Path]) -> Iterator[tuple[str, paddle.Tensor]]:
    for file in files:
        with safe_open(str(file), framework="paddle") as opened:
            for name in opened.keys():  # noqa: SIM118 (safe_open is not a mapping)
                yield name, opened.get_tensor(name)


def load_model(model_dir: str | Path) -> EngineCheckpointModel:
    model_dir = Path(model_dir)
    model = EngineCheckpointModel(SimpleNamespace(**json.loads((model_dir / "config.json").read_text())))
    model.load_weights(safetensors_weights(sorted(model_dir.glob("*.safetensors"))))
    return model


def write_engine_checkpoint(directory: Path) -> Path:
    write_sparse_checkpoint(directory, checkpoint_tensors(SimpleNamespace(**CHECKPOINT_CONFIG)), shards=2, metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(CHECKPOINT_CONFIG))
    return directory
