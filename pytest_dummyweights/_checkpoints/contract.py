"""The checkpoint contract inside a build: what a spec's ``checkpoint=`` changes between construction and init.

- A model with ``load_weights`` is loaded through it (checkpoint-shaped dummy loading, ``loader_feed``):
  each checkpoint tensor, dummy or (``real_weights``) real, goes through the engine's own loader;
  the parameters it wrote are not filled again.
- Any other model is checked against the manifest (the ``pytest_dummyweights_checkpoint_layout``
  hook, else ``checkpoint.check_model``); with ``real_weights`` it is then loaded by ``from_pretrained``.
- ``checkpoint_check`` says what a disagreement does: ``error`` fails the build with the report's
  table, ``warn`` warns with it, ``off`` skips the check.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import paddle

from pytest_dummyweights._checkpoints.loader_feed import dummy_tensor, feed_load_weights, has_load_weights
from pytest_dummyweights._checkpoints.manifest import Manifest, TensorEntry, load_manifest
from pytest_dummyweights._checkpoints.structure import CheckReport, Layout, check_model, compare
from pytest_dummyweights._runtime.paths import locate
from pytest_dummyweights.errors import CheckpointMismatch, CheckpointMismatchWarning, DummyWeightsError, RealWeightsUnavailable


@dataclasses.dataclass(frozen=True)
class CheckpointPlan:
    """A spec's checkpoint, read at planning time (headers only)."""

    path: Path  # absolute: a checkpoint directory or a manifest file
    manifest: Manifest
    identity: str  # changes whenever the files do: part of the cache key
    has_data: bool  # a directory of safetensors files, not a manifest alone


@dataclasses.dataclass
class LoadResult:
    """What the contract did before the dummy fill."""

    report: CheckReport | None  # None: not checked (checkpoint_check="off", or no checkpoint)
    written: frozenset[str] = frozenset()  # parameters the model's loader wrote: not to be filled again
    model: paddle.nn.Layer | None = None  # a model loaded by from_pretrained, which replaces the constructed one
    real_bytes: int = 0  # bytes of checkpoint data read


def resolve_checkpoint(checkpoint: str | os.PathLike, search_dirs: Iterable[Path]) -> Path:
    """An absolute path; a relative one is looked up in ``search_dirs`` as a relative config is."""
    hint = "give a directory of *.safetensors files or a manifest JSON file"
    return locate(checkpoint, search_dirs, "checkpoint", hint).resolve()


def checkpoint_identity(path: Path, manifest: Manifest) -> str:
    """A digest of the manifest and, for a directory, of each shard's size and modification time."""
    digest = hashlib.sha256(manifest.to_text().encode())
    if path.is_dir():
        for shard in sorted(manifest.formats):
            stat = (path / shard).stat()
            digest.update(f"{shard}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def plan_checkpoint(checkpoint: str | os.PathLike | None, real_weights: bool, search_dirs: Iterable[Path]) -> CheckpointPlan | None:
    """Read the spec's checkpoint (headers only); with ``real_weights`` and no data to read, raise ``RealWeightsUnavailable``."""
    if checkpoint is None:
        if real_weights:
            raise RealWeightsUnavailable(
                "--real-weights: the test names no checkpoint= to load real weights from; it runs with dummy weights only"
            )
        return None
    path = resolve_checkpoint(checkpoint, search_dirs)
    manifest = load_manifest(path)
    plan = CheckpointPlan(path, manifest, checkpoint_identity(path, manifest), path.is_dir())
    if real_weights and not plan.has_data:
        raise RealWeightsUnavailable(
            f"--real-weights: checkpoint {path} is a manifest only, without tensor data; it runs with dummy weights only"
        )
    return plan


def judge(report: CheckReport, mode: str) -> CheckReport | None:
    """Apply ``checkpoint_check``: raise, warn, or drop the report (``off``)."""
    if mode == "off":
        return None
    if not report.ok:
        if mode == "error":
            raise CheckpointMismatch(report)
        warnings.warn(CheckpointMismatchWarning("\n".join(report.table())), stacklevel=2)
    return report


def structure_report(model: Any, model_config: Any, spec: Any, manifest: Manifest, hooks: Any) -> CheckReport:
    """The project's ``pytest_dummyweights_checkpoint_layout`` when it answers, else PaddleFormers' rules."""
    hook = getattr(hooks, "pytest_dummyweights_checkpoint_layout", None)
    layout = None if hook is None else hook(model=model, model_config=model_config, spec=spec, manifest=manifest)
    if layout is None:
        return check_model(model, manifest)
    if not isinstance(layout, Layout):
        raise DummyWeightsError(
            f"pytest_dummyweights_checkpoint_layout returned {type(layout).__name__}, not a pytest_dummyweights.Layout (or None)"
        )
    return compare(layout, manifest)


class RealTensorReader:
    """``make_tensor`` for ``feed_load_weights`` that reads the checkpoint's tensors (CPU, any dtype, bfloat16
    and float8 included: safetensors' ``paddle`` framework), counting the bytes read; a context manager
    that closes the shards it opened."""

    def __init__(self, checkpoint: CheckpointPlan) -> None:
        self.checkpoint = checkpoint
        self.bytes_read = 0
        self._files = contextlib.ExitStack()
        self._open: dict[str, Any] = {}

    def __enter__(self) -> RealTensorReader:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._files.close()

    def __call__(self, name: str, entry: TensorEntry) -> paddle.Tensor:
        # lazy: safetensors is needed only by real-weights loads
        from safetensors import safe_open

        if entry.shard not in self._open:
            self._open[entry.shard] = self._files.enter_context(safe_open(str(self.checkpoint.path / entry.shard), framework="paddle"))
        self.bytes_read += entry.nbytes
        return self._open[entry.shard].get_tensor(name)


def load_before_init(
    model: paddle.nn.Layer, model_config: Any, spec: Any, checkpoint: CheckpointPlan, hooks: Any, factory: Any
) -> LoadResult:
    """Between construction and the dummy fill: load through the model's own loader, or check (then, real, ``from_pretrained``)."""
    mode = spec.checkpoint_check
    if has_load_weights(model):
        if spec.real_weights:
            with RealTensorReader(checkpoint) as read:
                fed = feed_load_weights(model, checkpoint.manifest, read)
            return LoadResult(judge(fed.report, mode), fed.written, real_bytes=read.bytes_read)

        def make_dummy(name: str, entry: TensorEntry) -> paddle.Tensor:
            return dummy_tensor(name, entry, seed=spec.seed, std=spec.std, store_dir=spec.store_dir)

        fed = feed_load_weights(model, checkpoint.manifest, make_dummy)
        return LoadResult(judge(fed.report, mode), fed.written)
    report = None if mode == "off" else judge(structure_report(model, model_config, spec, checkpoint.manifest, hooks), mode)
    if not spec.real_weights:
        return LoadResult(report)
    return LoadResult(report, model=from_pretrained(factory, model_config, spec, checkpoint), real_bytes=checkpoint.manifest.total_bytes)


def from_pretrained(factory: Any, model_config: Any, spec: Any, checkpoint: CheckpointPlan) -> paddle.nn.Layer:
    """The real weights through PaddleFormers' ``from_pretrained``, in the layout the files declare."""
    load = getattr(factory, "from_pretrained", None)
    if not callable(load):
        raise DummyWeightsError(
            f"--real-weights: {getattr(factory, '__qualname__', factory)!r} has neither load_weights(weights) nor from_pretrained; "
            "give the model a load_weights, or leave real_weights off for this test"
        )
    return load(str(checkpoint.path), config=model_config, convert_from_hf=checkpoint.manifest.layout == "hf", dtype=spec.dtype)
