"""Which device a build runs on (``auto`` picks a GPU when Paddle has CUDA and one is visible), and how much
memory a device has."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

import paddle

from pytest_dummyweights.errors import DummyWeightsError


def gpu_count() -> int:
    if not paddle.is_compiled_with_cuda():
        return 0
    return paddle.device.cuda.device_count()


def device_memory_bytes(device: str) -> int:
    """All the memory of a concrete device (``cpu``, ``gpu:N``)."""
    if device.startswith("gpu"):
        return int(paddle.device.cuda.get_device_properties(int(device.partition(":")[2] or 0)).total_memory)
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def worker_index(worker_id: str | None) -> int:
    """``gw3`` -> 3; the controller or a run without xdist -> 0."""
    match = re.fullmatch(r"gw(\d+)", worker_id or "")
    return int(match.group(1)) if match else 0


def resolve_device(device: str, worker_id: str | None = None) -> str:
    """Turn ``auto``/``gpu`` into a concrete Paddle device; xdist worker gwN gets GPU ``N % count``."""
    count = gpu_count()
    if device == "auto":
        device = "gpu" if count else "cpu"
    if device == "gpu":
        if not count:
            raise DummyWeightsError(
                "device 'gpu' was asked for, but Paddle sees no GPU "
                f"(compiled with CUDA: {paddle.is_compiled_with_cuda()}); use device='auto' or 'cpu'"
            )
        device = f"gpu:{worker_index(worker_id) % count}"
    elif device.startswith("gpu:"):
        check_device_exists(device)
    return device


@contextlib.contextmanager
def on_device(device: str) -> Iterator[None]:
    """Make ``device`` Paddle's current device for the block, then restore the previous one."""
    previous = paddle.device.get_device()
    paddle.device.set_device(device)
    try:
        yield
    finally:
        paddle.device.set_device(previous)


@contextlib.contextmanager
def default_dtype(dtype: str) -> Iterator[None]:
    """Parameters created in the block get ``dtype`` unless a layer says otherwise."""
    previous = paddle.get_default_dtype()
    paddle.set_default_dtype(getattr(paddle, dtype))
    try:
        yield
    finally:
        paddle.set_default_dtype(previous)


def check_device_exists(device: str) -> None:
    """``gpu:N`` must name a GPU Paddle can see, so a run stops at start-up rather than in every test."""
    count = gpu_count()
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        seen = f"{count} GPU(s), gpu:0 to gpu:{count - 1}" if count else f"no GPU (compiled with CUDA: {paddle.is_compiled_with_cuda()})"
        raise DummyWeightsError(f"device {device!r} does not exist: Paddle sees {seen}; use 'auto', 'cpu' or an existing gpu:N")
