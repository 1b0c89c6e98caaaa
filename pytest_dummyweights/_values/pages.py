"""Which pages of an address range are resident, still the file's (shared), or written by this process.

Linux 6.7+ answers with the ``PAGEMAP_SCAN`` ioctl on ``/proc/self/pagemap``: it walks only populated
page tables and returns runs, so an untouched terabyte costs microseconds. Older kernels: the
``/proc/self/pagemap`` entries are read, 8 bytes per page of the range.

A page is *written* when it is present (or swapped) and neither the file's page (a copy-on-write
write replaced it) nor the shared zero page (what a read of an anonymous mapping maps).
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import functools
import itertools
import mmap
import os

import numpy as np

PAGE = mmap.PAGESIZE
PAGE_IS_FILE, PAGE_IS_PRESENT, PAGE_IS_SWAPPED, PAGE_IS_PFNZERO = 1 << 2, 1 << 3, 1 << 4, 1 << 5
PAGEMAP_SCAN = 0xC0606610  # _IOWR('f', 16, struct pm_scan_arg)
RUNS_PER_CALL = 512
PM_PRESENT, PM_SWAPPED, PM_FILE, PM_EXCLUSIVE = 1 << 63, 1 << 62, 1 << 61, 1 << 56
ENTRIES_PER_READ = 1 << 16

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
scan_supported: bool | None = None  # learned on the first scan


class _ScanArg(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "size",
            "flags",
            "start",
            "end",
            "walk_end",
            "vec",
            "vec_len",
            "max_pages",
            "category_inverted",
            "category_mask",
            "category_anyof_mask",
            "return_mask",
        )
    ]


class _PageRegion(ctypes.Structure):
    _fields_ = [("start", ctypes.c_uint64), ("end", ctypes.c_uint64), ("categories", ctypes.c_uint64)]


@dataclasses.dataclass(frozen=True)
class PageRun:
    """Consecutive resident (or swapped) pages alike: addresses [start, end)."""

    start: int
    end: int
    written: bool
    shared: bool  # present and still the file's page


def has_scan() -> bool:
    """Whether this kernel answers ``PAGEMAP_SCAN`` (learned once)."""
    if scan_supported is None:
        runs(0, PAGE, True)
    return bool(scan_supported)


def runs(address: int, nbytes: int, file_backed: bool) -> list[PageRun]:
    """The resident or swapped pages of [address, address + nbytes), in runs."""
    global scan_supported
    if scan_supported is not False:
        try:
            found = _scan(address, address + nbytes)
            scan_supported = True
            return found
        except OSError as error:
            if error.errno not in (errno.ENOTTY, errno.EINVAL) or scan_supported:
                raise
            scan_supported = False
    return _read_entries(address, nbytes, file_backed)


@functools.lru_cache(maxsize=1)
def _pagemap(pid: int) -> int:
    """``/proc/self/pagemap``, opened once per process (keyed by pid: a forked child must open its own)."""
    return os.open("/proc/self/pagemap", os.O_RDONLY)


def _scan(start: int, end: int) -> list[PageRun]:
    vector = (_PageRegion * RUNS_PER_CALL)()
    wanted = PAGE_IS_FILE | PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO
    found = []
    fd = _pagemap(os.getpid())
    while start < end:
        arg = _ScanArg(
            ctypes.sizeof(_ScanArg),
            0,
            start,
            end,
            0,
            ctypes.addressof(vector),
            RUNS_PER_CALL,
            0,
            0,
            0,
            PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            wanted,
        )
        count = _libc.ioctl(fd, PAGEMAP_SCAN, ctypes.byref(arg))
        if count < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        for run in vector[:count]:
            written = not run.categories & (PAGE_IS_FILE | PAGE_IS_PFNZERO)
            shared = run.categories & (PAGE_IS_FILE | PAGE_IS_PRESENT) == PAGE_IS_FILE | PAGE_IS_PRESENT
            found.append(PageRun(run.start, run.end, written, bool(shared)))
        start = arg.walk_end
    return found


def _read_entries(address: int, nbytes: int, file_backed: bool) -> list[PageRun]:
    """The same from pagemap entries; without page frame numbers, an anonymous read's zero page shows as
    present and not exclusive, a written page as exclusive."""
    pages = -(-nbytes // PAGE)
    found = []
    fd = _pagemap(os.getpid())
    for first in range(0, pages, ENTRIES_PER_READ):
        count = min(ENTRIES_PER_READ, pages - first)
        entries = np.frombuffer(os.pread(fd, 8 * count, (address // PAGE + first) * 8), dtype=np.uint64)
        present, swapped = (entries & np.uint64(PM_PRESENT)) != 0, (entries & np.uint64(PM_SWAPPED)) != 0
        file_page = (entries & np.uint64(PM_FILE)) != 0
        written = (present & ~file_page) | swapped
        if not file_backed:
            written &= swapped | ((entries & np.uint64(PM_EXCLUSIVE)) != 0)
        kind = (written.astype(np.int8) << 1) | (present & file_page) | ((present | swapped) << 2).astype(np.int8)
        edges: np.ndarray | list[int] = np.flatnonzero(np.diff(np.concatenate(([0], kind, [0])))) if kind.any() else []
        for left, right in itertools.pairwise(edges):
            if kind[left] & 4:
                start = address + (first + int(left)) * PAGE
                found.append(PageRun(start, start + int(right - left) * PAGE, bool(kind[left] & 2), bool(kind[left] & 1)))
    return found
