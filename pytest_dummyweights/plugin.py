"""pytest glue of the dummy weights: options, the ``dummy_load`` marker, fixtures and the run summary.

The work is done by plain functions (``build``) and the per-worker ``cache``; the diff coverage gate
has its own plugin object (``gate_plugin``), registered from ``pytest_configure`` when it is turned on;
the fleet (xdist scheduling, CI shards) is the plugin module ``_fleet.plugin``, registered with this one;
interception (``--dummy-weights``, the marker around its test) is the plugin module ``_intercept.plugin``,
registered with this one too.

Installed, this module is loaded by every pytest run of its environment, most of which build nothing: it
imports at the top what registering its options, marker and hooks needs, and the build's machinery (the cache,
the build context, the run's counts) in the function that first uses it (``bench/startup.py`` measures it).

A build calls the ``pytest_dummyweights_*`` hooks through the test's own ``node.ihook``, as pytest calls its
own hooks: a conftest.py's implementations apply to the tests under its directory only (the cache key names
them, see ``fingerprint``). The test's ``dummy_load`` marker is the one of the nearest level that has one
(see ``marker.closest_marker``).
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

import pytest

from pytest_dummyweights import hookspecs
from pytest_dummyweights._gate import plugin as gate_plugin
from pytest_dummyweights.errors import DummyWeightsError, RealWeightsUnavailable
from pytest_dummyweights.marker import MARKER, MARKER_DOC, requested_spec
from pytest_dummyweights.settings import CACHE, SETTINGS, WORKER_REPORTS, read_settings, run_spec, run_stats, worker_id
from pytest_dummyweights.spec import DummySpec, describe_config, spec_from_call
from pytest_dummyweights.vocabulary import (
    CHECKPOINT_CHECKS,
    DEFAULT_CHECKPOINT_CHECK,
    DEFAULT_DEVICE,
    DEFAULT_ISOLATION,
    DEFAULT_SCALES,
    DEFAULT_SEED,
    ISOLATION_MODES,
    STORAGES,
)

# Registered with this module: the fleet's hooks must be there before pytest_configure (xdist's -n auto), and
# interception's from start-up on (conftest imports), around each test and on xdist workers.
pytest_plugins = ("pytest_dummyweights._fleet.plugin", "pytest_dummyweights._intercept.plugin")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dummyweights", "dummy weights for Paddle models (pytest-dummyweights)")
    group.addoption("--dummy-seed", default=None, help="seed of the dummy weights (default: ini dummyweights_seed, else 0)")
    group.addoption("--dummy-device", default=None, help="auto, cpu, gpu or gpu:N (default: ini dummyweights_device, else auto)")
    group.addoption(
        "--dummy-cache-bytes",
        default=None,
        help="memory budget of each worker's model cache, e.g. 4GiB (default: ini dummyweights_cache_bytes, "
        "else a quarter of RAM, or half of the GPU's memory, shared by the workers on the device)",
    )
    group.addoption("--no-dummy-cache", action="store_true", help="build every model fresh for each test")
    group.addoption(
        "--dummy-isolation",
        default=None,
        choices=ISOLATION_MODES,
        help="how a cached model is checked after each test: fast (probed elements) or strict (every byte); "
        "default: ini dummyweights_isolation, else fast",
    )
    group.addoption(
        "--dummy-storage",
        default=None,
        choices=STORAGES,
        help="mapped: parameters map a shared value store copy-on-write (CPU, Linux); filled: every byte written "
        "(default: ini dummyweights_storage, else mapped for CPU builds on Linux, filled otherwise)",
    )
    group.addoption(
        "--dummy-store-dir",
        default=None,
        help="directory in which the value store keeps its own subdirectory, pytest-dummyweights-store, and touches nothing else "
        "(default: ini dummyweights_store_dir, else /dev/shm/pytest-dummyweights-UID)",
    )
    group.addoption(
        "--dummy-scales", default=None, help="values of scale-like parameters: default or neutral (default: ini dummyweights_scales)"
    )
    group.addoption(
        "--dummy-checkpoint-check",
        default=None,
        choices=CHECKPOINT_CHECKS,
        help="a model that disagrees with its checkpoint= fails the test at setup (error), warns (warn), or is not checked (off); "
        "default: ini dummyweights_checkpoint_check, else error",
    )
    group.addoption(
        "--real-weights",
        action="store_true",
        default=None,
        help="load the real weights of each test's checkpoint= instead of dummy ones; tests without a checkpoint holding data are skipped",
    )
    parser.addini("dummyweights_checkpoint_check", "checkpoint check: error, warn or off", default=DEFAULT_CHECKPOINT_CHECK)
    parser.addini("dummyweights_real_weights", "load checkpoints' real weights (the nightly switch)", type="bool", default=False)
    parser.addini("dummyweights_storage", "storage of dummy weights: mapped or filled (empty: mapped for CPU builds on Linux)", default="")
    parser.addini("dummyweights_store_dir", "directory in which the value store keeps its own subdirectory", default="")
    parser.addini("dummyweights_seed", "seed of the dummy weights", default=str(DEFAULT_SEED))
    parser.addini("dummyweights_device", "device of dummy builds: auto, cpu, gpu or gpu:N", default=DEFAULT_DEVICE)
    parser.addini("dummyweights_cache_bytes", "memory budget of each worker's model cache, e.g. 4GiB", default="")
    parser.addini("dummyweights_isolation", "isolation check after each test: fast or strict", default=DEFAULT_ISOLATION)
    parser.addini("dummyweights_scales", "values of scale-like parameters: default (the published rule) or neutral", default=DEFAULT_SCALES)
    parser.addini("dummyweights_smoke", "run a finiteness smoke forward pass after each build", type="bool", default=False)
    gate_plugin.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_DOC)
    config.stash[SETTINGS] = read_settings(config)
    config.stash[WORKER_REPORTS] = []
    gate_plugin.configure(config)


def _cache(request: pytest.FixtureRequest) -> Any:
    """This worker's model cache, made on first use (so Paddle is imported only by runs that build)."""
    config = request.config
    if CACHE not in config.stash:
        # lazy (see the module docstring): the cache, its budget and the device import Paddle, whose absence is
        # said first, in one line
        from pytest_dummyweights._runtime.requirements import require_paddle

        require_paddle()
        from pytest_dummyweights._cache.budget import default_budget_bytes, workers_per_device
        from pytest_dummyweights._cache.model_cache import ModelCache
        from pytest_dummyweights._runtime.device import resolve_device

        settings = config.stash[SETTINGS]
        budget = settings.cache_bytes
        if budget is None:
            workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
            budget = default_budget_bytes(resolve_device(settings.device, worker_id(config)), workers_per_device(workers))
        shared_tmp = request.getfixturevalue("tmp_path_factory").getbasetemp().parent if worker_id(config) else None
        config.stash[CACHE] = ModelCache(budget, enabled=settings.cache_enabled, lock_dir=shared_tmp, isolation=settings.isolation)
    return config.stash[CACHE]


def _fail(request: pytest.FixtureRequest, config_description: str, error: Exception) -> NoReturn:
    """Fail the test with one line; ``from None``: the error being handled is that line, not a second report."""
    message = f"{request.node.nodeid}: dummy build of config {config_description!r} failed: {error}"
    raise pytest.fail.Exception(message, pytrace=False) from None


def _serve(request: pytest.FixtureRequest, spec: DummySpec) -> Any:
    """The model for ``spec`` from this worker's cache; after the test, its isolation is checked."""
    from pytest_dummyweights._building.context import BuildContext  # lazy: see the module docstring

    spec = run_spec(request.config, spec)
    try:
        cache = _cache(request)
        request.addfinalizer(lambda: cache.check_loans(request.node.nodeid))
        # the test's own hooks: a conftest.py's implementations apply to the tests under it only, as pytest's own hooks do
        context = BuildContext(
            search_dirs=(request.path.parent, request.config.rootpath), hooks=request.node.ihook, worker_id=worker_id(request.config)
        )
        return cache.get(spec, context)
    except RealWeightsUnavailable as error:
        pytest.skip(str(error))
    except DummyWeightsError as error:
        _fail(request, spec.describe(), error)


@pytest.fixture
def dummy_model(request: pytest.FixtureRequest) -> Any:
    """The real model class built from the test's ``dummy_load`` config (or indirect parameter), with dummy weights."""
    try:
        spec = requested_spec(request)
    except DummyWeightsError as error:
        marker = request.node.get_closest_marker(MARKER)
        given = marker.args[0] if marker is not None and marker.args else getattr(request, "param", "<none>")
        _fail(request, describe_config(given), error)
    return _serve(request, spec)


@pytest.fixture
def dummy_model_factory(request: pytest.FixtureRequest) -> Any:
    """``make(config, **keywords)``: build models with dummy weights, for tests that need several."""

    def make(*args: Any, **keywords: Any) -> Any:
        try:
            spec = spec_from_call(args, keywords, "dummy_model_factory")
        except DummyWeightsError as error:
            _fail(request, describe_config(args[0] if args else keywords.get("config", "<none>")), error)
        return _serve(request, spec)

    return make


# --- run summary, aggregated on the xdist controller -------------------------------------------


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker, hand this worker's counts to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and CACHE in session.config.stash:
        workeroutput["dummyweights"] = session.config.stash[CACHE].stats.to_report()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    report = getattr(node, "workeroutput", {}).get("dummyweights")
    if report is not None:
        node.config.stash[WORKER_REPORTS].append(report)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    # lazy: imported at the top, these plugin modules would be imported before pytest_plugins registers them,
    # and pytest's assertion rewriting then warns that it cannot rewrite them (PytestAssertRewriteWarning)
    from pytest_dummyweights._fleet.plugin import spread_notes
    from pytest_dummyweights._intercept.plugin import summary as intercepted_summary

    if worker_id(config) is not None:
        return
    intercepted_reports, intercepted_lines = intercepted_summary(config)
    stats = run_stats(config, intercepted_reports)
    counts = stats.summary_lines(config.option.verbose) if stats is not None else []
    lines = counts + intercepted_lines + spread_notes(config, stats)
    if lines:
        terminalreporter.write_sep("=", "dummyweights")
        for line in lines:
            terminalreporter.write_line(line)
