"""What is patched and how, and which interception is active in this process.

A patched function keeps its identity: its ``__code__`` is swapped for a trampoline that calls ``dispatch``, so
every reference to it is intercepted (``from engine import load`` done before the run, a bound classmethod, a
``super()`` call); the original runs from a copy with the saved code, the same globals and closure. A function of
a module not imported yet is patched the moment that module finishes loading (a finder at the front of
``sys.meta_path`` wraps its loader), so activating an interception imports nothing.

Interceptions stack (the run's, then a test's, in a subprocess the one its start-up hook made); the top one serves
calls. Each patch is installed while some active interception needs it and restored when the last one ends.
Calls made by this package itself (``--real-weights`` loading through ``from_pretrained``) always reach the original.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.abc
import sys
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pytest_dummyweights.errors import DummyWeightsError

Replacement = Callable[[Callable[..., Any], tuple, dict], Any]  # (original, args, kwargs) -> what the call returns
TRAMPOLINE_FILE = "<pytest-dummyweights: intercepted>"
KEY_PLACEHOLDER = "\0key"
PACKAGE = __name__.split(".")[0]


@dataclasses.dataclass(frozen=True)
class Patch:
    """A Python function to replace while an interception needs it; ``target`` names it as
    ``package.module:Qualified.name`` or ``package.module.function``."""

    target: str
    replacement: Replacement


@dataclasses.dataclass
class Installed:
    function: types.FunctionType
    saved: types.CodeType
    replacement: Replacement


_stack: list[tuple[Any, tuple[Patch, ...]]] = []
_needed: dict[str, int] = {}  # target -> active interceptions needing it
_installed: dict[str, Installed] = {}
_originals: dict[str, Callable[..., Any]] = {}  # kept after a restore: a call already in a trampoline still finds it
_waiting: dict[str, list[Patch]] = {}  # module name -> patches to install when it is imported


def split_target(target: str) -> tuple[str, str]:
    """``package.module:Qual.name`` or ``package.module.function`` -> (module name, qualified name)."""
    module, colon, qualname = target.partition(":")
    if not colon:
        module, _, qualname = target.rpartition(".")
    if not module or not qualname or not all(part.isidentifier() for part in (*module.split("."), *qualname.split("."))):
        raise DummyWeightsError(
            f"intercept target {target!r} is not a dotted path: write package.module.function or package.module:Class.method"
        )
    return module, qualname


def active() -> Any:
    """The interception serving calls now, or None."""
    return _stack[-1][0] if _stack else None


def activate(interception: Any, patches: Iterable[Patch]) -> None:
    """Make ``interception`` the active one, installing its patches (now, or when their modules are imported)."""
    needed = tuple(patches)
    for patch in needed:
        split_target(patch.target)
    _stack.append((interception, needed))
    for patch in needed:
        _needed[patch.target] = _needed.get(patch.target, 0) + 1
        if _needed[patch.target] == 1:
            _install_or_wait(patch)


def deactivate(interception: Any) -> None:
    """End ``interception``; restore each patch no other active interception needs."""
    index = max(i for i, (other, _) in enumerate(_stack) if other is interception)
    _, needed = _stack.pop(index)
    for patch in needed:
        _needed[patch.target] -= 1
        if _needed[patch.target] == 0:
            del _needed[patch.target]
            _restore(patch)


def is_patched(function: Callable[..., Any]) -> bool:
    """Whether ``function`` (or a bound method's function) currently runs a trampoline."""
    return _plain_function(function).__code__.co_filename == TRAMPOLINE_FILE


def dispatch(key: str, args: tuple, kwargs: dict) -> Any:
    """What a trampoline calls: the replacement while an interception is active, else the original. A
    ``DummyWeightsError`` is the caller's one report: raised without this package's frames."""
    __tracebackhide__ = True
    original = _originals[key]
    installed = _installed.get(key)
    caller = sys._getframe(2).f_globals.get("__name__", "")  # 0: here, 1: the trampoline, 2: who called the function
    if installed is None or not _stack or caller.split(".")[0] == PACKAGE:
        return original(*args, **kwargs)
    try:
        return installed.replacement(original, args, kwargs)
    except DummyWeightsError as error:
        raise error.with_traceback(None) from None


@functools.cache
def _template(free: int) -> types.CodeType:
    """A trampoline's code with ``free`` free variables (a function's code can only be swapped for one whose free
    variables match its closure); they are never read."""
    names = [f"_free{i}" for i in range(free)]
    lines = ["def _outer():", *(f"    {name} = None" for name in names), "    def _trampoline(*args, **kwargs):"]
    if names:
        lines.append(f"        if args is None: {', '.join(names)}")
    lines += [
        f"        return __import__({__name__!r}, fromlist=['dispatch']).dispatch({KEY_PLACEHOLDER!r}, args, kwargs)",
        "    return _trampoline",
    ]
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), TRAMPOLINE_FILE, "exec"), namespace)
    return namespace["_outer"]().__code__


def _trampoline(key: str, saved: types.CodeType) -> types.CodeType:
    code = _template(len(saved.co_freevars))
    constants = tuple(key if constant == KEY_PLACEHOLDER else constant for constant in code.co_consts)
    return code.replace(co_consts=constants, co_name=saved.co_name, co_qualname=saved.co_qualname)


def _plain_function(found: Any) -> Any:
    """The function behind a classmethod, staticmethod or bound method."""
    return getattr(found, "__func__", found)


def _function_of(patch: Patch, module: types.ModuleType) -> types.FunctionType:
    _, qualname = split_target(patch.target)
    found: Any = module
    for part in qualname.split("."):
        if not hasattr(found, part):
            raise DummyWeightsError(f"intercept target {patch.target!r}: {module.__name__} has no attribute {qualname!r}; fix the name")
        found = getattr(found, part)
    function = _plain_function(found)
    if not isinstance(function, types.FunctionType):
        raise DummyWeightsError(
            f"intercept target {patch.target!r} is a {type(found).__name__}, not a Python function: name the function that loads"
        )
    if function.__code__.co_filename == TRAMPOLINE_FILE:
        raise DummyWeightsError(f"intercept target {patch.target!r} names a function another target already intercepts; name it once")
    return function


def _install(patch: Patch, module: types.ModuleType) -> None:
    function = _function_of(patch, module)
    saved = function.__code__
    original = types.FunctionType(saved, function.__globals__, function.__name__, function.__defaults__, function.__closure__)
    original.__kwdefaults__ = function.__kwdefaults__
    original.__qualname__ = function.__qualname__
    _originals[patch.target] = original
    _installed[patch.target] = Installed(function, saved, patch.replacement)
    function.__code__ = _trampoline(patch.target, saved)


def _restore(patch: Patch) -> None:
    installed = _installed.pop(patch.target, None)
    if installed is not None:
        installed.function.__code__ = installed.saved
        return
    module_name, _ = split_target(patch.target)
    waiting = _waiting.get(module_name, [])
    if patch in waiting:
        waiting.remove(patch)
    if not waiting:
        _waiting.pop(module_name, None)
    if not _waiting and _WATCHER in sys.meta_path:
        sys.meta_path.remove(_WATCHER)


def _install_or_wait(patch: Patch) -> None:
    module_name, _ = split_target(patch.target)
    module = sys.modules.get(module_name)
    if module is not None:
        _install(patch, module)
        return
    _waiting.setdefault(module_name, []).append(patch)
    if _WATCHER not in sys.meta_path:
        sys.meta_path.insert(0, _WATCHER)


class _PatchingLoader(importlib.abc.Loader):
    """Runs a waited-for module's own loader, then installs the patches waiting for it."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__loader__ = self.loader  # what introspection sees afterwards: its own loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        for patch in _waiting.pop(module.__name__, []):
            _install(patch, module)
        if not _waiting and _WATCHER in sys.meta_path:
            sys.meta_path.remove(_WATCHER)


class _Watcher(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a waited-for module it asks the finders after it and wraps the loader they return."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None) -> Any:
        if fullname not in _waiting:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = None if finder is self or find is None else find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


_WATCHER = _Watcher()
