"""Property: for any file named ``*.safetensors`` the manifest reader agrees with safetensors' own ``safe_open`` (tensor
names, dtypes, shapes, the ``format`` metadata) where safe_open opens it, and gives one ``DummyWeightsError`` line where
safe_open refuses it; beside any index file, a manifest or one line. Never another exception, never a hang.

The files start as valid ones written by ``safetensors.numpy.save``, then their headers are edited pair by pair (repeated
keys kept, raw JSON tokens such as ``-0`` or ``1e400`` written as they are), their data lengthened or cut.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save

from pytest_dummyweights._checkpoints.manifest import INDEX_NAME, read_manifest
from pytest_dummyweights._checkpoints.safetensors_header import DTYPE_BITS, ENTRY_KEYS
from pytest_dummyweights.errors import DummyWeightsError

SHARD = "model.safetensors"
NUMPY_DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"]


class Pairs(list):
    """A JSON object written pair by pair: repeated keys stay repeated."""


class Raw(str):
    """JSON text written as it is: tokens Python's json would never write (``-0``, ``1e400``, a lone surrogate, deep nesting)."""


def dump(value: object) -> str:
    if isinstance(value, Raw):
        return value
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{json.dumps(key)}:{dump(item)}" for key, item in value) + "}"
    if isinstance(value, dict):
        return dump(Pairs(value.items()))
    if isinstance(value, list):
        return "[" + ",".join(dump(item) for item in value) + "]"
    return json.dumps(value)  # NaN and Infinity as Python writes them


RAW_TOKENS = [
    "-0",
    "1e400",
    "-1e400",
    "1.0",
    "1E2",
    "1e-400",
    '"\\ud800"',
    '"\\ud83d\\ude00"',
    "1" + "0" * 400,
    "[" * 126 + "]" * 126,
    "[" * 125 + "]" * 125,
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([-1, 0, 1, 2, 3, 4, 8, 2**63, 2**64 - 1, 2**64]),
    st.floats(),
    st.text(max_size=4),
    st.sampled_from(RAW_TOKENS).map(Raw),
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=6
)
small_ints = st.integers(-1, 24)
dtypes = st.sampled_from([*DTYPE_BITS, "f32", "F5", ""])


@st.composite
def valid_files(draw: st.DrawFn) -> tuple[Pairs, bytes]:
    """A file ``safetensors.numpy.save`` writes: its header as pairs, and its data."""
    arrays = draw(
        st.dictionaries(
            st.text(min_size=1, max_size=4),
            st.tuples(st.sampled_from(NUMPY_DTYPES), st.lists(st.integers(0, 3), max_size=3)),
            max_size=4,
        )
    )
    metadata = draw(st.none() | st.dictionaries(st.sampled_from(["format", "x"]), st.sampled_from(["pt", "np", ""]), max_size=2))
    metadata = (
        metadata if arrays else None
    )  # safetensors 0.8 writes no tensors and {} metadata as '{},"__metadata__":{}}', which it refuses
    content = save({name: np.ones(shape, dtype) for name, (dtype, shape) in arrays.items()}, metadata=metadata)
    length = struct.unpack("<Q", content[:8])[0]
    return json.loads(content[8 : 8 + length], object_pairs_hook=Pairs), content[8 + length :]


@st.composite
def edited_files(draw: st.DrawFn) -> bytes:
    """A valid file, then up to three edits of its header or data."""
    header, data = draw(valid_files())
    for _ in range(draw(st.integers(0, 3))):
        if isinstance(header, Pairs):  # after replace_header, the header may be no object to edit
            header, data = draw(st.sampled_from(EDITS))(draw, header, data)
    raw = draw(st.sampled_from([dump(header), dump(header) + "   ", " " + dump(header)])).encode("utf-8", "surrogatepass")
    return struct.pack("<Q", len(raw)) + raw + data


def entry_index(draw: st.DrawFn, header: Pairs) -> int | None:
    tensors = [index for index, (key, _) in enumerate(header) if key != "__metadata__"]
    return draw(st.sampled_from(tensors)) if tensors else None


def set_field(draw: st.DrawFn, header: Pairs, data: bytes) -> tuple[Pairs, bytes]:
    index = entry_index(draw, header)
    if index is not None and isinstance(header[index][1], Pairs):
        key = draw(st.sampled_from([*ENTRY_KEYS, "extra"]))
        value = draw(st.one_of(json_values, dtypes, st.lists(small_ints, max_size=3), st.lists(small_ints, min_size=2, max_size=2)))
        entry = Pairs(pair for pair in header[index][1] if pair[0] != key or draw(st.booleans()))  # sometimes a repeat
        header[index] = (header[index][0], Pairs([*entry, (key, value)]))
    return header, data


def drop_field(draw: st.DrawFn, header: Pairs, data: bytes) -> tuple[Pairs, bytes]:
    index = entry_index(draw, header)
    if index is not None and isinstance(header[index][1], Pairs):
        key = draw(st.sampled_from(ENTRY_KEYS))
        header[index] = (header[index][0], Pairs(pair for pair in header[index][1] if pair[0] != key))
    return header, data


def as_list(draw: st.DrawFn, header: Pairs, data: bytes) -> tuple[Pairs, bytes]:
    """An entry as the list ``[dtype, shape, data_offsets]`` (which serde reads as the object), or one element short or long."""
    index = entry_index(draw, header)
    if index is not None and isinstance(header[index][1], Pairs):
        fields = dict(header[index][1])
        values = [fields.get(key) for key in ENTRY_KEYS] + draw(st.lists(json_values, max_size=1))
        header[index] = (header[index][0], values[: draw(st.integers(2, 4))])
    return header, data


def add_tensor(draw: st.DrawFn, header: Pairs, data: bytes) -> tuple[Pairs, bytes]:
    """A new tensor (or a name given again), its entry near valid: a dtype, a small shape, offsets near the data's end."""
    names = [key for key, _ in header] + ["__metadata__"]
    name = draw(st.sampled_from(names) | st.text(max_size=3))
    shape = draw(st.lists(st.integers(0, 4), max_size=2))
    begin = len(data) + draw(st.integers(-4, 2))
    end = begin + draw(st.integers(-1, 16))
    header.append((name, Pairs([("dtype", draw(dtypes)), ("shape", shape), ("data_offsets", [begin, end])])))
    return header, data + bytes(max(0, end - len(data)))


def set_metadata(draw: st.DrawFn, header: Pairs, data: bytes) -> tuple[Pairs, bytes]:
    value = draw(
        json_values | st.dictionaries(st.text(max_size=3), st.text(max_size=3) | json_values, max_size=2).map(lambda d: Pairs(d.items()))
    )
    kept = [pair for pair in header if pair[0] != "__metadata__" or draw(st.booleans())]
    return Pairs([("__metadata__", value), *kept]), data


def resize_data(draw: st.DrawFn, header: Pairs, data: bytes) -> tuple[Pairs, bytes]:
    change = draw(st.integers(-4, 4))
    return header, data[: len(data) + change] if change < 0 else data + bytes(change)


def replace_header(draw: st.DrawFn, header: Pairs, data: bytes) -> tuple[Pairs, bytes]:
    return draw(json_values.map(lambda value: Pairs(value.items()) if isinstance(value, dict) else value)), data


EDITS = [set_field, set_field, drop_field, as_list, add_tensor, add_tensor, set_metadata, resize_data, replace_header]


def safetensors_view(path: Path) -> tuple[dict[str, tuple[str, tuple[int, ...]]], str] | None:
    """What ``safe_open`` reads: each tensor's dtype and shape, and the ``format`` metadata; None when it refuses the file."""
    try:
        with safe_open(str(path), framework="np") as file:
            slices = {name: file.get_slice(name) for name in file.keys()}  # noqa: SIM118 (a safe_open, not a dict: it has no __iter__)
            tensors = {name: (piece.get_dtype(), tuple(piece.get_shape())) for name, piece in slices.items()}
            return tensors, (file.metadata() or {}).get("format", "")
    except SafetensorError:
        return None


def manifest_view(directory: Path) -> tuple[dict[str, tuple[str, tuple[int, ...]]], str] | None:
    """What the manifest reader reads of the directory's one shard; None when it gives one error line (anything else raises)."""
    try:
        manifest = read_manifest(directory)
    except DummyWeightsError as error:
        assert str(error) and "\n" not in str(error), str(error)
        return None
    return {name: (entry.dtype, entry.shape) for name, entry in manifest.tensors.items()}, manifest.formats[SHARD]


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@PROPERTY
@given(content=edited_files())
def test_the_manifest_reader_reads_what_safe_open_reads_and_refuses_what_it_refuses(tmp_path_factory, content: bytes) -> None:
    directory = tmp_path_factory.mktemp("ckpt")
    (directory / SHARD).write_bytes(content)
    assert manifest_view(directory) == safetensors_view(directory / SHARD)


index_documents = st.one_of(
    st.just({"weight_map": {}}).map(json.dumps),  # filled with the real names below
    json_values.map(lambda value: dump({"weight_map": value})),
    json_values.map(dump),
    st.sampled_from(["[" * 100_000 + "]" * 100_000, '{"weight_map": ' * 2000 + "{}" + "}" * 2000, "{", "", "\ufeff{}"]),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(content=edited_files(), index=index_documents, neighbour=st.sampled_from(["none", "a directory", "a FIFO", "a dangling symlink"]))
def test_beside_any_index_or_odd_file_the_reader_gives_a_manifest_or_one_line(
    tmp_path_factory, content: bytes, index: str, neighbour: str
) -> None:
    directory = tmp_path_factory.mktemp("ckpt")
    (directory / SHARD).write_bytes(content)
    expected = safetensors_view(directory / SHARD)
    if index == '{"weight_map": {}}' and expected is not None:
        index = json.dumps({"weight_map": dict.fromkeys(expected[0], SHARD)})
    (directory / INDEX_NAME).write_text(index, encoding="utf-8")
    odd = directory / "other.safetensors"
    if neighbour == "a directory":
        odd.mkdir()
    elif neighbour == "a FIFO":
        os.mkfifo(odd)
    elif neighbour == "a dangling symlink":
        odd.symlink_to(directory / "gone")
    seen = manifest_view(directory)
    assert seen is None or (seen == expected and neighbour == "none")
