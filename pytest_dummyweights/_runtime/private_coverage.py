"""The one home of pytest-cov's and coverage's private APIs, each behind a named function.

When pytest-cov or coverage changes one of these, this is the only file to fix. Each function notes the
versions it was checked on; the project's compatibility matrix (``noxfile.py``) runs them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest


def coverage_of(config: pytest.Config) -> Any:
    """pytest-cov's ``coverage.Coverage`` object of this run, or None. Checked on pytest-cov 5.0-7.1."""
    plugin = config.pluginmanager.getplugin("_cov")
    controller = getattr(plugin, "cov_controller", None)
    return getattr(controller, "cov", None)


def coverage_omits(pattern: str, filename: str) -> bool:
    """Whether coverage's ``omit`` ``pattern`` matches ``filename`` by coverage's own glob rules (a relative pattern is
    from the working directory). Checked on coverage 7.17."""
    # lazy: coverage is optional (the gate's extra) and is not imported until the gate measures
    from coverage.files import GlobMatcher, abs_file, prep_patterns

    return GlobMatcher(prep_patterns([pattern])).match(abs_file(filename))
