"""Every code example in the README and the manual (``docs/``) runs as written, so what a user copies works;
and the manual's generated options table lists every option and ini key that ``pytest --help`` shows.

A ```python block whose first line is ``# <file>.py`` is a file of one example project (``conftest.py``,
``test_*.py``): they are written together beside a copy of ``configs/`` and run as one pytest session, in
which every test must pass. Any other ```python block is a script, run from the repository's root.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import textwrap

import pytest
from engine_models import REPO

pytestmark = pytest.mark.paddleformers  # real PaddleFormers models

BLOCK = re.compile(r"^( *)```python\n(.*?)^\1```$", re.MULTILINE | re.DOTALL)
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def python_blocks() -> list[str]:
    return [textwrap.dedent(block) for page in PAGES for _, block in BLOCK.findall(page.read_text(encoding="utf-8"))]


def project_files() -> dict[str, str]:
    files: dict[str, str] = {}
    for block in python_blocks():
        name = re.match(r"# (\S+\.py)\n", block)
        if name:
            files[name[1]] = files.get(name[1], "") + block
    return files


SCRIPTS = [block for block in python_blocks() if not re.match(r"# \S+\.py\n", block)]


def test_the_docs_have_examples() -> None:
    assert project_files() and SCRIPTS  # the extraction itself must not silently find nothing
    assert any(BLOCK.search(page.read_text(encoding="utf-8")) for page in PAGES[1:])  # the manual's pages are read too


def test_the_docs_test_examples_pass(inner) -> None:
    (inner.path / "configs").symlink_to(REPO / "configs")
    for name, text in project_files().items():
        inner.write(name, text)
    result = inner.run("-v", "-p", "no:randomly", subprocess=True)
    outcomes = result.parseoutcomes()
    functions = sum(text.count("\ndef test_") for text in project_files().values())
    assert outcomes.get("passed", 0) >= functions and not set(outcomes) - {"passed", "warning", "warnings"}, outcomes


@pytest.mark.parametrize("script", SCRIPTS, ids=[f"script{i}" for i in range(len(SCRIPTS))])
def test_the_docs_scripts_run(script: str) -> None:
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def options_table() -> str:
    """The table ``docs/hooks.py`` puts on the options page when MkDocs builds the manual."""
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs" / "hooks.py")
    assert spec and spec.loader
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    return hooks.on_page_markdown(hooks.PLACEHOLDER, page=None)


def test_the_options_page_lists_every_option_and_ini_key_pytest_help_shows(inner) -> None:
    shown = inner.run("--help").stdout.str()
    group = shown.split("dummy weights for Paddle models (pytest-dummyweights):\n", 1)[1].split("\n\n", 1)[0]
    options = set(re.findall(r"^  (--[\w-]+)", group, re.MULTILINE))
    ini_keys = set(re.findall(r"^  (dummyweights_\w+) ", shown, re.MULTILINE))
    assert len(options) >= 10 and len(ini_keys) >= 10, (options, ini_keys)

    table = options_table()
    assert {option for option in options if f"`{option}" not in table} == set()
    assert {key for key in ini_keys if f"`{key}`" not in table} == set()
