"""Manifests of checkpoints on the Hugging Face Hub, from their safetensors headers (HTTP range requests only).

Uses ``huggingface_hub``'s safetensors-metadata API, which reads each file's first bytes; the
endpoint is ``huggingface_hub``'s (``HF_ENDPOINT``), so a mirror or a local server can stand in.
That API parses the headers without checking them: each is checked here by ``safetensors_header``'s
rules (all but the file's length, which a range request does not give), and the index's ``weight_map``
must map names to file names, as on disk.
The repository's ``config.json`` (a few kilobytes) comes along into the manifest, and into the local Hugging
Face cache: with it, ``--dummy-weights`` builds the model a hub name loads without the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_dummyweights._checkpoints.manifest import INDEX_NAME, Manifest, checked_weight_map, manifest_of_headers
from pytest_dummyweights._checkpoints.safetensors_header import CORRUPT, Malformed, header_of
from pytest_dummyweights._checkpoints.strict_files import JsonObject
from pytest_dummyweights.errors import DummyWeightsError, reraised_as

CHECK_REFERENCE = "check the repo id, the revision and HF_ENDPOINT"


def split_reference(reference: str) -> tuple[str, str | None]:
    """``REPO_ID[@REVISION]`` -> (repo id, revision or None)."""
    repo_id, _, revision = reference.partition("@")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise DummyWeightsError(f"--hub {reference!r}: expected OWNER/NAME[@REVISION], e.g. deepseek-ai/DeepSeek-V3@main")
    return repo_id, revision or None


def read_hub_manifest(reference: str) -> Manifest:
    """The manifest of a Hub repository's safetensors files, read without downloading their data."""
    repo_id, revision = split_reference(reference)
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise DummyWeightsError(
            f"--hub {reference}: needs huggingface_hub; install it with `pip install 'pytest-dummyweights[hub]'`"
        ) from None
    with reraised_as(DummyWeightsError, f"--hub {reference}: reading its safetensors headers failed", CHECK_REFERENCE):
        found = HfApi().get_safetensors_metadata(repo_id, revision=revision)  # network, missing repo, bad header: one line
    with reraised_as(DummyWeightsError, f"--hub {reference}: reading its config.json failed", CHECK_REFERENCE):
        config = read_hub_config(repo_id, revision)
    headers = {}
    for file, metadata in found.files_metadata.items():
        try:
            headers[file] = header_of(header_pairs(metadata), file)
        except Malformed as problem:
            raise DummyWeightsError(f"--hub {reference}: {file}: {problem}; {CORRUPT}") from None
    weight_map = checked_weight_map(found.weight_map, f"--hub {reference}: {INDEX_NAME}") if found.sharded else None
    manifest = manifest_of_headers(headers, f"hub:{reference}", weight_map)
    manifest.config = config
    return manifest


def header_pairs(metadata: Any) -> list[tuple[str, Any]]:
    """A file's header as ``huggingface_hub`` parsed it, back in the (key, value) pairs ``header_of`` checks."""
    extra = metadata.metadata
    pairs = [("__metadata__", JsonObject(list(extra.items())) if isinstance(extra, dict) else extra)]
    for name, info in metadata.tensors.items():
        offsets = list(info.data_offsets) if isinstance(info.data_offsets, (list, tuple)) else info.data_offsets
        pairs.append((name, JsonObject([("dtype", info.dtype), ("shape", info.shape), ("data_offsets", offsets)])))
    return pairs


def read_hub_config(repo_id: str, revision: str | None) -> dict[str, Any] | None:
    """The repository's ``config.json`` (downloaded into the local Hugging Face cache), or None when it has none."""
    # lazy: huggingface_hub is optional (read_hub_manifest checks it first) and slow to import
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        path = hf_hub_download(repo_id, "config.json", revision=revision)
    except EntryNotFoundError:
        return None
    return json.loads(Path(path).read_text(encoding="utf-8"))
