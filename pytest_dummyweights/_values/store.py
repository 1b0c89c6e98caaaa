"""The value store: per (dtype, seed, std) one file of normal samples, as the dtype's raw bits.

Every dummy value is a copy (or a copy-on-write mapping) of a window of this file, so the file is the
one definition of the values: the same bits in every process, device and storage mode.

Layout: one header page, then ``SLOTS`` slots of ``WINDOW_BYTES`` plus one window of tail, so a window
may start at any page of the slot area. 256 MiB of slots: big enough that most parameters (all but the
largest embeddings) never repeat a page; small enough to make in a fraction of a second and to keep
one per (dtype, seed, std) in ``/dev/shm``. 32 MiB windows: a full-size DeepSeek-V3 (45,337
parameters, 44,544 of them 28 MiB experts) then needs about 46,000 mappings, under ``vm.max_map_count``.

The samples come from the generator the fill used before the store existed: a pool of 4 Mi normal
samples XOR a pool of random sign bits, at offsets drawn per 64 Ki-element chunk (a random sign flip
keeps a centred normal exactly normal), written at memory speed.

Ownership: the store writes only in its own directory, ``OWN_DIRECTORY`` inside the directory it is
given (``store_dir``, ``--dummy-store-dir``, ini ``dummyweights_store_dir``; else ``default_directory()``).
It made that directory itself, marked before it got its name with the file ``MARKER_NAME`` (a fixed
text); one of that name without the marker is not the store's, and the store moves to the fallback
directory with a note. In its directory a file is the store's only when its name says so
(``<dtype>-seed<N>-std<hex>-v<format>.bin``, and ``.<pid>.tmp`` while being written) and so do its
first bytes (``MAGIC``, then the format its name gives): the store replaces and prunes only those and
leaves every other file alone, so any directory, ``.`` included, can be given. Creating and pruning
hold an exclusive lock on the marker (no lock files); a creation that fails removes its temporary file.

Verification: the header holds an xxh3-128 digest of all the data. A process checks every byte of a
store against it the first time it opens that store, before any value is served (about 40 ms for the
288 MiB, through a mapping dropped right after; bench/store_verify.py measures it; a cryptographic hash
such as blake2b takes 0.45 s); a file that is truncated, for other values or damaged (a byte differing
from the digest) is rebuilt, with a note in the run summary. A file written in place while a process has
it open is not checked again by that process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import functools
import hashlib
import mmap
import os
import re
import stat
import struct
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import xxhash

from pytest_dummyweights._runtime import dtypes
from pytest_dummyweights.errors import DummyWeightsError
from pytest_dummyweights.vocabulary import check_seed

PAGE = mmap.PAGESIZE
WINDOW_BYTES = 32 << 20
SLOTS = 8
SLOT_AREA_BYTES = SLOTS * WINDOW_BYTES
DATA_BYTES = SLOT_AREA_BYTES + WINDOW_BYTES
HEADER_BYTES = PAGE  # the data starts page-aligned, so windows can be mapped
FILE_BYTES = HEADER_BYTES + DATA_BYTES
PASS_STEP_PAGES = 5_077  # odd: passes over the slots shift by different page counts modulo every power of two

MAGIC = b"PDWSTORE"
FORMAT_VERSION = 2
HEADER = struct.Struct("<8sI12sQdQ16s")  # magic, version, dtype, seed, std, data bytes, digest of the data (xxh3-128)
IDENTITY = struct.Struct("<8sI")  # the header's first fields in every format: magic, version
OWN_DIRECTORY = "pytest-dummyweights-store"
MARKER_NAME = "MADE-BY-PYTEST-DUMMYWEIGHTS"
MARKER_TEXT = b"This directory is the value store of pytest-dummyweights. It removes only the store files it wrote here.\n"
OWN_FILE = re.compile(rf"(?:{'|'.join(dtypes.STORED)})-seed\d+-std[-+.0-9a-fpx]+-v(?P<version>\d+)\.bin(?P<temporary>\.\d+\.tmp)?")
KEEP_STORES = 8  # per directory; the least recently opened beyond this are removed (mappings of them stay valid)

POOL_SIZE = 1 << 22  # normal samples per pool
CHUNK = 1 << 16  # elements per pool window
WIDTH = {name: dtypes.BY_NAME[name].itemsize for name in dtypes.STORED}
BITS = {width: np.dtype(dtypes.integer(width, signed=False)).type for width in WIDTH.values()}  # a value's bits
GENERATOR_THREADS = min(4, os.cpu_count() or 1)


@dataclasses.dataclass(frozen=True)
class Window:
    """A run of a parameter's bytes, copied from the store's data at ``offset``."""

    start: int  # in the parameter's bytes
    offset: int  # in the store's data (add HEADER_BYTES for the file offset)
    length: int


@dataclasses.dataclass
class Store:
    """An open, validated store file: a read-only view of its data, and a descriptor for mapping it."""

    dtype: str
    seed: int
    std: float
    path: Path
    fd: int
    data: np.ndarray  # uint8, DATA_BYTES long
    message: str | None  # set when the store had to move (fallback directory) or was rebuilt

    def window_bytes(self, window: Window) -> np.ndarray:
        return self.data[window.offset : window.offset + window.length]


def windows(name: str, seed: int, nbytes: int) -> list[Window]:
    """Where each window of a parameter's bytes comes from: the parameter's own stream (seed and name).

    Each pass over the slots takes them in a fresh random order at one page phase, so a parameter up to
    the slot area's size never repeats a page; longer ones shift each pass by a different odd page count.
    """
    phase = int.from_bytes(_stream(name, seed, 0, 8), "little") % (WINDOW_BYTES // PAGE)
    found: list[Window] = []
    for pass_index, start in enumerate(range(0, nbytes, SLOT_AREA_BYTES)):
        pass_phase = (phase + pass_index * PASS_STEP_PAGES) % (WINDOW_BYTES // PAGE) * PAGE
        keys = _stream(name, seed, pass_index + 1, 4 * SLOTS)
        order = sorted(range(SLOTS), key=lambda slot: keys[4 * slot : 4 * slot + 4])  # a random permutation of the slots
        for slot, at in zip(
            order, range(start, min(start + SLOT_AREA_BYTES, nbytes), WINDOW_BYTES), strict=False
        ):  # fewer windows than slots
            found.append(Window(at, slot * WINDOW_BYTES + pass_phase, min(WINDOW_BYTES, nbytes - at)))
    return found


def _stream(name: str, seed: int, index: int, size: int) -> bytes:
    """Random bytes from (name, seed, index): blake2b, the same on every machine, a few microseconds."""
    return hashlib.blake2b(struct.pack("<QQ", seed, index) + name.encode(), digest_size=size).digest()


def default_directory() -> Path:
    """Shared by every worker and later run of this user: ``/dev/shm``, else the runtime dir, else the temp dir."""
    name = f"pytest-dummyweights-{os.getuid()}"
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return Path("/dev/shm") / name
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "pytest-dummyweights"
    return Path(tempfile.gettempdir()) / name


def fallback_directory() -> Path:
    return Path(tempfile.gettempdir()) / f"pytest-dummyweights-{os.getuid()}"


def open_store(dtype: str, seed: int, std: float, directory: str | os.PathLike | None = None) -> Store:
    """The store for (dtype, seed, std) in the store's own directory inside ``directory``: made on first use,
    every byte checked against its digest the first time this process opens it."""
    if dtype not in WIDTH:
        raise DummyWeightsError(f"no value store for dtype {dtype!r}: stores hold {', '.join(WIDTH)}")
    return _open_once(dtype, check_seed(seed), float(std), Path(directory).absolute() if directory is not None else default_directory())


@functools.lru_cache(maxsize=64)
def _open_once(dtype: str, seed: int, std: float, directory: Path) -> Store:
    """Opened once per process (per arguments); in the fallback directory, with a note, when ``directory`` cannot hold it."""
    try:
        return _open_in(directory, dtype, seed, std, None)
    except OSError as error:
        fallback = fallback_directory()
        if fallback == directory:
            raise DummyWeightsError(f"cannot create the value store in {directory}: {error}; pass a writable store directory") from error
        message = f"value store directory {directory} is unusable ({error.strerror or error}); using {fallback}"
        try:
            return _open_in(fallback, dtype, seed, std, message)
        except OSError as second:
            raise DummyWeightsError(
                f"cannot create the value store in {directory} ({error.strerror}) nor in {fallback} ({second.strerror}); "
                f"pass a writable store directory with free space for {FILE_BYTES >> 20} MiB"
            ) from second


def _open_in(directory: Path, dtype: str, seed: int, std: float, message: str | None) -> Store:
    home = own_directory(directory)
    path = home / f"{dtype}-seed{seed}-std{std.hex()}-v{FORMAT_VERSION}.bin"
    opened = _try_open(path, dtype, seed, std, message)
    if isinstance(opened, Store):
        os.utime(opened.fd)  # recently used: kept by the pruning below
        return opened
    with locked(home):
        opened = _try_open(path, dtype, seed, std, message)  # another process may have made it meanwhile
        if not isinstance(opened, Store):
            if opened is not None and own_file(path) is None:
                raise OSError(errno.EEXIST, f"{path} is not a value store file; the store leaves it alone")
            prune(home, KEEP_STORES - 1)  # room for this one (stores in /dev/shm are memory)
            _create(path, dtype, seed, std)
            if opened is not None:
                note = f"value store {path} {opened}; rebuilt it"
                message = f"{message}; {note}" if message else note
            opened = _try_open(path, dtype, seed, std, message)
    if not isinstance(opened, Store):
        raise DummyWeightsError(f"value store {path} {opened or 'is missing'} right after being written; remove it and rerun")
    return opened


def own_directory(directory: Path) -> Path:
    """The store's own directory inside ``directory``, made and marked on first use (OSError: one of its name is not the store's)."""
    home = directory / OWN_DIRECTORY
    if not os.path.lexists(home):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{OWN_DIRECTORY}-", dir=directory))
        try:
            (staging / MARKER_NAME).write_bytes(MARKER_TEXT)
            os.rename(staging, home)  # marked before it has its name
        except OSError as error:
            (staging / MARKER_NAME).unlink(missing_ok=True)
            staging.rmdir()
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):  # else another process's came first
                raise
    try:
        with open(home / MARKER_NAME, "rb") as marker:
            marked = marker.read(len(MARKER_TEXT) + 1) == MARKER_TEXT
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        marked = False
    if not marked:
        raise OSError(
            errno.EEXIST, f"{home} was not made by the value store (it lacks the store's {MARKER_NAME}); the store leaves it alone"
        )
    return home


@contextlib.contextmanager
def locked(home: Path) -> Iterator[None]:
    """Exclusive use of the store's own directory across processes, to create or prune: a lock on its marker."""
    fd = os.open(home / MARKER_NAME, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def own_file(path: Path) -> re.Match | None:
    """The match of the name of a file that is the store's (its name and its first bytes say so), else None."""
    name = OWN_FILE.fullmatch(path.name)
    try:
        if name is None or not stat.S_ISREG(path.lstat().st_mode):
            return None
        with open(path, "rb") as file:
            identity = file.read(IDENTITY.size)
    except OSError:
        return None
    return name if identity == IDENTITY.pack(MAGIC, int(name["version"])) else None


def prune(home: Path, keep: int = KEEP_STORES) -> None:
    """Keep the ``keep`` most recently opened stores and remove the others, and the temporary files of
    creations that died: only the store's own files. The caller holds ``locked(home)``.

    A process that still maps a removed store keeps reading it; the memory is freed when it unmaps.
    """
    stores, stale = [], []
    for path in home.iterdir():
        own = own_file(path)
        if own is not None and own["temporary"]:
            stale.append(path)  # no creation is under way: the lock is held
        elif own is not None:
            stores.append((path.stat().st_mtime, path))
    for path in stale + [path for _, path in sorted(stores, reverse=True)[keep:]]:
        path.unlink(missing_ok=True)


def _try_open(path: Path, dtype: str, seed: int, std: float, message: str | None) -> Store | str | None:
    """The store if the file is complete, for these values and every byte as its digest says; else what is
    wrong with the file (None: there is none)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    problem = _problem(fd, dtype, seed, std)
    if problem is not None:
        os.close(fd)
        return problem
    data = np.frombuffer(mmap.mmap(fd, FILE_BYTES, prot=mmap.PROT_READ), dtype=np.uint8)[HEADER_BYTES:]
    return Store(dtype, seed, std, path, fd, data, message)


def _problem(fd: int, dtype: str, seed: int, std: float) -> str | None:
    size = os.fstat(fd).st_size
    if size != FILE_BYTES:
        return f"has {size:,} bytes, not {FILE_BYTES:,}"
    header = HEADER.unpack(os.pread(fd, HEADER.size, 0))
    if header[:-1] != _header(dtype, seed, std, b"")[:-1]:
        return "is not the store of these values (its header differs)"
    if header[-1] != data_digest(fd):
        return "has bytes that differ from its digest"
    return None


def data_digest(fd: int) -> bytes:
    """xxh3-128 of every data byte, read through a mapping of its own: unmapped after, so the pages stay
    only in the page cache (shared), not in this process's resident memory."""
    with mmap.mmap(fd, FILE_BYTES, prot=mmap.PROT_READ) as mapped, memoryview(mapped) as view:
        return xxhash.xxh3_128_digest(view[HEADER_BYTES:])


def _header(dtype: str, seed: int, std: float, digest: bytes) -> tuple:
    return (MAGIC, FORMAT_VERSION, dtype.encode().ljust(12, b"\0"), seed, std, DATA_BYTES, digest)


def _create(path: Path, dtype: str, seed: int, std: float) -> None:
    """Write the store under a temporary name and rename it into place: readers never see a partial file."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(temporary, "xb+") as out:  # never over a file already there (the pruning before removed the store's own)
        try:
            os.posix_fallocate(out.fileno(), 0, FILE_BYTES)  # a full /dev/shm fails here, not as SIGBUS on a write
            out.write(IDENTITY.pack(MAGIC, FORMAT_VERSION))  # the store's by name and first bytes, should this process die
            out.flush()
            mapped = mmap.mmap(out.fileno(), FILE_BYTES)  # not ``with``: an error must not turn into a BufferError on close
            data = np.frombuffer(mapped, dtype=np.uint8)[HEADER_BYTES:]
            generate(data.view(BITS[WIDTH[dtype]]), dtype, seed, std)
            mapped[: HEADER.size] = HEADER.pack(*_header(dtype, seed, std, xxhash.xxh3_128_digest(data.data)))
            del data
            mapped.close()
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)  # a creation that failed leaves nothing; after the rename, nothing to do


def generate(out: np.ndarray, dtype: str, seed: int, std: float) -> None:
    """Fill ``out`` (the dtype's bits) with normal samples: pool windows XOR sign windows, chunk by chunk."""
    values, signs = _pools(dtype, seed, std)
    rng = np.random.default_rng([seed, 0x7374_6F72])
    offsets = rng.integers(0, POOL_SIZE - CHUNK + 1, size=(-(-out.size // CHUNK), 2))

    def fill(first: int, last: int) -> None:
        for chunk in range(first, last):
            start, end = chunk * CHUNK, min((chunk + 1) * CHUNK, out.size)
            value_at, sign_at = offsets[chunk]
            np.bitwise_xor(values[value_at : value_at + end - start], signs[sign_at : sign_at + end - start], out=out[start:end])

    bounds = np.linspace(0, len(offsets), GENERATOR_THREADS * 4 + 1).astype(int).tolist()
    with ThreadPoolExecutor(GENERATOR_THREADS) as workers:  # NumPy releases the GIL; page faults run in parallel
        list(workers.map(fill, bounds[:-1], bounds[1:]))


def _pools(dtype: str, seed: int, std: float) -> tuple[np.ndarray, np.ndarray]:
    """Normal samples as the dtype's bits, and sign-bit masks of the same width."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0x6475_6D6D])))
    if dtype == "float64":
        bits = (rng.standard_normal(POOL_SIZE) * std).view(np.uint64)
    else:
        values = rng.standard_normal(POOL_SIZE, dtype=np.float32) * np.float32(std)
        if dtype == "float32":
            bits = values.view(np.uint32)
        elif dtype == "float16":
            bits = values.astype(np.float16).view(np.uint16)
        else:  # bfloat16: the upper half of float32, rounded to nearest even
            wide = values.view(np.uint32)
            bits = ((wide + 0x7FFF + ((wide >> 16) & 1)) >> 16).astype(np.uint16)
    width = bits.dtype.itemsize * 8
    signs = rng.integers(0, 2, POOL_SIZE, dtype=bits.dtype) << bits.dtype.type(width - 1)
    return bits, signs
