"""The built wheel works on its own: installed into a fresh venv with no Paddle, pytest finds the plugin's
fixtures and marker through the entry point, and through ``-p dummyweights`` with autoloading off; a build
there says, in one line, what to install."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from pytest_dummyweights._intercept.session import InterceptSettings

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_FIXTURES = ("dummy_model", "dummy_model_factory")


def run(command: list[str | Path], cwd: Path, status: int = 0, **environment: str) -> subprocess.CompletedProcess[str]:
    """Run outside this session: no PYTHONPATH, pytest or coverage variables leak into the fresh venv."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "PYTEST", "COV"))}
    result = subprocess.run(command, cwd=cwd, env={**inherited, **environment}, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == status, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def copy_source(source: Path) -> Path:
    """A copy of what the wheel is made of, so a stale build/ in the checkout cannot leak in."""
    source.mkdir(exist_ok=True)
    for name in ("pyproject.toml", "README.md", "MANIFEST.in", "pytest_dummyweights.pth"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "pytest_dummyweights", source / "pytest_dummyweights", ignore=shutil.ignore_patterns("__pycache__"))
    return source


def build_wheel(source: Path, out: Path) -> Path:
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps", "-w", out, source], cwd=source)
    (built,) = out.glob("pytest_dummyweights-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(copy_source(tmp_path_factory.mktemp("source")), tmp_path_factory.mktemp("wheelhouse"))


def test_wheel_ships_the_type_marker_and_the_entry_point(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        assert "[pytest11]\ndummyweights = pytest_dummyweights.plugin" in archive.read(entry_points).decode()
    assert "pytest_dummyweights/py.typed" in names
    assert "pytest_dummyweights/plugin.py" in names
    with zipfile.ZipFile(wheel) as archive:  # the start-up hook of interception, beside the package in site-packages
        assert archive.read("pytest_dummyweights.pth") == (ROOT / "pytest_dummyweights.pth").read_bytes()


def test_the_version_is_written_once_in_the_package(tmp_path: Path) -> None:
    """pyproject.toml takes the distribution's version from ``pytest_dummyweights.__version__``."""
    source = copy_source(tmp_path / "source")
    init = source / "pytest_dummyweights" / "__init__.py"
    init.write_text(re.sub(r'^__version__ = "[^"]+"', '__version__ = "9.8.7"', init.read_text(), count=1, flags=re.MULTILINE))
    built = build_wheel(source, tmp_path / "wheelhouse")
    with zipfile.ZipFile(built) as archive:
        (metadata,) = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        assert "\nVersion: 9.8.7\n" in archive.read(metadata).decode()
    assert built.name.startswith("pytest_dummyweights-9.8.7-")


def listing(python: Path, project: Path, *options: str, **environment: str) -> str:
    """What ``pytest --fixtures`` and ``pytest --markers`` print (pytest shows only one per run)."""
    return "".join(run([python, "-m", "pytest", *options, show], cwd=project, **environment).stdout for show in ("--fixtures", "--markers"))


@pytest.fixture(scope="module")
def python_without_paddle(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv holding the wheel and pytest, and no Paddle."""
    environment = tmp_path_factory.mktemp("venv")
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel, f"pytest=={pytest.__version__}"], cwd=environment)
    assert "No module named 'paddle'" in subprocess.run([python, "-c", "import paddle"], capture_output=True, text=True, check=False).stderr
    return python


def test_installed_wheel_serves_fixtures_and_marker_without_paddle(python_without_paddle: Path, tmp_path: Path) -> None:
    python = python_without_paddle
    project = tmp_path / "project"  # no conftest, no ini: only what the wheel brings
    project.mkdir()

    autoloaded = listing(python, project)
    explicit = listing(python, project, "-p", "dummyweights", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    for output in (autoloaded, explicit):
        assert "fixtures defined from pytest_dummyweights.plugin" in output
        for fixture in PLUGIN_FIXTURES:
            assert f"\n{fixture} -- " in output
        assert "site-packages/pytest_dummyweights/plugin.py" in output  # the wheel's copy, not the checkout
        assert "@pytest.mark.dummy_load(config, *, dtype=None" in output
    without_plugin = listing(python, project, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    assert "dummy_model" not in without_plugin
    assert "dummy_load" not in without_plugin

    # The shipped start-up hook: dormant without the variable, intercepting with it (Paddle is not even installed here).
    probe = "import sys; print(sorted(m for m in sys.modules if m.startswith('pytest_dummyweights')))"
    assert run([python, "-c", probe], cwd=project).stdout.strip() == "[]"
    payload = InterceptSettings(0, "auto", None, None, "default", False, "error", None, True, "fast", None, str(tmp_path)).to_json()
    intercepting = run([python, "-c", probe], cwd=project, PYTEST_DUMMYWEIGHTS_INTERCEPT=payload)
    assert "pytest_dummyweights._intercept.startup" in intercepting.stdout and not intercepting.stderr


INSTALL_PADDLE = "Paddle is not installed: pip install paddlepaddle (or paddlepaddle-gpu for GPUs)"


def test_a_build_without_paddle_is_one_line_naming_the_install_command(python_without_paddle: Path, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "configs" / "qwen3-0.6b", tmp_path / "configs" / "qwen3-0.6b")
    (tmp_path / "test_model.py").write_text(
        "import pytest\n\n\n@pytest.mark.dummy_load('configs/qwen3-0.6b', shrink=True)\ndef test_model(dummy_model):\n    pass\n"
    )
    session = run([python_without_paddle, "-m", "pytest", "-p", "no:cacheprovider"], cwd=tmp_path, status=1)
    assert f"test_model.py::test_model: dummy build of config 'configs/qwen3-0.6b' failed: {INSTALL_PADDLE}" in session.stdout.splitlines()
    assert "Traceback" not in session.stdout and "ModuleNotFoundError" not in session.stdout

    command = run([python_without_paddle, "-m", "pytest_dummyweights", "build", "configs/qwen3-0.6b"], cwd=tmp_path, status=2)
    assert command.stderr.splitlines() == [f"error: {INSTALL_PADDLE}"]

    api = run([python_without_paddle, "-c", "from pytest_dummyweights import build_dummy_model"], cwd=tmp_path, status=1)
    assert api.stderr.splitlines()[-1] == f"pytest_dummyweights.errors.MissingDependency: {INSTALL_PADDLE}"
