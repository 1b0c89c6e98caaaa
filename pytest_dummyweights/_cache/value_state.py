"""Python values as data that compares by value: what isolation keeps of a model's attributes, configs and objects.

``Describer.state(key, value)`` gives hashable data, equal for two values exactly when they hold the same
Python state:

- ``None``, ``str``, ``bytes`` and ``int`` are themselves; ``bool`` and ``float`` carry their type (``True`` is
  not ``1``, ``2.0`` is not ``2``); a ``float`` is its exact bits (``-0.0`` is not ``0.0``, a NaN equals a NaN);
  a ``complex`` is its repr;
- lists, tuples, dicts (in order), sets, an object's ``__dict__`` and ``__slots__``, a ``functools.partial``'s
  parts and a bound method's function and object: by their contents, with their exact type; a NumPy array by
  dtype, shape and a digest of its bytes;
- functions, classes, modules, enum members: by identity; a value whose type hashes and compares it and keeps
  no ``__dict__`` (Paddle's dtypes and places, NumPy scalars): by its own equality;
- tensors and the model's own sublayers: by what the caller says (isolation walks them itself).

An object met twice in one walk (the config every decoder layer holds, a cycle) is described once; later
references name where it was first met, so shared and cyclic structures compare exactly (an empty builtin
container is its type alone: most layers hold several, and sharing one is harmless until it is filled). Anything else (a
lock, a generator, an extension object with identity-only equality), a value nested deeper than ``MAX_DEPTH``
or holding more than ``MAX_VALUES``, and any error while reading it is ``Unknown``: unequal to everything,
so a model holding it is dropped rather than kept with state nobody compared.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import functools
import hashlib
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import paddle

MAX_DEPTH = 100
SCALARS = (int, float, complex, str, bytes)  # subclasses of these (not enums) keep their value and their attributes
AS_THEMSELVES = frozenset({type(None), str, bytes, int})  # their equality is exact (a bool or a float is not an int here)
BOOLEANS = {True: (bool, True), False: (bool, False)}  # made once: most attributes are flags, and True == 1
# Their instances keep no attributes of their own that matter (an OrderedDict has an empty __dict__): their items are all.
BUILTIN_CONTAINERS = frozenset({list, tuple, dict, collections.OrderedDict, set, frozenset})
MAX_VALUES = 100_000  # per attribute: a bigger one costs more to compare after every test than a rebuild
COMPARED_BY_IDENTITY = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    type,
    types.ModuleType,
    enum.Enum,
)


@dataclasses.dataclass(frozen=True, eq=False)
class Unknown:
    """A value the describer could not describe; equal to nothing, itself included."""

    reason: str

    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return id(self)


class _Uncomparable(Exception):
    """Raised inside a description; the whole attribute becomes ``Unknown``."""


def equal(left: Any, right: Any) -> bool:
    """``left == right`` for two states, False when a foreign ``__eq__`` fails or answers with no truth value."""
    try:
        return bool(left == right)
    except Exception:
        return False


def is_plain_data(value: Any, depth: int = 8) -> bool:
    """Scalars, and lists, tuples and dicts of them: values a deep copy restores exactly."""
    if value is None or type(value) in (bool, int, float, complex, str, bytes):
        return True
    if depth == 0:
        return False
    if type(value) in (list, tuple):
        return all(is_plain_data(item, depth - 1) for item in value)
    if type(value) is dict:
        return all(is_plain_data(key, depth - 1) and is_plain_data(item, depth - 1) for key, item in value.items())
    return False


class Describer:
    """Describes the values of one walk of a model, each object once.

    ``tensor_state`` describes a tensor met inside a value; ``layer_paths`` names the model's sublayers by identity.
    """

    def __init__(self, tensor_state: Callable[[paddle.Tensor], Any], layer_paths: dict[int, str]):
        self.tensor_state = tensor_state
        self.layer_paths = layer_paths
        self._first_met: dict[int, tuple[Any, tuple]] = {}  # by identity: the object (kept alive) and how to name it again
        self._key = ""
        self._ordinal = 0
        self._values = 0

    def state(self, key: str, value: Any) -> Any:
        """The state of ``value``, which ``key`` names; ``Unknown`` when it cannot be described."""
        self._key, self._ordinal = key, 0
        return self._top(value)

    def attributes(self, key: str, attributes: list[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
        """``(name, state)`` for each attribute of the object ``key`` names."""
        self._key, self._ordinal = key, 0
        return tuple((name, value if type(value) in AS_THEMSELVES else self._top(value)) for name, value in attributes)

    def _top(self, value: Any) -> Any:
        self._values = 0
        try:
            return self._state(value, 0)
        except _Uncomparable as why:
            return Unknown(str(why))
        except RecursionError:
            return Unknown("nested too deeply to compare")
        except Exception as error:  # a foreign object's property or __eq__ failed: its state is unknown
            return Unknown(f"{type(error).__name__} while reading it: {error}")

    def _state(self, value: Any, depth: int) -> Any:
        kind = type(value)
        if kind in AS_THEMSELVES:
            return value
        if kind is bool:
            return BOOLEANS[value]
        if kind is float:
            return (kind, value.hex())
        if kind is complex:
            return (kind, repr(value))
        shape = _shapes.get(kind) or _shape_of(kind)
        if shape == "itself":
            return ("itself", value)
        if shape == "tensor":
            return ("tensor", self.tensor_state(value))
        if shape == "layer" and id(value) in self.layer_paths:
            return ("sublayer", self.layer_paths[id(value)])
        if kind in BUILTIN_CONTAINERS and not value:
            return (kind,)
        self._values += 1
        if self._values > MAX_VALUES:
            raise _Uncomparable(f"holds more than {MAX_VALUES} values")
        if depth > MAX_DEPTH:
            raise _Uncomparable(f"nested deeper than {MAX_DEPTH} levels")
        met = self._first_met.get(id(value))
        if met is not None:
            return met[1]
        self._first_met[id(value)] = (value, ("same as", self._key, self._ordinal))
        self._ordinal += 1
        return (kind, *self._contents(value, shape, depth + 1))

    def _contents(self, value: Any, shape: str, depth: int) -> tuple:
        if shape == "partial":
            return (self._state(value.func, depth), self._state(value.args, depth), self._state(value.keywords, depth))
        if shape == "method":
            return (self._state(value.__func__, depth), self._state(value.__self__, depth))
        held = None if shape == "object" else self._held(value, shape, depth)
        attributes = None if type(value) in BUILTIN_CONTAINERS else self._attributes(value, depth)
        if held is None and attributes is None:
            if type(value).__hash__ is None or type(value).__eq__ is object.__eq__:
                raise _Uncomparable(f"a {type(value).__qualname__} cannot be compared by value")
            return (value,)
        return (held, attributes)

    def _held(self, value: Any, shape: str, depth: int) -> Any:
        """What a container, an array or a scalar of a subclassed type holds; None for other objects."""
        if shape == "sequence":
            return tuple(self._state(item, depth) for item in value)
        if shape == "mapping":
            items = tuple((self._state(key, depth), self._state(item, depth)) for key, item in value.items())
            return (self._state(value.default_factory, depth), items) if isinstance(value, collections.defaultdict) else items
        if shape == "set":
            return frozenset(self._state(item, depth) for item in value)
        if shape == "array":
            if value.dtype.hasobject:
                return self._state(value.tolist(), depth)
            return (value.dtype.str, value.shape, hashlib.blake2b(np.ascontiguousarray(value).data, digest_size=16).digest())
        if shape == "scalar":
            return next(kind for kind in SCALARS if isinstance(value, kind)).__repr__(value)
        return None

    def _attributes(self, value: Any, depth: int) -> Any:
        """An object's ``__dict__`` and ``__slots__`` values; None when it keeps neither."""
        names = _slot_names(type(value))
        attributes = getattr(value, "__dict__", None)
        if attributes is None and not names:
            return None
        described = tuple(
            (self._state(name, depth), item if type(item) in AS_THEMSELVES else self._state(item, depth))
            for name, item in (attributes or {}).items()
        )
        slots = tuple((name, self._state(getattr(value, name), depth)) for name in names if hasattr(value, name)) if names else ()
        return (described, slots)


_shapes: dict[type, str] = {}
_slots_of_type: dict[type, tuple[str, ...]] = {}


def _shape_of(kind: type) -> str:
    """How values of a type are described, found once per type."""
    shapes = (
        (paddle.Tensor, "tensor"),
        (paddle.nn.Layer, "layer"),
        (COMPARED_BY_IDENTITY, "itself"),
        (functools.partial, "partial"),
        (types.MethodType, "method"),
        ((list, tuple), "sequence"),
        (dict, "mapping"),
        ((set, frozenset), "set"),
        (np.ndarray, "array"),
        (SCALARS, "scalar"),
    )
    _shapes[kind] = next((shape for bases, shape in shapes if issubclass(kind, bases)), "object")
    return _shapes[kind]


def _slot_names(kind: type) -> tuple[str, ...]:
    """The ``__slots__`` a type and its bases declare, once per type."""
    if kind not in _slots_of_type:
        names: list[str] = []
        for cls in kind.__mro__:
            declared = cls.__dict__.get("__slots__", ())
            names += [declared] if isinstance(declared, str) else list(declared)
        _slots_of_type[kind] = tuple(name for name in names if name not in ("__dict__", "__weakref__"))
    return _slots_of_type[kind]
