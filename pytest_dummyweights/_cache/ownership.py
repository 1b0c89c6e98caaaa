"""Whether anyone but the cache holds a model: the reference counts of the model, its sublayers and its tensors,
against those taken when the cache stored it.

A model handed out unshared (``ModelCache.get_unshared``) belongs to its caller, as after a real load; the cache
may hand it out again only once every reference the caller made is gone, to the model or to any part of it (a
sublayer kept for later, an optimizer or a graph holding its parameters). CPython counts references exactly: equal
counts mean nobody else holds any part. A count that never comes back (a reference cycle through the model, a
reference Paddle keeps) only costs a fresh build, never a shared model.
"""

from __future__ import annotations

import sys

import paddle


def reference_counts(model: paddle.nn.Layer) -> tuple[int, ...]:
    """The reference count of the model and of each of its sublayers, parameters and buffers, in a fixed order."""
    parts = [model, *model.sublayers(), *model.parameters(), *model.buffers()]
    return tuple(sys.getrefcount(part) for part in parts)
