"""The run's settings: each read once at start-up from its command-line option, else its ini key, and
checked there, so a bad value stops the run with one usage error that names where it came from."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import pytest

from pytest_dummyweights.errors import DummyWeightsError
from pytest_dummyweights.spec import check_seed

T = TypeVar("T")
ISOLATION_MODES = ("fast", "strict")  # see isolation.py


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


def parse_bytes(text: str) -> int:
    """``4GiB``, ``500MB``, ``1000000`` -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError("not a size; write e.g. 4GiB, 500MB or 1000000")
    number, prefix, binary = match.groups()
    base = 1024 if binary or not prefix else 1000
    return int(float(number) * base ** " KMGT".index(prefix.upper() or " "))


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
