"""Per-worker cache of built models: each distinct spec is built once per process, and each test
gets the model as a fresh build would give it.

Isolation is checked cheaply after each test that borrowed a model: Paddle's in-place version
counters and data pointers, the parameter set (names, identities, shapes, dtypes, ``stop_gradient``),
buffers and forward hooks, a few probed
elements per parameter (``set_value`` and optimizer steps bump no version counter), gradients,
and the ``training`` flags. Mode and gradients are restored in place; changed weights or
parameters drop the model, so the next test gets a rebuild.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import paddle

from . import __version__
from .build import BuildHooks, BuildResult, Plan, execute, plan_build
from .device import gpu_count
from .fill import host_view, unique_parameters
from .spec import DummySpec
from .summary import CacheStats

PROBES_PER_PARAMETER = 8
CPU_MEMORY_FRACTION = 0.25
GPU_MEMORY_FRACTION = 0.5


def fingerprint(plan: Plan) -> str:
    """Everything that changes the built model: class, config after overrides, dtype, seed, std, device, value
    rules, the build's checks, versions."""
    factory = plan.factory
    factory_name = f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', type(factory).__qualname__)}"
    described = {
        "class": factory_name,
        "config": plan.config.raw,  # includes quantization_config, the quantization-relevant settings
        "dtype": plan.spec.dtype,
        "seed": plan.spec.seed,
        "std": plan.spec.std,
        "device": plan.spec.device,
        "values": [plan.spec.scales, list((plan.spec.value_rules or {}).items())],  # in order: the last match wins
        "checks": [plan.spec.smoke, sorted(plan.spec.allow_unset)],  # a model is served only to the checks it passed
        "plugin": __version__,
        "paddle": paddle.__version__,
    }
    text = json.dumps(described, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_budget_bytes(device: str, workers_on_device: int = 1) -> int:
    """A fraction of the device's memory, shared by the xdist workers that build on that device."""
    if device.startswith("gpu"):
        index = int(device.partition(":")[2] or 0)
        total = paddle.device.cuda.get_device_properties(index).total_memory
        fraction = GPU_MEMORY_FRACTION
    else:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        fraction = CPU_MEMORY_FRACTION
    return int(total * fraction / max(1, workers_on_device))


def workers_per_device(worker_count: int) -> int:
    """How many xdist workers share one device: all on the CPU, spread round-robin over GPUs."""
    gpus = gpu_count()
    return -(-worker_count // gpus) if gpus else worker_count


def _probe(param: paddle.Tensor) -> bytes:
    """A few elements at fixed, spread positions: a cheap witness that values were rewritten."""
    count = int(np.prod(param.shape))
    if count == 0:
        return b""
    positions = np.unique(np.linspace(0, count - 1, PROBES_PER_PARAMETER).astype(np.int64))
    if param.place.is_cpu_place():
        return host_view(param)[positions].tobytes()
    picked = paddle.index_select(param.reshape([-1]), paddle.to_tensor(positions, place=param.place))
    return picked.cast("float32").numpy().tobytes() if picked.dtype != paddle.float32 else picked.numpy().tobytes()


def _tensor_state(tensor: paddle.Tensor) -> tuple:
    return (id(tensor), tuple(tensor.shape), str(tensor.dtype), tensor.stop_gradient, tensor._inplace_version(), tensor.data_ptr(), _probe(tensor))


def _model_state(model: paddle.nn.Layer) -> dict[str, tuple]:
    """What a test can leave behind: parameters, buffers and forward hooks, keyed ``parameter <name>`` etc."""
    state = {f"parameter {name}": _tensor_state(param) for name, param in unique_parameters(model)}
    state.update((f"buffer {name}", _tensor_state(buffer)) for name, buffer in model.named_buffers() if buffer is not None)
    for name, layer in model.named_sublayers(include_self=True):
        hooks = (tuple(layer._forward_pre_hooks), tuple(layer._forward_post_hooks))
        if any(hooks):
            state[f"hooks of {name or 'the model'}"] = hooks
    return state


def _some(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


@dataclasses.dataclass
class Snapshot:
    """What a model looked like when it was lent to a test."""

    state: dict[str, tuple]

    @classmethod
    def of(cls, model: paddle.nn.Layer) -> Snapshot:
        return cls(_model_state(model))

    def changes(self, model: paddle.nn.Layer) -> tuple[list[str], list[str]]:
        """(what needs a rebuild, what was restored in place)."""
        now = _model_state(model)
        added = sorted(now.keys() - self.state.keys())
        dropped = sorted(self.state.keys() - now.keys())
        changed = sorted(key for key in now.keys() & self.state.keys() if now[key] != self.state[key])
        rebuild = [f"{what} {_some(keys)}" for what, keys in (("added", added), ("dropped", dropped), ("changed", changed)) if keys]
        restored = []
        if any(param.grad is not None for _, param in unique_parameters(model)):
            model.clear_gradients(set_to_zero=False)  # None, as built: zeroed gradients would read as "left behind" again
            restored.append("gradients cleared")
        if any(layer.training for layer in model.sublayers(include_self=True)):
            model.eval()
            restored.append("train mode reset to eval")
        return rebuild, restored


@dataclasses.dataclass
class Entry:
    result: BuildResult
    snapshot: Snapshot


class ModelCache:
    """Built models of one process (one xdist worker), least recently used evicted past ``budget_bytes``."""

    def __init__(self, budget_bytes: int | None = None, *, enabled: bool = True, lock_dir: str | os.PathLike | None = None):
        self.budget_bytes = budget_bytes
        self.enabled = enabled
        self.lock_dir = Path(lock_dir) if lock_dir is not None else None
        self.stats = CacheStats()
        self._entries: collections.OrderedDict[str, Entry] = collections.OrderedDict()
        self._lent: list[tuple[str, Any]] = []

    def get(self, spec: DummySpec, *, search_dirs: Iterable[str | os.PathLike] = (), hooks: BuildHooks | None = None, worker_id: str | None = None) -> paddle.nn.Layer:
        """The model for ``spec``: from the cache when built before, else built (under the device's build lock)."""
        plan = plan_build(spec, search_dirs=search_dirs, hooks=hooks, worker_id=worker_id)
        key = fingerprint(plan)
        cached = self.enabled and not spec.fresh
        entry = self._entries.get(key) if cached else None
        if entry is not None:
            self._entries.move_to_end(key)
            self.stats.hits += 1
            self.stats.models[key][3] += 1
            result = entry.result
        else:
            result = self._build(plan, hooks, key)
            if cached:
                self._store(key, Entry(result, Snapshot.of(result.model)))
        self.stats.served_bytes += result.nbytes
        if cached:
            self._lent.append((key, result.model))
        return result.model

    def check_returns(self, test_id: str) -> list[str]:
        """After a test: restore or drop each model it borrowed; returns what was repaired."""
        said = []
        for key, model in self._lent:
            entry = self._entries.get(key)
            if entry is None or entry.result.model is not model:
                continue
            rebuild, restored = entry.snapshot.changes(model)
            if rebuild:
                del self._entries[key]
            what = "; ".join(rebuild + restored) + ("; dropped, the next test gets a rebuild" if rebuild else "")
            if what:
                name = type(model).__name__
                self.stats.repairs.append([test_id, name, what])
                said.append(f"{name}: {what}")
        self._lent.clear()
        return said

    def _build(self, plan: Plan, hooks: BuildHooks | None, key: str) -> BuildResult:
        with self._build_lock(plan.spec.device):
            started = time.perf_counter()
            result = execute(plan, hooks)
        self.stats.built += 1
        self.stats.build_seconds += time.perf_counter() - started
        self.stats.built_bytes += result.nbytes
        rules = f" ({result.rules_applied.describe()})" if result.rules_applied.rules else ""
        record = self.stats.models.setdefault(key, [f"{type(result.model).__name__} {plan.spec.dtype}{rules}", result.nbytes, 0, 0])
        record[2] += 1
        return result

    @contextlib.contextmanager
    def _build_lock(self, device: str) -> Iterator[None]:
        """Serialize builds on one device across processes, so their memory peaks do not add up."""
        if self.lock_dir is None:
            yield
            return
        from filelock import FileLock

        started = time.perf_counter()
        with FileLock(str(self.lock_dir / f"dummyweights-build-{device.replace(':', '')}.lock")):
            self.stats.lock_wait_seconds += time.perf_counter() - started
            yield

    def _store(self, key: str, entry: Entry) -> None:
        """Keep ``entry``, evicting least recently used models past the budget; one larger than the budget is not kept."""
        size = entry.result.nbytes
        if self.budget_bytes is not None:
            if size > self.budget_bytes:
                return
            held = sum(e.result.nbytes for e in self._entries.values())
            while held + size > self.budget_bytes:
                _, evicted = self._entries.popitem(last=False)
                held -= evicted.result.nbytes
                self.stats.evictions += 1
        self._entries[key] = entry
