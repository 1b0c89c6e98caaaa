"""The dtype table agrees with NumPy, Paddle and safetensors: widths, names both ways, kinds, and what the
modules built from it hold; and it is importable without either library."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import paddle
import pytest
import safetensors.numpy

from pytest_dummyweights._checkpoints.loader_feed import PADDLE_DTYPES
from pytest_dummyweights._checkpoints.safetensors_header import DTYPE_BITS
from pytest_dummyweights._runtime import dtypes
from pytest_dummyweights._values import store

WITH_NUMPY = [entry for entry in dtypes.DTYPES if entry.numpy]
WITH_PADDLE = [entry for entry in dtypes.DTYPES if entry.paddle]


def test_names_are_unique_and_found_again() -> None:
    for column in ("name", "safetensors", "numpy", "paddle"):
        names = [getattr(entry, column) for entry in dtypes.DTYPES if getattr(entry, column)]
        assert len(names) == len(set(names)), column
    assert all(dtypes.BY_NAME[entry.name] is entry for entry in dtypes.DTYPES)
    assert all(dtypes.BY_SAFETENSORS[entry.safetensors] is entry for entry in dtypes.DTYPES if entry.safetensors)
    assert {entry.kind for entry in dtypes.DTYPES} == {"float", "float8", "integer", "bool", "complex"}


@pytest.mark.parametrize("entry", WITH_NUMPY, ids=lambda entry: entry.name)
def test_numpy_agrees(entry: dtypes.DType) -> None:
    numpy_dtype = np.dtype(entry.numpy)
    assert numpy_dtype.itemsize == entry.itemsize
    kinds = {"f": "float", "i": "integer", "u": "integer", "b": "bool", "c": "complex"}
    assert kinds[numpy_dtype.kind] == entry.kind


@pytest.mark.parametrize("entry", WITH_PADDLE, ids=lambda entry: entry.name)
def test_paddle_agrees(entry: dtypes.DType) -> None:
    tensor = paddle.zeros([3], dtype=getattr(paddle, entry.paddle))
    assert tensor.element_size() == entry.itemsize
    assert dtypes.of_paddle(tensor.dtype) is entry  # Paddle's name round-trips
    assert dtypes.kind(tensor.dtype) == dtypes.kind(entry.safetensors or entry.name) == entry.kind
    assert tensor.is_floating_point() == (entry.kind == "float")  # Paddle's own test, float8 aside
    if entry.numpy:
        assert tensor.numpy().dtype == np.dtype(entry.numpy)


def test_paddle_names_the_table_leaves_out_make_no_tensor_of_that_dtype() -> None:
    """paddle.uint16 makes bfloat16 tensors; paddle.uint32 and uint64 make none."""
    left_out = [entry.name for entry in dtypes.DTYPES if not entry.paddle and hasattr(paddle, entry.name)]
    assert left_out == ["uint64", "uint32", "uint16"]
    for name in left_out:
        try:
            made = str(paddle.zeros([1], dtype=getattr(paddle, name)).dtype)
        except (ValueError, TypeError, RuntimeError):
            made = "no tensor"
        assert made != f"paddle.{name}", name


def test_safetensors_writes_what_the_table_says(tmp_path) -> None:
    """Every code with a NumPy dtype is the one safetensors writes for it, with the bytes the table gives."""
    for entry in WITH_NUMPY:
        if entry.safetensors:
            path = tmp_path / f"{entry.name}.safetensors"
            safetensors.numpy.save_file({"t": np.zeros([5], dtype=entry.numpy)}, str(path))
            with safetensors.safe_open(str(path), framework="np") as file:
                assert file.get_slice("t").get_dtype() == entry.safetensors, entry.name


def test_the_modules_built_from_the_table() -> None:
    assert DTYPE_BITS["BF16"] == 16 and DTYPE_BITS["F4"] == 4 and DTYPE_BITS["F8_E4M3"] == 8
    assert PADDLE_DTYPES["BF16"] == "bfloat16" and PADDLE_DTYPES["F8_E4M3"] == "float8_e4m3fn" and "U16" not in PADDLE_DTYPES
    assert store.WIDTH == {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}
    assert {width: np.dtype(bits).itemsize for width, bits in store.BITS.items()} == {8: 8, 4: 4, 2: 2}
    assert [dtypes.integer(width, signed=False) for width in (1, 2, 4, 8)] == ["uint8", "uint16", "uint32", "uint64"]
    assert [dtypes.integer(width, signed=True) for width in (1, 2, 4, 8)] == ["int8", "int16", "int32", "int64"]
    assert dtypes.kind("F5") == dtypes.kind("paddle.no_such") == "integer"  # what the table lacks


def test_the_module_imports_neither_numpy_nor_paddle() -> None:
    """Loaded alone (the package's own imports aside), so the structure check and the header reader can use it."""
    code = (
        "import importlib.util, sys; spec = importlib.util.spec_from_file_location('dtypes', sys.argv[1]); "
        "module = sys.modules['dtypes'] = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
        "print(len(module.DTYPES), sorted({'numpy', 'paddle'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code, dtypes.__file__], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"{len(dtypes.DTYPES)} []"
