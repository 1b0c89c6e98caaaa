"""What a build needs installed, and the one line that says how to install what is missing.

Paddle is not a dependency of the package (CPU and GPU users need different builds of it), and
PaddleFormers only serves configs that name its classes. So both are looked for before the modules
that import them are loaded: a missing one is ``MissingDependency``, one line naming the pip command
(at the test's setup, or ``error:`` and exit status 2 at the command line), never a
``ModuleNotFoundError`` from inside the plugin. It is an ``ImportError`` too, for code that tests for
optional imports. Importable without Paddle.
"""

from __future__ import annotations

import importlib
import importlib.util

from pytest_dummyweights.errors import MissingDependency, folded

INSTALL = {
    "paddle": "pip install paddlepaddle (or paddlepaddle-gpu for GPUs)",
    "paddleformers": 'pip install "paddleformers<0.5"',  # later releases import paddlefleet, which is not on PyPI
}
NAMES = {"paddle": "Paddle", "paddleformers": "PaddleFormers"}


def install_hint(module: str | None) -> str | None:
    """The pip command for a missing module of Paddle or PaddleFormers, or None for any other module."""
    return INSTALL.get((module or "").partition(".")[0])


def missing(package: str) -> str | None:
    """Why ``package`` (``paddle`` or ``paddleformers``) cannot be used, with its install command, or None when it imports."""
    if importlib.util.find_spec(package) is None:
        return f"{NAMES[package]} is not installed: {INSTALL[package]}"
    try:
        importlib.import_module(package)
    except ImportError as error:
        return f"{NAMES[package]} is installed but cannot be imported ({folded(error)}); {INSTALL[package]}"
    return None


def require_paddle() -> None:
    """Raise ``MissingDependency`` when Paddle cannot be imported."""
    problem = missing("paddle")
    if problem is not None:
        raise MissingDependency(problem)
