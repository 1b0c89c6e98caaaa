"""The diff coverage gate: how well the lines changed since the merge base are covered, and whether that is enough.

Plain functions shared by the pytest plugin and ``python -m pytest_dummyweights gate``. The diff and the
coverage XML are read by diff-cover's library, so the numbers are exactly what ``diff-cover`` reports.
"""

from __future__ import annotations

import fnmatch
import io
import math
import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_dummyweights.errors import DummyWeightsError

DEFAULT_COMPARE_REF = "origin/main"
FALLBACK_COMPARE_REF = "main"
INSTALL_GATE_EXTRA = "pip install 'pytest-dummyweights[gate]'"
CHOOSE_COMPARE_REF = "--diff-cover-compare-branch=REF (pytest) or --compare-branch REF (the gate command)"
TEST_FILE_PATTERNS = ("test_*.py", "*_test.py", "conftest.py")  # pytest's python_files default, plus conftest.py


class GateError(DummyWeightsError):
    """The gate could not measure anything: no git repository, an unknown compare ref, a missing package."""


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


@dataclass(frozen=True)
class GateReport:
    compare: ComparePoint
    fail_under: float
    files: tuple[FileCoverage, ...]
    measured_lines: int
    uncovered_lines: int
    percent: float
    unmeasured: tuple[str, ...] = ()  # changed source files (not tests) of which coverage measured no line
    github_annotations: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        if self.measured_lines == 0:
            return not self.unmeasured
        return self.percent >= self.fail_under

    def lines(self) -> list[str]:
        """The report for a terminal: annotations for GitHub, the table, and a last line saying pass or fail and why."""
        against = f"{self.compare.ref} (merge base {self.compare.merge_base[:10]})"
        notes = [self.compare.note] if self.compare.note else []
        if self.measured_lines == 0 and self.unmeasured:
            packages = sorted({Path(path).parts[0].removesuffix(".py") for path in self.unmeasured})
            return [
                *notes,
                f"diff coverage gate FAILED: coverage measured none of the changed files ({', '.join(self.unmeasured)}) "
                f"against {against}: measure them, e.g. with {' '.join(f'--cov={p}' for p in packages)}",
            ]
        if self.measured_lines == 0:
            return [*notes, f"diff coverage gate passed: no changed Python lines with coverage data against {against}"]
        width = max(len("total"), *(len(file.path) for file in self.files))
        table = [f"diff coverage against {against}:", f"{'file':<{width}}  {'covered':>7}  uncovered lines"]
        table += [f"{file.path:<{width}}  {file.percent:>6.1f}%  {', '.join(file.uncovered)}".rstrip() for file in self.files]
        table.append(f"{'total':<{width}}  {self.percent:>6.1f}%  {self.uncovered_lines} of {self.measured_lines} changed lines uncovered")
        covered = f"{self.percent:.1f}% of {self.measured_lines} changed lines covered"
        if self.passed:
            verdict = f"diff coverage gate passed: {covered}, threshold {self.fail_under:g}%"
        else:
            verdict = f"diff coverage gate FAILED: {covered}, below the threshold of {self.fail_under:g}%: test the lines listed above"
        return [*self.github_annotations, *notes, *table, verdict]


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


def read_coverage_xml(path: Path) -> Any:
    """The parsed Cobertura report; anything else is an error (it would measure nothing, and pass)."""
    import xml.etree.ElementTree as etree

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


def measure(
    coverage_xml: Path,
    compare: ComparePoint,
    fail_under: float,
    environ: Mapping[str, str] = os.environ,
    test_patterns: Iterable[str] = TEST_FILE_PATTERNS,
) -> GateReport:
    """Diff coverage of the working tree against ``compare``'s merge base, as diff-cover computes it.

    Changed source files (not test files, by ``test_patterns``) of which coverage measured no line
    are listed: when nothing changed was measured because of them, the gate fails, never passes.

    In GitHub Actions the Markdown report is appended to the step summary and the report carries
    diff-cover's ``::warning`` annotations for the caller to print.
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
    coverage = XmlCoverageReporter([xml_root])
    summary = StringReportGenerator(coverage, diff, total_percent_float=True).report_dict()
    files = tuple(
        FileCoverage(path, stats["percent_covered"], tuple(stats["violation_lines"]))
        for path, stats in sorted(summary["src_stats"].items())
    )
    unmeasured = tuple(
        path
        for path in sorted(diff.src_paths_changed())
        if path.endswith(".py") and Path(path).exists() and not _is_test_file(path, test_patterns) and not coverage.measured_lines(path)
    )
    annotations: tuple[str, ...] = ()
    if environ.get("GITHUB_ACTIONS") == "true":
        if environ.get("GITHUB_STEP_SUMMARY"):
            with open(environ["GITHUB_STEP_SUMMARY"], "ab") as step_summary:
                MarkdownReportGenerator(coverage, diff, total_percent_float=True).generate_report(step_summary)
        written = io.BytesIO()
        GitHubAnnotationsReportGenerator(coverage, diff, "warning").generate_report(written)
        annotations = tuple(line for line in written.getvalue().decode().splitlines() if line)
    return GateReport(
        compare=compare,
        fail_under=fail_under,
        files=files,
        measured_lines=summary["total_num_lines"],
        uncovered_lines=summary["total_num_violations"],
        percent=float(summary["total_percent_covered"]),
        unmeasured=unmeasured,
        github_annotations=annotations,
    )
