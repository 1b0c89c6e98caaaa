"""Every code example in the README runs as written, so the first thing a user copies works.

A ```python block whose first line is ``# <file>.py`` is a file of one example project (``conftest.py``,
``test_*.py``): they are written together beside a copy of ``configs/`` and run as one pytest session, in
which every test must pass. Any other ```python block is a script, run from the repository's root.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from engine_models import REPO

BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def python_blocks() -> list[str]:
    return BLOCK.findall((REPO / "README.md").read_text(encoding="utf-8"))


def project_files() -> dict[str, str]:
    files: dict[str, str] = {}
    for block in python_blocks():
        name = re.match(r"# (\S+\.py)\n", block)
        if name:
            files[name[1]] = files.get(name[1], "") + block
    return files


SCRIPTS = [block for block in python_blocks() if not re.match(r"# \S+\.py\n", block)]


def test_the_readme_has_examples() -> None:
    assert project_files() and SCRIPTS  # the extraction itself must not silently find nothing


@pytest.mark.paddleformers
def test_the_readme_test_examples_pass(inner) -> None:
    (inner.path / "configs").symlink_to(REPO / "configs")
    for name, text in project_files().items():
        inner.write(name, text)
    result = inner.run("-v", "-p", "no:randomly", subprocess=True)
    outcomes = result.parseoutcomes()
    functions = sum(text.count("\ndef test_") for text in project_files().values())
    assert outcomes.get("passed", 0) >= functions and not set(outcomes) - {"passed", "warning", "warnings"}, outcomes


@pytest.mark.paddleformers
@pytest.mark.parametrize("script", SCRIPTS, ids=[f"script{i}" for i in range(len(SCRIPTS))])
def test_the_readme_scripts_run(script: str) -> None:
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
