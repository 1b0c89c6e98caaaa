"""Mapped parameters: a CPU parameter's storage is a private, copy-on-write mapping of value-store windows.

Nothing is written at build time: a page is read from the store (shared by every process) when first
touched, and a write copies only that page. The written pages (found by ``pages``) are the exact record of
what a test changed; dropping them (``MADV_DONTNEED``) brings back the store's values.

A parameter gets one reserved address range (``PROT_NONE``, no swap reserved), then each window of the
store mapped over it with ``MAP_FIXED``; the range is handed to Paddle zero-copy through DLPack. The
``MappedRegion`` owning the range is the base of the NumPy array Paddle holds, so the range is unmapped
only when the last tensor viewing it (a slice kept by a test included) is freed.
"""

from __future__ import annotations

import bisect
import ctypes
import dataclasses
import math
import os
import weakref
from collections.abc import Iterable

import numpy as np
import paddle
from numpy.typing import DTypeLike

from pytest_dummyweights._runtime import dtypes
from pytest_dummyweights._runtime.private_paddle import is_materialized, share_storage
from pytest_dummyweights._values import pages
from pytest_dummyweights._values.store import HEADER_BYTES, PAGE, WINDOW_BYTES, Store, Window

PROT_NONE, PROT_READ, PROT_WRITE = 0, 1, 2
MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS, MAP_NORESERVE = 0x02, 0x10, 0x20, 0x4000
MADV_DONTNEED = 4
MAP_FAILED = ctypes.c_void_p(-1).value
MAP_COUNT_HEADROOM = 1 / 8  # of vm.max_map_count, left to Paddle, Python and everything else in the process
SPAN_SCAN_REGIONS = 1024  # from this many regions one scan over their span beats a system call per region (measured)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

# shared as themselves; any other dtype (bfloat16, float8: NumPy lacks them) as same-width integers, re-viewed
NUMPY_OF_DTYPE = {
    getattr(paddle, entry.paddle): np.dtype(entry.numpy)
    for entry in dtypes.DTYPES
    if entry.kind in ("float", "bool") and entry.numpy and entry.paddle
}


class MapRefused(OSError):
    """The OS refused a mapping (most often: the process reached ``vm.max_map_count``)."""


class MappedRegion:
    """An address range this module mapped; unmapped when the last array (hence tensor) over it goes."""

    def __init__(self, address: int, nbytes: int, file_backed: bool) -> None:
        self.address, self.nbytes, self.file_backed = address, nbytes, file_backed

    def __del__(self) -> None:
        _libc.munmap(self.address, self.nbytes)  # only reached once no array, hence no tensor, views the range

    def array(self, dtype: DTypeLike, shape: list[int]) -> np.ndarray:
        """A NumPy array over the range whose base is this region: it keeps the mapping alive."""
        self.__array_interface__ = {"shape": tuple(shape), "typestr": np.dtype(dtype).str, "data": (self.address, False), "version": 3}
        return np.asarray(self)


_regions: weakref.WeakValueDictionary[int, MappedRegion] = weakref.WeakValueDictionary()


def _mmap(address: int | None, nbytes: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int:
    result = _libc.mmap(address, nbytes, prot, flags, fd, offset)
    if result in (None, MAP_FAILED):
        code = ctypes.get_errno()
        raise MapRefused(code, os.strerror(code))
    return result


def _rounded(nbytes: int) -> int:
    return max(PAGE, -(-nbytes // PAGE) * PAGE)


def mappings_needed(nbytes: int) -> int:
    """Kernel mappings (VMAs) a parameter of ``nbytes`` takes: one per store window."""
    return max(1, -(-nbytes // WINDOW_BYTES))


def max_map_count() -> int:
    with open("/proc/sys/vm/max_map_count") as limit:
        return int(limit.read())


def mapping_budget(limit: int | None = None) -> int:
    """Mappings this process may still add: the limit (``vm.max_map_count`` unless given) minus those in use and a headroom."""
    limit = max_map_count() if limit is None else limit
    with open("/proc/self/maps", "rb") as maps:
        in_use = sum(1 for _ in maps)
    return int(limit * (1 - MAP_COUNT_HEADROOM)) - in_use


def limit_message(needed: int, budget: int, limit: int | None = None) -> str:
    limit = max_map_count() if limit is None else limit
    return (
        f"mapped storage needs {needed} memory mappings but only {max(budget, 0)} fit under the mapping limit "
        f"(vm.max_map_count = {limit}); raise it (sysctl -w vm.max_map_count={2 * limit}) or use storage 'filled'"
    )


def map_windows(param: paddle.Tensor, store: Store, windows: list[Window]) -> MappedRegion:
    """Make ``param``'s storage a private mapping of the store's windows (``param``'s dtype is the store's)."""
    nbytes = math.prod(param.shape) * param.element_size()
    if len(windows) == 1:  # the common case: one window is the whole range, no reservation needed
        address = _mmap(
            None, _rounded(nbytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, store.fd, HEADER_BYTES + windows[0].offset
        )
        region = MappedRegion(address, _rounded(nbytes), file_backed=True)
    else:
        region = _reserve(nbytes, file_backed=True)
        for window in windows:
            _mmap(
                region.address + window.start,
                _rounded(window.length),
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE,
                store.fd,
                HEADER_BYTES + window.offset,
            )
    _share(region, param)
    return region


def map_zeros(param: paddle.Tensor) -> MappedRegion:
    """Zeros from an anonymous private mapping: no page is touched until read."""
    nbytes = math.prod(param.shape) * param.element_size()
    region = _reserve(nbytes, file_backed=False)
    _mmap(region.address, region.nbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_NORESERVE)
    _share(region, param)
    return region


def _reserve(nbytes: int, file_backed: bool) -> MappedRegion:
    size = _rounded(nbytes)
    return MappedRegion(_mmap(None, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE), size, file_backed)


def _share(region: MappedRegion, param: paddle.Tensor) -> None:
    """Hand the region to Paddle zero-copy and make it ``param``'s storage."""
    exact = NUMPY_OF_DTYPE.get(param.dtype)
    array = region.array(exact or dtypes.integer(param.element_size(), signed=True), list(param.shape))
    tensor = paddle.utils.dlpack.from_dlpack(array.__dlpack__())
    if exact is None:
        tensor = tensor.view(param.dtype)  # bfloat16 and other types NumPy lacks: same-width ints, re-viewed
    share_storage(tensor, param)
    _regions[region.address] = region


def region_of(param: paddle.Tensor) -> MappedRegion | None:
    """The mapping that is ``param``'s storage, or None (not mapped, or its storage was replaced)."""
    return _regions.get(param.data_ptr()) if is_materialized(param) else None


def is_mapped(param: paddle.Tensor) -> bool:
    return region_of(param) is not None


def _required(param: paddle.Tensor) -> MappedRegion:
    region = region_of(param)
    if region is None:
        raise ValueError("parameter storage is not a mapping made by pytest_dummyweights._values.mapped")
    return region


def written_pages(param: paddle.Tensor) -> int:
    """How many pages of a mapped parameter this process wrote since it was mapped (or last restored)."""
    return sum(end - start for start, end in _written_ranges([_required(param)])) // PAGE


def restore(param: paddle.Tensor) -> int:
    """Drop every written page of a mapped parameter, so it reads the store's values again; bytes restored."""
    return _drop(_written_ranges([_required(param)]))


def written_bytes(model: paddle.nn.Layer) -> int:
    """Bytes of a model's mapped parameters this process wrote (pages), found in one scan."""
    return sum(end - start for start, end in _written_ranges(_regions_of(model)))


def restore_model(model: paddle.nn.Layer) -> int:
    """``restore`` for every mapped parameter of a model; bytes restored. Parameters not mapped are left alone."""
    return restore_tensors(model.parameters())


def restore_tensors(tensors: Iterable[paddle.Tensor]) -> int:
    """``restore`` for every mapped tensor among ``tensors``, found in one scan; bytes restored."""
    return _drop(_written_ranges([region for region in map(region_of, tensors) if region is not None]))


def _regions_of(model: paddle.nn.Layer) -> list[MappedRegion]:
    return [region for region in map(region_of, model.parameters()) if region is not None]


def _written_ranges(regions: list[MappedRegion]) -> list[tuple[int, int]]:
    """Written address ranges inside the regions: region by region or, for many regions and with
    ``PAGEMAP_SCAN``, one scan over their whole span (it walks only populated page tables), clipped."""
    regions = sorted(regions, key=lambda region: region.address)
    if len(regions) >= SPAN_SCAN_REGIONS and pages.has_scan():
        first, end = regions[0].address, max(region.address + region.nbytes for region in regions)
        found = [(run.start, run.end) for run in pages.runs(first, end - first, True) if run.written]
    else:
        found = [
            (run.start, run.end)
            for region in regions
            for run in pages.runs(region.address, region.nbytes, region.file_backed)
            if run.written
        ]
    starts = [region.address for region in regions]
    clipped = []
    for start, end in found:
        index = max(0, bisect.bisect_right(starts, start) - 1)
        while index < len(regions) and regions[index].address < end:
            low, high = max(start, regions[index].address), min(end, regions[index].address + regions[index].nbytes)
            if low < high:
                clipped.append((low, high))
            index += 1
    return clipped


def _drop(ranges: list[tuple[int, int]]) -> int:
    for start, end in ranges:
        if _libc.madvise(start, end - start, MADV_DONTNEED) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"madvise(MADV_DONTNEED) failed: {os.strerror(code)}")
    return sum(end - start for start, end in ranges)


@dataclasses.dataclass
class MemoryUsage:
    """A model's parameter bytes: reserved (virtual), touched (resident), and of those, shared with the store or private."""

    virtual: int = 0
    resident: int = 0
    shared: int = 0
    private: int = 0


def memory_usage(model: paddle.nn.Layer) -> MemoryUsage:
    """Byte accounting over a model's parameters (tied ones once); an unmapped parameter counts as resident and private."""
    usage = MemoryUsage()
    for param in model.parameters():
        nbytes = math.prod(param.shape) * param.element_size()
        usage.virtual += nbytes
        region = region_of(param)
        if region is None:
            usage.resident += nbytes
            usage.private += nbytes
            continue
        for run in pages.runs(region.address, region.nbytes, region.file_backed):
            size = run.end - run.start
            usage.shared += size if run.shared else 0
            usage.private += size if run.written else 0
            usage.resident += size if run.shared or run.written else 0
    return usage
