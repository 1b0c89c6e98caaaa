"""The one home of pytest's private APIs, each behind a named function.

When pytest changes one of these, this is the only file to fix. Each function notes the versions it was
checked on; the project's compatibility matrix (``noxfile.py``) runs them all.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def basetemp_of(config: pytest.Config) -> Path:
    """The run's base temporary directory, made if need be (as xdist reads it too). Checked on pytest 8.4-9.2."""
    return Path(config._tmp_path_factory.getbasetemp())  # type: ignore[attr-defined]


def pytest_cache_of(config: pytest.Config) -> pytest.Cache | None:
    """pytest's cache before ``pytest_configure`` sets ``config.cache`` (xdist sizes ``-n auto`` earlier), or None when
    the cache plugin is off. Checked on pytest 8.4-9.2."""
    if not config.pluginmanager.has_plugin("cacheprovider") or config.getoption("cacheclear"):
        return None
    return getattr(config, "cache", None) or pytest.Cache(
        pytest.Cache.cache_dir_from_config(config, _ispytest=True), config, _ispytest=True
    )
