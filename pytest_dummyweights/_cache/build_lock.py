"""The build lock of one device, across the processes of a run (xdist workers): a reader-writer file lock.

A build that fills memory (filled storage, real weights, a GPU) takes it alone, so two builds' memory
peaks never add up. A mapped CPU build writes almost nothing: its parameters map pages of the shared
value store, which cost no memory of their own until a test writes them. Such builds take the lock
shared, so they run at the same time as each other, and only wait for (or hold off) a filling build.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_dummyweights.vocabulary import default_storage


def writes_little(plan: Any) -> bool:
    """Whether a planned build (a ``pipeline.Plan``) maps its parameters instead of filling them: mapped storage
    (the default for CPU builds on Linux), on the CPU, with dummy values."""
    on_cpu = plan.resolved.device == "cpu"
    return (plan.spec.storage or default_storage(on_cpu)) == "mapped" and on_cpu and not plan.spec.real_weights


@contextlib.contextmanager
def build_lock(path: Path, *, shared: bool) -> Iterator[None]:
    """Hold the lock at ``path``: ``shared`` with other shared holders, else alone. Without ``fcntl``
    (Windows), every build takes it alone."""
    try:  # by platform: fcntl on POSIX, filelock's lock elsewhere
        import fcntl
    except ImportError:
        from filelock import FileLock

        with FileLock(str(path)):
            yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
