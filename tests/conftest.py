"""Run the plugin the way users do: a real pytest session with ``-p dummyweights`` and autoloading off."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import settings

# The property tests gate every change, so they run the same examples on every run ("gate": derandomized, no
# example database); HYPOTHESIS_PROFILE=explore searches new ones (keep what it finds as an @example).
settings.register_profile("gate", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "gate"))

TESTS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS_DIR))  # engine_models, for the outer tests (the inner sessions get it below)


class Inner:
    """A pytester session with the plugin loaded explicitly (``-p dummyweights``) and autoloading off."""

    def __init__(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pytester = pytester
        self.monkeypatch = monkeypatch
        self.path = pytester.path

    def write(self, relative: str, *parts: str) -> Path:
        """Write a file from parts, each dedented on its own (a shared header, then the tests)."""
        path = self.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(textwrap.dedent(part) for part in parts), encoding="utf-8")
        return path

    def config_dir(self, relative: str, config: dict) -> Path:
        return self.write(f"{relative}/config.json", json.dumps(config)).parent

    def run(self, *args: str, subprocess: bool = False, plugin: bool = True, timeout: float = 300) -> pytest.RunResult:
        """``subprocess=True`` for loading and isolation tests; in-process is much faster (Paddle imported once)."""
        args = (*(("-p", "dummyweights") if plugin else ()), "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", *args)
        if subprocess:
            return self.pytester.runpytest_subprocess(*args, timeout=timeout)
        return self.pytester.runpytest_inprocess(*args)


@pytest.fixture(scope="session")
def warm_up() -> None:
    """Import, once per process and before ``pytester`` exists, all that inner in-process sessions use.

    pytester drops the modules imported after it was set up; Paddle's extension submodules cannot be
    imported a second time, so they must be loaded before the first in-process run. The PaddleFormers
    models only where PaddleFormers is installed: the core cell (noxfile.py) runs without it.
    """
    import paddle
    from engine_models import SHRINK
    from engine_models.layers import ENGINE_CONFIG, EngineModel

    from pytest_dummyweights import build_dummy_model

    ids = paddle.to_tensor([list(range(1, 9))])  # DeepSeek-V3 wants seq_length (8) tokens
    if importlib.util.find_spec("paddleformers"):
        for config, overrides in SHRINK.values():
            build_dummy_model(config, overrides=overrides)(ids)
    build_dummy_model(ENGINE_CONFIG, model=EngineModel)(ids)


@pytest.fixture
def inner(warm_up: None, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Inner:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setenv("COLUMNS", "80")  # the inner output wraps and truncates the same on every terminal
    pytester.syspathinsert(TESTS_DIR)
    return Inner(pytester, monkeypatch)
