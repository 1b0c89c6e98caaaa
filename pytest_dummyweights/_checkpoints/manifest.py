"""Manifests: what a safetensors checkpoint holds (names, dtypes, shapes, shards), read from its headers only.

A safetensors file starts with 8 bytes of little-endian header length, then that many bytes of JSON
naming every tensor with its dtype, shape and byte offsets; the tensor data follows. Reading only the
headers describes a whole checkpoint in kilobytes, so a manifest of a 700 GB model takes a second and
never touches tensor data (the files may be sparse: a header followed by a hole).

Every file is read as strictly as safetensors reads it (``safetensors_header``, ``strict_files``): a header
``safe_open`` refuses, an index whose ``weight_map`` is not an object of strings, a manifest file that does not
match the shape ``Manifest.to_json`` writes (each tensor's known dtype, its shape of integers 0..2**64-1, a shard
named in ``formats``), a ``*.safetensors`` that is not a regular file: each is one ``DummyWeightsError`` line
naming the file (and the tensor and the key).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_dummyweights._checkpoints.safetensors_header import (
    LARGEST,
    Malformed,
    ShardHeader,
    TensorEntry,
    check_dtype_and_shape,
    in_tensor,
    read_header,
    tensor_bytes,
)
from pytest_dummyweights._checkpoints.strict_files import read_json_file, shown
from pytest_dummyweights.errors import DummyWeightsError

FORMAT_VERSION = 1
MANIFEST_KIND = "pytest-dummyweights manifest"
INDEX_NAME = "model.safetensors.index.json"
HF_FORMATS = ("pt",)  # a ``format`` metadata of ``pt``: Hugging Face layout; ``np``/``paddle``: Paddle layout
NOT_AN_INDEX = 'a safetensors index (JSON with a "weight_map")'
FIX_THE_INDEX = "fix or delete it"
REGENERATE = "regenerate it with `python -m pytest_dummyweights manifest CHECKPOINT -o FILE`"


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
    def from_json(cls, data: Any, where: str) -> Manifest:
        """A manifest file's JSON, checked against what ``to_json`` writes."""
        if not isinstance(data, Mapping) or data.get("kind") != MANIFEST_KIND:
            raise DummyWeightsError(
                f'{where}: not a pytest-dummyweights manifest (no "kind": "{MANIFEST_KIND}"); '
                "write one with `python -m pytest_dummyweights manifest CHECKPOINT -o FILE`"
            )
        if data.get("format_version") != FORMAT_VERSION:
            raise DummyWeightsError(
                f"{where}: manifest format version {data.get('format_version')!r}, this pytest-dummyweights reads version "
                f"{FORMAT_VERSION}; {REGENERATE}"
            )
        try:
            return cls(**manifest_fields(data))
        except Malformed as problem:
            raise DummyWeightsError(f"{where}: {problem}; {REGENERATE}") from None

    def to_text(self) -> str:
        """The JSON, one tensor a line: small, and readable in a diff."""
        data = self.to_json()
        tensors = data.pop("tensors")
        lines = [f" {json.dumps(key)}: {json.dumps(value)}," for key, value in data.items()]
        entries = [f"  {json.dumps(name)}: {json.dumps(entry)}" for name, entry in tensors.items()]
        return "\n".join(["{", *lines, ' "tensors": {', ",\n".join(entries), " }", "}", ""])

    def write(self, path: str | os.PathLike) -> None:
        try:
            Path(path).write_text(self.to_text(), encoding="utf-8")
        except OSError as error:
            raise DummyWeightsError(
                f"manifest file {path}: cannot be written ({error.strerror}); give a file path in an existing directory"
            ) from None


def manifest_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """``Manifest``'s fields from its JSON, each of the type ``to_json`` writes; ``Malformed`` names the first that is not."""
    formats = required(data, "formats", dict, "an object of strings")
    if not all(type(value) is str for value in formats.values()):
        raise Malformed(f'"formats" is {shown(formats)}, not an object of strings')
    problems = data.get("index_problems", [])
    if not (type(problems) is list and all(type(problem) is str for problem in problems)):
        raise Malformed(f'"index_problems" is {shown(problems)}, not a list of strings')
    total = required(data, "total_bytes", int, "an integer 0..2**64-1")
    if not 0 <= total <= LARGEST:
        raise Malformed(f'"total_bytes" is {total}, not an integer 0..2**64-1')
    tensors = {
        name: in_tensor(name, manifest_entry, entry, formats) for name, entry in required(data, "tensors", dict, "an object").items()
    }
    config = data.get("config")
    if config is not None and type(config) is not dict:
        raise Malformed(f'"config" is {shown(config)}, not an object (the checkpoint\'s config.json)')
    return {
        "config": config,
        "tensors": tensors,
        "formats": formats,
        "source": required(data, "source", str, "a string"),
        "total_bytes": total,
        "index_problems": problems,
    }


def required(data: Mapping[str, Any], key: str, kind: type, described: str) -> Any:
    if key not in data:
        raise Malformed(f"no {shown(key)}")
    if type(data[key]) is not kind:
        raise Malformed(f"{shown(key)} is {shown(data[key])}, not {described}")
    return data[key]


def manifest_entry(entry: Any, formats: Mapping[str, str]) -> TensorEntry:
    if type(entry) is not dict:
        raise Malformed(f"the entry is {shown(entry)}, not an object with dtype, shape and shard")
    missing = [key for key in ("dtype", "shape", "shard") if key not in entry]
    if missing:
        raise Malformed(f"no {shown(missing[0])}")
    dtype, shape, shard = entry["dtype"], entry["shape"], entry["shard"]
    check_dtype_and_shape(dtype, shape)
    tensor_bytes(dtype, shape)
    if type(shard) is not str or shard not in formats:
        raise Malformed(f'shard {shown(shard)} is not one of the files in "formats"')
    return TensorEntry(dtype, tuple(shape), shard)


def read_index(directory: Path) -> dict[str, str] | None:
    """The index's ``weight_map`` (tensor name -> shard file), or None when the directory has no index."""
    path = directory / INDEX_NAME
    if not os.path.lexists(path):
        return None
    index = read_json_file(path, NOT_AN_INDEX, FIX_THE_INDEX)
    if not (isinstance(index, dict) and "weight_map" in index):
        raise DummyWeightsError(f"{path}: not {NOT_AN_INDEX} (it is {shown(index)}); {FIX_THE_INDEX}")
    weight_map = checked_weight_map(index["weight_map"], str(path))
    present = {entry.name for entry in os.scandir(directory) if entry.is_file()}
    for name, shard in weight_map.items():
        if shard not in present:
            raise DummyWeightsError(
                f"{path}: the index maps {name!r} to shard {shard!r}, which does not exist in {directory}; "
                "the checkpoint is incomplete or the index is stale"
            )
    return weight_map


def checked_weight_map(weight_map: Any, where: str) -> dict[str, str]:
    """An index's ``weight_map``, if it is an object of tensor name -> shard file name (strings); else one line."""
    if not isinstance(weight_map, dict):
        raise DummyWeightsError(
            f'{where}: "weight_map" is {shown(weight_map)}, not an object of tensor name -> shard file; {FIX_THE_INDEX}'
        )
    for name, shard in weight_map.items():
        if type(shard) is not str:
            raise DummyWeightsError(f'{where}: "weight_map" maps {name!r} to {shown(shard)}, not to a shard file name; {FIX_THE_INDEX}')
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
    if not os.path.lexists(path):
        raise DummyWeightsError(
            f"checkpoint {path}: no such file or directory; give a directory of *.safetensors files or a manifest JSON file"
        )
    hint = "give a checkpoint directory or a file written by `python -m pytest_dummyweights manifest`"
    return Manifest.from_json(read_json_file(path, "a manifest JSON file", hint), str(path))
