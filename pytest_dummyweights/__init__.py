"""pytest-dummyweights: the real Paddle model class, built from its real config, with dummy weights."""

from __future__ import annotations

import importlib
from typing import Any

from . import mla
from .errors import DummyWeightsError, DummyWeightsWarning
from .spec import DummySpec

__version__ = "0.1.0"
BUILD_FUNCTIONS = {"build_dummy_model": ".build", "initialize_dummy_weights": ".fill"}  # imported on first use
__all__ = ["DummySpec", "DummyWeightsError", "DummyWeightsWarning", "__version__", "build_dummy_model", "initialize_dummy_weights", "mla"]


def __getattr__(name: str) -> Any:
    """Import Paddle only when the build is used, so loading the plugin stays cheap (and works without Paddle:
    asking for the build then raises ``requirements.MissingDependency``, naming the install command)."""
    if name not in BUILD_FUNCTIONS:
        raise AttributeError(f"module 'pytest_dummyweights' has no attribute {name!r}")
    from .requirements import require_paddle

    require_paddle()
    return getattr(importlib.import_module(BUILD_FUNCTIONS[name], __name__), name)
