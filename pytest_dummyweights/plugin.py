"""pytest glue: options, markers, fixtures, hooks and the run summary. The work is done by plain
functions in ``build`` and by the per-worker ``cache``."""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from pathlib import Path
from typing import Any, NoReturn

import pytest

from .errors import DummyWeightsError
from .gate import INSTALL_GATE_EXTRA, ComparePoint, GateError, measure, require_diff_cover, resolve_compare_ref
from .spec import DummySpec, check_device, spec_from_call
from .value_rules import check_rule_arguments

MARKER = "dummy_load"
MARKER_DOC = (
    "dummy_load(config, *, dtype=None, overrides=None, seed=None, std=None, device=None, model=None, "
    "new_keys=(), fresh=False, scales=None, value_rules=None, smoke=None, allow_unset=()): build the real model class from config with dummy weights for the "
    "dummy_model fixture"
)
SETTINGS = pytest.StashKey["Settings"]()
CACHE = pytest.StashKey[Any]()
WORKER_STATS = pytest.StashKey[list]()


@dataclasses.dataclass(frozen=True)
class Settings:
    """The run's options, read once."""

    seed: int
    device: str
    cache_bytes: int | None  # None: the default share of the device's memory
    cache_enabled: bool
    scales: str
    smoke: bool


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dummyweights", "dummy weights for Paddle models (pytest-dummyweights)")
    group.addoption("--dummy-seed", type=int, default=None, help="seed of the dummy weights (default: ini dummyweights_seed, else 0)")
    group.addoption("--dummy-device", default=None, help="auto, cpu, gpu or gpu:N (default: ini dummyweights_device, else auto)")
    group.addoption(
        "--dummy-cache-bytes",
        default=None,
        help="memory budget of each worker's model cache, e.g. 4GiB (default: ini dummyweights_cache_bytes, "
        "else a quarter of RAM, or half of the GPU's memory, shared by the workers on the device)",
    )
    group.addoption("--no-dummy-cache", action="store_true", help="build every model fresh for each test")
    parser.addini("dummyweights_seed", "seed of the dummy weights", default="0")
    parser.addini("dummyweights_device", "device of dummy builds: auto, cpu, gpu or gpu:N", default="auto")
    parser.addini("dummyweights_cache_bytes", "memory budget of each worker's model cache, e.g. 4GiB", default="")
    parser.addini("dummyweights_scales", "values of scale-like parameters: default (the published rule) or neutral", default="default")
    parser.addini("dummyweights_smoke", "run a finiteness smoke forward pass after each build", type="bool", default=False)
    _add_gate_options(parser)


def parse_bytes(text: str) -> int:
    """``4GiB``, ``500MB``, ``1000000`` -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"cache budget {text!r} is not a size; write e.g. 4GiB, 500MB or 1000000")
    number, prefix, binary = match.groups()
    base = 1024 if binary or not prefix else 1000
    return int(float(number) * base ** " KMGT".index(prefix.upper() or " "))


def _option(config: pytest.Config, name: str) -> str:
    value = config.getoption(f"--dummy-{name}")
    return str(value) if value is not None else str(config.getini(f"dummyweights_{name.replace('-', '_')}"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_DOC)
    try:
        device = _option(config, "device")
        check_device(device)
        budget = _option(config, "cache-bytes")
        seed = int(_option(config, "seed"))
        if seed < 0:
            raise ValueError(f"the seed must be a non-negative integer; got {seed}")
        config.stash[SETTINGS] = Settings(
            seed=seed,
            device=device,
            cache_bytes=parse_bytes(budget) if budget else None,
            cache_enabled=not config.getoption("--no-dummy-cache"),
            scales=str(config.getini("dummyweights_scales")),
            smoke=bool(config.getini("dummyweights_smoke")),
        )
        check_rule_arguments(config.stash[SETTINGS].scales, None)
    except (ValueError, DummyWeightsError) as error:
        raise pytest.UsageError(f"pytest-dummyweights: {error}") from None
    config.stash[WORKER_STATS] = []
    _configure_gate(config)


def _worker_id() -> str | None:
    return os.environ.get("PYTEST_XDIST_WORKER")


def _cache(request: pytest.FixtureRequest) -> Any:
    """This worker's model cache, made on first use (so Paddle is imported only by runs that build)."""
    config = request.config
    if CACHE not in config.stash:
        from .cache import ModelCache, default_budget_bytes, workers_per_device
        from .device import resolve_device

        settings = config.stash[SETTINGS]
        budget = settings.cache_bytes
        if budget is None:
            workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
            budget = default_budget_bytes(resolve_device(settings.device, _worker_id()), workers_per_device(workers))
        shared_tmp = request.getfixturevalue("tmp_path_factory").getbasetemp().parent if _worker_id() else None
        config.stash[CACHE] = ModelCache(budget, enabled=settings.cache_enabled, lock_dir=shared_tmp)
    return config.stash[CACHE]


def _fail(request: pytest.FixtureRequest, config_description: str, error: Exception) -> NoReturn:
    pytest.fail(f"{request.node.nodeid}: dummy build of config {config_description!r} failed: {error}", pytrace=False)


def _serve(request: pytest.FixtureRequest, spec: DummySpec) -> Any:
    """The model for ``spec`` from this worker's cache; after the test, its isolation is checked."""
    settings = request.config.stash[SETTINGS]
    unset = {key: getattr(settings, key) for key in ("seed", "device", "scales", "smoke") if getattr(spec, key) is None}
    spec = dataclasses.replace(spec, **unset)
    try:
        cache = _cache(request)
        request.addfinalizer(lambda: cache.check_returns(request.node.nodeid))
        return cache.get(spec, search_dirs=[request.path.parent, request.config.rootpath], hooks=request.config.hook, worker_id=_worker_id())
    except DummyWeightsError as error:
        _fail(request, spec.describe(), error)


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
    return _serve(request, spec)


@pytest.fixture
def dummy_model_factory(request: pytest.FixtureRequest) -> Any:
    """``make(config, **keywords)``: build models with dummy weights, for tests that need several."""

    def make(*args: Any, **keywords: Any) -> Any:
        try:
            spec = spec_from_call(args, keywords, "dummy_model_factory")
        except DummyWeightsError as error:
            _fail(request, str(args[0] if args else keywords.get("config", "<none>")), error)
        return _serve(request, spec)

    return make


# --- run summary, aggregated on the xdist controller -------------------------------------------


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker, hand this worker's counts to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and CACHE in session.config.stash:
        workeroutput["dummyweights"] = dataclasses.asdict(session.config.stash[CACHE].stats)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    stats = getattr(node, "workeroutput", {}).get("dummyweights")
    if stats is not None:
        node.config.stash[WORKER_STATS].append(stats)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    from .summary import summary_lines

    if hasattr(config, "workerinput"):
        return
    reports = list(config.stash[WORKER_STATS])
    if CACHE in config.stash:
        reports.append(dataclasses.asdict(config.stash[CACHE].stats))
    lines = summary_lines(reports, config.option.verbose)
    if lines:
        terminalreporter.write_sep("=", "dummyweights")
        for line in lines:
            terminalreporter.write_line(line)


# --- The diff coverage gate ----------------------------------------------------------------------------
# Options, start-up checks, and the run of ``gate.measure`` once pytest-cov has combined its data.


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
