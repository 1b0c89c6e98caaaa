"""The option vocabulary, in one Paddle-free home: the words each option takes, its default, and its argument check.

Read by the spec (``DummySpec.validate``), the settings (checked at start-up), the CLI's choices and the build,
so a word, a default or a check's message is written once. It imports nothing of the package but ``errors``,
and neither Paddle nor NumPy: loading the plugin, which checks every option at start-up, stays cheap.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from pytest_dummyweights.errors import DummyWeightsError

# --- the words ----------------------------------------------------------------------------------------

DTYPES = ("bfloat16", "float16", "float32")  # what ``dtype=`` builds in
DEVICE_WORDS = ("auto", "cpu", "gpu")  # and ``gpu:N``
STORAGES = ("mapped", "filled")  # see fill
CHECKPOINT_CHECKS = ("error", "warn", "off")  # what a model disagreeing with its checkpoint does
ISOLATION_MODES = ("fast", "strict")  # see isolation
DIST_MODES = ("model", "off")  # see _fleet.plugin
SCALE_PRESETS = ("default", "neutral")  # see value_rules
NEUTRAL = "neutral"  # the preset, and a value rule's value: the dtype's neutral value
SHRINK_KEYS = ("layers", "experts", "vocab")  # the targets a ``shrink={...}`` dict takes
SEED_LIMIT = 2**64  # seeds are packed as unsigned 64-bit integers (the store's header, the windows' streams)

# --- the defaults: what a spec, the options and the ini keys leave unset becomes -----------------------

DEFAULT_SEED = 0
DEFAULT_STD = 0.02  # when neither the spec nor the config's initializer_range gives one
DEFAULT_DEVICE = "auto"
DEFAULT_SCALES = "default"
DEFAULT_CHECKPOINT_CHECK = "error"
DEFAULT_ISOLATION = "fast"
DEFAULT_DIST = "model"
DEFAULT_DTYPE = "float32"  # on the CPU, and on a GPU when the config declares none of DTYPES


def default_storage(on_cpu: bool) -> str:
    """Mapped for a build whose parameters all live on the CPU, on Linux (copy-on-write mappings); else filled."""
    return "mapped" if on_cpu and sys.platform.startswith("linux") else "filled"


# --- the checks ---------------------------------------------------------------------------------------


def check_seed(seed: object) -> int:
    """A seed as an ``int``: an integer (NumPy's too) in [0, 2**64), the range the value store keeps."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise DummyWeightsError(f"seed must be a non-negative integer; got {seed!r}")
    if int(seed) >= SEED_LIMIT:
        raise DummyWeightsError(f"seed must be below 2**64 (the value store keeps 64 bits of it); got {seed!r}")
    return int(seed)


def check_device(device: str) -> None:
    """Accept ``auto``, ``cpu``, ``gpu`` and ``gpu:N``."""
    kind, _, index = str(device).partition(":")
    if not isinstance(device, str) or kind not in DEVICE_WORDS or (index and (kind != "gpu" or not index.isdigit())):
        raise DummyWeightsError(f"unknown device {device!r}: use 'auto', 'cpu', 'gpu' or 'gpu:N'")


def check_storage(storage: str | None) -> None:
    if storage is not None and storage not in STORAGES:
        raise DummyWeightsError(f"unknown storage {storage!r}: use 'mapped' or 'filled' (or leave it unset)")


def check_search_dirs(directories: object) -> tuple[str | os.PathLike[str], ...]:
    """A collection of paths. One path alone is refused, not split into its letters (a ``str`` is iterable)."""
    if isinstance(directories, (str, bytes, os.PathLike)) or not isinstance(directories, Iterable):
        raise DummyWeightsError(
            f"search_dirs must be a list of directories, such as ['.']; got {type(directories).__name__}: {directories!r}"
        )
    found = tuple(directories)
    for directory in found:
        if not isinstance(directory, (str, os.PathLike)):
            raise DummyWeightsError(f"search_dirs must hold paths; got {type(directory).__name__}: {directory!r}")
    return found


def check_worker_id(worker_id: object) -> None:
    if worker_id is not None and not isinstance(worker_id, str):
        raise DummyWeightsError(
            f"worker_id must be an xdist worker's name, such as 'gw1', or None; got {type(worker_id).__name__}: {worker_id!r}"
        )


def check_rule_arguments(scales: Any, value_rules: Any) -> None:
    """Reject an unknown preset or a rule that is not ``{pattern: number or "neutral"}``; one line each."""
    if scales is not None and scales not in SCALE_PRESETS:
        raise DummyWeightsError(f"unknown scales preset {scales!r}: use one of {', '.join(map(repr, SCALE_PRESETS))} (or leave it unset)")
    if value_rules is None:
        return
    if not isinstance(value_rules, Mapping):
        raise DummyWeightsError(
            f"value_rules must be a dict of name patterns to values, e.g. {{'*.k_scale': 1.0}}; got {type(value_rules).__name__}"
        )
    for pattern, value in value_rules.items():
        if not isinstance(pattern, str) or not pattern:
            raise DummyWeightsError(f"value_rules key {pattern!r} is not a name pattern: use a string such as '*.k_scale'")
        numeric = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not (numeric or value == NEUTRAL):
            raise DummyWeightsError(f"value_rules[{pattern!r}] = {value!r} is not a number or 'neutral': give e.g. 1.0")
        if numeric and not math.isfinite(value):
            raise DummyWeightsError(f"value_rules[{pattern!r}] = {value!r} is not finite: give a finite number")


@dataclasses.dataclass(frozen=True)
class ShrinkRequest:
    """``None`` targets mean "the smallest value that keeps the structure"."""

    layers: int | None = None
    experts: int | None = None
    vocab: int | None = None  # None: the real vocabulary


def parse_shrink(request: bool | Mapping[str, Any]) -> ShrinkRequest | None:
    """``True``: defaults; ``False``: no shrink; a mapping: targets among ``layers``, ``experts``, ``vocab``."""
    if isinstance(request, bool):
        return ShrinkRequest() if request else None
    if not isinstance(request, Mapping):
        raise DummyWeightsError(
            f"shrink must be True, False or a dict such as {{'layers': 4, 'experts': 16}}; got {type(request).__name__}: {request!r}"
        )
    unknown = sorted(set(map(str, request)) - set(SHRINK_KEYS))
    if unknown:
        raise DummyWeightsError(f"shrink got unknown key(s) {', '.join(unknown)}; it takes: {', '.join(SHRINK_KEYS)}")
    for key, value in request.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
            raise DummyWeightsError(f"shrink {key} must be a positive integer; got {type(value).__name__} {value!r}")
    return ShrinkRequest(**{key: None if value is None else int(value) for key, value in request.items()})  # numpy integers too


# --- byte sizes ---------------------------------------------------------------------------------------


def parse_bytes(text: str) -> int:
    """``4GiB``, ``500MB``, ``1000000`` -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError("not a size; write e.g. 4GiB, 500MB or 1000000")
    number, prefix, binary = match.groups()
    base = 1024 if binary or not prefix else 1000
    return int(float(number) * base ** " KMGT".index(prefix.upper() or " "))


def human_bytes(count: float) -> str:
    """``1536`` -> ``1.5 KiB``: sizes in messages and the run summary."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")
