"""The ``dummy_load`` marker: which one a test has, and the spec ``dummy_model`` builds from it (or from an
indirect parameter), read alike by the fixture, by the fleet at collection and by interception."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest

from pytest_dummyweights.errors import DummyWeightsError
from pytest_dummyweights.spec import DummySpec, describe_config, spec_from_call

MARKER = "dummy_load"
MARKER_DOC = (
    f"dummy_load(config, *, {', '.join(f'{f.name}={f.default!r}' for f in dataclasses.fields(DummySpec)[1:])}): "
    "build the real model class from config with dummy weights for the dummy_model fixture (see DummySpec); "
    "with or without a config, checkpoint loads (from_pretrained) get dummy weights while the test runs"
)
_NO_PARAM = object()  # no indirect parameter given


def closest_marker(node: pytest.Item) -> pytest.Mark | None:
    """The ``dummy_load`` marker of the nearest level that has one: the function (its decorators and a
    ``pytest.param``'s marks), then its class (with the class's bases), then the module. Two on that level are
    ambiguous, so an error naming both, never one of them silently."""
    found = list(node.iter_markers_with_node(MARKER))
    if not found:
        return None
    level = found[0][0]
    nearest = [mark for where, mark in found if where is level]
    if len(nearest) > 1:
        markers = " and ".join(
            f"{MARKER}({describe_config(mark.args[0] if mark.args else mark.kwargs.get('config'))!r})" for mark in nearest
        )
        raise DummyWeightsError(
            f"{len(nearest)} {MARKER} markers on {type(level).__name__.lower()} {level.name}: {markers}; keep one "
            "(the nearest level wins: function, class, module; one level takes one). For several models in one test use "
            "dummy_model_factory; for one test per config, parametrize('dummy_model', [...], indirect=True)"
        )
    return nearest[0]


def requested_spec(request: pytest.FixtureRequest) -> DummySpec:
    """The spec ``dummy_model`` builds for the requesting test: its indirect parameter, else its marker."""
    return _spec_from(closest_marker(request.node), getattr(request, "param", _NO_PARAM))


def spec_of_item(item: pytest.Item) -> DummySpec | None:
    """The spec ``dummy_model`` will build for a collected test, or None when it does not use ``dummy_model``."""
    if "dummy_model" not in getattr(item, "fixturenames", ()):
        return None
    callspec = getattr(item, "callspec", None)
    return _spec_from(closest_marker(item), callspec.params.get("dummy_model", _NO_PARAM) if callspec else _NO_PARAM)


def _spec_from(marker: pytest.Mark | None, param: Any) -> DummySpec:
    if param is not _NO_PARAM and marker is not None:
        raise DummyWeightsError("the test has both a dummy_load marker and an indirect parametrization of dummy_model; keep one")
    if isinstance(param, DummySpec):
        return param
    if isinstance(param, (str, os.PathLike)):
        return DummySpec(param)
    if param is not _NO_PARAM:
        raise DummyWeightsError(
            f"an indirect parameter of dummy_model must be a config path or a DummySpec; got {type(param).__name__} {param!r} "
            "(for a dict config or keywords, write DummySpec(config_dict, ...))"
        )
    if marker is not None:
        return spec_from_call(marker.args, marker.kwargs, "@pytest.mark.dummy_load")
    raise DummyWeightsError(
        "dummy_model needs @pytest.mark.dummy_load(config, ...) on the test, its class or module, "
        "or an indirect parametrization: @pytest.mark.parametrize('dummy_model', [DummySpec(...)], indirect=True)"
    )
