"""Dummy values for a model's parameters, at close to the speed of writing their bytes.

Rules: floating-point parameters get normal values (mean 0, the given std); every other dtype gets
zeros; float8 is filled through ``copy_`` from values made in float32, chunk by chunk, since
``set_value`` does not support float8 on every device. Zero-size parameters are skipped.

Speed: drawing a fresh normal sample per element is compute-bound, writing the bytes is the floor.
So each (dtype, seed, std) gets one pool of normal samples and one pool of random sign bits, made
once per process. A parameter is filled in chunks: chunk k is a window of the value pool XOR a window
of the sign pool, at two offsets drawn from the parameter's own stream (the seed and the parameter's
name), written by one vectorized op straight into the parameter's storage. A random sign flip keeps
a centred normal exactly normal, and two independent offsets per chunk mean no fixed-period pattern
and practically no repeated chunk. Values depend only on (dtype, seed, std, name, shape): the same
in any process and any build order.
"""

from __future__ import annotations

import functools
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import paddle

from .internals import element_count, forget_initializer, host_view, is_materialized, share_storage

POOL_SIZE = 1 << 22  # samples per pool: 16 MiB in float32, made in about 50 ms
CHUNK = 1 << 16  # elements per window; small enough to stay in cache
COPY_GROUP = 16  # chunks per copy_ on the copy path: scratch is bounded by COPY_GROUP * CHUNK elements
PIECE_CHUNKS = 64  # chunks per task when host memory is filled by several threads
FILL_THREADS = min(4, os.cpu_count() or 1)

NORMAL_DTYPES = {paddle.float16: "float16", paddle.bfloat16: "bfloat16", paddle.float32: "float32", paddle.float64: "float64"}
FLOAT8_DTYPES = tuple(getattr(paddle, name) for name in ("float8_e4m3fn", "float8_e5m2") if hasattr(paddle, name))


@functools.lru_cache(maxsize=16)
def value_pool(dtype_name: str, seed: int, std: float) -> tuple[np.ndarray, np.ndarray]:
    """Normal samples as the dtype's bits, and sign-bit masks of the same width."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0x6475_6D6D])))
    if dtype_name == "float64":
        bits = (rng.standard_normal(POOL_SIZE) * std).view(np.uint64)
    else:
        values = rng.standard_normal(POOL_SIZE, dtype=np.float32) * np.float32(std)
        if dtype_name == "float32":
            bits = values.view(np.uint32)
        elif dtype_name == "float16":
            bits = values.astype(np.float16).view(np.uint16)
        else:  # bfloat16: the upper half of float32, rounded to nearest even
            wide = values.view(np.uint32)
            bits = ((wide + 0x7FFF + ((wide >> 16) & 1)) >> 16).astype(np.uint16)
    width = bits.dtype.itemsize * 8
    signs = rng.integers(0, 2, POOL_SIZE, dtype=bits.dtype) << bits.dtype.type(width - 1)
    return bits, signs


@functools.lru_cache(maxsize=16)
def wide_pool(dtype_name: str, seed: int, std: float) -> tuple[np.ndarray, np.ndarray]:
    """The same pool widened to float32 (float64 stays), so a cast back to the dtype is exact."""
    bits, signs = value_pool(dtype_name, seed, std)
    if dtype_name == "bfloat16":
        return bits.astype(np.uint32) << np.uint32(16), signs.astype(np.uint32) << np.uint32(16)
    if dtype_name == "float16":
        return bits.view(np.float16).astype(np.float32).view(np.uint32), signs.astype(np.uint32) << np.uint32(16)
    return bits, signs


def chunk_offsets(name: str, seed: int, numel: int) -> list[tuple[int, int]]:
    """Per chunk, where its values and its signs start in the pools: the parameter's own stream."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    rng = np.random.default_rng([seed, int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:], "little")])
    chunks = -(-numel // CHUNK)
    return [tuple(pair) for pair in rng.integers(0, POOL_SIZE - CHUNK + 1, size=(chunks, 2)).tolist()]


def fill_bits(out: np.ndarray, first_chunk: int, pools: tuple[np.ndarray, np.ndarray], offsets: list) -> None:
    """Write chunks ``first_chunk...`` of a parameter's values (as bits) into ``out``."""
    values, signs = pools
    for k, start in enumerate(range(0, out.size, CHUNK)):
        end = min(start + CHUNK, out.size)
        value_at, sign_at = offsets[first_chunk + k]
        np.bitwise_xor(values[value_at : value_at + end - start], signs[sign_at : sign_at + end - start], out=out[start:end])


def fill_by_copy(param: paddle.Tensor, pools: tuple[np.ndarray, np.ndarray], offsets: list) -> None:
    """Fill through ``copy_`` into slices of the parameter, from bounded float32/float64 scratch."""
    values = pools[0]
    wide_float = np.float64 if values.dtype == np.uint64 else np.float32
    flat = param.view([-1])
    count = int(flat.shape[0])
    group = COPY_GROUP * CHUNK
    scratch = np.empty(min(group, count), dtype=values.dtype)
    for start in range(0, count, group):
        end = min(start + group, count)
        part = scratch[: end - start]
        fill_bits(part, start // CHUNK, pools, offsets)
        wide = paddle.to_tensor(part.view(wide_float), place=param.place)
        flat[start:end].copy_(wide if wide.dtype == param.dtype else wide.astype(param.dtype))


def materialize(param: paddle.Tensor, zeros: bool) -> None:
    """Give a parameter its storage (zeros, or uninitialized memory to be filled) without running its initializer."""
    if zeros or not is_materialized(param):
        share_storage((paddle.zeros if zeros else paddle.empty)(param.shape, dtype=param.dtype), param)
    forget_initializer(param)  # a lazily constructed parameter must not initialize itself later


def initialize_dummy_weights(model: paddle.nn.Layer, *, seed: int = 0, std: float = 0.02) -> None:
    """Give every parameter of ``model`` its dummy values, exactly once, on the parameter's device."""
    host_pieces = []
    for name, param in model.named_parameters():
        normal = NORMAL_DTYPES.get(param.dtype)
        float8 = param.dtype in FLOAT8_DTYPES
        materialize(param, zeros=not (normal or float8))
        numel = element_count(param.shape)
        if numel == 0 or not (normal or float8):
            continue
        offsets = chunk_offsets(name, seed, numel)
        if float8:
            fill_by_copy(param, value_pool("float32", seed, float(std)), offsets)
        elif param.place.is_cpu_place():
            view, pools = host_view(param), value_pool(normal, seed, float(std))
            piece = PIECE_CHUNKS * CHUNK
            host_pieces += [(view[start : start + piece], start // CHUNK, pools, offsets) for start in range(0, numel, piece)]
        else:
            fill_by_copy(param, wide_pool(normal, seed, float(std)), offsets)
    _fill_pieces(host_pieces)


def _fill_pieces(pieces: list[tuple]) -> None:
    """Fill host memory on all cores: NumPy releases the GIL, and first-touch page faults run in parallel."""
    if FILL_THREADS < 2 or len(pieces) < 2:
        for piece in pieces:
            fill_bits(*piece)
        return
    with ThreadPoolExecutor(FILL_THREADS) as workers:
        for _ in workers.map(lambda piece: fill_bits(*piece), pieces):
            pass


def parameter_stats(model: paddle.nn.Layer) -> tuple[int, int]:
    """(element count, bytes) over the model's unique parameters."""
    elements = nbytes = 0
    for param in model.parameters():
        count = element_count(param.shape)
        elements += count
        nbytes += count * param.element_size()
    return elements, nbytes
