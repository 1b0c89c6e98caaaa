"""The diff coverage gate, run the way users run it: pytest sessions and the gate command on real git repositories.

The repository: ``main`` holds ``shapes/flat.py`` with a tested ``area``; the ``feature`` branch adds to it a
tested ``perimeter`` and untested ``diagonal`` (lines 10-12) and ``describe`` (line 16), and a new, fully
tested ``shapes/solid.py``. Changed lines with coverage data: 8 in flat.py (4 uncovered), 2 in solid.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_dummyweights.cli import main

FLAT_BASE = """\
def area(width, height):
    return width * height
"""
FLAT_FEATURE = (
    FLAT_BASE
    + """\


def perimeter(width, height):
    return 2 * (width + height)


def diagonal(width, height):
    squared = width**2 + height**2
    root = squared**0.5
    return root


def describe(width, height):
    return f"{width}x{height}"
"""
)
SOLID_FEATURE = """\
def volume(width, height, depth):
    return width * height * depth
"""
TESTS_BASE = """\
from shapes.flat import area


def test_area():
    assert area(2, 3) == 6
"""
TESTS_FEATURE = (
    TESTS_BASE
    + """\


def test_perimeter():
    from shapes.flat import perimeter

    assert perimeter(1, 2) == 6


def test_volume():
    from shapes.solid import volume

    assert volume(1, 2, 3) == 6
"""
)

TABLE = [
    "file             covered  uncovered lines",
    "shapes/flat.py     50.0%  10-12, 16",
    "shapes/solid.py   100.0%",
    "total              60.0%  4 of 10 changed lines uncovered",
]
UNMEASURED_MODULE = """\
def report():
    return "report"
"""
FAILED_AT_80 = "diff coverage gate FAILED: 60.0% of 10 changed lines covered, below the threshold of 80%: test the lines listed above"
NOT_MEASURED = "coverage did not measure it, so its changed lines count as uncovered: measure it with"
INSTALL_EXTRA = "pip install 'pytest-dummyweights[gate]'"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def isolated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """Inner sessions load only the plugins they name, and see no GitHub Actions job even when this suite runs in one."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{name}_NAME", "Gate Test")
        monkeypatch.setenv(f"GIT_{name}_EMAIL", "gate@example.com")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    # Coverage stops auto-measuring a subprocess that creates its own Coverage object (pytest-cov does) unless
    # this is set; with it, this project's own coverage run counts the gate code those sessions execute.
    monkeypatch.setenv("COVERAGE_COVERAGE", "1")
    return pytester


def commit_shapes_project(pytester: pytest.Pytester, under: str = "") -> None:
    """The repository of the module docstring, its project in the directory ``under`` of the git root."""
    pytester.makepyfile(**{f"{under}shapes/__init__": "", f"{under}shapes/flat": FLAT_BASE, f"{under}test_shapes": TESTS_BASE})
    git("init", "--quiet", "--initial-branch=main")
    git("add", ".")
    git("commit", "--quiet", "-m", "base")
    git("checkout", "--quiet", "-b", "feature")
    pytester.makepyfile(
        **{f"{under}shapes/flat": FLAT_FEATURE, f"{under}shapes/solid": SOLID_FEATURE, f"{under}test_shapes": TESTS_FEATURE}
    )
    pytester.path.joinpath("NOTES.txt").write_text("not Python: not gated\n")
    git("add", ".")
    git("commit", "--quiet", "-m", "feature")


def commit_unmeasured_module(pytester: pytest.Pytester, under: str = "") -> None:
    """``tools/report.py`` (2 lines), which no test imports and ``--cov=shapes`` does not measure."""
    pytester.makepyfile(**{f"{under}tools/report": UNMEASURED_MODULE})
    git("add", ".")
    git("commit", "--quiet", "-m", "a module no test runs")


@pytest.fixture
def repo(isolated: pytest.Pytester) -> pytest.Pytester:
    commit_shapes_project(isolated)
    return isolated


@pytest.fixture
def monorepo(isolated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The same project in ``proj/`` of the repository, run from there: the diff's paths start with ``proj/``."""
    commit_shapes_project(isolated, under="proj/")
    monkeypatch.chdir(isolated.path / "proj")
    return isolated


def run_with_coverage(pytester: pytest.Pytester, *args: str, package: str = "shapes") -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "dummyweights", "-p", "pytest_cov", f"--cov={package}", "-p", "no:cacheprovider", *args)


def output(result: pytest.RunResult) -> str:
    return result.stdout.str() + result.stderr.str()


def gate_section(result: pytest.RunResult) -> list[str]:
    """The lines the gate printed, without the separator, up to pytest's final summary line."""
    lines = result.outlines
    start = next(index for index, line in enumerate(lines) if "diff coverage gate" in line and line.startswith("="))
    end = next(index for index in range(start + 1, len(lines)) if lines[index].startswith("="))
    return lines[start + 1 : end]


def test_gate_fails_below_threshold_naming_files_and_uncovered_ranges(repo: pytest.Pytester) -> None:
    result = run_with_coverage(repo, "--diff-cover-fail-under=80")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=3)
    merge_base = git("rev-parse", "main").strip()
    assert gate_section(result) == [
        "origin/main not found: comparing against main",
        f"diff coverage against main (merge base {merge_base[:10]}):",
        *TABLE,
        FAILED_AT_80,
    ]


def test_gate_passes_at_threshold_from_ini(repo: pytest.Pytester) -> None:
    repo.makeini("[pytest]\ndummyweights_diff_cover_fail_under = 60\ndummyweights_diff_cover_compare_branch = main\n")
    result = run_with_coverage(repo)
    assert result.ret == pytest.ExitCode.OK
    assert gate_section(result)[-1] == "diff coverage gate passed: 60.0% of 10 changed lines covered, threshold 60%"


def test_gate_measures_combined_coverage_of_xdist_workers(repo: pytest.Pytester) -> None:
    result = run_with_coverage(repo, "-p", "xdist", "-n", "2", "--diff-cover-fail-under=80", "--diff-cover-compare-branch=main")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=3)
    assert gate_section(result)[1:] == [*TABLE, FAILED_AT_80]


def test_gate_passes_without_changed_python_lines(repo: pytest.Pytester) -> None:
    result = run_with_coverage(repo, "--diff-cover-fail-under=100", "--diff-cover-compare-branch=HEAD")
    assert result.ret == pytest.ExitCode.OK
    assert gate_section(result)[-1].startswith("diff coverage gate passed: no changed Python lines with coverage data against HEAD")


def test_gate_without_coverage_data_fails_and_says_why(repo: pytest.Pytester) -> None:
    result = run_with_coverage(repo, "--diff-cover-fail-under=80", "--diff-cover-compare-branch=main", package="no_such_package")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert gate_section(result) == [
        "diff coverage gate FAILED: coverage has nothing to gate (No data to report.): check that --cov names the package the tests import"
    ]


def test_gate_stays_out_of_collect_only(repo: pytest.Pytester) -> None:
    result = run_with_coverage(repo, "--collect-only", "--diff-cover-fail-under=80", "--diff-cover-compare-branch=main")
    assert result.ret == pytest.ExitCode.OK
    assert "diff coverage" not in result.stdout.str()


def test_github_actions_get_annotations_and_step_summary(repo: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    step_summary = repo.path.parent / "step_summary.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    result = run_with_coverage(repo, "--diff-cover-fail-under=80", "--diff-cover-compare-branch=main")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert gate_section(result)[:2] == [
        "::warning file=shapes/flat.py,line=10,endLine=12,title=Missing Coverage::Line 10-12 missing coverage",
        "::warning file=shapes/flat.py,line=16,title=Missing Coverage::Line 16 missing coverage",
    ]
    summary = step_summary.read_text()
    assert summary.startswith("earlier step\n# Diff Coverage\n## Diff: main...HEAD")
    assert "- shapes/flat&#46;py (50.0%): Missing lines 10-12,16" in summary
    assert "- **Coverage**: 60.0%" in summary


def test_an_unwritable_step_summary_is_one_warning_and_the_verdict_stands(repo: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    step_summary = repo.path.parent / "no-such-directory" / "step_summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    result = run_with_coverage(repo, "--diff-cover-fail-under=80", "--diff-cover-compare-branch=main")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "INTERNALERROR" not in output(result)
    section = gate_section(result)
    assert section[0].startswith("::warning file=shapes/flat.py,line=10")
    assert section[2] == (
        f"warning: the diff coverage report was not added to the GitHub step summary GITHUB_STEP_SUMMARY={str(step_summary)!r}: "
        "No such file or directory; the verdict below stands"
    )
    assert section[4:] == [*TABLE, FAILED_AT_80]


def assert_usage_error(result: pytest.RunResult, message: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in output(result)
    assert "Traceback" not in output(result)


def test_gate_without_cov_is_a_usage_error(repo: pytest.Pytester) -> None:
    result = repo.runpytest("-p", "dummyweights", "-p", "pytest_cov", "--diff-cover-fail-under=80")
    assert_usage_error(result, "the diff coverage gate needs coverage data, but coverage is off: add --cov=PACKAGE")


def test_gate_without_pytest_cov_names_the_extra(repo: pytest.Pytester) -> None:
    result = repo.runpytest("-p", "dummyweights", "--diff-cover-fail-under=80")
    assert_usage_error(result, f"the diff coverage gate needs pytest-cov, which is not loaded: {INSTALL_EXTRA}")


def test_gate_without_diff_cover_names_the_extra(repo: pytest.Pytester) -> None:
    repo.makeconftest("import sys\n\nsys.modules['diff_cover'] = None  # as if it were not installed\n")
    result = run_with_coverage(repo, "--diff-cover-fail-under=80")
    assert_usage_error(result, f"the diff coverage gate needs diff-cover, which is not installed: {INSTALL_EXTRA}")


def test_gate_threshold_must_be_a_number(repo: pytest.Pytester) -> None:
    repo.makeini("[pytest]\ndummyweights_diff_cover_fail_under = eighty\n")
    result = repo.runpytest("-p", "dummyweights", "-p", "pytest_cov")
    assert_usage_error(result, "pytest-dummyweights: ini dummyweights_diff_cover_fail_under='eighty': could not convert string to float")


@pytest.mark.parametrize("threshold", ["150", "nan", "inf", "-10"])
def test_gate_threshold_must_be_a_percentage(repo: pytest.Pytester, threshold: str) -> None:
    """150, NaN and infinity could never pass; -10 could never fail."""
    result = repo.runpytest("-p", "dummyweights", "-p", "pytest_cov", f"--diff-cover-fail-under={threshold}")
    assert_usage_error(result, f"--diff-cover-fail-under='{threshold}': the threshold must be a percentage from 0 to 100")


def test_gate_fails_when_cov_measures_another_package(repo: pytest.Pytester) -> None:
    repo.makepyfile(**{"other/__init__": "", "other/tool": "def tool():\n    return 1\n"})
    result = run_with_coverage(repo, "--diff-cover-fail-under=80", "--diff-cover-compare-branch=main", package="other")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert gate_section(result)[1:] == [
        "file             covered  uncovered lines",
        "shapes/flat.py      0.0%  5-6, 9-12, 15-16",
        "shapes/solid.py     0.0%  1-2",
        "total               0.0%  10 of 10 changed lines uncovered",
        f"shapes/flat.py: {NOT_MEASURED} --cov=shapes",
        f"shapes/solid.py: {NOT_MEASURED} --cov=shapes",
        "diff coverage gate FAILED: 0.0% of 10 changed lines covered, below the threshold of 80%: test the lines listed above",
    ]


def test_gate_counts_a_changed_module_coverage_did_not_measure_as_uncovered(repo: pytest.Pytester) -> None:
    """A covered change in shapes/ and a new module no test runs: 60% without it was a pass at 60."""
    commit_unmeasured_module(repo)
    result = run_with_coverage(repo, "--diff-cover-fail-under=60", "--diff-cover-compare-branch=main")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert gate_section(result)[1:] == [
        *TABLE[:3],
        "tools/report.py     0.0%  1-2",
        "total              50.0%  6 of 12 changed lines uncovered",
        f"tools/report.py: {NOT_MEASURED} --cov=tools",
        "diff coverage gate FAILED: 50.0% of 12 changed lines covered, below the threshold of 60%: test the lines listed above",
    ]


def test_gate_run_from_a_subdirectory_reads_the_diff_from_the_git_root(monorepo: pytest.Pytester) -> None:
    """From proj/, the diff's proj/tools/report.py is the file tools/report.py: unmeasured, so uncovered, as from the root."""
    git("checkout", "--quiet", "-b", "tools", "main")
    commit_unmeasured_module(monorepo, under="proj/")
    result = run_with_coverage(monorepo, "--diff-cover-fail-under=80", "--diff-cover-compare-branch=main")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert gate_section(result)[1:] == [
        "file                  covered  uncovered lines",
        "proj/tools/report.py     0.0%  1-2",
        "total                    0.0%  2 of 2 changed lines uncovered",
        f"proj/tools/report.py: {NOT_MEASURED} --cov=tools",
        "diff coverage gate FAILED: 0.0% of 2 changed lines covered, below the threshold of 80%: test the lines listed above",
    ]


def test_gate_names_the_omit_rules_that_hide_changed_files(repo: pytest.Pytester) -> None:
    """Files the coverage configuration omits are not gated, and not sent to a --cov they already have."""
    repo.path.joinpath(".coveragerc").write_text("[run]\nomit = shapes/flat.py\n[report]\nomit = */solid.py\n")
    result = run_with_coverage(repo, "--diff-cover-fail-under=80", "--diff-cover-compare-branch=main")
    assert result.ret == pytest.ExitCode.OK
    assert gate_section(result) == [
        "shapes/flat.py: not gated: the coverage configuration omits it ([run] omit = shapes/flat.py)",
        "shapes/solid.py: not gated: the coverage configuration omits it ([report] omit = */solid.py)",
        f"diff coverage gate passed: no changed Python lines with coverage data against main (merge base {git('rev-parse', 'main')[:10]})",
    ]


def test_changed_tests_alone_still_pass_with_nothing_to_measure(repo: pytest.Pytester) -> None:
    git("checkout", "--quiet", "-b", "only-tests", "main")
    repo.makepyfile(test_shapes=TESTS_BASE + "\n\ndef test_area_again():\n    assert area(1, 1) == 1\n")
    git("commit", "--quiet", "-am", "a test only")
    result = run_with_coverage(repo, "--diff-cover-fail-under=80", "--diff-cover-compare-branch=main")
    assert result.ret == pytest.ExitCode.OK
    assert gate_section(result)[-1].startswith("diff coverage gate passed: no changed Python lines with coverage data")


def test_gate_outside_a_git_repository(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = run_with_coverage(isolated, "--diff-cover-fail-under=80")
    assert_usage_error(result, f"the diff coverage gate compares against a git ref, but {isolated.path} is not in a git repository")


def test_gate_in_a_repository_without_commits_says_to_commit_not_to_fetch(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    git("init", "--quiet", "--initial-branch=main")
    result = run_with_coverage(isolated, "--diff-cover-fail-under=80")
    assert_usage_error(
        result, "this git repository has no commits yet, so there are no changes to compare with 'origin/main': commit your work"
    )
    assert "fetch" not in output(result)


def test_gate_with_unknown_compare_ref_hints_at_fetching(repo: pytest.Pytester) -> None:
    result = run_with_coverage(repo, "--diff-cover-fail-under=80", "--diff-cover-compare-branch=origin/release")
    assert_usage_error(result, "compare ref 'origin/release' not found in this repository: fetch it (`git fetch origin`;")
    assert "fetch-depth: 0" in output(result)


@pytest.fixture
def coverage_xml(repo: pytest.Pytester) -> Path:
    """A coverage XML written by pytest-cov alone, as a CI step before the gate command would."""
    result = run_with_coverage(repo, "--cov-report=xml")
    assert result.ret == pytest.ExitCode.OK
    return repo.path / "coverage.xml"


def test_command_fails_below_threshold(coverage_xml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git("update-ref", "refs/remotes/origin/main", "main")
    assert main(["gate", "--coverage-xml", str(coverage_xml), "--fail-under", "80"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("diff coverage against origin/main (merge base ")
    assert lines[1:] == [*TABLE, FAILED_AT_80]


def test_command_passes_at_threshold(coverage_xml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", "--compare-branch", "main", "--fail-under", "60"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "diff coverage gate passed: 60.0% of 10 changed lines covered, threshold 60%"


def test_command_from_a_subdirectory_reads_the_diff_from_the_git_root(
    monorepo: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_with_coverage(monorepo, "--cov-report=xml").ret == pytest.ExitCode.OK
    commit_unmeasured_module(monorepo, under="proj/")
    capsys.readouterr()
    assert main(["gate", "--compare-branch", "main", "--fail-under", "80"]) == 1
    assert capsys.readouterr().out.splitlines()[1:] == [
        "file                  covered  uncovered lines",
        "proj/shapes/flat.py     50.0%  10-12, 16",
        "proj/shapes/solid.py   100.0%",
        "proj/tools/report.py     0.0%  1-2",
        "total                   50.0%  6 of 12 changed lines uncovered",
        f"proj/tools/report.py: {NOT_MEASURED} --cov=tools",
        "diff coverage gate FAILED: 50.0% of 12 changed lines covered, below the threshold of 80%: test the lines listed above",
    ]


def test_command_counts_every_changed_line_of_a_file_coverage_cannot_parse(coverage_xml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = coverage_xml.parent / "tools" / "template.py"
    template.parent.mkdir()
    template.write_text("def {{ name }}():\n    return None\n")
    git("add", ".")
    git("commit", "--quiet", "-m", "a template, not Python")
    assert main(["gate", "--compare-branch", "main", "--fail-under", "60"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:4] == [
        "file               covered  uncovered lines",
        "shapes/flat.py       50.0%  10-12, 16",
        "shapes/solid.py     100.0%",
    ]
    assert lines[4:6] == ["tools/template.py     0.0%  1-2", "total                50.0%  6 of 12 changed lines uncovered"]
    assert lines[6] == (
        f"tools/template.py: coverage did not measure it, so its changed lines count as uncovered: coverage cannot measure it "
        f"(Couldn't parse '{template}' as Python source: 'invalid syntax' at line 1): fix it, or omit it in the coverage configuration"
    )


def test_command_with_a_broken_coverage_configuration(repo: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    (repo.path / ".coveragerc").write_text("[run]\nbranch = maybe\n")
    assert main(["gate", "--compare-branch", "main", "--fail-under", "80"]) == 2
    assert capsys.readouterr().err == (
        "error: Couldn't read config file .coveragerc: Not a boolean: maybe: "
        "fix the coverage configuration, the one `coverage report` would read\n"
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--coverage-xml", "missing.xml"], "error: cannot read the coverage XML 'missing.xml': [Errno 2] No such file or directory"),
        (["--compare-branch", "v9"], "error: compare ref 'v9' not found in this repository"),
    ],
)
def test_command_errors(repo: pytest.Pytester, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str) -> None:
    assert main(["gate", *arguments, "--fail-under", "80"]) == 2
    assert capsys.readouterr().err.startswith(message)


def test_command_rejects_an_xml_that_is_not_a_coverage_report(repo: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    (repo.path / "junit.xml").write_text('<testsuites><testsuite name="pytest"/></testsuites>')
    assert main(["gate", "--coverage-xml", "junit.xml", "--compare-branch", "main", "--fail-under", "80"]) == 2
    assert capsys.readouterr().err == (
        "error: 'junit.xml' is not a Cobertura coverage report (its root is <testsuites>, with no <packages>): "
        "write one with --cov-report=xml or `coverage xml`\n"
    )


@pytest.mark.parametrize("threshold", ["150", "nan", "-10"])
def test_command_rejects_a_threshold_outside_0_to_100(repo: pytest.Pytester, capsys: pytest.CaptureFixture[str], threshold: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["gate", "--compare-branch", "main", f"--fail-under={threshold}"])
    assert stopped.value.code == 2
    assert "error: argument --fail-under: the threshold must be a percentage from 0 to 100" in capsys.readouterr().err


def test_command_without_merge_base_hints_at_shallow_clone(repo: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    empty_tree = git("hash-object", "-w", "-t", "tree", os.devnull).strip()
    git("update-ref", "refs/heads/unrelated", git("commit-tree", "-m", "unrelated history", empty_tree).strip())
    assert main(["gate", "--compare-branch", "unrelated", "--fail-under", "80"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: HEAD and 'unrelated' have no common commit, so there is no merge base to compare against: the clone is probably shallow"
    )


@pytest.mark.parametrize(("module", "distribution"), [("diff_cover", "diff-cover"), ("coverage", "coverage")])
def test_command_without_a_package_of_the_extra_names_the_extra(
    repo: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], module: str, distribution: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    assert main(["gate", "--compare-branch", "main", "--fail-under", "80"]) == 2
    assert capsys.readouterr().err == f"error: the diff coverage gate needs {distribution}, which is not installed: {INSTALL_EXTRA}\n"


def test_command_outside_a_git_repository(isolated: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", "--fail-under", "80"]) == 2
    assert capsys.readouterr().err == (
        f"error: the diff coverage gate compares against a git ref, but {isolated.path} is not in a git repository: "
        "run from a git checkout, or turn the gate off\n"
    )
