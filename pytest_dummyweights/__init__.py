"""pytest-dummyweights: the real Paddle model class, built from its real config, with dummy weights."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pytest_dummyweights import mla
from pytest_dummyweights.errors import (
    CheckpointMismatch,
    CheckpointMismatchWarning,
    DummyWeightsError,
    DummyWeightsWarning,
    GateError,
    InterceptPluginWarning,
    MissingDependency,
    RealWeightsUnavailable,
    ShrinkWarning,
    ValueRulesIgnoredWarning,
)
from pytest_dummyweights.spec import DummySpec

if TYPE_CHECKING:  # imported on first use (__getattr__); named here for type checkers and the API reference
    from pytest_dummyweights._building.pipeline import build_dummy_model
    from pytest_dummyweights._intercept.targets import InterceptTarget
    from pytest_dummyweights._values.fill import initialize_dummy_weights

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it from here
BUILD_FUNCTIONS = {"build_dummy_model": "._building.pipeline", "initialize_dummy_weights": "._values.fill"}  # imported on first use
LAZY = {**BUILD_FUNCTIONS, "InterceptTarget": "._intercept.targets"}
__all__ = [
    "CheckpointMismatch",
    "CheckpointMismatchWarning",
    "DummySpec",
    "DummyWeightsError",
    "DummyWeightsWarning",
    "GateError",
    "InterceptPluginWarning",
    "InterceptTarget",
    "MissingDependency",
    "RealWeightsUnavailable",
    "ShrinkWarning",
    "ValueRulesIgnoredWarning",
    "__version__",
    "build_dummy_model",
    "initialize_dummy_weights",
    "mla",
]


def __getattr__(name: str) -> Any:
    """Import Paddle only when the build is used, so loading the plugin stays cheap (and works without Paddle:
    asking for the build then raises ``MissingDependency``, naming the install command)."""
    if name not in LAZY:
        raise AttributeError(f"module 'pytest_dummyweights' has no attribute {name!r}")
    from pytest_dummyweights._runtime.requirements import require_paddle

    if name in BUILD_FUNCTIONS:
        require_paddle()
    return getattr(importlib.import_module(LAZY[name], __name__), name)
