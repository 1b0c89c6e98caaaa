"""The diff coverage gate: how well the lines changed since the merge base are covered, and whether that is enough.

Plain functions shared by the pytest plugin and ``python -m pytest_dummyweights gate``. The diff and the
coverage XML are read by diff-cover's library, so the numbers are what ``diff-cover`` reports, but for the
changed files the XML does not hold, which diff-cover skips and the gate does not. The rules:

- The diff's paths are relative to the git root, from any working directory: diff-cover looks them up in the
  XML by their absolute path (``GitPathTool``), and the gate reads the changed files from the root too.
- A changed Python file coverage did not measure counts as uncovered: each of its changed lines coverage
  would measure (its statements, less the configured exclusions) is an uncovered line in the table, the
  total, the step summary and the annotations, and the report names a ``--cov`` that would measure it.
- Unless the user's coverage configuration omits it (a ``[run]`` or ``[report]`` ``omit`` pattern): then it
  is not gated, on purpose, and the report names the pattern.
- Test files (pytest's ``python_files``, and ``conftest.py``) are never gated.

coverage and diff-cover are the gate's optional extra: each is imported where it is used, so the plugin and
the CLI load without them, and a missing one is an ``INSTALL_GATE_EXTRA`` line, not an ``ImportError``.
"""

from __future__ import annotations

import fnmatch
import io
import math
import os
import subprocess
import xml.etree.ElementTree as etree
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from pytest_dummyweights._runtime.private_coverage import coverage_omits
from pytest_dummyweights.errors import GateError

DEFAULT_COMPARE_REF = "origin/main"
FALLBACK_COMPARE_REF = "main"
INSTALL_GATE_EXTRA = "pip install 'pytest-dummyweights[gate]'"
CHOOSE_COMPARE_REF = "--diff-cover-compare-branch=REF (pytest) or --compare-branch REF (the gate command)"
TEST_FILE_PATTERNS = ("test_*.py", "*_test.py", "conftest.py")  # pytest's python_files default, plus conftest.py


@dataclass(frozen=True)
class ComparePoint:
    """The ref the changes are measured against; ``note`` says when it is not the one asked for."""

    ref: str
    merge_base: str
    note: str | None = None


@dataclass(frozen=True)
class FileCoverage:
    path: str
    percent: float
    uncovered: tuple[str, ...]  # line ranges as diff-cover writes them: "12-15", "20"


class Unmeasured(NamedTuple):
    """A changed file coverage did not measure, counted as uncovered."""

    path: str
    advice: str  # what makes coverage measure it


class Omitted(NamedTuple):
    """A changed file the user's coverage configuration omits, so not gated."""

    path: str
    rule: str  # as coverage's documentation writes it: "[run] omit = PATTERN"


@dataclass(frozen=True)
class GateReport:
    compare: ComparePoint
    fail_under: float
    files: tuple[FileCoverage, ...]
    measured_lines: int
    uncovered_lines: int
    percent: float
    unmeasured: tuple[Unmeasured, ...] = ()
    omitted: tuple[Omitted, ...] = ()
    warnings: tuple[str, ...] = ()
    github_annotations: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.measured_lines == 0 or self.percent >= self.fail_under

    def lines(self) -> list[str]:
        """The report for a terminal: annotations for GitHub, the table, why files are counted or not, and a last line
        saying pass or fail and why."""
        against = f"{self.compare.ref} (merge base {self.compare.merge_base[:10]})"
        notes = [*self.warnings, *([self.compare.note] if self.compare.note else [])]
        reasons = [
            f"{file.path}: coverage did not measure it, so its changed lines count as uncovered: {file.advice}" for file in self.unmeasured
        ]
        reasons += [f"{file.path}: not gated: the coverage configuration omits it ({file.rule})" for file in self.omitted]
        if self.measured_lines == 0:
            return [*notes, *reasons, f"diff coverage gate passed: no changed Python lines with coverage data against {against}"]
        width = max(len("total"), *(len(file.path) for file in self.files))
        table = [f"diff coverage against {against}:", f"{'file':<{width}}  {'covered':>7}  uncovered lines"]
        table += [f"{file.path:<{width}}  {file.percent:>6.1f}%  {', '.join(file.uncovered)}".rstrip() for file in self.files]
        table.append(f"{'total':<{width}}  {self.percent:>6.1f}%  {self.uncovered_lines} of {self.measured_lines} changed lines uncovered")
        covered = f"{self.percent:.1f}% of {self.measured_lines} changed lines covered"
        if self.passed:
            verdict = f"diff coverage gate passed: {covered}, threshold {self.fail_under:g}%"
        else:
            verdict = f"diff coverage gate FAILED: {covered}, below the threshold of {self.fail_under:g}%: test the lines listed above"
        return [*self.github_annotations, *notes, *table, *reasons, verdict]


def parse_threshold(text: str) -> float:
    """A percentage in [0, 100]: anything else could never pass (150, NaN, infinity) or never fail (-10)."""
    value = float(text)
    if not math.isfinite(value) or not 0 <= value <= 100:
        raise ValueError("the threshold must be a percentage from 0 to 100")
    return value


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def _commit_exists(ref: str) -> bool:
    return _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode == 0


def resolve_compare_ref(requested: str | None) -> ComparePoint:
    """Check the ref to compare against before any test runs, so a typo or a shallow clone fails fast."""
    if _git("rev-parse", "--is-inside-work-tree").returncode != 0:
        raise GateError(
            f"the diff coverage gate compares against a git ref, but {Path.cwd()} is not in a git repository: "
            "run from a git checkout, or turn the gate off"
        )
    ref, note = requested or DEFAULT_COMPARE_REF, None
    if not _commit_exists("HEAD"):
        raise GateError(
            f"this git repository has no commits yet, so there are no changes to compare with {ref!r}: commit your work "
            f"first; the gate then compares HEAD with origin/main, else main, or with the ref you name: {CHOOSE_COMPARE_REF}"
        )
    if requested is None and not _commit_exists(DEFAULT_COMPARE_REF) and _commit_exists(FALLBACK_COMPARE_REF):
        ref, note = FALLBACK_COMPARE_REF, f"{DEFAULT_COMPARE_REF} not found: comparing against {FALLBACK_COMPARE_REF}"
    if not _commit_exists(ref):
        raise GateError(
            f"compare ref {ref!r} not found in this repository: fetch it (`git fetch origin`; in GitHub Actions, "
            f"actions/checkout with fetch-depth: 0, since a shallow clone has no other branches), or choose another "
            f"with {CHOOSE_COMPARE_REF}"
        )
    merge_base = _git("merge-base", ref, "HEAD")
    if merge_base.returncode != 0:
        raise GateError(
            f"HEAD and {ref!r} have no common commit, so there is no merge base to compare against: the clone is "
            "probably shallow; fetch the full history (`git fetch --unshallow`, or fetch-depth: 0)"
        )
    return ComparePoint(ref, merge_base.stdout.strip(), note)


def require_diff_cover() -> None:
    try:
        import diff_cover  # noqa: F401
    except ImportError:
        raise GateError(f"the diff coverage gate needs diff-cover, which is not installed: {INSTALL_GATE_EXTRA}") from None


def configured_coverage() -> Any:
    """A ``coverage.Coverage`` with the user's configuration, found where the ``coverage`` command finds it, and no
    data file: the gate command asks it only which lines a file has and which files are omitted."""
    try:
        import coverage
        from coverage.exceptions import CoverageException
    except ImportError:
        raise GateError(f"the diff coverage gate needs coverage, which is not installed: {INSTALL_GATE_EXTRA}") from None
    try:
        return coverage.Coverage(data_file=None)
    except CoverageException as error:
        raise GateError(f"{error}: fix the coverage configuration, the one `coverage report` would read") from None


def read_coverage_xml(path: Path) -> Any:
    """The parsed Cobertura report; anything else is an error (it would measure nothing, and pass)."""
    try:
        root = etree.parse(path).getroot()
    except (OSError, etree.ParseError) as error:
        raise GateError(f"cannot read the coverage XML {str(path)!r}: {error}; write one with --cov-report=xml") from None
    if root.tag != "coverage" or root.find("packages") is None:
        raise GateError(
            f"{str(path)!r} is not a Cobertura coverage report (its root is <{root.tag}>, with no <packages>): "
            "write one with --cov-report=xml or `coverage xml`"
        )
    return root


def _is_test_file(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(Path(path).name, pattern) for pattern in patterns)


def _git_root() -> Path:
    return Path(_git("rev-parse", "--show-toplevel").stdout.strip())


def _omit_rule(coverage: Any, source: Path) -> str | None:
    """The user's omit pattern that keeps ``source`` out of coverage's report, if one does."""
    for section in ("run", "report"):
        for pattern in coverage.get_option(f"{section}:omit") or ():
            if coverage_omits(pattern, str(source)):
                return f"[{section}] omit = {pattern}"
    return None


def _unmeasured(coverage: Any, path: str, source: Path) -> tuple[Unmeasured, set[int]]:
    """A changed file coverage did not measure, and the lines to count as uncovered: those coverage would measure
    (its statements, less the configured exclusions), or every line when coverage cannot parse it."""
    from coverage.exceptions import CoverageException

    try:
        statements = coverage.analysis2(str(source))[1]
    except CoverageException as error:
        every_line = set(range(1, len(source.read_bytes().splitlines()) + 1))
        return Unmeasured(path, f"coverage cannot measure it ({error}): fix it, or omit it in the coverage configuration"), every_line
    return Unmeasured(path, f"measure it with --cov={_cov_that_measures(source)}"), set(statements)


def _cov_that_measures(source: Path) -> str:
    """A ``--cov`` value that measures ``source`` from the working directory: its top package or module, or else
    (outside the working directory) its directory."""
    relative = Path(os.path.relpath(source))
    if relative.parts[0] == os.pardir:
        return relative.parent.as_posix()
    return relative.parts[0].removesuffix(".py")


class UnmeasuredAsUncovered:
    """diff-cover's coverage reporter, plus the changed files coverage did not measure, each reported as measured on
    ``lines`` and covered on none: diff-cover's reports (the table, the step summary, the annotations) all count them."""

    def __init__(self, measured: Any, lines: Mapping[str, set[int]]) -> None:
        self.measured = measured
        self.lines = lines

    def name(self) -> str:
        return str(self.measured.name())

    def measured_lines(self, path: str) -> Any:
        return self.lines[path] if path in self.lines else self.measured.measured_lines(path)

    def violations(self, path: str) -> Any:
        from diff_cover.violationsreporters.base import Violation

        if path in self.lines:
            return {Violation(line, None) for line in self.lines[path]}
        return self.measured.violations(path)

    def violations_batch(self, paths: Iterable[str]) -> dict[str, Any]:
        return {path: self.violations(path) for path in paths}


def _files_coverage_missed(
    diff: Any, measured: Any, coverage: Any, test_patterns: Iterable[str]
) -> tuple[list[Unmeasured], list[Omitted], dict[str, set[int]]]:
    """The changed source files the XML has no line of: those counted as uncovered (and the lines to count),
    and those the configuration omits."""
    root = _git_root()
    unmeasured: list[Unmeasured] = []
    omitted: list[Omitted] = []
    unmeasured_lines: dict[str, set[int]] = {}
    for path in diff.src_paths_changed():
        source = root / path
        if not source.is_file() or _is_test_file(path, test_patterns) or measured.measured_lines(path):
            continue
        rule = _omit_rule(coverage, source)
        if rule is not None:
            omitted.append(Omitted(path, rule))
            continue
        file, lines = _unmeasured(coverage, path, source)
        if lines & set(diff.lines_changed(path)):
            unmeasured.append(file)
            unmeasured_lines[path] = lines
    return unmeasured, omitted, unmeasured_lines


def _add_to_step_summary(path: str, markdown: Any) -> tuple[str, ...]:
    """Append the Markdown report to GitHub's step summary; a file that cannot be written is a warning, not a crash."""
    try:
        with open(path, "ab") as step_summary:
            markdown.generate_report(step_summary)
    except OSError as error:
        return (
            f"warning: the diff coverage report was not added to the GitHub step summary GITHUB_STEP_SUMMARY={path!r}: "
            f"{error.strerror or error}; the verdict below stands",
        )
    return ()


def measure(
    coverage_xml: Path,
    compare: ComparePoint,
    fail_under: float,
    coverage: Any,
    environ: Mapping[str, str] = os.environ,
    test_patterns: Iterable[str] = TEST_FILE_PATTERNS,
) -> GateReport:
    """Diff coverage of the working tree against ``compare``'s merge base, by the rules of this module's docstring.

    ``coverage`` is a ``coverage.Coverage`` with the user's configuration: it says which lines of a changed file
    coverage would measure, and which files it omits. In GitHub Actions the Markdown report is appended to the step
    summary and the report carries diff-cover's ``::warning`` annotations for the caller to print.
    """
    require_diff_cover()
    from diff_cover.diff_reporter import GitDiffReporter
    from diff_cover.git_diff import GitDiffTool
    from diff_cover.git_path import GitPathTool
    from diff_cover.report_generator import GitHubAnnotationsReportGenerator, MarkdownReportGenerator, StringReportGenerator
    from diff_cover.violationsreporters.violations_reporter import XmlCoverageReporter

    xml_root = read_coverage_xml(coverage_xml)
    GitPathTool.set_cwd(os.getcwd())
    # "..." diffs against the merge base; staged and unstaged changes count, as with the diff-cover command.
    diff = GitDiffReporter(compare.ref, git_diff=GitDiffTool("...", ignore_whitespace=False), supported_extensions=["py"])
    measured = XmlCoverageReporter([xml_root])
    unmeasured, omitted, unmeasured_lines = _files_coverage_missed(diff, measured, coverage, test_patterns)
    reporter = UnmeasuredAsUncovered(measured, unmeasured_lines)
    summary = StringReportGenerator(reporter, diff, total_percent_float=True).report_dict()
    files = tuple(
        FileCoverage(path, stats["percent_covered"], tuple(stats["violation_lines"]))
        for path, stats in sorted(summary["src_stats"].items())
    )
    warnings: tuple[str, ...] = ()
    annotations: tuple[str, ...] = ()
    if environ.get("GITHUB_ACTIONS") == "true":
        if environ.get("GITHUB_STEP_SUMMARY"):
            warnings = _add_to_step_summary(
                environ["GITHUB_STEP_SUMMARY"], MarkdownReportGenerator(reporter, diff, total_percent_float=True)
            )
        written = io.BytesIO()
        GitHubAnnotationsReportGenerator(reporter, diff, "warning").generate_report(written)
        annotations = tuple(line for line in written.getvalue().decode().splitlines() if line)
    return GateReport(
        compare=compare,
        fail_under=fail_under,
        files=files,
        measured_lines=summary["total_num_lines"],
        uncovered_lines=summary["total_num_violations"],
        percent=float(summary["total_percent_covered"]),
        unmeasured=tuple(unmeasured),
        omitted=tuple(omitted),
        warnings=warnings,
        github_annotations=annotations,
    )
