"""The structure check agrees with PaddleFormers' own ``from_pretrained`` on real and corrupted checkpoints.

``from_pretrained`` runs for real on the same files; what it found is taken from the return value of
its ``_load_pretrained_model`` (at the default log level its warning does not list unexpected keys)
and from the exception it raises on shapes and dtypes.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path

import numpy as np
import pytest
from engine_models.checkpoints import Checkpoint, corrupted_copy, qwen2vl_style_class, saved_checkpoint, shrunk_model

from pytest_dummyweights._checkpoints.manifest import load_manifest
from pytest_dummyweights._checkpoints.structure import SHOWN, check_model
from pytest_dummyweights._runtime import dtypes

TAGS = ["qwen3", "llama", "deepseek_v3_unequal"]
LAYOUTS = ["paddle", "hf"]
TARGET = "model.layers.0.mlp.down_proj.weight"  # 2-d and not square in every model: a transpose shows


def target(tag: str) -> str:
    """PaddleFormers' Llama saves its base model as ``llama.`` (in either layout)."""
    return TARGET.replace("model.", "llama.") if tag == "llama" else TARGET


@dataclasses.dataclass
class Verdict:
    """The keys ``from_pretrained`` warned about or raised on."""

    missing: set[str] = dataclasses.field(default_factory=set)
    unexpected: set[str] = dataclasses.field(default_factory=set)
    mismatched: set[str] = dataclasses.field(default_factory=set)  # shapes, from the RuntimeError
    wrong_dtype: set[str] = dataclasses.field(default_factory=set)  # from the AssertionError, by parameter name

    def named_keys(self) -> set[str]:
        return self.missing | self.unexpected | self.mismatched | self.wrong_dtype


def from_pretrained_verdict(model_class: type, directory: Path, layout: str, monkeypatch: pytest.MonkeyPatch) -> Verdict:
    loading = {}
    original = model_class._load_pretrained_model.__func__

    def recording(cls, *args, **kwargs):
        loading["model"] = kwargs["model"]
        result = original(cls, *args, **kwargs)
        loading["missing"], loading["unexpected"] = set(result[1]), set(result[2])
        return result

    with monkeypatch.context() as patch:
        patch.setattr(model_class, "_load_pretrained_model", classmethod(recording))
        try:
            model_class.from_pretrained(str(directory), convert_from_hf=layout == "hf")
        except RuntimeError as error:
            return Verdict(mismatched=set(re.findall(r"(\S+) receives a shape", str(error))))
        except AssertionError as error:  # Paddle's set_state_dict names the parameter, not the key
            key_of = {param.name: key for key, param in loading["model"].state_dict().items()}
            return Verdict(wrong_dtype={key_of[name] for name in re.findall(r"Variable \[ (\S+) \] need tensor with dtype", str(error))})
    return Verdict(missing=loading["missing"], unexpected=loading["unexpected"])


@functools.cache
def model_for(tag: str):
    return shrunk_model(tag)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    where = tmp_path_factory.mktemp("checkpoints")
    return {(tag, layout): saved_checkpoint(where, tag, layout) for tag in TAGS for layout in LAYOUTS}


@pytest.mark.paddleformers
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("tag", TAGS)
def test_saved_checkpoint_agrees(checkpoints, tag: str, layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = model_for(tag)
    report = check_model(model, load_manifest(checkpoints[tag, layout]))
    assert report.table() == [f"checkpoint {checkpoints[tag, layout]}: the model and the checkpoint agree"]
    assert from_pretrained_verdict(type(model), checkpoints[tag, layout], layout, monkeypatch).named_keys() == set()


AGREEING = ["drop", "extra", "rename", "transpose", "integer_dtype", "layer_short", "layer_extra"]


@pytest.mark.paddleformers
@pytest.mark.parametrize("corruption", AGREEING)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("tag", TAGS)
def test_check_names_what_from_pretrained_names(
    checkpoints, tmp_path: Path, tag: str, layout: str, corruption: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = corrupted_copy(checkpoints[tag, layout], tmp_path, corruption, target(tag))
    model = model_for(tag)
    report = check_model(model, load_manifest(directory))
    verdict = from_pretrained_verdict(type(model), directory, layout, monkeypatch)
    assert not report.ok and verdict.named_keys()
    assert set(report.missing) == verdict.missing
    assert set(report.unexpected) == verdict.unexpected
    assert {m.name for m in report.shape_mismatches} == verdict.mismatched
    assert {m.name for m in report.dtype_mismatches} == verdict.wrong_dtype


@pytest.mark.paddleformers
@pytest.mark.parametrize("layout", LAYOUTS)
def test_index_naming_a_tensor_no_header_holds(checkpoints, tmp_path: Path, layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``from_pretrained`` trusts the index and says nothing, leaving the weight random; the check fails."""
    directory = corrupted_copy(checkpoints["qwen3", layout], tmp_path, "stale_index_names_absent", TARGET)
    report = check_model(model_for("qwen3"), load_manifest(directory))
    assert from_pretrained_verdict(type(model_for("qwen3")), directory, layout, monkeypatch).named_keys() == set()
    assert report.missing == [TARGET] and TARGET in report.index_problems[0] and not report.ok


@pytest.mark.paddleformers
@pytest.mark.parametrize("layout", LAYOUTS)
def test_index_lacking_a_tensor_a_header_holds(checkpoints, tmp_path: Path, layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``from_pretrained`` calls the weight missing (it goes by the index); the check names the index as stale."""
    directory = corrupted_copy(checkpoints["llama", layout], tmp_path, "stale_index_lacks_present", target("llama"))
    report = check_model(model_for("llama"), load_manifest(directory))
    assert from_pretrained_verdict(type(model_for("llama")), directory, layout, monkeypatch).missing == {target("llama")}
    assert report.named_keys() == set() and [target("llama") in problem for problem in report.index_problems] == [True] and not report.ok


@pytest.mark.paddleformers
@pytest.mark.parametrize("tag", TAGS)
def test_base_model_keys_without_the_prefix(checkpoints, tmp_path: Path, tag: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint saved from the base model (no ``model.`` prefix) loads into the causal LM: the prefix rule."""
    directory = corrupted_copy(checkpoints[tag, "paddle"], tmp_path, "strip_base_prefix", target(tag))
    model = model_for(tag)
    report = check_model(model, load_manifest(directory))
    verdict = from_pretrained_verdict(type(model), directory, "paddle", monkeypatch)
    assert (set(report.missing), set(report.unexpected)) == (verdict.missing, verdict.unexpected)
    assert report.ok


@pytest.mark.paddleformers
def test_tied_head_counts_as_loaded_from_the_embedding(checkpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Qwen3-0.6B ties the head to the embedding: a checkpoint without ``lm_head.weight`` (as published) loads fully."""
    directory = corrupted_copy(checkpoints["qwen3", "hf"], tmp_path, "drop", "lm_head.weight")
    model = model_for("qwen3")
    assert check_model(model, load_manifest(directory)).ok
    assert from_pretrained_verdict(type(model), directory, "hf", monkeypatch).missing == {"lm_head.weight"}  # its warning is a false alarm
    loaded = type(model).from_pretrained(str(directory), convert_from_hf=True)
    embedding = Checkpoint(directory).shard_of("model.embed_tokens.weight")["model.embed_tokens.weight"]
    assert np.array_equal(loaded.lm_head.weight.numpy(), embedding)


@pytest.mark.paddleformers
def test_keys_the_model_ignores_by_design_are_not_reported(checkpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt_dir = corrupted_copy(checkpoints["qwen3", "paddle"], tmp_path, "extra", TARGET)
    ckpt = Checkpoint(ckpt_dir)
    ckpt.put("model.layers.0.self_attn.rotary_emb.inv_freq", np.ones(8, np.float32), next_to=TARGET)
    ckpt.write()
    model = model_for("qwen3")
    report = check_model(model, load_manifest(ckpt_dir))
    assert (
        from_pretrained_verdict(type(model), ckpt_dir, "paddle", monkeypatch).unexpected
        == set(report.unexpected)
        == {TARGET.replace(".weight", "_extra.weight")}
    )


@pytest.mark.paddleformers
def test_table_shows_the_first_entries_of_each_kind_with_counts(checkpoints, tmp_path: Path) -> None:
    directory = corrupted_copy(checkpoints["deepseek_v3_unequal", "hf"], tmp_path, "layer_short", TARGET)
    report = check_model(model_for("deepseek_v3_unequal"), load_manifest(directory))
    table = report.table()
    assert len(report.missing) > SHOWN
    assert f"  missing (the model needs it, the checkpoint lacks it): {len(report.missing)}" in table
    assert table[2 : 2 + SHOWN] == [f"    {name}" for name in report.missing[:SHOWN]]
    assert f"    ... and {len(report.missing) - SHOWN} more" in table


@pytest.mark.paddleformers
def test_vlm_key_mapping_renames_checkpoint_keys(checkpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``_checkpoint_conversion_mapping`` applies to VLM classes only, as in ``from_pretrained``."""
    directory = corrupted_copy(checkpoints["qwen3", "hf"], tmp_path, "vlm_names", TARGET)
    manifest = load_manifest(directory)
    vlm_class = qwen2vl_style_class()
    vlm_model = vlm_class(model_for("qwen3").config)
    assert check_model(vlm_model, manifest).ok
    assert from_pretrained_verdict(vlm_class, directory, "hf", monkeypatch).named_keys() == set()
    plain = check_model(model_for("qwen3"), manifest)
    verdict = from_pretrained_verdict(type(model_for("qwen3")), directory, "hf", monkeypatch)
    assert set(plain.unexpected) == verdict.unexpected != set()
    assert set(plain.missing) == verdict.missing - {"model.embed_tokens.weight"}  # tied to lm_head.weight, which is loaded


@pytest.mark.paddleformers
def test_base_model_loading_a_causal_lm_checkpoint(checkpoints, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other direction of the prefix rule: the checkpoint has ``model.``, the base model does not."""
    from engine_models import SHRINK
    from paddleformers.transformers import Qwen3Model

    from pytest_dummyweights import build_dummy_model

    config, overrides = SHRINK["qwen3"]
    base = build_dummy_model(str(config), overrides=overrides, model=Qwen3Model)
    report = check_model(base, load_manifest(checkpoints["qwen3", "paddle"]))
    verdict = from_pretrained_verdict(Qwen3Model, checkpoints["qwen3", "paddle"], "paddle", monkeypatch)
    assert (set(report.missing), set(report.unexpected)) == (verdict.missing, verdict.unexpected) == (set(), {"lm_head.weight"})


@pytest.mark.parametrize(
    ("dtype", "kind"),
    [
        ("F8_E4M3", "float8"),
        ("F8_E5M2", "float8"),
        ("BF16", "float"),
        ("F16", "float"),
        ("F32", "float"),
        ("F64", "float"),
        ("I8", "integer"),
        ("U8", "integer"),
        ("I64", "integer"),
        ("BOOL", "bool"),
        ("paddle.float8_e4m3fn", "float8"),
        ("paddle.bfloat16", "float"),
        ("paddle.int32", "integer"),
        ("paddle.bool", "bool"),
    ],
)
def test_dtype_kinds(dtype: str, kind: str) -> None:
    assert dtypes.kind(dtype) == kind
