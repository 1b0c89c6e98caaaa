"""Read a model config (directory, JSON file or dict), apply overrides, and make the config object.

Override values are JSON values: numpy scalars are taken as the numbers they stand for, tuples as lists.

The object is PaddleFormers' config class when PaddleFormers knows the ``model_type``, else a
plain attribute-access object. Nothing named inside a config (``auto_map`` and the like) is ever
imported or executed.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import numbers
import os
import warnings
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pytest_dummyweights._building.shrink import ShrinkResult, describe_changes, shrink_config
from pytest_dummyweights._runtime.paths import locate
from pytest_dummyweights.errors import DummyWeightsError, ShrinkWarning, reraised_as


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
        keys = [key for key in config if not isinstance(key, str)]
        if keys:
            raise DummyWeightsError(f"config dict keys must be strings, as in config.json; got {keys[0]!r}")
        return copy.deepcopy(dict(config)), "<dict>"
    found = locate(config, search_dirs, "config", "pass a directory holding config.json, a path to a JSON file, or a dict")
    file = found / "config.json" if found.is_dir() else found
    if found.is_dir() and not os.path.lexists(file):
        held = sorted(p.name for p in found.iterdir())[:10]
        raise DummyWeightsError(
            f"config directory {found} has no config.json (it holds: {', '.join(held) or 'nothing'}); "
            "point at the directory of a model's config.json or at the JSON file itself"
        )
    if not file.is_file():
        raise DummyWeightsError(
            f"config {file} is not a regular file (a device, a broken symlink or a symlink loop); "
            "point at a model's config.json or the directory holding it"
        )
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DummyWeightsError(f"config {file} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}") from None
    except UnicodeDecodeError as error:
        raise DummyWeightsError(f"config {file} is not UTF-8 text (byte {error.start}): save it as UTF-8 JSON") from None
    except OSError as error:
        raise DummyWeightsError(f"cannot read config {file}: {error.strerror}; check its permissions") from None
    if not isinstance(raw, dict):
        raise DummyWeightsError(f"config {file} holds a JSON {type(raw).__name__}, not an object of config keys")
    return raw, str(file)


def paddleformers_config_class(model_type: Any) -> Any:
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


def make_model_config(raw: dict[str, Any], source: str = "<dict>") -> Any:
    config_class = paddleformers_config_class(raw.get("model_type"))
    if config_class is None:
        return PlainConfig(**copy.deepcopy(raw))
    with reraised_as(DummyWeightsError, f"config {source} is rejected by {config_class.__name__}"):  # the config class's own checks
        return config_class.from_dict(copy.deepcopy(raw))


def check_override_keys(overrides: Mapping[str, Any], known: Collection[str], new_keys: Collection[str], source: str) -> None:
    """A key the config does not have is a typo unless the spec allows it as new."""
    for key in overrides:
        if key in known or key in new_keys:
            continue
        close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise DummyWeightsError(
            f"override key {key!r} is not in config {source}; {hint}fix the key, or allow a deliberate new key with new_keys=[{key!r}]"
        )


def check_override_values(overrides: Mapping[str, Any], raw: Mapping[str, Any], source: str) -> None:
    """An override must keep the kind of value the config has: a count stays a non-negative integer, and so on."""
    for key, value in overrides.items():
        if key not in raw or raw[key] is None:
            continue
        before = raw[key]
        expected = _value_kind(before)
        if expected is not None and _value_kind(value) != expected and not (expected == "number" and _value_kind(value) == "integer"):
            raise DummyWeightsError(
                f"override {key}={value!r} is {_article(_value_kind(value) or type(value).__name__)}, but config {source} "
                f"has {_article(expected)} there ({before!r}): pass {_article(expected)}"
            )
        if expected == "integer" and before >= 0 and value < 0:
            raise DummyWeightsError(f"override {key}={value!r} is negative; config {source} has {before!r}: pass a non-negative integer")


def json_value(value: Any) -> Any:
    """numpy scalars (``np.int64(2)``, ``np.float32(0.5)``), in lists and dicts too, as the JSON numbers they stand for."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [json_value(item) for item in value]
    if isinstance(value, Mapping):
        return {key: json_value(item) for key, item in value.items()}
    return value


def _value_kind(value: Any) -> str | None:
    """JSON's kinds of values: what an override must keep."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "dict"
    return None


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


INT32_MAX = 2**31 - 1  # Paddle keeps shapes and many attributes in int32
MAX_LAYERS = 10_000  # published models have a few hundred at most; a loop over 10**12 "layers" never ends


def check_sizes(raw: Mapping[str, Any], source: str) -> None:
    """Integers a model could never be built with are typos: say so now, before a config class loops over them."""
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int):
            continue
        if abs(value) > INT32_MAX:
            raise DummyWeightsError(f"config {source}: {key}={value} is beyond the int32 range Paddle keeps sizes in; fix the value")
        if key.endswith("layers") and value > MAX_LAYERS:
            raise DummyWeightsError(
                f"config {source}: {key}={value} is more than {MAX_LAYERS:,} layers, far beyond any published model; "
                "fix the value (to make a model small, use shrink=True or a small num_hidden_layers)"
            )


def check_architectures(raw: Mapping[str, Any], source: str) -> None:
    architectures = raw.get("architectures")
    if architectures is not None and (
        not isinstance(architectures, list) or not all(isinstance(name, str) and name for name in architectures)
    ):
        raise DummyWeightsError(
            f"config {source}: 'architectures' must be a list of class names, e.g. [\"Qwen3ForCausalLM\"]; got {architectures!r}"
        )


def load_config(
    config: str | os.PathLike | Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    new_keys: Collection[str] = (),
    search_dirs: Iterable[Path] = (),
    shrink: bool | Mapping[str, Any] = False,
) -> LoadedConfig:
    raw, source = read_raw_config(config, search_dirs)
    check_sizes(raw, source)
    shrunk = shrink_config(raw, shrink) if shrink is not False else None
    if shrunk is not None:
        raw = shrunk.raw
        if shrunk.unknown_keys:
            warnings.warn(f"config {source}: {describe_changes(shrunk)[0]}", ShrinkWarning, stacklevel=2)
    if overrides:
        overrides = {key: json_value(value) for key, value in overrides.items()}
        base = make_model_config(raw, source)
        known = set(raw) | set(base.to_dict())
        check_override_keys(overrides, known, set(new_keys), source)
        check_override_values(overrides, raw, source)
        check_sizes(overrides, f"{source} with overrides")
        raw.update(copy.deepcopy(dict(overrides)))
    check_architectures(raw, source)
    return LoadedConfig(raw=raw, source=source, model_config=make_model_config(raw, source), shrink=shrunk)
