"""pytest-dummyweights: the real Paddle model class, built from its real config, with dummy weights."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_dummyweights import mla
from pytest_dummyweights.errors import DummyWeightsError
from pytest_dummyweights.spec import DummySpec

if TYPE_CHECKING:  # imported on first use (__getattr__); named here for type checkers and the API reference
    from pytest_dummyweights._building.pipeline import build_dummy_model
    from pytest_dummyweights._intercept.targets import InterceptTarget
    from pytest_dummyweights._values.fill import initialize_dummy_weights

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it from here
__all__ = ["DummySpec", "DummyWeightsError", "InterceptTarget", "__version__", "build_dummy_model", "initialize_dummy_weights", "mla"]


def __getattr__(name: str) -> Any:
    """Import Paddle (and the interception machinery) only when used, so loading the plugin stays cheap."""
    if name == "build_dummy_model":
        from pytest_dummyweights._building.pipeline import build_dummy_model

        return build_dummy_model
    if name == "InterceptTarget":
        from pytest_dummyweights._intercept.targets import InterceptTarget

        return InterceptTarget
    if name == "initialize_dummy_weights":
        from pytest_dummyweights._values.fill import initialize_dummy_weights

        return initialize_dummy_weights
    raise AttributeError(f"module 'pytest_dummyweights' has no attribute {name!r}")
