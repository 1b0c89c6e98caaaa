"""The public face: ``pytest_dummyweights`` offers every name the manual documents, listed in ``__all__``; the manual
and the hook specs name nothing else; module paths the README once documented still import or are named in the
changelog with their new home; and importing the package, or loading the plugin, imports no heavy module."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from engine_models import REPO

import pytest_dummyweights

PAGES = [REPO / "README.md", *sorted(page for page in (REPO / "docs").glob("*.md") if page.name != "changelog.md")]
PUBLIC_MODULES = ("errors", "hookspecs", "mla", "plugin")  # documented modules of the package, beside its names
FILES = ("pth",)  # pytest_dummyweights.pth, the start-up hook the wheel installs
FORMER_MODULES = ("build", "checkpoint", "manifest", "loader_feed", "mla", "errors")  # the README's module paths in 0.1.0
IMPORT = re.compile(r"from pytest_dummyweights import (?:\(([^)]*)\)|([\w ,]+))")
DOTTED = re.compile(r"\bpytest_dummyweights\.(\w+)")


def documented_imports(text: str) -> set[str]:
    return {name.strip() for match in IMPORT.findall(text) for name in ",".join(match).split(",") if name.strip()}


def test_every_public_name_resolves_to_its_definition() -> None:
    assert len(pytest_dummyweights.__all__) == len(set(pytest_dummyweights.__all__)) >= 20
    for name in pytest_dummyweights.__all__:
        value = getattr(pytest_dummyweights, name)
        if name in pytest_dummyweights.LAZY:  # the very object of the internal module (or the module itself), not a copy
            module = importlib.import_module(pytest_dummyweights.LAZY[name], "pytest_dummyweights")
            assert value is (module if module.__name__ == f"pytest_dummyweights.{name}" else getattr(module, name))
    assert set(pytest_dummyweights.LAZY) <= set(pytest_dummyweights.__all__) <= set(dir(pytest_dummyweights))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'build'"):
        pytest_dummyweights.build  # noqa: B018  # the 0.1.0 module path, moved (see the changelog)


def test_the_manual_imports_only_public_names() -> None:
    imported = set().union(*(documented_imports(page.read_text(encoding="utf-8")) for page in PAGES))
    assert {"DummySpec", "InterceptTarget", "build_dummy_model", "check_model", "plan_build"} <= imported  # the pattern finds them
    assert imported - set(pytest_dummyweights.__all__) == set()


def test_the_manual_names_no_internal_module() -> None:
    for page in PAGES:
        named = set(DOTTED.findall(page.read_text(encoding="utf-8")))
        assert named - set(pytest_dummyweights.__all__) - set(PUBLIC_MODULES) - set(FILES) == set(), page.name


def test_the_hook_specs_import_only_public_names() -> None:
    tree = ast.parse((REPO / "pytest_dummyweights" / "hookspecs.py").read_text(encoding="utf-8"))
    sources = {(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    from_package = {name for module, name in sources if module == "pytest_dummyweights"}
    assert {"Layout", "Manifest"} <= from_package <= set(pytest_dummyweights.__all__) | set(PUBLIC_MODULES)
    assert {module for module, _ in sources if (module or "").startswith("pytest_dummyweights")} == {"pytest_dummyweights"}


@pytest.mark.parametrize("name", FORMER_MODULES)
def test_a_former_module_path_still_imports_or_the_changelog_names_its_new_home(name: str) -> None:
    try:
        importlib.import_module(f"pytest_dummyweights.{name}")
    except ModuleNotFoundError:
        unreleased = (REPO / "CHANGELOG.md").read_text(encoding="utf-8").split("\n## [", 2)[1]
        assert re.search(rf"`(pytest_dummyweights)?\.{name}` \(`\w+`", unreleased), f"pytest_dummyweights.{name} is gone unnamed"


def plain_environment() -> dict[str, str]:
    """This environment without the outer run's pytest and coverage variables; the plugin loads only when asked
    for (``-p dummyweights``)."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "COV"))}
    return {**environment, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def modules_after(code: str) -> list[str]:
    """The modules a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], env=plain_environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def heavy_modules_after(code: str) -> dict[str, bool]:
    """Which of numpy and Paddle a fresh interpreter has imported after running ``code``."""
    imported = set(modules_after(code))
    return {name: name in imported for name in ("numpy", "paddle")}


def plugin_modules_after(code: str) -> set[str]:
    """The plugin's modules a fresh interpreter has imported after running ``code``, named from the package."""
    return {name.removeprefix("pytest_dummyweights") for name in modules_after(code) if name.split(".")[0] == "pytest_dummyweights"}


def pytest_run(tmp_path: Path, *plugin: str) -> str:
    """A one-test pytest run, as in a project that has the plugin installed but does not use it in this run."""
    (tmp_path / "test_one.py").write_text("def test_one():\n    assert True\n", encoding="utf-8")
    arguments = ["-q", "-p", "no:cacheprovider", *plugin, str(tmp_path)]
    loaded = "('pytest_dummyweights.plugin' in sys.modules)"
    return f"import pytest, sys\nassert pytest.main({arguments!r}) == 0\nassert {loaded} is {bool(plugin)}, 'plugin: ' + str({loaded})"


NOTHING_HEAVY = {"numpy": False, "paddle": False}


def test_a_run_without_the_plugin_imports_neither_numpy_nor_paddle(tmp_path: Path) -> None:
    """What the tests below compare with: pytest and this interpreter import neither by themselves."""
    assert heavy_modules_after(pytest_run(tmp_path)) == NOTHING_HEAVY


def test_importing_the_package_imports_neither_numpy_nor_paddle() -> None:
    assert heavy_modules_after("import pytest_dummyweights") == NOTHING_HEAVY


def test_loading_the_plugin_imports_neither_numpy_nor_paddle(tmp_path: Path) -> None:
    assert heavy_modules_after(pytest_run(tmp_path, "-p", "dummyweights")) == NOTHING_HEAVY


# What a pytest run that builds nothing imports of the plugin: the glue that registers its options, marker and
# hooks, and what reading the options needs. Every module more is paid by every pytest run of every environment
# that has the plugin installed (bench/startup.py); the build's rooms and the machinery of the fleet, the gate and
# interception are imported by the first run that uses them.
LOADED_BY_EVERY_RUN = {
    "",
    ".errors",
    ".hookspecs",
    ".marker",
    ".plugin",
    ".settings",
    ".spec",
    ".vocabulary",
    "._fleet",
    "._fleet.keys",
    "._fleet.plugin",
    "._gate",
    "._gate.plugin",
    "._intercept",
    "._intercept.plugin",
}


def test_a_run_that_builds_nothing_imports_only_the_glue(tmp_path: Path) -> None:
    assert plugin_modules_after(pytest_run(tmp_path, "-p", "dummyweights")) == LOADED_BY_EVERY_RUN


def test_importing_the_package_imports_only_its_errors() -> None:
    """Every other public name is imported when it is first asked for."""
    assert plugin_modules_after("import pytest_dummyweights") == {"", ".errors"}


def test_loading_the_plugin_warns_nothing(tmp_path: Path) -> None:
    """Its plugin modules are registered before anything imports them, so pytest can rewrite their asserts."""
    (tmp_path / "test_one.py").write_text("def test_one():\n    assert True\n", encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-p", "dummyweights", "-p", "no:cacheprovider", str(tmp_path)]
    done = subprocess.run(command, env=plain_environment(), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr
