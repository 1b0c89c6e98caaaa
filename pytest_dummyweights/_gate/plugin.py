"""pytest glue of the diff coverage gate: its options, its start-up checks, and the ``DiffCoverGate`` plugin
object that runs ``gate.measure`` once pytest-cov has combined the coverage of every xdist worker.

``measure`` is imported by a run that turns the gate on, not at the top: every pytest run in an environment that
has the plugin installed loads this module, and most never gate (``bench/startup.py`` measures it)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_dummyweights.errors import DummyWeightsError, GateError
from pytest_dummyweights.settings import checked, read_setting, worker_id

if TYPE_CHECKING:
    from pytest_dummyweights._gate.measure import ComparePoint

PLUGIN_NAME = "dummyweights-diff-cover-gate"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("dummyweights")
    group.addoption(
        "--diff-cover-fail-under",
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


def _require_coverage(config: pytest.Config) -> None:
    from pytest_dummyweights._gate.measure import INSTALL_GATE_EXTRA  # lazy: see the module docstring

    if not config.pluginmanager.hasplugin("pytest_cov"):
        raise GateError(
            f"the diff coverage gate needs pytest-cov, which is not loaded: {INSTALL_GATE_EXTRA} "
            "(with plugin autoloading off, also pass -p pytest_cov)"
        )
    if not config.getoption("cov_source") or config.getoption("no_cov"):
        raise GateError(
            "the diff coverage gate needs coverage data, but coverage is off: add --cov=PACKAGE, the package whose changes are gated"
        )


def configure(config: pytest.Config) -> None:
    """Check everything the gate needs before any test runs; xdist workers only collect coverage."""
    fail_under = read_setting(config, "--diff-cover-fail-under", "dummyweights_diff_cover_fail_under")
    if fail_under.text is None or worker_id(config) is not None:
        return
    from pytest_dummyweights._gate.measure import parse_threshold, require_diff_cover, resolve_compare_ref  # lazy: see the module docstring

    threshold = checked(fail_under, parse_threshold)
    try:
        _require_coverage(config)
        require_diff_cover()
        compare = resolve_compare_ref(read_setting(config, "--diff-cover-compare-branch", "dummyweights_diff_cover_compare_branch").text)
    except DummyWeightsError as error:
        raise pytest.UsageError(f"pytest-dummyweights: {error}") from None
    test_patterns = (*config.getini("python_files"), "conftest.py")
    config.pluginmanager.register(DiffCoverGate(compare, threshold, test_patterns), PLUGIN_NAME)


class DiffCoverGate:
    """Measures diff coverage on the controller after pytest-cov has combined the workers' data."""

    def __init__(self, compare: ComparePoint, fail_under: float, test_patterns: tuple[str, ...]) -> None:
        self.compare = compare
        self.fail_under = fail_under
        self.test_patterns = test_patterns
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

    def _fail(self, why: str) -> None:
        self.report_lines, self.passed = [f"diff coverage gate FAILED: {why}"], False

    def _measure(self, session: pytest.Session) -> None:
        # lazy: coverage is the gate's optional extra (see measure), and measure is imported by runs that gate
        from coverage.exceptions import CoverageException

        from pytest_dummyweights._gate.measure import measure
        from pytest_dummyweights._runtime.private_coverage import coverage_of

        coverage = coverage_of(session.config)
        if coverage is None:
            self._fail("pytest-cov collected no coverage in this run: check that --cov is given and not --no-cov")
            return
        with tempfile.TemporaryDirectory() as scratch:
            xml_path = Path(scratch, "coverage.xml")
            try:
                coverage.xml_report(outfile=str(xml_path))
            except CoverageException as error:
                self._fail(f"coverage has nothing to gate ({error}): check that --cov names the package the tests import")
                return
            report = measure(xml_path, self.compare, self.fail_under, coverage, test_patterns=self.test_patterns)
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
