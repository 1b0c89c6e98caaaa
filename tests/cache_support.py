"""Helpers for tests/test_cache.py: a tiny engine-style model, an inner conftest that logs every build,
and readers for those logs and for the plugin's run summary.

The inner sessions import this module (tests/ is on their PYTHONPATH), so the model class, the digest
and the log format are shared by the inner tests and the outer assertions.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import re
import threading
import types
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import paddle

FLOAT32 = 4


class Tiny(paddle.nn.Layer):
    """``depth`` square Linear layers of ``width``: sizes are exact, builds take a millisecond."""

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.name, self.width = config.name, config.width
        self.generation_config = types.SimpleNamespace(max_length=20, eos_token_id=[1, 2])  # an attribute object, as in PaddleFormers
        self.layers = paddle.nn.LayerList([paddle.nn.Linear(config.width, config.width) for _ in range(config.depth)])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class OtherTiny(Tiny):
    """The same layers under another class: another model, another cache key."""


class LockedTiny(Tiny):
    """Holds an object no comparison can see into (a lock): its state after a test cannot be told."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self.lock = threading.Lock()


def tiny(name: str, width: int = 4, depth: int = 2) -> dict:
    """A config for ``Tiny``; ``name`` makes specs distinct and shows up in the build log."""
    return {"name": name, "width": width, "depth": depth}


def tiny_bytes(width: int = 4, depth: int = 2) -> int:
    return depth * (width * width + width) * FLOAT32


def digest(model: paddle.nn.Layer) -> str:
    """sha256 over every parameter's name, shape, dtype and bytes: bit-identity of the weights."""
    hashed = hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        hashed.update(f"{name}{tuple(param.shape)}{param.dtype}".encode())
        hashed.update(np.ascontiguousarray(param.numpy()).tobytes())
    return hashed.hexdigest()


UNIQUE_NAME_COUNTER = re.compile(r"_\d+")  # Paddle numbers each layer and parameter name per process: linear_3.w_0
RENDER_DEPTH = 12
PARAMETER_FLAGS = ("name", "stop_gradient", "trainable", "persistable")


def render(value: Any, depth: int = RENDER_DEPTH) -> Any:
    """A value as JSON-able text and containers: no object addresses, unique-name counters blanked, cut at ``depth``;
    a dict's items in key order, since dicts (``vars()`` too) compare by value, not by insertion order."""
    if depth == 0:
        return "<deeper>"
    if isinstance(value, str):
        return UNIQUE_NAME_COUNTER.sub("_N", value)
    if value is None or isinstance(value, (bool, int, float, bytes)):
        return f"{type(value).__name__} {value!r}"
    if isinstance(value, paddle.Tensor):
        return f"tensor {value.shape} {value.dtype}"
    if isinstance(value, paddle.nn.Layer):
        return f"layer {type(value).__qualname__}"
    if isinstance(value, dict):
        items = [[render(k, depth - 1), render(v, depth - 1)] for k, v in value.items()]
        return {"type": type(value).__name__, "items": sorted(items, key=str)}
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, *(render(item, depth - 1) for item in value)]
    if isinstance(value, (set, frozenset)):
        return [type(value).__name__, *sorted(map(str, (render(item, depth - 1) for item in value)))]
    if isinstance(value, functools.partial):
        return ["partial", render(value.func, depth - 1), render(value.args, depth - 1), render(value.keywords, depth - 1)]
    if isinstance(value, types.MethodType):
        return ["method", value.__func__.__qualname__, render(value.__self__, depth - 1)]
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type)):
        return f"{value.__module__}:{value.__qualname__}"
    if hasattr(value, "__dict__"):
        return {"type": type(value).__qualname__, "attributes": render(vars(value), depth - 1)}
    return f"{type(value).__qualname__} {value!r}"


def python_state(model: paddle.nn.Layer) -> dict[str, Any]:
    """Every Python attribute of the model's sublayers and of its parameters and buffers, rendered so that
    two builds of one spec compare equal: what the next test must see after any mutation, values aside."""
    state: dict[str, Any] = {}
    for path, layer in model.named_sublayers(include_self=True):
        plain = {name: value for name, value in vars(layer).items() if name not in ("_parameters", "_buffers", "_sub_layers")}
        state[f"layer {path}"] = render(plain)
        state[f"hooks {path}"] = [len(layer._forward_pre_hooks), len(layer._forward_post_hooks)]
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        flags = {flag: getattr(tensor, flag) for flag in PARAMETER_FLAGS if hasattr(tensor, flag)}
        state[f"tensor {name}"] = render({**flags, **vars(tensor)})
    return state


_COUNTER = itertools.count()
_IDENTITIES: weakref.WeakKeyDictionary[paddle.nn.Layer, str] = weakref.WeakKeyDictionary()


def identity(model: paddle.nn.Layer) -> str:
    """Which built object this is: ``id()`` is not enough, since Python may give a rebuilt model the address of the
    one it replaced (seen on 3.13); a token per live object, process id and a counter, is never reused."""
    if model not in _IDENTITIES:
        _IDENTITIES[model] = f"{os.getpid()}:{next(_COUNTER)}"
    return _IDENTITIES[model]


def view_of(model: paddle.nn.Layer) -> dict[str, Any]:
    """What a test sees of its model: weights, Python state, mode, gradients; and its identity and parameter names
    (which a rebuild changes)."""
    return {
        "digest": digest(model),
        "python": json.loads(json.dumps(python_state(model))),
        "training": any(layer.training for layer in model.sublayers(include_self=True)),
        "grads": any(param.grad is not None for param in model.parameters()),
        "id": identity(model),
        "names": [param.name for param in model.parameters()],
    }


def save_view(model: paddle.nn.Layer, name: str) -> None:
    """``view_of(model)`` into ``$ISOLATION_RECORDS/<name>.json``, for the outer test to read."""
    (Path(os.environ["ISOLATION_RECORDS"]) / f"{name}.json").write_text(json.dumps(view_of(model)))


# The inner conftest: the post-process hook runs inside the build (and so inside the build lock);
# it logs who built what, and sleeps when the config asks for it, to make lock contention visible.
INNER_CONFTEST = """
import json, os, time
import pytest

LOG_DIR = os.environ["DUMMYWEIGHTS_TEST_LOGS"]

def _append(kind, record):
    with open(os.path.join(LOG_DIR, f"{kind}-{os.getpid()}.jsonl"), "a") as out:
        out.write(json.dumps(record) + "\\n")

def pytest_dummyweights_post_process(model, model_config, spec):
    start = time.monotonic()
    time.sleep(getattr(model_config, "sleep", 0))
    _append("builds", {"worker": os.environ.get("PYTEST_XDIST_WORKER", "main"), "pid": os.getpid(),
                       "name": model_config.name, "start": start, "end": time.monotonic()})

@pytest.fixture
def record(request):
    '''record(model): log the test's model: digest, identity, mode, gradients for the outer test.'''
    import paddle
    from cache_support import digest, identity, python_state

    def record(model, **extra):
        _append("seen", {"test": request.node.name, "pid": os.getpid(), "digest": digest(model),
                         "id": identity(model), "training": model.training,
                         "name": model.name, "grads": any(p.grad is not None for p in model.parameters()),
                         "frozen": [p.stop_gradient for p in model.parameters()], "buffers": [n for n, _ in model.named_buffers()],
                         "python": python_state(model), "names": [p.name for p in model.parameters()],
                         "output": model(paddle.ones([1, model.width])).numpy()[:, :8].tolist(), **extra})
    return record
"""


def write_conftest(inner, log_dir: Path) -> None:
    """The inner conftest, logging into ``log_dir`` (through an environment variable the inner sessions inherit)."""
    log_dir.mkdir(exist_ok=True)
    inner.monkeypatch.setenv("DUMMYWEIGHTS_TEST_LOGS", str(log_dir))
    inner.write("conftest.py", INNER_CONFTEST)


def read_log(log_dir: Path, kind: str) -> list[dict]:
    """All records of one kind, from every process, in the order each process wrote them."""
    return [json.loads(line) for path in sorted(log_dir.glob(f"{kind}-*.jsonl")) for line in path.read_text().splitlines()]


def seen_by_test(log_dir: Path) -> dict[str, dict]:
    return {record["test"]: record for record in read_log(log_dir, "seen")}


SUMMARY_COUNTS = re.compile(
    r"(?P<built>\d+) built in [\d.]+ s \((?P<built_bytes>[^)]+)\), (?P<hits>\d+) cache hits, "
    r"(?P<evictions>\d+) evictions, (?P<repairs>\d+) isolation repairs, (?P<lock_wait>[\d.]+) s waiting for the build lock"
)
MODEL_LINE = re.compile(
    r"^\s+(?P<key>[0-9a-f]{16})\s+(?P<description>.+?)\s+(?P<bytes>[\d.]+ \w+) \((?P<resident>[\d.]+ \w+) resident, "
    r"(?P<shared>[\d.]+ \w+) shared\)\s+built (?P<built>\d+)x(?: on (?P<workers>gw\d+(?:, gw\d+)*))?, served from cache (?P<hits>\d+)x$"
)


def summary_section(lines: list[str]) -> list[str]:
    """The lines of the ``dummyweights`` section of a run's terminal output."""
    start = next(i for i, line in enumerate(lines) if re.match(r"^=+ dummyweights =+$", line))
    ended = re.compile(r"^=|^\d+ (passed|failed|error)")  # the next section, or -q's bare outcome line
    end = next((i for i in range(start + 1, len(lines)) if ended.match(lines[i])), len(lines))
    return lines[start + 1 : end]


def summary_counts(lines: list[str]) -> dict:
    """The counts line's numbers (from -q, default or -v output)."""
    found = next(m for m in map(SUMMARY_COUNTS.search, lines) if m)
    counts = {key: int(value) for key, value in found.groupdict().items() if key not in ("built_bytes", "lock_wait")}
    return {**counts, "built_bytes": found["built_bytes"], "lock_wait": float(found["lock_wait"])}


def model_lines(lines: list[str]) -> list[dict]:
    """The -v per-model lines: key, description, bytes, built and hits counts."""
    return [{**m.groupdict(), "built": int(m["built"]), "hits": int(m["hits"])} for m in map(MODEL_LINE.match, summary_section(lines)) if m]
