"""The one home of Paddle's private APIs, each behind a named function.

When Paddle changes one of these, this is the only file to fix. Each function notes the versions it was
checked on; the project's compatibility matrix (``noxfile.py``) runs them all.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_dummyweights._runtime import dtypes

if TYPE_CHECKING:
    import paddle


def element_count(shape: Sequence[int]) -> int:
    """The number of elements of a tensor of ``shape`` (1 for a 0-d tensor)."""
    return math.prod(int(size) for size in shape)


def share_storage(source: paddle.Tensor, target: paddle.Tensor) -> None:
    """Make ``target`` use ``source``'s storage, without a copy. Checked on paddlepaddle 3.0-3.3."""
    source._share_buffer_to(target)


def is_materialized(param: paddle.Tensor) -> bool:
    """Whether a parameter has storage (a ``LazyGuard`` parameter has none yet). Checked on paddlepaddle 3.0-3.3."""
    return bool(param._is_initialized())


def forget_initializer(param: paddle.Tensor) -> None:
    """Stop a lazily created parameter from running its initializer later. Checked on paddlepaddle 3.0-3.3."""
    param._init_func = None


def inplace_version(tensor: paddle.Tensor) -> int:
    """Paddle's counter of in-place ops on ``tensor`` (``set_value`` does not bump it). Checked on paddlepaddle 3.0-3.3."""
    return int(tensor._inplace_version())


def forward_hooks(layer: paddle.nn.Layer) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The ids of a layer's forward pre- and post-hooks. Checked on paddlepaddle 3.0-3.3."""
    return tuple(layer._forward_pre_hooks), tuple(layer._forward_post_hooks)


def registered_slots(layer: paddle.nn.Layer) -> Iterator[tuple[str, Any]]:
    """The parameter and buffer slots a layer keeps outside ``__dict__`` (a slot set to None stays). Checked on paddlepaddle 3.0-3.3."""
    yield from layer._parameters.items()
    yield from layer._buffers.items()


def host_view(tensor: paddle.Tensor) -> np.ndarray:
    """A writable NumPy view of a CPU tensor's storage, as unsigned integers of the element width.

    Reads the storage's address (``data_ptr``): NumPy has no dtype for bfloat16 or float8, and
    ``tensor.numpy()`` copies. Checked on paddlepaddle 3.0-3.3.
    """
    width = tensor.element_size()
    bits = dtypes.integer(width, signed=False)
    nbytes = element_count(tensor.shape) * width
    if nbytes == 0:
        return np.empty(0, dtype=bits)
    buffer = (ctypes.c_char * nbytes).from_address(tensor.data_ptr())
    return np.frombuffer(memoryview(buffer).cast("B"), dtype=bits)


def copy_into(target: paddle.Tensor, source: paddle.Tensor) -> None:
    """``target.copy_(source)``, in place on ``target``'s device (float8 included, which ``set_value`` is not on every
    device). Paddle's type stubs declare ``copy_`` without its ``src`` argument, hence the one ignore."""
    target.copy_(source)  # type: ignore[call-arg]
