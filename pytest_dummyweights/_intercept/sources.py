"""Where an intercepted load finds its checkpoint's config, and what the model is checked against.

- A local directory: its ``config.json`` (or PaddleFormers' legacy ``model_config.json``); its safetensors files,
  when it holds any, are what the structure check compares the model with.
- Any other name is a hub name: the config is looked up in the local Hugging Face cache
  (``huggingface_hub.try_to_load_from_cache``; the cached safetensors, when all are there, are checked against),
  then in the run's manifest directory (``OWNER--NAME.json``, written by ``manifest --hub``, which carries the
  config and the headers).

Nothing is downloaded and nothing falls back to real loading: a directory without a config, or a hub name found
nowhere, is one error line saying what was looked for and how to provide it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from pytest_dummyweights._building.config import read_raw_config
from pytest_dummyweights._checkpoints.manifest import INDEX_NAME, Manifest, load_manifest, read_index
from pytest_dummyweights.errors import DummyWeightsError

CONFIG_NAMES = ("config.json", "model_config.json")  # PaddleFormers reads the legacy name too


@dataclasses.dataclass(frozen=True)
class Source:
    """A checkpoint name, located: its config, and the checkpoint (a safetensors directory or a manifest file) to check against."""

    name: str  # as the caller wrote it
    config_file: Path | None  # None: the config comes from the manifest (or there is none: raw_config says so)
    manifest: Manifest | None
    checkpoint: Path | None  # None: nothing to check the model against

    def raw_config(self) -> dict[str, Any]:
        if self.config_file is not None:
            return read_raw_config(self.config_file, [])[0]
        if self.manifest is None or self.manifest.config is None:
            raise DummyWeightsError(
                f"checkpoint directory {self.name} has no config.json, and with dummy weights the model is built from it: "
                "put the checkpoint's config.json there (or pass config= a config object or a directory holding one)"
            )
        return dict(self.manifest.config)


def locate_source(name: str | os.PathLike, *, subfolder: str = "", manifest_dir: str | None = None) -> Source:
    """The config and checkpoint of what ``from_pretrained(name)`` would load."""
    path = Path(name).expanduser() / subfolder
    if path.is_dir():
        config_file = next((path / file for file in CONFIG_NAMES if (path / file).is_file()), None)
        return Source(str(path), config_file, None, path.resolve() if holds_safetensors(path) else None)
    if path.exists():
        raise DummyWeightsError(f"{path} is a file; with dummy weights, from_pretrained takes a checkpoint directory holding config.json")
    return hub_source(os.fspath(name), subfolder, manifest_dir)


def holds_safetensors(directory: Path) -> bool:
    """Whether the directory holds a whole safetensors checkpoint (every shard its index names, when it has one)."""
    if (directory / INDEX_NAME).is_file():
        try:
            read_index(directory)
        except DummyWeightsError:  # a shard is missing: a partly downloaded cache snapshot
            return False
        return True
    return any(directory.glob("*.safetensors"))


def manifest_file(manifest_dir: str, name: str) -> Path:
    return Path(manifest_dir) / f"{name.replace('/', '--')}.json"


def hub_source(name: str, subfolder: str, manifest_dir: str | None) -> Source:
    """A hub name's config from the local Hugging Face cache, else from the manifest directory."""
    cached, looked = cached_config(name, subfolder)
    manifest_path = manifest_file(manifest_dir, name) if manifest_dir else None
    manifest = load_manifest(manifest_path) if manifest_path is not None and manifest_path.is_file() else None
    if cached is not None:
        checkpoint = cached.parent if holds_safetensors(cached.parent) else manifest_path if manifest else None
        return Source(name, cached, manifest, checkpoint)
    if manifest is not None and manifest.config is not None:
        return Source(name, None, manifest, manifest_path)
    if manifest is not None:
        looked += f"; manifest {manifest_path} has no config (written before manifests carried one)"
    elif manifest_path is not None:
        looked += f"; no manifest {manifest_path}"
    else:
        looked += "; no manifest directory is set (--dummy-manifest-dir)"
    target = manifest_path or f"DIR/{manifest_file('', name).name}"
    raise DummyWeightsError(
        f"{name!r} is not a local directory and no config for it was found ({looked}): download its config.json "
        f"(huggingface-cli download {name} config.json), write a manifest (python -m pytest_dummyweights manifest --hub {name} "
        f"-o {target}), or pass a local directory holding config.json"
    )


def cached_config(name: str, subfolder: str) -> tuple[Path | None, str]:
    """The config file of a hub name in the local Hugging Face cache, and what was looked at."""
    try:
        from huggingface_hub import constants, try_to_load_from_cache
    except ImportError:
        return None, "huggingface_hub is not installed, so the Hugging Face cache was not looked at"
    for file in CONFIG_NAMES:
        try:
            found = try_to_load_from_cache(name, f"{subfolder}/{file}" if subfolder else file)
        except ValueError:  # not a valid repo id: nothing of it can be cached
            break
        if isinstance(found, str):
            return Path(found), ""
    return None, f"not in the Hugging Face cache {constants.HF_HUB_CACHE}"
