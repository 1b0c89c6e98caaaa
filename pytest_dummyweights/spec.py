"""What to build: the marker's arguments as one value, checked before any work starts."""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import reprlib
from collections.abc import Callable, Collection, Mapping
from typing import Any

from pytest_dummyweights.errors import DummyWeightsError
from pytest_dummyweights.vocabulary import (
    CHECKPOINT_CHECKS,
    DTYPES,
    check_device,
    check_rule_arguments,
    check_seed,
    check_storage,
    parse_shrink,
)


@dataclasses.dataclass(frozen=True)
class DummySpec:
    """A model to build with dummy weights; the keywords of ``@pytest.mark.dummy_load``.

    ``None`` means "not set here": the plugin's options, then the config, supply the value.
    """

    config: str | os.PathLike | Mapping[str, Any]
    dtype: str | None = None
    overrides: Mapping[str, Any] | None = None
    seed: int | None = None
    std: float | None = None
    device: str | None = None
    model: str | type | Callable[..., Any] | None = None
    new_keys: Collection[str] = ()
    fresh: bool = False
    shrink: bool | Mapping[str, Any] = False  # see vocabulary.parse_shrink and shrink.shrink_config; applied before overrides
    scales: str | None = None  # "default" (the published rule) or "neutral"; see value_rules
    value_rules: Mapping[str, float | int | str] | None = None
    smoke: bool | None = None
    allow_unset: Collection[str] = ()
    storage: str | None = None  # "mapped" or "filled"; default: mapped for CPU builds on Linux
    store_dir: str | os.PathLike | None = None  # where the value store lives (see store.default_directory)
    checkpoint: str | os.PathLike | None = None  # a checkpoint directory or manifest JSON file; see contract
    checkpoint_check: str | None = None  # "error", "warn" or "off": what a disagreeing checkpoint does
    real_weights: bool | None = None  # load the checkpoint's real weights instead of dummy ones

    def validate(self) -> None:
        """Checked when the build starts, not at construction: a bad spec in a ``parametrize`` list then
        fails its own test at setup instead of stopping the session's collection."""
        if not isinstance(self.config, (str, os.PathLike, Mapping)):
            raise DummyWeightsError(
                f"config must be a directory holding config.json, a path to a JSON file, or a dict; "
                f"got {type(self.config).__name__}: {describe_config(self.config)}"
            )
        if self.dtype is not None and self.dtype not in DTYPES:
            raise DummyWeightsError(f"unknown dtype {self.dtype!r}: use one of {', '.join(DTYPES)} (or leave it unset)")
        if self.overrides is not None and not isinstance(self.overrides, Mapping):
            raise DummyWeightsError(f"overrides must be a dict of config keys to values; got {type(self.overrides).__name__}")
        if isinstance(self.new_keys, str):
            raise DummyWeightsError(
                f"new_keys must be a collection of key names, e.g. [{self.new_keys!r}]; got the string {self.new_keys!r}"
            )
        if not isinstance(self.new_keys, Collection):
            raise DummyWeightsError(f"new_keys must be a collection of key names, e.g. ['brand_new']; got {self.new_keys!r}")
        if self.seed is not None:
            check_seed(self.seed)
        if self.std is not None and (
            isinstance(self.std, bool) or not isinstance(self.std, numbers.Real) or not math.isfinite(self.std) or not self.std > 0
        ):
            raise DummyWeightsError(f"std must be a finite positive number; got {self.std!r}")
        if self.device is not None:
            check_device(self.device)
        if not isinstance(self.fresh, bool):
            raise DummyWeightsError(f"fresh must be True or False; got {type(self.fresh).__name__} {self.fresh!r}")
        if not all(isinstance(key, str) for key in self.new_keys):
            raise DummyWeightsError(f"new_keys must hold key names (strings); got {list(self.new_keys)!r}")
        parse_shrink(self.shrink)
        check_rule_arguments(self.scales, self.value_rules)
        if self.smoke is not None and not isinstance(self.smoke, bool):
            raise DummyWeightsError(f"smoke must be True or False; got {self.smoke!r}")
        if (
            isinstance(self.allow_unset, str)
            or not isinstance(self.allow_unset, Collection)
            or not all(isinstance(pattern, str) for pattern in self.allow_unset)
        ):
            raise DummyWeightsError(
                f"allow_unset must be a collection of name patterns, e.g. ['layers.0.attn.k_scale']; got {self.allow_unset!r}"
            )
        check_storage(self.storage)
        if self.checkpoint is not None and not isinstance(self.checkpoint, (str, os.PathLike)):
            raise DummyWeightsError(
                "checkpoint must be a checkpoint directory or a manifest JSON file path; "
                f"got {type(self.checkpoint).__name__}: {self.checkpoint!r}"
            )
        if self.checkpoint_check is not None and self.checkpoint_check not in CHECKPOINT_CHECKS:
            raise DummyWeightsError(f"unknown checkpoint_check {self.checkpoint_check!r}: use 'error', 'warn' or 'off' (or leave it unset)")
        if self.real_weights is not None and not isinstance(self.real_weights, bool):
            raise DummyWeightsError(f"real_weights must be True or False; got {self.real_weights!r}")

    def describe(self) -> str:
        """The config as a user wrote it, for messages."""
        return describe_config(self.config)


def describe_config(config: Any) -> str:
    """A config (or a spec) as a user wrote it, short, for messages: a path as given, ``<dict>`` for a dict."""
    if isinstance(config, DummySpec):
        return config.describe()
    if isinstance(config, Mapping):
        return "<dict>"
    return os.fspath(config) if isinstance(config, (str, os.PathLike)) else reprlib.repr(config)


def spec_from_call(args: tuple, kwargs: Mapping[str, Any], what: str) -> DummySpec:
    """Make a spec from marker or factory arguments, turning signature mistakes into clear errors. A ``DummySpec``
    alone is taken as it is (as an indirect parameter is); with keywords it is ambiguous, so an error."""
    if args and isinstance(args[0], DummySpec):
        if len(args) == 1 and not kwargs:
            return args[0]
        given = [f"keywords ({', '.join(kwargs)})"] if kwargs else []
        given += ["more positional arguments"] if len(args) > 1 else []
        raise DummyWeightsError(
            f"{what} got a DummySpec and {' and '.join(given)}: pass the DummySpec alone with every field in it "
            "(dataclasses.replace(spec, overrides=...)), or the config with keywords"
        )
    if len(args) > 1:
        raise DummyWeightsError(f"{what} takes one positional argument (the config) and keywords; got {len(args)} positional arguments")
    if args and "config" in kwargs:
        raise DummyWeightsError(f"{what} got the config twice: positionally ({args[0]!r}) and as config=")
    if not args and "config" not in kwargs:
        raise DummyWeightsError(f"{what} needs a config: a directory holding config.json, a JSON file, or a dict")
    fields = {f.name for f in dataclasses.fields(DummySpec)}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise DummyWeightsError(f"{what} got unknown keyword(s) {', '.join(unknown)}; it takes: {', '.join(sorted(fields))}")
    return DummySpec(*args, **kwargs)
