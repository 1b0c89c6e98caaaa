"""Manifests: a checkpoint's names, dtypes, shapes and shards, from its safetensors headers only."""

from __future__ import annotations

import dataclasses
import json
import os
import struct
from pathlib import Path

import pytest
from engine_models import CONFIGS
from engine_models.checkpoints import saved_checkpoint
from safetensors import safe_open

from pytest_dummyweights import DummySpec
from pytest_dummyweights._building.construct import construct
from pytest_dummyweights._building.pipeline import plan_build
from pytest_dummyweights._checkpoints.manifest import FORMAT_VERSION, INDEX_NAME, load_manifest, read_manifest
from pytest_dummyweights._checkpoints.sparse import write_sparse_checkpoint, write_sparse_shard
from pytest_dummyweights._checkpoints.structure import check_model, expected_layout
from pytest_dummyweights.cli import main
from pytest_dummyweights.errors import DummyWeightsError

SAFETENSORS_DTYPES = {"float32": "F32", "bfloat16": "BF16"}


@pytest.mark.paddleformers
@pytest.mark.parametrize("layout", ["paddle", "hf"])
def test_manifest_matches_what_safetensors_reads(tmp_path: Path, layout: str) -> None:
    directory = saved_checkpoint(tmp_path, "qwen3", layout)
    manifest = read_manifest(directory)
    seen = {}
    for shard in sorted(directory.glob("*.safetensors")):
        with safe_open(shard, framework="np") as file:
            assert manifest.formats[shard.name] == file.metadata()["format"]
            for name in file.keys():  # noqa: SIM118  (safe_open is not iterable)
                piece = file.get_slice(name)
                seen[name] = (piece.get_dtype(), tuple(piece.get_shape()), shard.name)
    assert {name: (e.dtype, e.shape, e.shard) for name, e in manifest.tensors.items()} == seen
    assert manifest.layout == layout
    assert manifest.total_bytes == sum(p.stat().st_size for p in directory.glob("*.safetensors")) - sum(
        8 + header_length(p) for p in directory.glob("*.safetensors")
    )
    assert manifest.index_problems == []


def header_length(path: Path) -> int:
    return struct.unpack("<Q", path.read_bytes()[:8])[0]


@pytest.mark.paddleformers
def test_manifest_file_round_trips_and_the_cli_writes_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    directory = saved_checkpoint(tmp_path, "llama", "hf")
    assert main(["manifest", str(directory), "-o", str(tmp_path / "m.json")]) == 0
    assert "21 tensors in 3 files" in capsys.readouterr().out
    written = load_manifest(tmp_path / "m.json")
    assert written.config == json.loads((directory / "config.json").read_text())  # the CLI's manifest carries the config
    assert dataclasses.replace(written, config=None) == read_manifest(directory)
    assert main(["manifest", str(tmp_path / "m.json")]) == 0  # a manifest file is accepted too, and printed
    assert json.loads(capsys.readouterr().out)["format_version"] == FORMAT_VERSION


def full_size_qwen3(tmp_path: Path) -> tuple[object, Path]:
    """Full-size Qwen3-0.6B, constructed lazily (no storage), and a sparse Hugging Face checkpoint of its shapes."""
    plan = plan_build(DummySpec(str(CONFIGS / "qwen3-0.6b"), dtype="bfloat16"))
    model = construct(plan.factory, plan.loaded_config.model_config, "bfloat16")
    tensors = {name: ("BF16", spec.shape) for name, spec in expected_layout(model, "hf").tensors.items()}
    write_sparse_checkpoint(tmp_path / "ckpt", tensors, shards=2, metadata={"format": "pt"})
    return model, tmp_path / "ckpt"


def bytes_read() -> int:
    return int(next(line for line in Path("/proc/self/io").read_text().splitlines() if line.startswith("rchar:")).split()[1])


@pytest.mark.paddleformers
@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="counts bytes read through /proc/self/io (Linux)")
def test_manifest_reads_only_headers_of_a_sparse_full_size_checkpoint(tmp_path: Path) -> None:
    model, directory = full_size_qwen3(tmp_path)
    shards = list(directory.glob("*.safetensors"))
    apparent = sum(p.stat().st_size for p in shards)
    assert apparent > 1_000_000_000 and sum(p.stat().st_blocks * 512 for p in shards) < 1_000_000  # holes
    before = bytes_read()
    manifest = read_manifest(directory)
    assert bytes_read() - before < 200_000
    assert manifest.total_bytes > 1_000_000_000
    assert check_model(model, manifest).ok


def test_stale_index_is_reported_both_ways(tmp_path: Path) -> None:
    directory = tmp_path / "ckpt"
    write_sparse_checkpoint(directory, {"a": ("F32", (2, 2)), "b": ("F32", (2,))}, shards=2, metadata={"format": "np"})
    index = json.loads((directory / INDEX_NAME).read_text())
    index["weight_map"]["ghost"] = index["weight_map"].pop("b")
    (directory / INDEX_NAME).write_text(json.dumps(index))
    assert read_manifest(directory).index_problems == [
        "header of 'model-00002-of-00002.safetensors' has 'b', the index does not name it",
        "index names 'ghost' in 'model-00002-of-00002.safetensors', no header has it",
    ]


def bad_checkpoints(tmp_path: Path) -> dict[str, tuple[Path, Path, str]]:
    """Each case: (what to pass, the file the message must name, the cause it must state)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        "missing": (tmp_path / "nowhere", tmp_path / "nowhere", "no such file or directory"),
        "no safetensors": (empty, empty, "no *.safetensors files"),
    }
    for case, content, cause in [("not json", b"{nope", "not JSON"), ("length past end", b"{}", "runs past the file's end")]:
        directory = tmp_path / case.replace(" ", "_")
        directory.mkdir()
        length = len(content) if case == "not json" else 10_000
        (directory / "model.safetensors").write_bytes(struct.pack("<Q", length) + content)
        cases[case] = (directory, directory / "model.safetensors", cause)
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    write_sparse_shard(truncated / "model.safetensors", {"w": ("F32", (1000,))}, {"format": "np"})
    os.truncate(truncated / "model.safetensors", 8 + header_length(truncated / "model.safetensors") + 10)
    cases["data past end"] = (
        truncated,
        truncated / "model.safetensors",
        "the header describes 4,000 bytes of tensor data, the file holds 10",
    )
    for case, content, cause in [
        ("too short", b"\x01\x00", "too short for a safetensors header"),
        ("header a list", b"[]", "JSON but not an object"),
        ("entry without shape", json.dumps({"w": {"dtype": "F32"}}).encode(), "tensor 'w': no \"shape\""),
    ]:
        directory = tmp_path / case.replace(" ", "_")
        directory.mkdir()
        (directory / "model.safetensors").write_bytes(content if case == "too short" else struct.pack("<Q", len(content)) + content)
        cases[case] = (directory, directory / "model.safetensors", cause)
    twice = tmp_path / "twice"
    twice.mkdir()
    for shard in ("a.safetensors", "b.safetensors"):
        write_sparse_shard(twice / shard, {"w": ("F32", (2,))}, {"format": "np"})
    cases["tensor in two files"] = (twice, twice, "'w' is in both 'a.safetensors' and 'b.safetensors'")
    bad_index = tmp_path / "bad_index"
    write_sparse_checkpoint(bad_index, {"a": ("F32", (2,))}, shards=1, metadata={"format": "np"})
    (bad_index / INDEX_NAME).write_text("{")
    cases["index not JSON"] = (bad_index, bad_index / INDEX_NAME, "not a safetensors index")
    not_json, foreign = tmp_path / "notes.txt", tmp_path / "foreign.json"
    not_json.write_text("hello")
    foreign.write_text("{}")
    cases["file not JSON"] = (not_json, not_json, "not a manifest JSON file")
    cases["JSON of something else"] = (foreign, foreign, "not a pytest-dummyweights manifest")
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"kind": "pytest-dummyweights manifest", "format_version": FORMAT_VERSION + 1}))
    cases["other version"] = (old, old, f"format version {FORMAT_VERSION + 1}")
    indexed = tmp_path / "indexed"
    write_sparse_checkpoint(indexed, {"a": ("F32", (2,)), "b": ("F32", (2,))}, shards=2, metadata={"format": "np"})
    (indexed / "model-00002-of-00002.safetensors").unlink()
    cases["index names a missing shard"] = (indexed, indexed / INDEX_NAME, "'model-00002-of-00002.safetensors', which does not exist")
    return cases


def test_bad_input_is_one_line_naming_the_file_and_the_cause(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cases = bad_checkpoints(tmp_path)
    for case, (given, named, cause) in cases.items():
        with pytest.raises(DummyWeightsError) as raised:
            load_manifest(given)
        message = str(raised.value)
        assert "\n" not in message and str(named) in message and cause in message, (case, message)
        assert main(["manifest", str(given)]) == 2
        assert capsys.readouterr().err == f"error: {message}\n"
