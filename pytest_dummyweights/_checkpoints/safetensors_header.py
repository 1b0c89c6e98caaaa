"""One safetensors file's header, checked as strictly as the safetensors library (0.8) checks it, so a file the plugin
takes is one ``safe_open`` opens (same names, dtypes and shapes), and any other is one ``DummyWeightsError`` line naming
the file, the tensor and the key, at planning time, rather than an error blamed later on the model's ``load_weights``.

The rules (safetensors' ``read_metadata`` and ``Metadata::validate``, serde_json underneath):

- 8 bytes of little-endian header length, at most 100,000,000 and within the file, then that many bytes of JSON
  (read as ``strict_files`` reads JSON) holding one object;
- ``__metadata__``, at most once, is null or an object of strings; every other key names a tensor: an object with
  ``dtype``, ``shape`` and ``data_offsets``, each exactly once, other keys ignored (serde also takes the list
  ``[dtype, shape, data_offsets]``); a name given twice keeps its last entry, yet every occurrence must be well typed;
- ``dtype`` is a safetensors dtype name (``DTYPE_BITS``); ``shape`` a list of integers 0..2**64-1 whose running
  product, and that times the dtype's bits, stays below 2**64 and is whole bytes; ``data_offsets`` is ``[begin, end]``,
  integers 0..2**64-1 spanning exactly those bytes;
- sorted by offsets, the tensors cover the data from byte 0 with no gap and no overlap, and the file ends where the
  data does (shorter: truncated; longer: stray bytes).
"""

from __future__ import annotations

import dataclasses
import math
import operator
import os
import struct
from collections.abc import Callable
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

from pytest_dummyweights._checkpoints.strict_files import MAX_JSON_BYTES, JsonObject, beyond_serde, decode_json, open_regular, shown
from pytest_dummyweights._runtime.dtypes import BY_SAFETENSORS
from pytest_dummyweights.errors import DummyWeightsError

MAX_HEADER_BYTES = MAX_JSON_BYTES  # safetensors' MAX_HEADER_SIZE: 100,000,000
LARGEST = 2**64 - 1  # safetensors' sizes and offsets are 64-bit unsigned
ENTRY_KEYS = ("dtype", "shape", "data_offsets")
DTYPE_BITS = {code: dtype.bits for code, dtype in BY_SAFETENSORS.items()}
SUB_BYTE = {dtype for dtype, bits in DTYPE_BITS.items() if bits % 8}
CORRUPT = "the file is corrupt or not safetensors"
T = TypeVar("T")
NOT_A_SHARD = "every *.safetensors file of a checkpoint must be a safetensors file: remove or replace it"


@dataclasses.dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ is 3x slower, and giant checkpoints have 90k tensors
class TensorEntry:
    """One tensor of a checkpoint, as its header describes it."""

    dtype: str  # safetensors dtype name: F32, BF16, F8_E4M3, I64, ...
    shape: tuple[int, ...]
    shard: str  # file name inside the checkpoint directory

    @property
    def nbytes(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count * DTYPE_BITS[self.dtype] // 8


@dataclasses.dataclass(frozen=True)
class ShardHeader:
    """One file's header: its tensors and its ``__metadata__``."""

    tensors: dict[str, TensorEntry]
    metadata: dict[str, str]
    data_bytes: int


class Malformed(ValueError):
    """What is wrong with a header or a tensor entry; the caller adds the file and what to do."""


def read_header(path: Path) -> ShardHeader:
    """Read one safetensors file's header: 8 + N bytes, never the tensor data."""
    with open_regular(path, NOT_A_SHARD) as file:
        size = os.fstat(file.fileno()).st_size
        prefix = file.read(8)
        if len(prefix) < 8:
            raise DummyWeightsError(f"{path}: {size} bytes, too short for a safetensors header (8 bytes of length, then JSON); {CORRUPT}")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES:
            raise DummyWeightsError(
                f"{path}: header length {length:,} bytes is over the safetensors limit of {MAX_HEADER_BYTES:,}; {CORRUPT}"
            )
        if length > size - 8:
            raise DummyWeightsError(
                f"{path}: header length {length:,} bytes runs past the file's end ({size:,} bytes); "
                "the file is truncated or not safetensors"
            )
        raw = file.read(length)
    try:
        header = parse_header(raw, path.name)
    except Malformed as problem:
        raise DummyWeightsError(f"{path}: {problem}; {CORRUPT}") from None
    held = size - 8 - length
    if header.data_bytes != held:
        cause = "truncated (an interrupted download?)" if header.data_bytes > held else "followed by stray bytes, which safetensors refuses"
        raise DummyWeightsError(
            f"{path}: the header describes {header.data_bytes:,} bytes of tensor data, the file holds {held:,}; the data is {cause}"
        )
    return header


def parse_header(raw: bytes, shard: str) -> ShardHeader:
    """A header's JSON bytes, checked; the tensors' ``shard`` is the file's name."""
    header = checked_in_bulk(raw, shard)
    if header is not None:
        return header
    try:
        document = decode_json(raw, pairs=True)
    except ValueError as error:
        raise Malformed(f"the header is not JSON safetensors reads ({error})") from None
    if not isinstance(document, JsonObject):
        raise Malformed(f"the safetensors header is JSON but not an object (it is {shown(document)})")
    return header_of(document.items, shard)


def checked_in_bulk(raw: bytes, shard: str) -> ShardHeader | None:
    """The usual header, parsed into dicts and checked column by column at C speed (a giant checkpoint has 90k
    tensors): every entry an object of exactly dtype, shape and data_offsets, no key repeated, no zero-size
    dimension, no sub-byte dtype. None when it is not that simple or breaks a rule: ``header_of`` then applies
    the same rules pair by pair and names what breaks them (the property test holds both to safe_open's verdicts)."""
    try:
        fields = decode_json(raw)
    except ValueError:
        return None
    if type(fields) is not dict:
        return None
    keys = len(fields)
    metadata = fields.pop("__metadata__", None)
    entries = list(fields.values())
    if not (set(map(type, entries)) <= {dict} and set(map(len, entries)) <= {len(ENTRY_KEYS)}):
        return None
    if type(metadata) is dict:
        keys += len(metadata)
    if raw.count(b":") != keys + len(ENTRY_KEYS) * len(entries):
        return None  # every key has a colon of its own: as many colons as the dicts hold keys, and none was repeated
    try:
        dtypes, shapes, offsets = ([entry[key] for entry in entries] for key in ENTRY_KEYS)
        extra = string_map(metadata)
    except (KeyError, Malformed):
        return None
    if not (set(map(type, dtypes)) <= {str} and DTYPE_BITS.keys() >= set(dtypes)) or not SUB_BYTE.isdisjoint(dtypes):
        return None
    if not (set(map(type, shapes)) <= {list} and set(map(type, offsets)) <= {list} and set(map(len, offsets)) <= {2}):
        return None
    dims, bounds = list(chain.from_iterable(shapes)), list(chain.from_iterable(offsets))
    if 0 in dims or not all(set(map(type, numbers)) <= {int} and min(numbers, default=0) >= 0 for numbers in (dims, bounds)):
        return None
    bits = [count * DTYPE_BITS[dtype] for count, dtype in zip(map(math.prod, shapes), dtypes, strict=True)]
    begins, ends = bounds[0::2], bounds[1::2]
    if (
        max(bits, default=0) > LARGEST
        or max(bounds, default=0) > LARGEST
        or list(map(operator.sub, ends, begins)) != [b // 8 for b in bits]
    ):
        return None
    order = sorted(zip(begins, ends, strict=True))
    starts, stops = [begin for begin, _ in order], [end for _, end in order]
    if starts[:1] not in ([], [0]) or starts[1:] != stops[:-1]:
        return None
    tensors = {name: TensorEntry(dtype, tuple(shape), shard) for name, dtype, shape in zip(fields, dtypes, shapes, strict=True)}
    return ShardHeader(tensors, extra, stops[-1] if stops else 0)


def header_of(items: list[tuple[str, Any]], shard: str) -> ShardHeader:
    """A header's (key, value) pairs, checked by the rules above tensor by tensor; ``Malformed`` names the first
    tensor and key that break one."""
    metadata: dict[str, str] | None = None
    typed: dict[str, tuple[str, list[int], list[int]]] = {}
    for name, value in items:
        if name != "__metadata__":
            typed[name] = in_tensor(name, entry_fields, value)
        elif metadata is None:
            metadata = string_map(value)
        else:
            raise Malformed('key "__metadata__" appears twice')
    tensors, spans = {}, []
    for name, (dtype, shape, (begin, end)) in typed.items():
        size = in_tensor(name, tensor_bytes, dtype, shape)
        if end < begin:
            raise Malformed(f"tensor {name!r}: data_offsets [{begin}, {end}] end before they begin")
        if end - begin != size:
            raise Malformed(
                f"tensor {name!r}: data_offsets [{begin}, {end}] span {end - begin:,} bytes, shape {shape} of {dtype} is {size:,} bytes"
            )
        tensors[name] = TensorEntry(dtype, tuple(shape), shard)
        spans.append((begin, end, name))
    return ShardHeader(tensors, metadata or {}, covered(spans))


def in_tensor(name: str, check: Callable[..., T], *args: Any) -> T:
    """``check(*args)``, its complaint prefixed with the tensor it is about."""
    try:
        return check(*args)
    except Malformed as problem:
        raise Malformed(f"tensor {name!r}: {problem}") from None


def entry_fields(value: Any) -> tuple[str, list[int], list[int]]:
    """A tensor entry's dtype, shape and data_offsets, each well typed."""
    if isinstance(value, JsonObject):
        fields: dict[str, Any] = {}
        for key, item in value.items:
            if key in fields:
                raise Malformed(f"key {shown(key)} appears twice")
            if key in ENTRY_KEYS:
                fields[key] = item
            elif problem := beyond_serde(item, levels_above=2):  # ignored, yet parsed: within the header's object and this entry's
                raise Malformed(f"key {shown(key)} holds {problem}")
        missing = [key for key in ENTRY_KEYS if key not in fields]
        if missing:
            raise Malformed(f"no {shown(missing[0])}")
        dtype, shape, offsets = (fields[key] for key in ENTRY_KEYS)
    elif type(value) is list and len(value) == len(ENTRY_KEYS):
        dtype, shape, offsets = value
    else:
        raise Malformed(f"the entry is {shown(value)}, not an object with dtype, shape and data_offsets")
    check_dtype_and_shape(dtype, shape)
    if not (type(offsets) is list and len(offsets) == 2 and all(type(offset) is int and 0 <= offset <= LARGEST for offset in offsets)):
        raise Malformed(f"data_offsets {shown(offsets)} is not [begin, end] with integers 0..2**64-1")
    return dtype, shape, offsets


def check_dtype_and_shape(dtype: Any, shape: Any) -> None:
    if type(dtype) is not str or dtype not in DTYPE_BITS:
        raise Malformed(f"dtype {shown(dtype)} is not a safetensors dtype ({', '.join(DTYPE_BITS)})")
    if not (type(shape) is list and all(type(size) is int and 0 <= size <= LARGEST for size in shape)):
        raise Malformed(f"shape {shown(shape)} is not a list of integers 0..2**64-1")


def tensor_bytes(dtype: str, shape: list[int]) -> int:
    """Bytes of a well-typed tensor, counted as safetensors counts them: in 64 bits, step by step, whole bytes."""
    count = 1
    for size in shape:
        count *= size
        if count > LARGEST:
            raise Malformed(f"shape {shape} has 2**64 elements or more")
    bits = count * DTYPE_BITS[dtype]
    if bits > LARGEST or bits % 8:
        raise Malformed(f"shape {shape} of {dtype} is {bits:,} bits, {'2**64 or more' if bits > LARGEST else 'not whole bytes'}")
    return bits // 8


def string_map(value: Any) -> dict[str, str]:
    """``__metadata__``: null, or an object of strings (a key given twice keeps its last value, as serde does)."""
    if value is None:
        return {}
    pairs = value.items if isinstance(value, JsonObject) else value.items() if type(value) is dict else [(None, None)]
    if not all(type(item) is str for _, item in pairs):
        raise Malformed(f'"__metadata__" is {shown(value)}, not an object of strings')
    return dict(pairs)


def covered(spans: list[tuple[int, int, str]]) -> int:
    """The data's length, from the tensors' offsets: in offset order, each begins where the one before it ends."""
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            how = (
                f"overlap the tensor before them, which ends at byte {position}"
                if begin < position
                else f"leave bytes {position}..{begin} unused"
            )
            raise Malformed(f"tensor {name!r}: data_offsets [{begin}, {end}] {how}")
        position = end
    return position
