"""The compatibility matrix as the tests read it: noxfile.py loaded once, its cells and their pins."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def load_noxfile() -> ModuleType:
    """Once per process: importing noxfile.py registers its sessions with nox."""
    spec = importlib.util.spec_from_file_location("noxfile", ROOT / "noxfile.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["noxfile"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module
