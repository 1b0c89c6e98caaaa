"""The budget of each worker's model cache: a share of its device's memory."""

from __future__ import annotations

from pytest_dummyweights._runtime.device import device_memory_bytes, gpu_count

CPU_MEMORY_FRACTION = 0.25
GPU_MEMORY_FRACTION = 0.5


def default_budget_bytes(device: str, workers_on_device: int = 1) -> int:
    """A fraction of the device's memory, shared by the xdist workers that build on that device."""
    fraction = GPU_MEMORY_FRACTION if device.startswith("gpu") else CPU_MEMORY_FRACTION
    return int(device_memory_bytes(device) * fraction / max(1, workers_on_device))


def workers_per_device(worker_count: int) -> int:
    """How many xdist workers share one device: all on the CPU, spread round-robin over GPUs."""
    gpus = gpu_count()
    return -(-worker_count // gpus) if gpus else worker_count
