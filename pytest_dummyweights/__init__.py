"""pytest-dummyweights: the real Paddle model class, built from its real config, with dummy weights.

The public face: every name in ``__all__`` is the API, and the manual documents nothing else; hook implementers
need nothing else either. The subpackages with a leading underscore (``_building``, ``_values``, ...) are internal
and may change in any release. Names are imported on first use, so importing the package, as pytest does when it
loads the plugin, imports neither Paddle nor the build.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # imported on first use (__getattr__); named here for type checkers and the API reference
    from pytest_dummyweights import mla
    from pytest_dummyweights._building.context import BuildContext, BuildHooks
    from pytest_dummyweights._building.pipeline import BuildResult, Plan, build_dummy_model, execute, plan_build
    from pytest_dummyweights._building.shrink import ShrinkResult, describe_changes, shrink_config
    from pytest_dummyweights._checkpoints.loader_feed import FeedResult, feed_load_weights
    from pytest_dummyweights._checkpoints.manifest import Manifest, load_manifest
    from pytest_dummyweights._checkpoints.structure import CheckReport, Layout, TensorSpec, check_model
    from pytest_dummyweights._intercept.targets import InterceptTarget
    from pytest_dummyweights._values.fill import initialize_dummy_weights
    from pytest_dummyweights.spec import DummySpec

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it from here
LAZY = {  # public name: the module that defines it (or, named alike, is it), imported when the name is first asked for
    "BuildContext": "._building.context",
    "BuildHooks": "._building.context",
    "BuildResult": "._building.pipeline",
    "CheckReport": "._checkpoints.structure",
    "DummySpec": ".spec",
    "FeedResult": "._checkpoints.loader_feed",
    "InterceptTarget": "._intercept.targets",
    "Layout": "._checkpoints.structure",
    "Manifest": "._checkpoints.manifest",
    "Plan": "._building.pipeline",
    "ShrinkResult": "._building.shrink",
    "TensorSpec": "._checkpoints.structure",
    "build_dummy_model": "._building.pipeline",
    "check_model": "._checkpoints.structure",
    "describe_changes": "._building.shrink",
    "execute": "._building.pipeline",
    "feed_load_weights": "._checkpoints.loader_feed",
    "initialize_dummy_weights": "._values.fill",
    "load_manifest": "._checkpoints.manifest",
    "mla": ".mla",
    "plan_build": "._building.pipeline",
    "shrink_config": "._building.shrink",
}
NEEDS_PADDLE = frozenset({"._building.pipeline", "._checkpoints.loader_feed", "._values.fill"})  # these modules import Paddle
__all__ = [
    "BuildContext",
    "BuildHooks",
    "BuildResult",
    "CheckReport",
    "CheckpointMismatch",
    "CheckpointMismatchWarning",
    "DummySpec",
    "DummyWeightsError",
    "DummyWeightsWarning",
    "FeedResult",
    "GateError",
    "InterceptPluginWarning",
    "InterceptTarget",
    "Layout",
    "Manifest",
    "MissingDependency",
    "Plan",
    "RealWeightsUnavailable",
    "ShrinkResult",
    "ShrinkWarning",
    "TensorSpec",
    "ValueRulesIgnoredWarning",
    "__version__",
    "build_dummy_model",
    "check_model",
    "describe_changes",
    "execute",
    "feed_load_weights",
    "initialize_dummy_weights",
    "load_manifest",
    "mla",
    "plan_build",
    "shrink_config",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module when the name is first used. Without Paddle, asking for a name whose module needs
    it raises ``MissingDependency`` (a ``DummyWeightsError`` and an ``ImportError``) naming the install command."""
    if name not in LAZY:
        raise AttributeError(f"module 'pytest_dummyweights' has no attribute {name!r}")
    if LAZY[name] in NEEDS_PADDLE:
        importlib.import_module("._runtime.requirements", __name__).require_paddle()
    module = importlib.import_module(LAZY[name], __name__)
    return module if LAZY[name] == f".{name}" else getattr(module, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *LAZY})
