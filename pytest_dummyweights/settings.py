"""The run's settings: each read once at start-up from its command-line option, else its ini key, and
checked there, so a bad value stops the run with one usage error that names where it came from.

What the run keeps in pytest's stash lives here too (the settings, this process's model cache, the xdist
workers' reports), so every piece of pytest glue reads them from one place. The words, defaults and checks
of each option are the vocabulary's; pytest is the only thing this adds. Every pytest run with the plugin
installed loads this module, so the run's counts (``_cache.stats``) are imported by the first run that has some."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pytest

from pytest_dummyweights.errors import DummyWeightsError
from pytest_dummyweights.spec import DummySpec
from pytest_dummyweights.vocabulary import (
    CHECKPOINT_CHECKS,
    ISOLATION_MODES,
    STORAGES,
    check_device,
    check_rule_arguments,
    check_seed,
    parse_bytes,
)

if TYPE_CHECKING:
    from pytest_dummyweights._cache.stats import CacheStats

T = TypeVar("T")
SETTINGS = pytest.StashKey["Settings"]()
CACHE = pytest.StashKey[Any]()  # this process's model_cache.ModelCache, made by the first build
WORKER_REPORTS = pytest.StashKey[list[dict[str, Any]]]()  # the xdist workers' CacheStats reports, on the controller


@dataclasses.dataclass(frozen=True)
class Settings:
    """The run's options, read once."""

    seed: int
    device: str
    cache_bytes: int | None  # None: the default share of the device's memory
    cache_enabled: bool
    isolation: str
    scales: str
    smoke: bool
    storage: str | None  # None: mapped for CPU builds on Linux, else filled
    store_dir: str | None  # None: store.default_directory()
    checkpoint_check: str  # error, warn or off: what a model disagreeing with its checkpoint does
    real_weights: bool  # load named checkpoints' real weights; tests without one are skipped


# The settings a spec may leave unset (None) and the run fills in: the fields Settings and DummySpec share.
RUN_DEFAULTS = tuple(f.name for f in dataclasses.fields(Settings) if f.name in {g.name for g in dataclasses.fields(DummySpec)})


class OptionSource(Protocol):
    """Where settings are read: pytest's ``Config``, or a view of it at start-up (``_intercept.plugin.EarlyOptions``)."""

    def getoption(self, name: str) -> Any: ...

    def getini(self, name: str) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Setting:
    """A value as the user wrote it, and where: ``--dummy-seed`` or ``ini dummyweights_seed``."""

    text: str | None
    source: str


def read_setting(config: OptionSource, option: str, ini: str) -> Setting:
    """The command-line option when given, else the ini key (None when that is empty)."""
    value = config.getoption(option)
    if value is not None and value is not False:
        return Setting(str(value), option)
    text = str(config.getini(ini)).strip()
    return Setting(text or None, f"ini {ini}")


def read_flag(config: OptionSource, ini: str, option: str | None = None) -> bool:
    """The command-line switch when given, else the boolean ini key; an ini value that is not a boolean
    is a usage error naming the key (pytest's own names only the value)."""
    if option is not None and config.getoption(option):
        return True
    try:
        return bool(config.getini(ini))
    except (ValueError, pytest.UsageError) as error:
        raise pytest.UsageError(f"pytest-dummyweights: ini {ini}: {error}: use true or false") from None


def checked(setting: Setting, parse: Callable[[str], T]) -> T:
    """``parse(setting.text)``, a bad value becoming a usage error naming the option or ini key."""
    assert setting.text is not None
    try:
        return parse(setting.text)
    except (ValueError, DummyWeightsError) as error:
        raise pytest.UsageError(f"pytest-dummyweights: {setting.source}={setting.text!r}: {error}") from None


def parse_seed(text: str) -> int:
    if not re.fullmatch(r"\d+", text.strip()):
        raise ValueError("the seed must be a non-negative integer, e.g. 0")
    return check_seed(int(text))


def one_of(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"use one of {', '.join(choices)}")
        return text

    return parse


def worker_id(config: pytest.Config) -> str | None:
    """``gw0``, ``gw1``... on an xdist worker; None on the controller or without xdist."""
    workerinput = getattr(config, "workerinput", None)
    return None if workerinput is None else str(workerinput["workerid"])


def _check_scales(scales: str) -> str:
    check_rule_arguments(scales, None)
    return scales


def _check_device(device: str) -> str:
    check_device(device)
    if device.startswith("gpu"):
        # lazy: device imports Paddle, which a run that names no GPU never needs
        from pytest_dummyweights._runtime.device import check_device_exists
        from pytest_dummyweights._runtime.requirements import require_paddle

        require_paddle()
        check_device_exists(device)
    return device


def read_settings(config: OptionSource) -> Settings:
    """The run's settings, each checked (a bad value is a usage error naming its option or ini key)."""
    cache_bytes = read_setting(config, "--dummy-cache-bytes", "dummyweights_cache_bytes")
    storage = read_setting(config, "--dummy-storage", "dummyweights_storage")
    return Settings(
        seed=checked(read_setting(config, "--dummy-seed", "dummyweights_seed"), parse_seed),
        device=checked(read_setting(config, "--dummy-device", "dummyweights_device"), _check_device),
        cache_bytes=checked(cache_bytes, parse_bytes) if cache_bytes.text else None,
        cache_enabled=not config.getoption("--no-dummy-cache"),
        isolation=checked(read_setting(config, "--dummy-isolation", "dummyweights_isolation"), one_of(*ISOLATION_MODES)),
        scales=checked(read_setting(config, "--dummy-scales", "dummyweights_scales"), _check_scales),
        smoke=read_flag(config, "dummyweights_smoke"),
        storage=checked(storage, one_of(*STORAGES)) if storage.text else None,
        store_dir=read_setting(config, "--dummy-store-dir", "dummyweights_store_dir").text,
        checkpoint_check=checked(
            read_setting(config, "--dummy-checkpoint-check", "dummyweights_checkpoint_check"), one_of(*CHECKPOINT_CHECKS)
        ),
        real_weights=read_flag(config, "dummyweights_real_weights", "--real-weights"),
    )


def run_spec(config: pytest.Config, spec: DummySpec) -> DummySpec:
    """``spec`` with what it leaves unset taken from the run's options."""
    settings = config.stash[SETTINGS]
    return dataclasses.replace(spec, **{key: getattr(settings, key) for key in RUN_DEFAULTS if getattr(spec, key) is None})


def run_stats(config: pytest.Config, extra_reports: Iterable[dict[str, Any]] = ()) -> CacheStats | None:
    """The run's counts so far: every xdist worker's, this process's cache's and ``extra_reports`` (intercepting
    processes'), merged; None when no process of the run made a model cache, so a run without builds imports
    nothing of the cache."""
    reports = [*config.stash[WORKER_REPORTS], *extra_reports]
    if CACHE in config.stash:
        reports.append(config.stash[CACHE].stats.to_report())
    if not reports:
        return None
    from pytest_dummyweights._cache.stats import CacheStats  # lazy: see the module docstring

    return CacheStats.from_reports(reports)
