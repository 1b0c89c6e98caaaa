"""The project's GitHub Actions workflow: valid for GitHub, and running the same ``ci/`` scripts as ``.ci/run``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from matrix_support import ROOT, load_noxfile
from ruamel.yaml import YAML

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
CI_SCRIPT_CALL = re.compile(r"^bash (ci/[\w-]+)$")
MATRIX_CELL_CALL = re.compile(r"^bash ci/matrix ([\w.-]+)( -- .+)?$")


def validate_workflow(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with the GitHub workflow schema it ships, so no network is needed."""
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def load_workflow() -> dict[str, Any]:
    return YAML(typ="safe").load(WORKFLOW.read_text())


def script_calls(commands: list[str]) -> list[str]:
    """The ``ci/`` scripts called, in order; any other command fails the test, since both runners must run only these."""
    calls = []
    for command in commands:
        match = CI_SCRIPT_CALL.match(command.strip())
        assert match, f"expected `bash ci/SCRIPT`, got {command!r}"
        calls.append(match.group(1))
    return calls


def test_workflow_is_valid_for_github() -> None:
    result = validate_workflow(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "ci.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:"))
    assert validate_workflow(broken).returncode != 0


def ci_run_lines() -> list[str]:
    return [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("bash ")]


def ci_run_cells() -> list[tuple[str, str]]:
    """The matrix cells .ci/run ends with, each with the pytest arguments it passes ('' for the cell's whole run)."""
    return [(match.group(1), match.group(2) or "") for line in ci_run_lines() if (match := MATRIX_CELL_CALL.match(line))]


def test_workflow_runs_the_scripts_that_ci_run_runs() -> None:
    """The test job runs what .ci/run runs, but for the matrix cells .ci/run ends with: the matrix job runs them all."""
    lines = ci_run_lines()
    cells = ci_run_cells()
    ci_run_calls = script_calls(lines[: len(lines) - len(cells)])
    steps = load_workflow()["jobs"]["test"]["steps"]
    assert cells and lines[-len(cells) :] == [f"bash ci/matrix {name}{args}" for name, args in cells]
    assert script_calls([step["run"] for step in steps if "run" in step]) == ci_run_calls
    assert ci_run_calls.index("ci/check") < ci_run_calls.index("ci/test") < ci_run_calls.index("ci/package")


def test_workflow_matrix_runs_each_nox_session_on_its_python() -> None:
    job = load_workflow()["jobs"]["matrix"]
    entries = [(entry["session"], entry["python-version"]) for entry in job["strategy"]["matrix"]["include"]]
    assert entries == [(cell.name, cell.python) for cell in load_noxfile().CELLS]
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs[-1] == 'nox --no-color -s "${{ matrix.session }}"'
    assert "grep '^nox==' ci/requirements.txt" in runs[0] and "grep '^uv==' ci/requirements.txt" in runs[0]  # the pinned nox and uv


def test_ci_run_runs_a_cell_in_full_on_every_python_but_the_one_ci_test_runs() -> None:
    """ci/test runs the whole suite on the CI machine's python3 (3.11); .ci/run adds a whole cell for each other
    Python of the matrix (on 3.13 the core: the cell deselects what needs PaddleFormers), and the oldest pytest."""
    cells = {cell.name: cell for cell in load_noxfile().CELLS}
    ran = ci_run_cells()
    assert {cells[name].python for name, args in ran if not args} | {"3.11"} == {cell.python for cell in cells.values()}
    assert any(cells[name].changes.get("pytest") == "8.4.2" for name, _ in ran)


def test_workflow_gates_pull_requests_against_their_base() -> None:
    workflow = load_workflow()
    assert set(workflow["on"]) == {"push", "pull_request"}
    job = workflow["jobs"]["test"]
    assert job["strategy"]["matrix"]["python-version"] == ["3.11"]  # the pinned stack; the matrix job runs the rest
    steps = {step.get("uses", step.get("run")).split("@")[0]: step for step in job["steps"]}
    assert steps["actions/checkout"]["with"]["fetch-depth"] == 0
    assert steps["actions/setup-python"]["with"]["cache"] == "pip"
    compare_branch = steps["bash ci/test"]["env"]["DIFF_COVER_COMPARE_BRANCH"]
    assert "format('origin/{0}', github.base_ref)" in compare_branch
    assert "github.event_name == 'pull_request'" in compare_branch


def diff_cover_options(repository: Path, commits: int, compare_branch: str = "") -> subprocess.CompletedProcess[str]:
    """Run ci/diff-cover-options in a fresh repository with ``commits`` commits."""

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=CI", "-c", "user.email=ci@example.com", *args], cwd=repository, check=True, capture_output=True
        )

    git("init", "--quiet")
    for number in range(commits):
        git("commit", "--quiet", "--allow-empty", "-m", f"commit {number}")
    environment = {**os.environ, "DIFF_COVER_COMPARE_BRANCH": compare_branch}
    script = ROOT / "ci" / "diff-cover-options"
    return subprocess.run(["bash", str(script)], cwd=repository, env=environment, capture_output=True, text=True, check=True)


def test_ci_gates_at_80_against_the_previous_commit(tmp_path: Path) -> None:
    assert diff_cover_options(tmp_path, commits=2).stdout.split() == ["--diff-cover-fail-under=80", "--diff-cover-compare-branch=HEAD~1"]


def test_ci_gates_against_the_compare_branch_it_is_given(tmp_path: Path) -> None:
    result = diff_cover_options(tmp_path, commits=2, compare_branch="origin/release")
    assert result.stdout.split() == ["--diff-cover-fail-under=80", "--diff-cover-compare-branch=origin/release"]


def test_ci_skips_the_gate_in_a_single_commit_clone(tmp_path: Path) -> None:
    result = diff_cover_options(tmp_path, commits=1)
    assert result.stdout == ""
    assert "no previous commit (single-commit clone)" in result.stderr


def test_ci_test_measures_the_package_with_the_gate_options() -> None:
    ci_test = (ROOT / "ci" / "test").read_text()
    assert "$(bash ci/diff-cover-options)" in ci_test
    assert "--cov=pytest_dummyweights $gate_options" in ci_test
