"""Where a path the user wrote is: a config or checkpoint given relative to the test's directory or the rootdir."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from pytest_dummyweights.errors import DummyWeightsError


def locate(given: str | os.PathLike, search_dirs: Iterable[Path], what: str, hint: str) -> Path:
    """An absolute path is taken as it is; a relative one is looked for in ``search_dirs``, first found wins."""
    path = Path(given).expanduser()
    candidates = [path] if path.is_absolute() else list(dict.fromkeys(Path(d) / path for d in search_dirs)) or [path]
    found = next((candidate for candidate in candidates if candidate.exists()), None)
    if found is None:
        looked = ", ".join(_shown(candidate) for candidate in candidates)
        raise DummyWeightsError(f"{what} {os.fspath(given)!r} not found (looked at: {looked}); {hint}")
    return found


def _shown(path: Path) -> str:
    """A path as written, or quoted when it holds a character that would break the one-line message (a newline)."""
    text = str(path)
    return text if text.isprintable() else repr(text)
