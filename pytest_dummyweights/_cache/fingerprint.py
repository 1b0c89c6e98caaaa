"""Cache keys: a fingerprint of everything a built model depends on, or None when that cannot be told safely.

A factory is identified by itself, never by its name alone: two lambdas, two ``functools.partial``
objects or two closures in one module are different factories. Its description holds its object
identity in this process (the cache keeps the factory alive, so the identity is never reused), its
qualified name, and the values it carries: defaults, closure cells, a partial's arguments. A factory
carrying a value that cannot be described (an arbitrary object, which a test could change between
builds) is not described at all, and its models are not cached.

The hooks are identified by the implementations the build sees: each ``pytest_dummyweights_*`` hook's
implementing plugins (a conftest.py by its path) and functions. A conftest's hooks apply to the tests
under it only, so two directories whose hooks could build one config differently never share a model.

The fleet key (``fleet_key``) is the cache key less what is local to one process or machine: a factory
by its name alone (no object identity), the device by its kind (``gpu``, not ``gpu:1``), a checkpoint by
its manifest (not its path or file times). Equal on every xdist worker and every CI machine, it is what
the scheduler and the shards group tests by; two specs with one cache key always share a fleet key.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import sys
import types
from collections.abc import Mapping
from typing import Any

import paddle

from pytest_dummyweights import __version__, hookspecs

PLAIN_TYPES = (type(None), bool, int, float, complex, str, bytes)
# Spec fields the fingerprint does not read: the raw config (after overrides) and the factory stand for them.
# store_dir: where the same values are kept, not which values.
SPEC_FIELDS_SEEN_ELSEWHERE = ("config", "overrides", "new_keys", "model", "fresh", "store_dir")
HOOK_NAMES = tuple(name for name in vars(hookspecs) if name.startswith("pytest_dummyweights_"))


def key_text(value: Any, seen: frozenset[int] = frozenset(), *, portable: bool = False) -> str | None:
    """A text that differs whenever the value could build a different model, or None if there is none;
    ``portable``: without object identities, so every process describes the value alike."""
    if isinstance(value, PLAIN_TYPES):
        return repr(value)
    if id(value) in seen:
        return "<recursive>" if portable else f"<recursive {id(value)}>"
    seen = seen | {id(value)}
    if isinstance(value, (tuple, list, frozenset)):
        items = [key_text(item, seen, portable=portable) for item in value]
        return None if None in items else f"{type(value).__name__}({', '.join(map(str, items))})"
    if isinstance(value, dict):
        pairs = [(key_text(k, seen, portable=portable), key_text(v, seen, portable=portable)) for k, v in value.items()]
        return None if any(None in pair for pair in pairs) else "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    if isinstance(value, type):
        return _named(value, portable)
    if isinstance(value, functools.partial):
        parts = [key_text(part, seen, portable=portable) for part in (value.func, value.args, value.keywords)]
        return None if None in parts else f"partial({', '.join(map(str, parts))})"
    if isinstance(value, types.FunctionType):
        cells = tuple(cell.cell_contents for cell in value.__closure__ or ())
        parts = [key_text(part, seen, portable=portable) for part in (value.__defaults__, value.__kwdefaults__, cells)]
        return None if None in parts else f"{_named(value, portable)}(defaults={parts[0]}, kwdefaults={parts[1]}, closure={parts[2]})"
    if isinstance(value, types.BuiltinFunctionType):
        return _named(value, portable)
    return None


def _named(value: Any, portable: bool = False) -> str:
    """``module:qualname`` when that name leads back to this very object; else the name plus the object's
    identity, so two objects of one name (lambdas, classes defined in functions, rebound names) differ
    (``portable``: the name alone)."""
    module, qualname = getattr(value, "__module__", None), value.__qualname__
    found: Any = sys.modules.get(module or "")
    for part in qualname.split("."):
        found = getattr(found, part, None)
    name = f"{module}:{qualname}"
    return name if found is value or portable else f"{name}@{id(value):x}"


def _ordered(value: Any) -> Any:
    """A mapping as its items in order (value rules: the last match wins), anything else as it is."""
    return list(value.items()) if isinstance(value, Mapping) else value


def hook_implementations(hooks: Any) -> list[str] | None:
    """The implementations of this plugin's hooks that ``hooks`` (a test's ``node.ihook``) calls, or None when
    that cannot be told (an object that is not pytest's hook relay)."""
    hooks = getattr(hooks, "relay", hooks)  # a wrapper (interception's per-call relay) names the relay it calls
    implementations: list[str] = []
    for name in HOOK_NAMES if hooks is not None else ():
        get_hookimpls = getattr(getattr(hooks, name, None), "get_hookimpls", None)
        if not callable(get_hookimpls):
            return None
        implementations += [f"{name}: {impl.plugin_name}:{impl.function.__qualname__}" for impl in get_hookimpls()]
    return implementations


def fingerprint(
    spec: Any,
    raw_config: dict[str, Any],
    factory: Any,
    checkpoint_identity: str | None = None,
    hooks: Any = None,
    *,
    portable: bool = False,
) -> str | None:
    """The cache key of a planned build (``spec`` with every default filled in), or None: do not cache it.

    ``checkpoint_identity`` (``contract.CheckpointPlan.identity``) changes whenever the checkpoint's files do;
    ``hooks`` are the hooks the build calls (see ``hook_implementations``); ``portable``: the fleet key (see the module's
    docstring), the caller passing the manifest's digest as identity."""
    factory_description = key_text(factory, portable=portable)
    hooks_description = hook_implementations(hooks)
    if factory_description is None or hooks_description is None:
        return None
    settings = {f.name: _ordered(getattr(spec, f.name)) for f in dataclasses.fields(spec) if f.name not in SPEC_FIELDS_SEEN_ELSEWHERE}
    if portable:
        settings.update(device=str(spec.device).partition(":")[0], checkpoint=None)
    described = {
        "factory": factory_description,
        "hooks": hooks_description,  # which conftests' and plugins' hook implementations decide the model
        "config": raw_config,  # after overrides; includes quantization_config
        "checkpoint": checkpoint_identity,  # spec.checkpoint is the resolved path; this, the files behind it
        "settings": settings,  # dtype, seed, std, device, and every other spec field
        "plugin": __version__,
        "paddle": paddle.__version__,
    }
    text = json.dumps(described, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fleet_key(plan: Any) -> str | None:
    """The fleet key of a planned build (a ``pipeline.Plan``), or None when its factory cannot be described."""
    manifest = None if plan.checkpoint is None else hashlib.sha256(plan.checkpoint.manifest.to_text().encode()).hexdigest()
    return fingerprint(plan.spec, plan.loaded_config.raw, plan.factory, manifest, portable=True)
