"""The memory budget of each worker's model cache: a share of the device's memory."""

from __future__ import annotations

import os

import paddle

from .device import gpu_count

CPU_MEMORY_FRACTION = 0.25
GPU_MEMORY_FRACTION = 0.5


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
