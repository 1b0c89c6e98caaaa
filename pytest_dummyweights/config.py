"""Read a model config (directory, JSON file or dict), apply overrides, and make the config object.

The object is PaddleFormers' config class when PaddleFormers knows the ``model_type``, else a
plain attribute-access object. Nothing named inside a config (``auto_map`` and the like) is ever
imported or executed.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import os
import warnings
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .errors import DummyWeightsError
from .shrink import ShrinkResult, ShrinkWarning, describe_changes, shrink_config


class PlainConfig(SimpleNamespace):
    """A config for a model type PaddleFormers does not know: the JSON's keys as attributes."""

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclasses.dataclass
class LoadedConfig:
    raw: dict[str, Any]  # the JSON after overrides: what the fingerprint and the dtype default read
    source: str  # where it came from, for messages
    model_config: Any  # what the model class is constructed from
    shrink: ShrinkResult | None = None  # what a shrink request changed, before the overrides


def read_raw_config(config: str | os.PathLike | Mapping[str, Any], search_dirs: Iterable[Path]) -> tuple[dict, str]:
    """The config's JSON object and a description of its source."""
    if isinstance(config, Mapping):
        return copy.deepcopy(dict(config)), "<dict>"
    path = Path(config).expanduser()
    candidates = [path] if path.is_absolute() else list(dict.fromkeys(Path(d) / path for d in search_dirs)) or [path]
    found = next((c for c in candidates if c.exists()), None)
    if found is None:
        looked = ", ".join(str(c) for c in candidates)
        raise DummyWeightsError(
            f"config {os.fspath(config)!r} not found (looked at: {looked}); "
            "pass a directory holding config.json, a path to a JSON file, or a dict"
        )
    file = found / "config.json" if found.is_dir() else found
    if not file.is_file():
        held = sorted(p.name for p in found.iterdir())[:10]
        raise DummyWeightsError(
            f"config directory {found} has no config.json (it holds: {', '.join(held) or 'nothing'}); "
            "point at the directory of a model's config.json or at the JSON file itself"
        )
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DummyWeightsError(
            f"config {file} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    if not isinstance(raw, dict):
        raise DummyWeightsError(f"config {file} holds a JSON {type(raw).__name__}, not an object of config keys")
    return raw, str(file)


def paddleformers_config_class(model_type: Any) -> type | None:
    """PaddleFormers' config class for ``model_type``, or None when it is unknown or not installed."""
    if not isinstance(model_type, str):
        return None
    try:
        from paddleformers.transformers.auto.configuration import CONFIG_MAPPING
    except ImportError:
        return None
    try:
        return CONFIG_MAPPING[model_type]
    except (KeyError, ValueError, ImportError, AttributeError):
        return None


def make_model_config(raw: dict[str, Any]) -> Any:
    config_class = paddleformers_config_class(raw.get("model_type"))
    if config_class is None:
        return PlainConfig(**copy.deepcopy(raw))
    return config_class.from_dict(copy.deepcopy(raw))


def check_override_keys(overrides: Mapping[str, Any], known: Collection[str], new_keys: Collection[str], source: str) -> None:
    """A key the config does not have is a typo unless the spec allows it as new."""
    for key in overrides:
        if key in known or key in new_keys:
            continue
        close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise DummyWeightsError(
            f"override key {key!r} is not in config {source}; {hint}"
            f"fix the key, or allow a deliberate new key with new_keys=[{key!r}]"
        )


def load_config(
    config: str | os.PathLike | Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    new_keys: Collection[str] = (),
    search_dirs: Iterable[Path] = (),
    shrink: bool | Mapping[str, Any] = False,
) -> LoadedConfig:
    raw, source = read_raw_config(config, search_dirs)
    shrunk = shrink_config(raw, shrink) if shrink is not False else None
    if shrunk is not None:
        raw = shrunk.raw
        if shrunk.unknown_keys:
            warnings.warn(f"config {source}: {describe_changes(shrunk)[0]}", ShrinkWarning, stacklevel=2)
    if overrides:
        base = make_model_config(raw)
        known = set(raw) | set(base.to_dict())
        check_override_keys(overrides, known, set(new_keys), source)
        raw.update(copy.deepcopy(dict(overrides)))
    return LoadedConfig(raw=raw, source=source, model_config=make_model_config(raw), shrink=shrunk)
