"""The one table of the dtypes the plugin meets: Paddle's, NumPy's and safetensors' names for each, its width and kind.

Plain strings and integers, importable without NumPy or Paddle (the structure check and the header reader run
without them); the modules that need NumPy or Paddle objects build their maps from this table where they use
them. ``name`` is Paddle's name where Paddle has the dtype (``bfloat16``, ``float8_e4m3fn``), else NumPy's, else
safetensors' code. ``kind`` is ``float`` (bfloat16 included), ``float8``, ``integer`` (signed or not), ``bool``
or ``complex``: a checkpoint and a model disagree when the kinds of a tensor differ. Sub-byte safetensors dtypes
(``F4``, ``F6_*``) have ``bits`` below 8 and no ``itemsize``.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class DType:
    name: str
    bits: int  # per element
    kind: str  # float, float8, integer, bool, complex
    safetensors: str | None  # the header's dtype code: F32, BF16, F8_E4M3, ...
    numpy: str | None  # None where NumPy has no such dtype (bfloat16, float8)
    paddle: str | None  # None where Paddle cannot make a tensor of it

    @property
    def itemsize(self) -> int:
        """Bytes per element (0 for sub-byte dtypes)."""
        return self.bits // 8


# fmt: off
DTYPES = (
    DType("float64", 64, "float", "F64", "float64", "float64"),
    DType("float32", 32, "float", "F32", "float32", "float32"),
    DType("float16", 16, "float", "F16", "float16", "float16"),
    DType("bfloat16", 16, "float", "BF16", None, "bfloat16"),
    DType("float8_e4m3fn", 8, "float8", "F8_E4M3", None, "float8_e4m3fn"),
    DType("float8_e5m2", 8, "float8", "F8_E5M2", None, "float8_e5m2"),
    DType("F8_E8M0", 8, "float8", "F8_E8M0", None, None),
    DType("F8_E4M3FNUZ", 8, "float8", "F8_E4M3FNUZ", None, None),
    DType("F8_E5M2FNUZ", 8, "float8", "F8_E5M2FNUZ", None, None),
    DType("F6_E2M3", 6, "float", "F6_E2M3", None, None),
    DType("F6_E3M2", 6, "float", "F6_E3M2", None, None),
    DType("F4", 4, "float", "F4", None, None),
    DType("int64", 64, "integer", "I64", "int64", "int64"),
    DType("int32", 32, "integer", "I32", "int32", "int32"),
    DType("int16", 16, "integer", "I16", "int16", "int16"),
    DType("int8", 8, "integer", "I8", "int8", "int8"),
    DType("uint64", 64, "integer", "U64", "uint64", None),  # paddle.uint64 exists, but makes no tensor
    DType("uint32", 32, "integer", "U32", "uint32", None),
    DType("uint16", 16, "integer", "U16", "uint16", None),  # paddle.uint16 is bfloat16
    DType("uint8", 8, "integer", "U8", "uint8", "uint8"),
    DType("bool", 8, "bool", "BOOL", "bool", "bool"),
    DType("complex128", 128, "complex", None, "complex128", "complex128"),
    DType("complex64", 64, "complex", "C64", "complex64", "complex64"),
)
# fmt: on
BY_NAME = {dtype.name: dtype for dtype in DTYPES}
BY_SAFETENSORS = {dtype.safetensors: dtype for dtype in DTYPES if dtype.safetensors}
BY_PADDLE = {dtype.paddle: dtype for dtype in DTYPES if dtype.paddle}
STORED = tuple(dtype.name for dtype in DTYPES if dtype.kind == "float" and dtype.paddle)  # the value store's dtypes


def of_paddle(dtype: object) -> DType | None:
    """The entry of a Paddle dtype (``paddle.float32``, or its name), or None for one the table lacks."""
    return BY_PADDLE.get(str(dtype).removeprefix("paddle."))


def kind(dtype: object) -> str:
    """The kind of a Paddle dtype or a safetensors code; ``integer`` for one the table lacks."""
    entry = BY_SAFETENSORS.get(str(dtype)) or of_paddle(dtype)
    return entry.kind if entry is not None else "integer"


def integer(itemsize: int, *, signed: bool) -> str:
    """NumPy's name of the integer dtype of ``itemsize`` bytes (the bits of any dtype of that width)."""
    return next(
        dtype.numpy
        for dtype in DTYPES
        if dtype.kind == "integer" and dtype.itemsize == itemsize and dtype.numpy and dtype.name.startswith("u") != signed
    )
