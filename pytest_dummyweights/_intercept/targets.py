"""Engine loaders named by the ``pytest_dummyweights_intercept`` hook, and what replaces them.

Two kinds, each found by its first argument (by name or by position; ``self`` and ``cls`` do not count):

- ``"model"``: ``function(path, ...)`` returns a model for a checkpoint directory (or hub name). Intercepted, it
  returns the model built from that checkpoint's config with dummy weights, as ``from_pretrained`` is: the class
  is ``model=`` ('package.module:Class'), else the ``pytest_dummyweights_resolve_model`` hook (in the pytest
  process; a subprocess has no conftest, so name the class), else PaddleFormers' class for ``architectures``.
  A model with ``load_weights`` is fed the checkpoint's tensors through it, as dummy values (checkpoint-shaped
  loading); any other is checked against the checkpoint's headers. The dtype is the config's ``torch_dtype``.
- ``"weights"``: ``function(files, ...)`` yields ``(name, tensor)`` from checkpoint files (a directory, a file or
  a list of files). Intercepted, it yields a dummy tensor for every tensor the files' headers name, with its name,
  shape and dtype, never reading the data; values as checkpoint-shaped loading gives them (the run's seed, the
  ``initializer_range`` of a ``config.json`` beside the files).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pytest_dummyweights._building.config import make_model_config, read_raw_config
from pytest_dummyweights._building.context import BuildContext
from pytest_dummyweights._checkpoints.manifest import manifest_of_headers, read_header
from pytest_dummyweights._intercept import patches
from pytest_dummyweights._intercept.sources import locate_source
from pytest_dummyweights._intercept.subprocesses import worker_id
from pytest_dummyweights.errors import DummyWeightsError
from pytest_dummyweights.vocabulary import DEFAULT_DTYPE, DTYPES

KINDS = ("model", "weights")


@dataclasses.dataclass(frozen=True)
class InterceptTarget:
    """A function an engine loads with, to intercept: ``function`` is its dotted path (``package.module.function``
    or ``package.module:Class.method``), ``kind`` is ``"model"`` or ``"weights"`` (see the module's docstring),
    ``model`` the class a ``"model"`` target builds (``'package.module:Class'``)."""

    function: str
    kind: str
    model: str | None = None

    def check(self) -> None:
        patches.split_target(self.function)
        if self.kind not in KINDS:
            raise DummyWeightsError(f"intercept target {self.function!r}: kind {self.kind!r} is neither 'model' nor 'weights'")
        if self.model is not None and (self.kind != "model" or ":" not in self.model):
            raise DummyWeightsError(
                f"intercept target {self.function!r}: model={self.model!r} must be 'package.module:Class', on a 'model' target"
            )

    def patch(self) -> patches.Patch:
        replacement = load_model if self.kind == "model" else feed_weights
        return patches.Patch(self.function, functools.partial(replacement, self))


def first_argument(what: str, original: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """The call's first argument (the checkpoint), by position or name."""
    signature = inspect.signature(original)
    bound = signature.bind_partial(*args, **kwargs)
    names = [name for name in signature.parameters if name not in ("self", "cls")]
    if not names or names[0] not in bound.arguments:
        raise DummyWeightsError(f"intercepted {what} was called without its first argument, the checkpoint it loads")
    return bound.arguments[names[0]]


def declared_dtype(raw: dict[str, Any]) -> str | None:
    declared = raw.get("torch_dtype") or raw.get("dtype")
    return declared if declared in DTYPES else None


def load_model(target: InterceptTarget, original: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    path = first_argument(target.function, original, args, kwargs)
    interception = patches.active()
    settings = interception.settings

    def build(cache: Any) -> tuple[Any, str]:
        source = locate_source(path, manifest_dir=settings.manifest_dir)
        raw = source.raw_config()
        config = str(source.config_file) if source.config_file is not None else raw
        spec = settings.spec(config=config, model=target.model, dtype=declared_dtype(raw), checkpoint=source.checkpoint)
        model = cache.get_unshared(spec, BuildContext(hooks=interception.hooks, worker_id=worker_id()))
        return model, f"{type(model).__name__} with dummy weights"

    return interception.serve(f"{target.function}({os.fspath(path)!r})", build)


def checkpoint_files(given: Any) -> list[Path]:
    """A directory's safetensors files, a file, or a list of files."""
    if isinstance(given, (str, os.PathLike)):
        path = Path(given)
        files = sorted(path.glob("*.safetensors")) if path.is_dir() else [path]
    else:
        files = [Path(file) for file in given]
    if not files:
        raise DummyWeightsError(f"intercepted weights iterator got {given!r}: no safetensors files to read the headers of")
    return files


def feed_weights(target: InterceptTarget, original: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    files = checkpoint_files(first_argument(target.function, original, args, kwargs))
    interception = patches.active()

    def build(cache: Any) -> tuple[Any, str]:
        manifest = manifest_of_headers({file.name: read_header(file) for file in files}, str(files[0].parent), None)
        tensors = dummy_tensors(manifest.tensors, interception.settings, std_beside(files[0].parent))
        return tensors, f"{len(manifest.tensors)} dummy tensors for {len(files)} files"

    return interception.serve(f"{target.function}({len(files)} files in {files[0].parent})", build)


def std_beside(directory: Path) -> float:
    """The ``initializer_range`` of a ``config.json`` beside the files, else the build's default."""
    # lazy: the pipeline imports Paddle, which a target is not given until it is called
    from pytest_dummyweights._building.pipeline import choose_std

    if not (directory / "config.json").is_file():
        return choose_std(None, None, DEFAULT_DTYPE)
    raw, source = read_raw_config(directory, [])
    return choose_std(None, make_model_config(raw, source), DEFAULT_DTYPE)


def dummy_tensors(entries: dict[str, Any], settings: Any, std: float) -> Iterator[tuple[str, Any]]:
    # lazy: the loader feed imports Paddle
    from pytest_dummyweights._checkpoints.loader_feed import dummy_tensor

    for name, entry in entries.items():
        yield name, dummy_tensor(name, entry, seed=settings.seed, std=std, store_dir=settings.store_dir)
