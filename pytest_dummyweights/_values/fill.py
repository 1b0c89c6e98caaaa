"""Dummy values for a model's parameters: each one a copy, or a copy-on-write mapping, of value-store windows.

Rules: a floating-point parameter's bytes are the windows ``store.windows(name, seed, nbytes)`` of the
store for (its dtype, seed, std); every other dtype gets zeros; float8 gets the values a float32
parameter of the same name and shape would get, cast through ``copy_`` in bounded groups (``set_value``
does not support float8 on every device). Zero-size parameters are skipped. Values depend only on
(dtype, seed, std, name, shape): the same in any process, build order, device and storage mode.

Storage: ``mapped`` (CPU parameters on Linux) maps the windows copy-on-write and writes nothing;
``filled`` writes the bytes, by host copies on all cores on CPU, by ``copy_`` elsewhere.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import paddle

from pytest_dummyweights._runtime import dtypes
from pytest_dummyweights._runtime.private_paddle import (
    copy_into,
    element_count,
    forget_initializer,
    host_view,
    is_materialized,
    share_storage,
)
from pytest_dummyweights._values import mapped, store
from pytest_dummyweights.errors import DummyWeightsError
from pytest_dummyweights.vocabulary import DEFAULT_SEED, DEFAULT_STD, check_storage, default_storage

COPY_BYTES = 4 << 20  # source bytes per copy_ on the copy path: the scratch bound (divides store.WINDOW_BYTES)
MAPPED_MIN_BYTES = 1 << 20  # smaller parameters are copied: cheaper than a mapping, and no count against vm.max_map_count
PIECE_BYTES = 16 << 20  # bytes per task when host memory is filled by several threads
FILL_THREADS = min(4, os.cpu_count() or 1)

NORMAL_DTYPES = {getattr(paddle, name): name for name in dtypes.STORED}  # paddle dtype -> its store's dtype
FLOAT8_DTYPES = tuple(getattr(paddle, d.paddle) for d in dtypes.DTYPES if d.kind == "float8" and d.paddle and hasattr(paddle, d.paddle))


@dataclasses.dataclass
class InitReport:
    """What ``initialize_dummy_weights`` did: the storage used, and messages for the user (fallbacks)."""

    storage: str
    mapped: int = 0  # parameters whose storage is a mapping
    messages: list[str] = dataclasses.field(default_factory=list)


def source_of(
    name: str, param: paddle.Tensor, seed: int, std: float, store_dir: str | os.PathLike | None = None
) -> tuple[store.Store, list[store.Window]]:
    """The store and windows a floating-point parameter's values come from (float8: those of float32)."""
    dtype = NORMAL_DTYPES.get(param.dtype, "float32")
    source = store.open_store(dtype, seed, std, None if store_dir is None else os.fspath(store_dir))
    return source, store.windows(name, seed, element_count(param.shape) * store.WIDTH[dtype])


def copy_pieces(out: np.ndarray, source: store.Store, windows: list[store.Window]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(destination, source) byte ranges of at most PIECE_BYTES: ``out`` (bytes) gets the windows' bytes."""
    pieces = []
    for window in windows:
        for at in range(0, window.length, PIECE_BYTES):
            length = min(PIECE_BYTES, window.length - at)
            pieces.append(
                (out[window.start + at : window.start + at + length], source.data[window.offset + at : window.offset + at + length])
            )
    return pieces


def fill_by_copy(param: paddle.Tensor, source: store.Store, windows: list[store.Window]) -> None:
    """Fill through ``copy_`` into slices of the parameter from bounded float32/float64 scratch (exact casts)."""
    wide_float = np.float64 if source.dtype == "float64" else np.float32
    width = store.WIDTH[source.dtype]
    flat = param.view([-1])
    for window in windows:
        for at in range(0, window.length, COPY_BYTES):
            bits = source.data[window.offset + at : window.offset + at + min(COPY_BYTES, window.length - at)].view(store.BITS[width])
            first = (window.start + at) // width
            values = paddle.to_tensor(widen(bits, source.dtype).view(wide_float), place=param.place)
            copy_into(flat[first : first + bits.size], values if values.dtype == param.dtype else values.astype(param.dtype))


def widen(bits: np.ndarray, dtype: str) -> np.ndarray:
    """A dtype's bits as float32 bits (float32/float64 stay): exactly the same values."""
    if dtype == "bfloat16":
        return bits.astype(np.uint32) << np.uint32(16)
    if dtype == "float16":
        return bits.view(np.float16).astype(np.float32).view(np.uint32)
    return bits


def fill_values(name: str, tensor: paddle.Tensor, seed: int, std: float, store_dir: str | os.PathLike | None = None) -> None:
    """Write into ``tensor`` (which has storage) the dummy values of a floating-point parameter called ``name``."""
    source, windows = source_of(name, tensor, seed, std, store_dir)
    if tensor.dtype in NORMAL_DTYPES and tensor.place.is_cpu_place():
        _copy_all(copy_pieces(host_view(tensor).view(np.uint8), source, windows))
    else:
        fill_by_copy(tensor, source, windows)


def materialize(param: paddle.Tensor, zeros: bool) -> None:
    """Give a parameter its storage (zeros, or uninitialized memory to be filled) without running its initializer."""
    if zeros or not is_materialized(param):
        share_storage((paddle.zeros if zeros else paddle.empty)(param.shape, dtype=param.dtype), param)
    forget_initializer(param)  # a lazily constructed parameter must not initialize itself later


def bytes_needing_memory(model: paddle.nn.Layer, storage: str | None) -> int:
    """Parameter bytes a build writes (mapped ones cost address space, not memory, until a test writes them)."""
    params = list(model.parameters())
    if (storage or default_storage(_all_on_cpu(params))) == "mapped":
        params = [param for param in params if not _mappable(param)]
    return sum(_nbytes(param) for param in params)


def _all_on_cpu(params: list[paddle.Tensor]) -> bool:
    """Whether every parameter lives on the CPU (one not yet materialized: where Paddle would put it)."""
    return all(param.place.is_cpu_place() if is_materialized(param) else paddle.get_device() == "cpu" for param in params)


def initialize_dummy_weights(
    model: paddle.nn.Layer,
    *,
    seed: int = DEFAULT_SEED,
    std: float = DEFAULT_STD,
    storage: str | None = None,
    store_dir: str | os.PathLike | None = None,
    map_limit: int | None = None,
    skip: Collection[str] = (),
) -> InitReport:
    """Give every parameter of ``model`` its dummy values, exactly once, on the parameter's device.

    ``storage``: "mapped" or "filled" (default: mapped on Linux when every parameter is on the CPU);
    ``store_dir``: where the value store lives; ``map_limit``: stands in for ``vm.max_map_count``;
    ``skip``: names of parameters that already hold their values (written by the model's own loader).
    """
    params = [(name, param) for name, param in model.named_parameters() if name not in skip]
    store_dir = store.default_directory() if store_dir is None else store_dir
    check_storage(storage)
    report = InitReport(storage or default_storage(_all_on_cpu([param for _, param in params])))
    mappable = [(name, param) for name, param in params if _mappable(param)] if report.storage == "mapped" else []
    needed = sum(mapped.mappings_needed(_nbytes(param)) for _, param in mappable)
    budget = mapped.mapping_budget(map_limit) if mappable else 0
    if needed > budget:
        message = mapped.limit_message(needed, budget, map_limit)
        if storage == "mapped":
            raise DummyWeightsError(message)
        report.messages.append(f"{message}; filled instead")
        report.storage, mappable = "filled", []
    host_pieces = []
    mapped_names = {name for name, _ in mappable}
    for name, param in params:
        normal, float8 = NORMAL_DTYPES.get(param.dtype), param.dtype in FLOAT8_DTYPES
        if name in mapped_names:
            _map(name, param, seed, std, store_dir, report)
            continue
        materialize(param, zeros=not (normal or float8))
        if _nbytes(param) == 0 or not (normal or float8):
            continue
        source, windows = source_of(name, param, seed, std, store_dir)
        _note(report, source)
        if normal and param.place.is_cpu_place():
            host_pieces += copy_pieces(host_view(param).view(np.uint8), source, windows)
        else:
            fill_by_copy(param, source, windows)
    _copy_all(host_pieces)
    return report


def _nbytes(param: paddle.Tensor) -> int:
    return element_count(param.shape) * param.element_size()


def _mappable(param: paddle.Tensor) -> bool:
    """Large CPU parameters that are not float8 (float8 keeps the copy_ path)."""
    on_cpu = param.place.is_cpu_place() if is_materialized(param) else paddle.get_device() == "cpu"
    return on_cpu and param.dtype not in FLOAT8_DTYPES and _nbytes(param) >= MAPPED_MIN_BYTES


def _map(name: str, param: paddle.Tensor, seed: int, std: float, store_dir, report: InitReport) -> None:
    """Map one parameter; an OS refusal becomes an error naming the limit."""
    try:
        if param.dtype in NORMAL_DTYPES:
            source, windows = source_of(name, param, seed, std, store_dir)
            _note(report, source)
            mapped.map_windows(param, source, windows)
        else:
            mapped.map_zeros(param)
    except mapped.MapRefused as refused:
        raise DummyWeightsError(
            f"mapping parameter {name} was refused ({refused.strerror}): the process reached vm.max_map_count = "
            f"{mapped.max_map_count()} or its address-space limit (ulimit -v); raise the limit or use storage 'filled'"
        ) from refused
    forget_initializer(param)
    report.mapped += 1


def _note(report: InitReport, source: store.Store) -> None:
    if source.message and source.message not in report.messages:
        report.messages.append(source.message)


def _copy_all(pieces: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Copy on all cores: NumPy releases the GIL, and first-touch page faults run in parallel."""
    if FILL_THREADS < 2 or len(pieces) < 2:
        for out, source in pieces:
            np.copyto(out, source)
        return
    with ThreadPoolExecutor(FILL_THREADS) as workers:
        for _ in workers.map(lambda piece: np.copyto(*piece), pieces):
            pass


def parameter_stats(model: paddle.nn.Layer) -> tuple[int, int]:
    """(element count, bytes) over the model's unique parameters."""
    elements = nbytes = 0
    for param in model.parameters():
        elements += element_count(param.shape)
        nbytes += _nbytes(param)
    return elements, nbytes
