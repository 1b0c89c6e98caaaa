"""Shrunk checkpoints written by PaddleFormers ``save_pretrained``, and the ways the tests corrupt them.

A corruption edits real safetensors files (``safetensors.numpy``) and keeps the index in step with
them, except where the index itself is the corruption.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from engine_models import SHRINK

INDEX = "model.safetensors.index.json"


def raw_shard(path: Path, header: str | bytes, data: int = 0) -> Path:
    """A safetensors file written byte by byte, right or wrong: 8 bytes of length, ``header`` as given, ``data`` zero bytes."""
    raw = header.encode() if isinstance(header, str) else header
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(data))
    return path


def edit_header(path: Path, edit: Callable[[dict], None]) -> None:
    """Rewrite a safetensors file's header through ``edit`` (on its JSON), keeping its tensor data as it is."""
    content = path.read_bytes()
    length = struct.unpack("<Q", content[:8])[0]
    header = json.loads(content[8 : 8 + length])
    edit(header)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + content[8 + length :])


def shrunk_model(tag: str, seed: int = 0):
    from pytest_dummyweights import build_dummy_model

    config, overrides = SHRINK[tag]
    return build_dummy_model(str(config), overrides=overrides, seed=seed)


def saved_checkpoint(where: Path, tag: str, layout: str, seed: int = 0) -> Path:
    """``save_pretrained`` of the shrunk model in Paddle (``"paddle"``) or Hugging Face (``"hf"``) layout, in several shards;
    ``seed``: of its values (a seed other than a dummy build's tells real weights from dummy ones)."""
    directory = where / f"{tag}-{layout}"
    shrunk_model(tag, seed).save_pretrained(str(directory), save_to_hf=layout == "hf", safe_serialization=True, max_shard_size="200KB")
    return directory


class Checkpoint:
    """A checkpoint directory's tensors, per shard, and its index, to edit and write back."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.index = json.loads((directory / INDEX).read_text())
        self.shards: dict[str, dict[str, np.ndarray]] = {}
        self.metadata: dict[str, dict[str, str]] = {}
        for shard in sorted(set(self.index["weight_map"].values())):
            with safe_open(directory / shard, framework="np") as file:
                self.metadata[shard] = file.metadata()
            self.shards[shard] = load_file(directory / shard)

    def names(self) -> list[str]:
        return sorted(name for tensors in self.shards.values() for name in tensors)

    def shard_of(self, name: str) -> dict[str, np.ndarray]:
        return next(tensors for tensors in self.shards.values() if name in tensors)

    def pop(self, name: str, *, index_too: bool = True) -> np.ndarray:
        if index_too:
            del self.index["weight_map"][name]
        return self.shard_of(name).pop(name)

    def put(self, name: str, value: np.ndarray, *, next_to: str) -> None:
        """Add a tensor in the shard that holds ``next_to``."""
        self.shard_of(next_to)[name] = np.ascontiguousarray(value)
        self.index["weight_map"][name] = self.index["weight_map"][next_to]

    def write(self) -> None:
        for shard, tensors in self.shards.items():
            save_file(tensors, str(self.directory / shard), metadata=self.metadata[shard])
        (self.directory / INDEX).write_text(json.dumps(self.index))


def drop(ckpt: Checkpoint, name: str) -> None:
    ckpt.pop(name)


def extra(ckpt: Checkpoint, name: str) -> None:
    ckpt.put(name.replace(".weight", "_extra.weight"), ckpt.shard_of(name)[name], next_to=name)


def rename(ckpt: Checkpoint, name: str) -> None:
    ckpt.put(name.replace("_proj.weight", "_projection.weight"), ckpt.pop(name), next_to=next(n for n in ckpt.names() if n != name))


def transpose(ckpt: Checkpoint, name: str) -> None:
    tensors = ckpt.shard_of(name)
    tensors[name] = np.ascontiguousarray(tensors[name].T)


def integer_dtype(ckpt: Checkpoint, name: str) -> None:
    tensors = ckpt.shard_of(name)
    tensors[name] = tensors[name].astype(np.int32)


def layers_of(name: str) -> str:
    """``model.layers.`` (or ``llama.layers.``) for a name inside a layer."""
    return name[: name.index(".layers.") + len(".layers.")]


def layer_short(ckpt: Checkpoint, name: str) -> None:
    """The checkpoint lacks the model's last layer (layer 1 of 2)."""
    for other in ckpt.names():
        if other.startswith(f"{layers_of(name)}1."):
            ckpt.pop(other)


def layer_extra(ckpt: Checkpoint, name: str) -> None:
    """The checkpoint has a layer the model does not (a copy of layer 1 as layer 2)."""
    last, extra_layer = f"{layers_of(name)}1.", f"{layers_of(name)}2."
    for other in ckpt.names():
        if other.startswith(last):
            ckpt.put(other.replace(last, extra_layer), ckpt.shard_of(other)[other], next_to=other)


def strip_base_prefix(ckpt: Checkpoint, name: str) -> None:
    """Keys as a base model saves them: without the base-model prefix (``model.``/``llama.``)."""
    prefix = name.split(".")[0] + "."
    for other in ckpt.names():
        if other.startswith(prefix):
            ckpt.put(other[len(prefix) :], ckpt.pop(other), next_to=next(n for n in ckpt.names() if n != other))


def stale_index_names_absent(ckpt: Checkpoint, name: str) -> None:
    """The index still names a tensor no header holds."""
    ckpt.pop(name, index_too=False)


def stale_index_lacks_present(ckpt: Checkpoint, name: str) -> None:
    """A header holds a tensor the index does not name."""
    del ckpt.index["weight_map"][name]


CORRUPTIONS: dict[str, Callable[[Checkpoint, str], None]] = {
    fn.__name__: fn
    for fn in (
        drop,
        extra,
        rename,
        transpose,
        integer_dtype,
        layer_short,
        layer_extra,
        strip_base_prefix,
        stale_index_names_absent,
        stale_index_lacks_present,
    )
}


def corrupted_copy(source: Path, where: Path, corruption: str, name: str) -> Path:
    directory = where / f"{source.name}-{corruption}"
    shutil.copytree(source, directory)
    ckpt = Checkpoint(directory)
    CORRUPTIONS[corruption](ckpt, name)
    ckpt.write()
    return directory


def vlm_names(ckpt: Checkpoint, name: str) -> None:
    """Keys as a VLM release names its language model: ``model.language_model.`` for ``model.``."""
    for other in ckpt.names():
        if other.startswith("model."):
            ckpt.put("model.language_model." + other[len("model.") :], ckpt.pop(other), next_to=next(n for n in ckpt.names() if n != other))


CORRUPTIONS[vlm_names.__name__] = vlm_names


def qwen2vl_style_class():
    """Qwen3 under a class name ``from_pretrained`` treats as a VLM, with a key mapping back from ``model.language_model.``."""
    from paddleformers.transformers import Qwen3ForCausalLM

    return type(
        "Qwen2VLStyleQwen3ForCausalLM", (Qwen3ForCausalLM,), {"_checkpoint_conversion_mapping": {r"^model\.language_model\.": "model."}}
    )
