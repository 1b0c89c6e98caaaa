"""pytest glue: options, markers, fixtures and hooks. The work is done by plain functions in ``build``."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest

from .errors import DummyWeightsError
from .spec import DummySpec, check_device, spec_from_call

MARKER = "dummy_load"
MARKER_DOC = (
    "dummy_load(config, *, dtype=None, overrides=None, seed=None, std=None, device=None, model=None, "
    "new_keys=(), fresh=False): build the real model class from config with dummy weights for the "
    "dummy_model fixture"
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dummyweights", "dummy weights for Paddle models (pytest-dummyweights)")
    group.addoption("--dummy-seed", type=int, default=None, help="seed of the dummy weights (default: ini dummyweights_seed, else 0)")
    group.addoption("--dummy-device", default=None, help="auto, cpu, gpu or gpu:N (default: ini dummyweights_device, else auto)")
    parser.addini("dummyweights_seed", "seed of the dummy weights", default="0")
    parser.addini("dummyweights_device", "device of dummy builds: auto, cpu, gpu or gpu:N", default="auto")


def _option(config: pytest.Config, name: str) -> str:
    value = config.getoption(f"--dummy-{name}")
    return str(value) if value is not None else str(config.getini(f"dummyweights_{name}"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_DOC)
    try:
        seed = int(_option(config, "seed"))
        device = _option(config, "device")
        check_device(device)
    except (ValueError, DummyWeightsError) as error:
        raise pytest.UsageError(f"pytest-dummyweights: {error}") from None
    config.stash[DEFAULTS] = {"seed": seed, "device": device}


DEFAULTS = pytest.StashKey[dict]()


def _with_defaults(config: pytest.Config, spec: DummySpec) -> DummySpec:
    """Fill what the spec leaves unset from the command line and ini."""
    unset = {key: value for key, value in config.stash[DEFAULTS].items() if getattr(spec, key) is None}
    return dataclasses.replace(spec, **unset)


def _build(request: pytest.FixtureRequest, spec: DummySpec) -> Any:
    from .build import build

    spec = _with_defaults(request.config, spec)
    search_dirs = [request.path.parent, request.config.rootpath]
    try:
        return build(spec, search_dirs=search_dirs, hooks=request.config.hook, worker_id=os.environ.get("PYTEST_XDIST_WORKER")).model
    except DummyWeightsError as error:
        _fail(request, spec.describe(), error)


def _fail(request: pytest.FixtureRequest, config_description: str, error: Exception) -> None:
    pytest.fail(f"{request.node.nodeid}: dummy build of config {config_description!r} failed: {error}", pytrace=False)


_NO_PARAM = object()


def _requested_spec(request: pytest.FixtureRequest) -> DummySpec:
    marker = request.node.get_closest_marker(MARKER)
    param = getattr(request, "param", _NO_PARAM)
    if param is not _NO_PARAM and marker is not None:
        raise DummyWeightsError(
            "the test has both a dummy_load marker and an indirect parametrization of dummy_model; keep one"
        )
    if param is not _NO_PARAM:
        return param if isinstance(param, DummySpec) else DummySpec(param)
    if marker is not None:
        return spec_from_call(marker.args, marker.kwargs, "@pytest.mark.dummy_load")
    raise DummyWeightsError(
        "dummy_model needs @pytest.mark.dummy_load(config, ...) on the test, its class or module, "
        "or an indirect parametrization: @pytest.mark.parametrize('dummy_model', [...], indirect=True)"
    )


@pytest.fixture
def dummy_model(request: pytest.FixtureRequest) -> Any:
    """The real model class built from the test's ``dummy_load`` config (or indirect parameter), with dummy weights."""
    try:
        spec = _requested_spec(request)
    except DummyWeightsError as error:
        marker = request.node.get_closest_marker(MARKER)
        given = marker.args[0] if marker is not None and marker.args else getattr(request, "param", "<none>")
        _fail(request, str(given), error)
    return _build(request, spec)


@pytest.fixture
def dummy_model_factory(request: pytest.FixtureRequest) -> Any:
    """``make(config, **keywords)``: build models with dummy weights, for tests that need several."""

    def make(*args: Any, **keywords: Any) -> Any:
        try:
            spec = spec_from_call(args, keywords, "dummy_model_factory")
        except DummyWeightsError as error:
            _fail(request, str(args[0] if args else keywords.get("config", "<none>")), error)
        return _build(request, spec)

    return make
