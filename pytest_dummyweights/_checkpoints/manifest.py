"""Manifests: what a safetensors checkpoint holds (names, dtypes, shapes, shards), read from its headers only.

A safetensors file starts with 8 bytes of little-endian header length, then that many bytes of JSON
naming every tensor with its dtype, shape and byte offsets; the tensor data follows. Reading only the
headers describes a whole checkpoint in kilobytes, so a manifest of a 700 GB model takes a second and
never touches tensor data (the files may be sparse: a header followed by a hole).
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_dummyweights.errors import DummyWeightsError

FORMAT_VERSION = 1
MANIFEST_KIND = "pytest-dummyweights manifest"
INDEX_NAME = "model.safetensors.index.json"
MAX_HEADER_BYTES = 100 * 2**20  # the safetensors library's own limit
HF_FORMATS = ("pt",)  # a ``format`` metadata of ``pt``: Hugging Face layout; ``np``/``paddle``: Paddle layout


@dataclasses.dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ is 3x slower, and giant checkpoints have 90k tensors
class TensorEntry:
    """One tensor of a checkpoint, as its header describes it."""

    dtype: str  # safetensors dtype name: F32, BF16, F8_E4M3, I64, ...
    shape: tuple[int, ...]
    shard: str  # file name inside the checkpoint directory

    @property
    def nbytes(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count * DTYPE_BYTES.get(self.dtype, 0)


DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}


@dataclasses.dataclass
class Manifest:
    """A checkpoint's tensors and files, without their data; round-trips through a small JSON file."""

    tensors: dict[str, TensorEntry]
    formats: dict[str, str]  # shard file name -> its ``format`` metadata ("" when absent)
    source: str  # the checkpoint directory, or hub repo, it was read from
    total_bytes: int = 0
    index_problems: list[str] = dataclasses.field(default_factory=list)  # a stale index, as readable lines
    config: dict[str, Any] | None = None  # the checkpoint's config.json, when the manifest was written with it (CLI)

    @property
    def layout(self) -> str:
        """``"hf"`` when the files say Hugging Face layout (``format: pt``), else ``"paddle"``."""
        return "hf" if self.formats and all(value in HF_FORMATS for value in self.formats.values()) else "paddle"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": MANIFEST_KIND,
            "format_version": FORMAT_VERSION,
            "source": self.source,
            "total_bytes": self.total_bytes,
            "formats": dict(sorted(self.formats.items())),
            "index_problems": list(self.index_problems),
            **({"config": self.config} if self.config is not None else {}),
            "tensors": {
                name: {"dtype": entry.dtype, "shape": list(entry.shape), "shard": entry.shard}
                for name, entry in sorted(self.tensors.items())
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> Manifest:
        if not isinstance(data, Mapping) or data.get("kind") != MANIFEST_KIND:
            raise DummyWeightsError(
                f'{where}: not a pytest-dummyweights manifest (no "kind": "{MANIFEST_KIND}"); '
                "write one with `python -m pytest_dummyweights manifest CHECKPOINT -o FILE`"
            )
        if data.get("format_version") != FORMAT_VERSION:
            raise DummyWeightsError(
                f"{where}: manifest format version {data.get('format_version')!r}, this pytest-dummyweights reads version "
                f"{FORMAT_VERSION}; regenerate it with `python -m pytest_dummyweights manifest CHECKPOINT -o FILE`"
            )
        tensors = {name: TensorEntry(entry["dtype"], tuple(entry["shape"]), entry["shard"]) for name, entry in data["tensors"].items()}
        problems = list(data.get("index_problems", []))
        return cls(tensors, dict(data["formats"]), data["source"], data["total_bytes"], problems, data.get("config"))

    def to_text(self) -> str:
        """The JSON, one tensor a line: small, and readable in a diff."""
        data = self.to_json()
        tensors = data.pop("tensors")
        lines = [f" {json.dumps(key)}: {json.dumps(value)}," for key, value in data.items()]
        entries = [f"  {json.dumps(name)}: {json.dumps(entry)}" for name, entry in tensors.items()]
        return "\n".join(["{", *lines, ' "tensors": {', ",\n".join(entries), " }", "}", ""])

    def write(self, path: str | os.PathLike) -> None:
        Path(path).write_text(self.to_text(), encoding="utf-8")


@dataclasses.dataclass(frozen=True)
class ShardHeader:
    """One file's header: its tensors and its ``__metadata__``."""

    tensors: dict[str, TensorEntry]
    metadata: dict[str, str]
    data_bytes: int


def read_header(path: Path) -> ShardHeader:
    """Read one safetensors file's header: 8 + N bytes, never the tensor data."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        prefix = file.read(8)
        if len(prefix) < 8:
            raise DummyWeightsError(
                f"{path}: {size} bytes, too short for a safetensors header (8 bytes of length, then JSON); "
                "the file is truncated or not safetensors"
            )
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES:
            raise DummyWeightsError(
                f"{path}: header length {length:,} bytes is over the safetensors limit of {MAX_HEADER_BYTES:,}; "
                "the file is corrupt or not safetensors"
            )
        if length > size - 8:
            raise DummyWeightsError(
                f"{path}: header length {length:,} bytes runs past the file's end ({size:,} bytes); "
                "the file is truncated or not safetensors"
            )
        raw = file.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DummyWeightsError(f"{path}: the safetensors header is not JSON ({error}); the file is corrupt or not safetensors") from None
    if not isinstance(header, dict):
        raise DummyWeightsError(f"{path}: the safetensors header is JSON but not an object; the file is corrupt or not safetensors")
    metadata = header.pop("__metadata__", None) or {}
    try:
        shard = path.name
        tensors = {name: TensorEntry(info["dtype"], tuple(info["shape"]), shard) for name, info in header.items()}
        data_bytes = max((info["data_offsets"][1] for info in header.values()), default=0)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise DummyWeightsError(
            f"{path}: a tensor entry in the safetensors header lacks dtype, shape or data_offsets ({error!r}); the file is corrupt"
        ) from None
    if 8 + length + data_bytes > size:
        raise DummyWeightsError(
            f"{path}: the header describes {data_bytes:,} bytes of tensor data, the file holds {size - 8 - length:,}; "
            "the file is truncated (an interrupted download?)"
        )
    return ShardHeader(tensors, {str(key): str(value) for key, value in metadata.items()}, data_bytes)


def read_index(directory: Path) -> dict[str, str] | None:
    """The index's ``weight_map`` (tensor name -> shard file), or None when the directory has no index."""
    path = directory / INDEX_NAME
    if not path.is_file():
        return None
    try:
        weight_map = json.loads(path.read_text(encoding="utf-8"))["weight_map"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise DummyWeightsError(f'{path}: not a safetensors index (JSON with a "weight_map") ({error!r}); fix or delete it') from None
    present = {entry.name for entry in os.scandir(directory) if entry.is_file()}
    for name, shard in weight_map.items():
        if shard not in present:
            raise DummyWeightsError(
                f"{path}: the index maps {name!r} to shard {shard!r}, which does not exist in {directory}; "
                "the checkpoint is incomplete or the index is stale"
            )
    return dict(weight_map)


def index_problems(weight_map: Mapping[str, str], tensors: Mapping[str, TensorEntry]) -> list[str]:
    """Where the index disagrees with the headers: names only one side has, or in another shard."""
    problems = [f"index names {name!r} in {shard!r}, no header has it" for name, shard in weight_map.items() if name not in tensors]
    problems += [
        f"header of {entry.shard!r} has {name!r}, the index does not name it" for name, entry in tensors.items() if name not in weight_map
    ]
    problems += [
        f"index puts {name!r} in {weight_map[name]!r}, its header is in {entry.shard!r}"
        for name, entry in tensors.items()
        if name in weight_map and weight_map[name] != entry.shard
    ]
    return sorted(problems)


def read_manifest(directory: str | os.PathLike) -> Manifest:
    """A checkpoint directory's manifest, from its safetensors headers (and its index, checked against them)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DummyWeightsError(
            f"checkpoint {directory}: no such directory; give a directory of *.safetensors files or a manifest JSON file"
        )
    weight_map = read_index(directory)
    shards = sorted(directory.glob("*.safetensors"))
    if not shards:
        raise DummyWeightsError(
            f"checkpoint {directory}: the directory has no *.safetensors files; give the directory that holds the model's weights"
        )
    return manifest_of_headers({path.name: read_header(path) for path in shards}, str(directory), weight_map)


def manifest_of_headers(headers: Mapping[str, ShardHeader], source: str, weight_map: Mapping[str, str] | None) -> Manifest:
    """Merge per-file headers into one manifest; a tensor in two files is an error."""
    tensors: dict[str, TensorEntry] = {}
    for shard, header in headers.items():
        for name, entry in header.tensors.items():
            if name in tensors:
                raise DummyWeightsError(
                    f"checkpoint {source}: tensor {name!r} is in both {tensors[name].shard!r} and {shard!r}; remove the stale file"
                )
            tensors[name] = entry
    formats = {shard: header.metadata.get("format", "") for shard, header in headers.items()}
    total = sum(header.data_bytes for header in headers.values())
    problems = index_problems(weight_map, tensors) if weight_map is not None else []
    return Manifest(tensors, formats, source, total, problems)


def load_manifest(path: str | os.PathLike) -> Manifest:
    """A checkpoint directory (its headers are read) or a manifest JSON file written by :meth:`Manifest.write`."""
    path = Path(path)
    if path.is_dir():
        return read_manifest(path)
    if not path.exists():
        raise DummyWeightsError(
            f"checkpoint {path}: no such file or directory; give a directory of *.safetensors files or a manifest JSON file"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DummyWeightsError(
            f"{path}: not a manifest JSON file ({error}); "
            "give a checkpoint directory or a file written by `python -m pytest_dummyweights manifest`"
        ) from None
    return Manifest.from_json(data, str(path))
