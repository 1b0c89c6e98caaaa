"""Checkpoint files opened and parsed without surprises, as the safetensors library would take them.

- Only regular files (after symlinks) are read, and opening never blocks: a FIFO named ``*.safetensors`` would
  otherwise hang the reader forever, and a directory or a dangling symlink raise from deep inside it.
- JSON is read as serde_json, safetensors' parser, reads it: UTF-8 only (no other encoding guessed), no ``NaN`` or
  ``Infinity``, no lone surrogate escapes, no number beyond float range, ``-0`` a float (not an integer); at most
  100,000,000 bytes (safetensors' header limit) and 127 levels of arrays and objects (serde_json stops at 128):
  all of an index or a manifest; in a header, the parts its own rules (``safetensors_header``) do not bound.
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

from pytest_dummyweights.errors import DummyWeightsError

MAX_JSON_BYTES = 100_000_000  # safetensors' MAX_HEADER_SIZE; indexes and manifests get the same bound
MAX_JSON_DEPTH = 127  # the deepest nesting serde_json (recursion limit 128) reads
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
    """A whole JSON file (an index, a manifest), read by ``decode_json`` and ``beyond_serde``; anything else is one
    line: ``PATH: not WHAT (the cause); HINT``."""
    with open_regular(path, hint) as file:
        raw = file.read(MAX_JSON_BYTES + 1)
    try:
        if len(raw) > MAX_JSON_BYTES:
            raise ValueError(f"over {MAX_JSON_BYTES:,} bytes")
        value = decode_json(raw)
        problem = beyond_serde(value)
        if problem:
            raise ValueError(problem)
    except ValueError as error:
        raise DummyWeightsError(f"{path}: not {what} ({error}); {hint}") from None
    return value


def decode_json(raw: bytes, *, pairs: bool = False) -> Any:
    """``raw`` parsed as serde_json parses it (objects as ``JsonObject`` with ``pairs``); ``ValueError`` saying why not.
    Nesting and integers past float range are left to ``beyond_serde``, for the parts the caller does not check itself."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(
            text,
            parse_int=minus_zero_as_float if b"-0" in raw else None,  # the hook costs a call per integer: only when needed
            parse_float=serde_float,
            parse_constant=not_json,
            object_pairs_hook=JsonObject if pairs else None,
        )
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    if SURROGATE_ESCAPE.search(raw):  # rare (a name outside the BMP is escaped as a pair): only then look for a lone one
        try:
            as_json(value, ascii_only=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a lone surrogate escape (\\ud800-\\udfff) is not a character") from None
    return value


def minus_zero_as_float(text: str) -> int | float:
    return -0.0 if text == "-0" else int(text)  # serde_json reads -0 as a float: not a size, not an offset


def serde_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:12]}... is out of range")
    return value


def not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def beyond_serde(value: Any, levels_above: int = 0) -> str | None:
    """What in a parsed JSON value serde_json would refuse: nesting past ``MAX_JSON_DEPTH`` (with ``levels_above``
    the levels around it), or an integer past float range. Walked level by level, not recursively."""
    depth, level = levels_above, [value]
    while level:
        integers = [item for item in level if type(item) is int]
        if integers and not (fits_float(max(integers)) and fits_float(min(integers))):
            return "a number out of range"
        containers = [item for item in level if isinstance(item, (list, dict, JsonObject))]
        depth += bool(containers)
        if depth > MAX_JSON_DEPTH:
            return f"nested deeper than {MAX_JSON_DEPTH} levels"
        level = [child for item in containers for child in values_in(item)]
    return None


def fits_float(number: int) -> bool:
    try:
        float(number)
    except OverflowError:
        return False
    return True


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
