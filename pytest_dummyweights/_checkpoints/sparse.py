"""Sparse stand-ins of checkpoints: real safetensors headers over holes, so tests and benchmarks can describe
full-size models (hundreds of GB of apparent size) in kilobytes of disk."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_dummyweights._checkpoints.manifest import INDEX_NAME, TensorEntry


def write_sparse_shard(path: str | os.PathLike, tensors: Mapping[str, tuple[str, tuple[int, ...]]], metadata: Mapping[str, str]) -> int:
    """Write a safetensors file whose header describes ``tensors`` (name -> (dtype, shape)) and whose data is a hole.

    The file has its full size, but only the header occupies disk: a stand-in for a real checkpoint
    wherever only the headers are read. Returns the file's size.
    """
    header: dict[str, Any] = {"__metadata__": dict(metadata)}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = TensorEntry(dtype, tuple(shape), "").nbytes
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned, as the safetensors library writes it
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(raw)) + raw)
        file.truncate(8 + len(raw) + offset)
    return 8 + len(raw) + offset


def write_sparse_checkpoint(
    directory: str | os.PathLike, tensors: Mapping[str, tuple[str, tuple[int, ...]]], shards: int, metadata: Mapping[str, str]
) -> None:
    """Write ``tensors`` as ``shards`` sparse files named as Hugging Face names them, plus their index."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = list(tensors)
    per_shard = -(-len(names) // shards)
    weight_map = {}
    for number in range(shards):
        shard = f"model-{number + 1:05d}-of-{shards:05d}.safetensors"
        part = names[number * per_shard : (number + 1) * per_shard]
        write_sparse_shard(directory / shard, {name: tensors[name] for name in part}, metadata)
        weight_map.update(dict.fromkeys(part, shard))
    index = {"metadata": {"total_size": sum(TensorEntry(*tensors[name], "").nbytes for name in names)}, "weight_map": weight_map}
    (directory / INDEX_NAME).write_text(json.dumps(index, indent=1), encoding="utf-8")
