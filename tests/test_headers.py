"""Checkpoint files read as strictly as safetensors reads them: a header ``safe_open`` rejects, a malformed index or
manifest file, a shard that is not a regular file, an ``-o`` that cannot be written: each is one ``DummyWeightsError``
line naming the file (and the tensor and the key), ``error:`` and exit 2 at the CLI; never a traceback, never a hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from engine_models.checkpoints import raw_shard
from safetensors import SafetensorError, safe_open

from pytest_dummyweights._checkpoints.manifest import FORMAT_VERSION, INDEX_NAME, MANIFEST_KIND, load_manifest
from pytest_dummyweights._checkpoints.safetensors_header import NOT_A_SHARD
from pytest_dummyweights._checkpoints.sparse import write_sparse_checkpoint, write_sparse_shard
from pytest_dummyweights.cli import main
from pytest_dummyweights.errors import DummyWeightsError


def entry(dtype: object = "F32", shape: object = (1,), offsets: object = (0, 4)) -> dict:
    return {
        "dtype": dtype,
        "shape": list(shape) if isinstance(shape, tuple) else shape,
        "data_offsets": list(offsets) if isinstance(offsets, tuple) else offsets,
    }


def header(**tensors: object) -> str:
    return json.dumps(tensors)


HEADERS = {  # case: (header, bytes of data after it, what the line says)
    "negative offset": (header(w=entry(offsets=(-1, 3))), 4, "tensor 'w': data_offsets [-1, 3] is not [begin, end]"),
    "overlapping offsets": (
        header(a=entry(shape=(2,), offsets=(0, 8)), b=entry(offsets=(4, 8))),
        8,
        "tensor 'b': data_offsets [4, 8] overlap the tensor before",
    ),
    "offsets leave a gap": (header(w=entry(offsets=(4, 8))), 8, "tensor 'w': data_offsets [4, 8] leave bytes 0..4 unused"),
    "offsets disagree with shape x dtype": (
        header(w=entry(shape=(2,))),
        4,
        "tensor 'w': data_offsets [0, 4] span 4 bytes, shape [2] of F32 is 8",
    ),
    "negative dim": (header(w=entry(shape=(-1,))), 4, "tensor 'w': shape [-1] is not a list of integers 0..2**64-1"),
    "enormous dims": (
        header(w=entry(shape=(2**62, 2**62), offsets=(0, 0))),
        0,
        "tensor 'w': shape [4611686018427387904, 4611686018427387904]",
    ),
    "unknown dtype": (header(w=entry(dtype="F5")), 4, "tensor 'w': dtype \"F5\" is not a safetensors dtype"),
    "string offsets": (header(w=entry(offsets=["0", "4"])), 4, 'tensor \'w\': data_offsets ["0", "4"] is not [begin, end]'),
    "no shape": (header(w={"dtype": "F32", "data_offsets": [0, 4]}), 4, "tensor 'w': no \"shape\""),
    "a key twice": (
        '{"w": {"dtype": "F32", "dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}',
        4,
        "tensor 'w': key \"dtype\" appears twice",
    ),
    "metadata a list": (header(__metadata__=[], w=entry()), 4, '"__metadata__" is [], not an object of strings'),
    "metadata value a number": (header(__metadata__={"format": 1}), 0, '"__metadata__" is {"format": 1}, not an object of strings'),
    "NaN": (header(w={**entry(), "note": float("nan")}), 4, "the header is not JSON safetensors reads (NaN is not JSON)"),
    "stray bytes after the data": (
        header(w=entry()),
        5,
        "the header describes 4 bytes of tensor data, the file holds 5; the data is followed by stray bytes",
    ),
}


def one_line(given: Path, named: Path, says: str, capsys: pytest.CaptureFixture) -> None:
    """``load_manifest(given)`` raises one line naming ``named`` once and saying ``says``; the CLI prints it, exit 2."""
    with pytest.raises(DummyWeightsError) as raised:
        load_manifest(given)
    message = str(raised.value)
    assert "\n" not in message and message.count(str(named)) == 1 and says in message, message
    assert main(["manifest", str(given)]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"


@pytest.mark.parametrize("case", HEADERS)
def test_a_header_safe_open_rejects_is_one_line_naming_the_file_tensor_and_key(tmp_path: Path, case: str, capsys) -> None:
    text, data, says = HEADERS[case]
    shard = raw_shard(tmp_path / "ckpt" / "model.safetensors", text, data)
    with pytest.raises(SafetensorError), safe_open(str(shard), framework="np"):  # safetensors itself rejects the file
        pass
    one_line(shard.parent, shard, says, capsys)


def test_a_header_length_over_the_safetensors_limit(tmp_path: Path, capsys) -> None:
    """safetensors' limit is 100,000,000 bytes, not 100 MiB: one byte over it is refused before anything is read."""
    shard = raw_shard(tmp_path / "ckpt" / "model.safetensors", b"")
    with open(shard, "r+b") as file:
        file.write((100_000_001).to_bytes(8, "little"))
        file.truncate(8 + 100_000_001)  # a hole: nothing is written
    with pytest.raises(SafetensorError, match="header too large"), safe_open(str(shard), framework="np"):
        pass
    one_line(shard.parent, shard, "header length 100,000,001 bytes is over the safetensors limit of 100,000,000", capsys)


def one_shard(tmp_path: Path) -> Path:
    directory = tmp_path / "ckpt"
    directory.mkdir()
    write_sparse_shard(directory / "a.safetensors", {"a": ("F32", (2,))}, {"format": "np"})
    return directory


def sharded(tmp_path: Path) -> Path:
    directory = tmp_path / "ckpt"
    write_sparse_checkpoint(directory, {"a": ("F32", (2,)), "b": ("F32", (2,))}, shards=2, metadata={"format": "np"})
    return directory


def index_of(text: str) -> Callable[[Path], tuple[Path, Path]]:
    def make(tmp_path: Path) -> tuple[Path, Path]:
        directory = sharded(tmp_path)
        (directory / INDEX_NAME).write_text(text)
        return directory, directory / INDEX_NAME

    return make


def shard_that_is(kind: str) -> Callable[[Path], tuple[Path, Path]]:
    def make(tmp_path: Path) -> tuple[Path, Path]:
        directory = one_shard(tmp_path)
        odd = directory / "b.safetensors"
        if kind == "a directory":
            odd.mkdir()
        else:
            odd.symlink_to(directory / "gone.safetensors")
        return directory, odd

    return make


def manifest_file(**changes: object) -> Callable[[Path], tuple[Path, Path]]:
    def make(tmp_path: Path) -> tuple[Path, Path]:
        data = {
            "kind": MANIFEST_KIND,
            "format_version": FORMAT_VERSION,
            "source": "x",
            "total_bytes": 8,
            "formats": {"a.safetensors": "np"},
            "index_problems": [],
            "tensors": {"w": {"dtype": "F32", "shape": [2], "shard": "a.safetensors"}},
        }
        for key, value in changes.items():
            if key == "w":
                data["tensors"] = {"w": value}
            elif value is None:
                del data[key]
            else:
                data[key] = value
        path = tmp_path / "m.json"
        path.write_text(json.dumps(data))
        return path, path

    return make


FILES = {  # case: (what makes it, what the line says)
    "weight_map a list": (index_of('{"weight_map": []}'), '"weight_map" is [], not an object of tensor name -> shard file'),
    "weight_map value a list": (index_of('{"weight_map": {"a": ["x"]}}'), """"weight_map" maps 'a' to ["x"], not to a shard file name"""),
    "index nested 100,000 deep": (index_of("[" * 100_000 + "]" * 100_000), "nested deeper than 127"),
    "shard a directory": (shard_that_is("a directory"), "is a directory, not a file"),
    "shard a dangling symlink": (shard_that_is("a dangling symlink"), "is a symlink to a missing file"),
    "manifest without tensors": (manifest_file(tensors=None), 'no "tensors"'),
    "manifest entry without dtype": (manifest_file(w={"shape": [2], "shard": "a.safetensors"}), "tensor 'w': no \"dtype\""),
    "manifest shape a string": (
        manifest_file(w={"dtype": "F32", "shape": "2", "shard": "a.safetensors"}),
        "tensor 'w': shape \"2\" is not a list",
    ),
    "manifest dtype unknown": (manifest_file(w={"dtype": "F5", "shape": [2], "shard": "a.safetensors"}), "tensor 'w': dtype \"F5\""),
    "manifest shard unknown": (
        manifest_file(w={"dtype": "F32", "shape": [2], "shard": "b.safetensors"}),
        "tensor 'w': shard \"b.safetensors\"",
    ),
    "manifest formats a list": (manifest_file(formats=[]), '"formats" is [], not an object of strings'),
    "manifest total_bytes a string": (manifest_file(total_bytes="8"), '"total_bytes" is "8", not an integer'),
}


@pytest.mark.parametrize("case", FILES)
def test_a_malformed_index_shard_or_manifest_file_is_one_line(tmp_path: Path, case: str, capsys) -> None:
    make, says = FILES[case]
    given, named = make(tmp_path)
    one_line(given, named, says, capsys)


def test_a_fifo_among_the_shards_is_an_error_not_a_hang(tmp_path: Path) -> None:
    directory = one_shard(tmp_path)
    os.mkfifo(directory / "b.safetensors")
    command = [sys.executable, "-m", "pytest_dummyweights", "manifest", str(directory)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)  # before the fix: blocked forever on the FIFO
    assert done.returncode == 2
    assert done.stderr == f"error: {directory / 'b.safetensors'}: is a FIFO, not a file; {NOT_A_SHARD}\n"


@pytest.mark.parametrize("where", ["missing directory", "a directory"])
def test_manifest_output_that_cannot_be_written_is_one_line(tmp_path: Path, where: str, capsys) -> None:
    directory = sharded(tmp_path)
    output = tmp_path / "nowhere" / "m.json" if where == "missing directory" else directory
    assert main(["manifest", str(directory), "-o", str(output)]) == 2
    out, err = capsys.readouterr()
    assert not out and err.count("\n") == 1 and err.startswith(f"error: manifest file {output}: cannot be written (")
    assert err.endswith("); give a file path in an existing directory\n")
