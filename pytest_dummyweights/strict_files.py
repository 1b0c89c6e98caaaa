"""Checkpoint files opened and parsed without surprises, as the safetensors library would take them.

- Only regular files (after symlinks) are read, and opening never blocks: a FIFO named ``*.safetensors`` would
  otherwise hang the reader forever, and a directory or a dangling symlink raise from deep inside it.
- JSON is read as serde_json, safetensors' parser, reads it: UTF-8 only (no other encoding guessed), no ``NaN`` or
  ``Infinity``, no lone surrogate escapes, no number beyond float range, ``-0`` a float (not an integer); at most
  100,000,000 bytes (safetensors' header limit) and 127 levels of arrays and objects (serde_json stops at 128).
  Anything else is one ``DummyWeightsError`` line naming the file, never a ``RecursionError``.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from .errors import DummyWeightsError

MAX_JSON_BYTES = 100_000_000  # safetensors' MAX_HEADER_SIZE; indexes and manifests get the same bound
MAX_JSON_DEPTH = 127  # the deepest nesting serde_json (recursion limit 128) reads
FLOAT_DIGITS = 300  # an integer longer than this may be past float range, where serde_json gives up
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
NOT_REGULAR = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
}


class JsonObject:
    """A JSON object as its (key, value) pairs in order, repeats kept: safetensors refuses some repeated keys that a dict
    would silently merge. (``decode_json(..., pairs=True)``; ``shown`` prints it as the object it was.)"""

    __slots__ = ("items",)

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        self.items = items


def open_regular(path: Path, hint: str) -> BinaryIO:
    """``path`` open for reading if it is a regular file; else one line (what it is, then ``hint``). Never blocks: the
    open is non-blocking, and the kind is read from the open descriptor, so nothing can swap the file in between."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        found = "is a symlink to a missing file" if path.is_symlink() and not path.exists() else f"cannot be opened ({error.strerror})"
        raise DummyWeightsError(f"{path}: {found}; {hint}") from None
    kind = stat.S_IFMT(os.fstat(descriptor).st_mode)
    if kind != stat.S_IFREG:
        os.close(descriptor)
        raise DummyWeightsError(f"{path}: is {NOT_REGULAR.get(kind, 'not a regular file')}, not a file; {hint}")
    return os.fdopen(descriptor, "rb")


def read_json_file(path: Path, what: str, hint: str) -> Any:
    """A whole JSON file (an index, a manifest), read by ``decode_json`` and no deeper than ``MAX_JSON_DEPTH``;
    anything else is one line: ``PATH: not WHAT (the cause); HINT``."""
    with open_regular(path, hint) as file:
        raw = file.read(MAX_JSON_BYTES + 1)
    try:
        if len(raw) > MAX_JSON_BYTES:
            raise ValueError(f"over {MAX_JSON_BYTES:,} bytes")
        value = decode_json(raw)
        if nesting(value) > MAX_JSON_DEPTH:
            raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    except ValueError as error:
        raise DummyWeightsError(f"{path}: not {what} ({error}); {hint}") from None
    return value


def decode_json(raw: bytes, *, pairs: bool = False) -> Any:
    """``raw`` parsed as serde_json parses it (objects as ``JsonObject`` with ``pairs``); ``ValueError`` saying why not.
    Nesting is bounded only by Python's parser here: callers check ``nesting`` where it can be deep."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(
            text, parse_int=serde_int, parse_float=serde_float, parse_constant=not_json, object_pairs_hook=JsonObject if pairs else None
        )
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    if SURROGATE_ESCAPE.search(raw):  # rare (a name outside the BMP is escaped as a pair): only then look for a lone one
        try:
            as_json(value, ascii_only=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a lone surrogate escape (\\ud800-\\udfff) is not a character") from None
    return value


def serde_int(text: str) -> int | float:
    if text == "-0":
        return -0.0  # serde_json reads -0 as a float: not a size, not an offset
    if len(text) > FLOAT_DIGITS:
        serde_float(text)  # an integer past float range is an error there
    return int(text)


def serde_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:12]}... is out of range")
    return value


def not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def nesting(value: Any) -> int:
    """Levels of arrays and objects in a parsed JSON value (a scalar: 0), counted level by level, not recursively."""
    depth, level = 0, [value]
    while containers := [item for item in level if isinstance(item, (list, dict, JsonObject))]:
        depth += 1
        level = [child for item in containers for child in values_in(item)]
    return depth


def values_in(container: list | dict | JsonObject) -> Iterable[Any]:
    if isinstance(container, dict):
        return container.values()
    if isinstance(container, JsonObject):
        return (value for _, value in container.items)
    return container


def as_json(value: Any, *, ascii_only: bool = True) -> str:
    return json.dumps(value, default=lambda found: dict(found.items), ensure_ascii=ascii_only)


def shown(value: Any) -> str:
    """A found value as the JSON it was, cut to 60 characters, for an error line."""
    try:
        text = as_json(value)
    except RecursionError:
        return f"a {type(value).__name__} nested too deep to show"
    return text if len(text) <= 60 else text[:57] + "..."
