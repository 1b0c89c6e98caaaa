"""What the start-up hook runs in a new Python process while a run intercepts: intercept here too, with the run's settings.

Only reached when the variable is set (the hook's line checks it first). Runs once, however many hook files a
process reads. Imports neither NumPy nor Paddle: a subprocess that never loads a model pays almost nothing.
A process that cannot intercept says so on stderr, in one line, rather than load real weights silently.
"""

from __future__ import annotations

import os
import sys

from pytest_dummyweights._intercept.subprocesses import ENV
from pytest_dummyweights.errors import folded

_started = False


def run() -> None:
    global _started
    if _started:
        return
    _started = True
    try:
        # lazy, and inside the try: a session that cannot be imported here is one line on stderr, not a crashed process
        from pytest_dummyweights._intercept.session import start_in_subprocess

        start_in_subprocess(os.environ[ENV])
    except Exception as error:
        sys.stderr.write(f"pytest-dummyweights: this process cannot intercept loading ({folded(error)}); it loads real weights\n")
