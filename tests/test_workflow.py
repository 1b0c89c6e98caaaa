"""The project's GitHub Actions workflow: valid for GitHub, and running the same ``ci/`` scripts as ``.ci/run``."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
CI_SCRIPT_CALL = re.compile(r"^bash (ci/[\w-]+)$")
MATRIX_CELL_DEFAULT = re.compile(r"^session=([\w.-]+)$", re.MULTILINE)


def validate_workflow(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with the GitHub workflow schema it ships, so no network is needed."""
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def load_workflow() -> dict[str, Any]:
    return YAML(typ="safe").load(WORKFLOW.read_text())


@functools.cache
def load_noxfile() -> ModuleType:
    """Once per process: importing noxfile.py registers its sessions with nox."""
    spec = importlib.util.spec_from_file_location("noxfile", ROOT / "noxfile.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["noxfile"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


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


def test_workflow_runs_the_scripts_that_ci_run_runs() -> None:
    """The test job runs what .ci/run runs, but for the one matrix cell .ci/run ends with: the matrix job runs them all."""
    ci_run = (ROOT / ".ci" / "run").read_text().splitlines()
    ci_run_calls = script_calls([line for line in ci_run if line.startswith("bash ")])
    steps = load_workflow()["jobs"]["test"]["steps"]
    assert ci_run_calls[-1] == "ci/matrix-cell"
    assert script_calls([step["run"] for step in steps if "run" in step]) == ci_run_calls[:-1]
    assert ci_run_calls.index("ci/check") < ci_run_calls.index("ci/test") < ci_run_calls.index("ci/package")


def test_workflow_matrix_runs_each_nox_session_on_its_python() -> None:
    job = load_workflow()["jobs"]["matrix"]
    entries = [(entry["session"], entry["python-version"]) for entry in job["strategy"]["matrix"]["include"]]
    assert entries == [(cell.name, cell.python) for cell in load_noxfile().CELLS]
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs[-1] == 'nox --no-color -s "${{ matrix.session }}"'
    assert "ci/requirements.txt" in runs[0]  # the pinned nox


def test_ci_run_runs_a_matrix_cell_other_than_the_pinned_suite() -> None:
    """ci/matrix-cell's default runs on Python 3.11 (the CI machine's python3) and changes at least one pin."""
    (default,) = MATRIX_CELL_DEFAULT.findall((ROOT / "ci" / "matrix-cell").read_text())
    cells = {cell.name: cell for cell in load_noxfile().CELLS}
    assert cells[default].python == "3.11"
    assert cells[default].changes


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
        subprocess.run(["git", "-c", "user.name=CI", "-c", "user.email=ci@example.com", *args], cwd=repository, check=True, capture_output=True)

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
