"""The rules isolation compares Python values by (``value_state``): equal states exactly when two values hold the
same state, types, exact float bits, order and sharing included; ``Unknown`` for what cannot be described."""

from __future__ import annotations

import collections
import copy
import functools
import threading
import types

import numpy as np
import pytest

from pytest_dummyweights._cache.value_state import MAX_DEPTH, MAX_VALUES, Describer, Unknown, equal


class Slotted:
    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value


class Name(str):
    pass


class Scaler:
    def __init__(self, factor: float) -> None:
        self.factor = factor

    def scale(self, x: float) -> float:
        return x * self.factor


def state(value):
    """As a snapshot or a check describes it: one walk, one describer."""
    return Describer(lambda tensor: id(tensor), {}).state("attribute x of the model", value)


def cyclic(tail):
    value = [tail]
    value.append(value)
    return value


def shared_twice():
    inner = [1]
    return [inner, inner]


SAME = {
    "a copied dict": ({"a": [1, 2.5, None]}, {"a": [1, 2.5, None]}),
    "NaN and NaN": (float("nan"), float("nan")),
    "an object and its copy": (types.SimpleNamespace(max_length=20, eos=[1, 2]), types.SimpleNamespace(max_length=20, eos=[1, 2])),
    "a cycle and its deep copy": (cyclic(1), copy.deepcopy(cyclic(1))),
    "slots": (Slotted(3), Slotted(3)),
    "bound methods of equal objects": (Scaler(2.0).scale, Scaler(2.0).scale),
    "arrays": (np.arange(4), np.arange(4)),
}
DIFFERENT = {
    "True and 1": (True, 1),
    "2 and 2.0": (2, 2.0),
    "0.0 and -0.0": (0.0, -0.0),
    "a list and a tuple": ([1], (1,)),
    "dict order": ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
    "shared and unshared": (shared_twice(), [[1], [1]]),
    "a nested value": (types.SimpleNamespace(max_length=20), types.SimpleNamespace(max_length=1)),
    "a slot": (Slotted(3), Slotted(4)),
    "a str subclass's value": (Name("a"), Name("b")),
    "a partial's arguments": (functools.partial(max, 1), functools.partial(max, 2)),
    "a bound method's object": (Scaler(2.0).scale, Scaler(3.0).scale),
    "array bytes": (np.arange(4), np.arange(1, 5)),
    "a defaultdict's factory": (collections.defaultdict(list), collections.defaultdict(set)),
    "two functions": (max, min),
}


@pytest.mark.parametrize(("left", "right"), SAME.values(), ids=SAME.keys())
def test_values_holding_the_same_state_compare_equal(left, right) -> None:
    assert equal(state(left), state(right))


@pytest.mark.parametrize(("left", "right"), DIFFERENT.values(), ids=DIFFERENT.keys())
def test_values_holding_different_state_do_not(left, right) -> None:
    assert not equal(state(left), state(right))


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (threading.Lock(), "a lock cannot be compared by value"),
        (nested(5000), f"nested deeper than {MAX_DEPTH} levels"),
        ([[i] for i in range(MAX_VALUES + 1)], f"holds more than {MAX_VALUES} values"),
    ],
    ids=["lock", "nested", "large"],
)
def test_what_cannot_be_described_is_unknown_and_equal_to_nothing(value, reason) -> None:
    described = state(value)
    assert isinstance(described, Unknown) and described.reason == reason
    assert not equal(described, described)
