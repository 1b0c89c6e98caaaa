"""Helpers for tests/test_cache.py: a tiny engine-style model, an inner conftest that logs every build,
and readers for those logs and for the plugin's run summary.

The inner sessions import this module (tests/ is on their PYTHONPATH), so the model class, the digest
and the log format are shared by the inner tests and the outer assertions.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import paddle

FLOAT32 = 4


class Tiny(paddle.nn.Layer):
    """``depth`` square Linear layers of ``width``: sizes are exact, builds take a millisecond."""

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.name, self.width = config.name, config.width
        self.layers = paddle.nn.LayerList([paddle.nn.Linear(config.width, config.width) for _ in range(config.depth)])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class OtherTiny(Tiny):
    """The same layers under another class: another model, another cache key."""


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
    from cache_support import digest

    def record(model, **extra):
        _append("seen", {"test": request.node.name, "pid": os.getpid(), "digest": digest(model),
                         "id": id(model), "training": model.training,
                         "name": model.name, "grads": any(p.grad is not None for p in model.parameters()),
                         "frozen": [p.stop_gradient for p in model.parameters()], "buffers": [n for n, _ in model.named_buffers()],
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
    return [
        {**m.groupdict(), "built": int(m["built"]), "hits": int(m["hits"])}
        for m in map(MODEL_LINE.match, summary_section(lines))
        if m
    ]
