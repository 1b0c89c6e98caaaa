"""Checkpoint-shaped dummy loading: a manifest's tensors, as dummy values, through the model's own ``load_weights``."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import paddle
import pytest
from engine_models.checkpoint_models import CHECKPOINT_CONFIG, EngineCheckpointModel, checkpoint_tensors

from pytest_dummyweights._building.construct import construction_guards
from pytest_dummyweights._checkpoints.loader_feed import dummy_tensor, feed_load_weights
from pytest_dummyweights._checkpoints.manifest import Manifest, read_manifest
from pytest_dummyweights._checkpoints.sparse import write_sparse_checkpoint
from pytest_dummyweights.errors import DummyWeightsError

CONFIG = types.SimpleNamespace(**CHECKPOINT_CONFIG)


def lazy_engine_model() -> EngineCheckpointModel:
    """Constructed as the build does, without the plugin's own MLA weights: only the loader may make them."""
    with construction_guards("float32"):
        return EngineCheckpointModel(CONFIG)


def engine_manifest(tmp_path: Path, edit=None) -> Manifest:
    tensors = checkpoint_tensors(CONFIG)
    if edit is not None:
        edit(tensors)
    write_sparse_checkpoint(tmp_path / "ckpt", tensors, shards=2, metadata={"format": "pt"})
    return read_manifest(tmp_path / "ckpt")


def as_float32(tensor: paddle.Tensor) -> np.ndarray:
    return tensor.astype("float32").numpy()


def test_every_parameter_written_through_the_engines_own_loader(tmp_path: Path) -> None:
    manifest = engine_manifest(tmp_path)
    model = lazy_engine_model()
    assert not hasattr(model.model.layers[1].self_attn, "k_b_proj_weight")
    result = feed_load_weights(model, manifest)
    assert result.report.ok, result.report.table()
    assert result.written == set(dict(model.named_parameters()))

    def fed(name: str) -> np.ndarray:
        return as_float32(dummy_tensor(name, manifest.tensors[name]))

    attention = model.model.layers[1].self_attn
    kv_b = fed("model.layers.1.self_attn.kv_b_proj.weight").reshape([4, 16, 16])  # heads, nope + v, rank
    np.testing.assert_array_equal(as_float32(attention.k_b_proj_weight), kv_b[:, :8, :])
    np.testing.assert_array_equal(as_float32(attention.v_b_proj_weight), kv_b[:, 8:, :].transpose(0, 2, 1))
    qkv = as_float32(model.model.layers[0].self_attn.qkv_proj.weight)
    np.testing.assert_array_equal(qkv[:, 32:48], fed("model.layers.0.self_attn.k_proj.weight").T)
    down = model.model.layers[0].mlp.down_proj
    np.testing.assert_array_equal(as_float32(down.weight), fed("model.layers.0.mlp.down_proj.weight").T)
    assert down.weight.dtype == paddle.float8_e4m3fn and np.count_nonzero(as_float32(down.weight)) > 0


def test_a_projection_the_checkpoint_lacks_leaves_its_stacked_weight_missing(tmp_path: Path) -> None:
    manifest = engine_manifest(tmp_path, lambda tensors: tensors.pop("model.layers.0.self_attn.v_proj.weight"))
    result = feed_load_weights(lazy_engine_model(), manifest)
    assert result.report.missing == ["model.layers.0.self_attn.qkv_proj.weight"]  # written in part only
    assert "model.layers.0.self_attn.qkv_proj.weight" not in result.written


def test_without_kv_b_the_mla_weights_are_never_derived(tmp_path: Path) -> None:
    manifest = engine_manifest(tmp_path, lambda tensors: tensors.pop("model.layers.1.self_attn.kv_b_proj.weight"))
    result = feed_load_weights(lazy_engine_model(), manifest)
    assert result.report.missing == ["model.layers.1.self_attn.k_b_proj_weight", "model.layers.1.self_attn.v_b_proj_weight"]


@pytest.mark.parametrize(
    ("edit", "culprit", "error"),
    [
        (
            lambda t: t.update({"model.layers.0.mlp.extra_proj.weight": ("BF16", (4, 4))}),
            "model.layers.0.mlp.extra_proj.weight",
            "KeyError",
        ),
        (lambda t: t.update({"model.norm.weight": ("BF16", (33,))}), "model.norm.weight", "ValueError"),
    ],
)
def test_what_the_loader_raises_on_is_named_with_the_checkpoint_tensor(tmp_path: Path, edit, culprit: str, error: str) -> None:
    result = feed_load_weights(lazy_engine_model(), engine_manifest(tmp_path, edit))
    [raised] = result.report.loader_errors
    assert raised.checkpoint_name == culprit and raised.message.startswith(error) and "\n" not in raised.message
    assert not result.report.ok and "load_weights raised: 1" in "\n".join(result.report.table())


def test_a_model_without_load_weights_is_told_to_use_the_structure_check(tmp_path: Path) -> None:
    with pytest.raises(DummyWeightsError, match="has no load_weights"):
        feed_load_weights(paddle.nn.Linear(2, 2), engine_manifest(tmp_path))


def test_a_dtype_paddle_lacks_is_the_plugins_error_not_the_loaders(tmp_path: Path) -> None:
    """F4 (MXFP4) is a safetensors dtype, so the manifest takes it; Paddle has none, so the plugin cannot make the tensor:
    that is the plugin's error, naming the tensor, not something ``load_weights`` raised."""
    manifest = engine_manifest(tmp_path, lambda tensors: tensors.update({"model.norm.weight": ("F4", (32,))}))
    assert manifest.tensors["model.norm.weight"].nbytes == 16  # 4 bits an element
    with pytest.raises(DummyWeightsError) as raised:
        feed_load_weights(lazy_engine_model(), manifest)
    message = str(raised.value)
    shard = manifest.tensors["model.norm.weight"].shard
    assert message.startswith(f"checkpoint tensor 'model.norm.weight' (F4 [32] in {shard}): dtype 'F4' has no Paddle dtype")
    assert "\n" not in message and "load_weights raised" not in message
