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
    _add_gate_options(parser)


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
    _configure_gate(config)


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


# --- The diff coverage gate ----------------------------------------------------------------------------
# Options, start-up checks, and the run of ``gate.measure`` once pytest-cov has combined its data. Its imports
# are here to keep the section self-contained; gate.py needs only the standard library until it measures.

import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from .gate import INSTALL_GATE_EXTRA, ComparePoint, GateError, measure, require_diff_cover, resolve_compare_ref  # noqa: E402


def _add_gate_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("dummyweights")
    group.addoption(
        "--diff-cover-fail-under",
        type=float,
        default=None,
        metavar="PCT",
        help="turn the diff coverage gate on: fail the run when less than PCT%% of the Python lines changed since "
        "the merge base are covered (needs pytest-cov and --cov; default: ini dummyweights_diff_cover_fail_under)",
    )
    group.addoption(
        "--diff-cover-compare-branch",
        default=None,
        metavar="REF",
        help="ref whose merge base with HEAD the gate measures changes from (default: ini "
        "dummyweights_diff_cover_compare_branch, else origin/main, else main)",
    )
    parser.addini("dummyweights_diff_cover_fail_under", "diff coverage gate threshold in percent (empty: gate off)", default="")
    parser.addini("dummyweights_diff_cover_compare_branch", "ref the diff coverage gate compares against", default="")


def _gate_setting(config: pytest.Config, name: str) -> str | float | None:
    value = config.getoption(f"--diff-cover-{name.replace('_', '-')}")
    return value if value is not None else (config.getini(f"dummyweights_diff_cover_{name}") or None)


def _require_coverage(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("pytest_cov"):
        raise GateError(
            f"the diff coverage gate needs pytest-cov, which is not loaded: {INSTALL_GATE_EXTRA} "
            "(with plugin autoloading off, also pass -p pytest_cov)"
        )
    if not config.getoption("cov_source") or config.getoption("no_cov"):
        raise GateError("the diff coverage gate needs coverage data, but coverage is off: add --cov=PACKAGE, the package whose changes are gated")


def _configure_gate(config: pytest.Config) -> None:
    """Check everything the gate needs before any test runs; xdist workers only collect coverage."""
    fail_under = _gate_setting(config, "fail_under")
    if fail_under is None or hasattr(config, "workerinput"):
        return
    try:
        threshold = float(fail_under)
    except ValueError:
        raise pytest.UsageError(f"pytest-dummyweights: dummyweights_diff_cover_fail_under must be a percentage, got {fail_under!r}") from None
    try:
        _require_coverage(config)
        require_diff_cover()
        compare = resolve_compare_ref(_gate_setting(config, "compare_branch"))
    except DummyWeightsError as error:
        raise pytest.UsageError(f"pytest-dummyweights: {error}") from None
    config.pluginmanager.register(DiffCoverGate(compare, threshold), "dummyweights-diff-cover-gate")


class DiffCoverGate:
    """Measures diff coverage on the controller after pytest-cov has combined the workers' data."""

    def __init__(self, compare: ComparePoint, fail_under: float) -> None:
        self.compare = compare
        self.fail_under = fail_under
        self.report_lines: list[str] = []
        self.passed = True

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        # pytest-cov stops, combines and saves coverage after the yield of its own runtestloop wrapper;
        # tryfirst makes this wrapper enclose that one, so the data is complete here. pytest turns
        # testsfailed into the exit status right after runtestloop, so the gate fails the run here,
        # as pytest-cov does for --cov-fail-under.
        result = yield
        if not session.config.option.collectonly:
            self._measure(session)
            if not self.passed:
                session.testsfailed += 1
        return result

    def _measure(self, session: pytest.Session) -> None:
        from coverage.exceptions import CoverageException

        coverage = session.config.pluginmanager.getplugin("_cov").cov_controller.cov
        with tempfile.TemporaryDirectory() as scratch:
            xml_path = Path(scratch, "coverage.xml")
            try:
                coverage.xml_report(outfile=str(xml_path))
            except CoverageException as error:
                self.report_lines = [f"diff coverage gate FAILED: coverage has nothing to gate ({error}): check that --cov names the package the tests import"]
                self.passed = False
                return
            report = measure(xml_path, self.compare, self.fail_under)
        self.report_lines, self.passed = report.lines(), report.passed

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.report_lines:
            return
        terminalreporter.write_sep("=", "diff coverage gate")
        *table, verdict = self.report_lines
        for line in table:
            terminalreporter.write_line(line)
        terminalreporter.write_line(verdict, green=self.passed, red=not self.passed, bold=True)
