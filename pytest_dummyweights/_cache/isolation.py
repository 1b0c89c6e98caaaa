"""Isolation between tests sharing a cached model: what a test may have changed, and whether to restore or rebuild.

A snapshot is taken when the model is built; after each test that borrowed it, the model is
compared with the snapshot:

- tensors (parameters, buffers, and tensors kept as plain attributes of a sublayer): identity, shape,
  dtype and storage address; then their values, exactly where that is cheap:
  a mapped parameter's written pages are found and dropped (``mapped.restore_model``: it reads the
  value store again), and a small CPU tensor is compared with a copy kept at build time and copied
  back. Other tensors (large filled ones, GPU ones) are witnessed by Paddle's in-place version counter
  plus, in ``fast`` mode, a few probed elements (``set_value`` and optimizer steps bump no counter),
  in ``strict`` mode a digest of every byte;
- each tensor's own attributes: ``name``, ``stop_gradient`` (``trainable``), ``persistable``, and its
  ``__dict__`` (a parameter's ``need_clip``, ``optimize_attr``, ``regularizer``, ``do_model_average``,
  ``is_distributed``, and any attribute a test adds);
- the set of parameters, buffers, sublayers and forward hooks;
- the model's ``config``, and every other attribute of every sublayer (its ``__dict__`` entries that are not
  tensors), new ones included, by value: objects such as ``generation_config`` by their attributes,
  recursively (``value_state`` has the rules and bounds).

Put back in place, cheaply and exactly: values restored exactly, train mode, gradients, and a tensor's own
attributes whose built value is plain data (a new one is deleted), whatever a test set them to. Any other change drops the model, so the
next test gets a rebuild, bit-identical to the first build; so does a value the comparison cannot describe
(nested too deep, an object with no comparable state), at build or after a test. Either way the summary's
repair line names the test and what changed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gc
import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import paddle

from pytest_dummyweights._cache.value_state import Describer, Unknown, equal, is_plain_data
from pytest_dummyweights._runtime.private_paddle import element_count, forward_hooks, host_view, inplace_version, registered_slots
from pytest_dummyweights._values import mapped
from pytest_dummyweights.vocabulary import human_bytes

PROBES_PER_TENSOR = 8
KEPT_COPY_MAX_BYTES = 1 << 20  # CPU tensors up to this size are restored from a copy (larger parameters are mapped)
# Layer internals compared by the dedicated checks above (or restored in place), not as plain attributes.
LAYER_INTERNALS = frozenset({"_parameters", "_sub_layers", "_buffers", "_forward_pre_hooks", "_forward_post_hooks", "training"})
# A tensor's own attributes kept outside its __dict__ (trainable: parameters only, the inverse of stop_gradient).
TENSOR_FLAGS = ("name", "stop_gradient", "trainable", "persistable")
ABSENT = object()


def _probe(tensor: paddle.Tensor) -> bytes:
    """A few elements at fixed, spread positions: a cheap witness that values were rewritten."""
    count = element_count(tensor.shape)
    if count == 0:
        return b""
    positions = np.unique(np.linspace(0, count - 1, PROBES_PER_TENSOR).astype(np.int64))
    if tensor.place.is_cpu_place():
        return host_view(tensor)[positions].tobytes()
    picked = paddle.index_select(tensor.reshape([-1]), paddle.to_tensor(positions, place=tensor.place))
    return host_view(picked.cpu()).tobytes()


def _digest(tensor: paddle.Tensor) -> bytes:
    """Every byte of the tensor, hashed."""
    on_host = tensor if tensor.place.is_cpu_place() else tensor.cpu()
    return hashlib.blake2b(host_view(on_host).data, digest_size=16).digest()


def _restored_exactly(tensor: paddle.Tensor) -> bool:
    """Values a snapshot restores rather than witnesses: mapped parameters, small CPU tensors."""
    if mapped.region_of(tensor) is not None:
        return True
    return tensor.place.is_cpu_place() and element_count(tensor.shape) * tensor.element_size() <= KEPT_COPY_MAX_BYTES


def _tensor_state(tensor: paddle.Tensor, strict: bool, restored: bool) -> tuple:
    """Identity, shape, dtype and storage; and a witness of the values unless ``restored`` (exactly, after the test)."""
    identity = (id(tensor), tuple(tensor.shape), str(tensor.dtype), tensor.data_ptr())
    if restored:
        return identity
    return (*identity, inplace_version(tensor), _digest(tensor) if strict else _probe(tensor))


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for one snapshot or check, then as it was. Describing a giant
    model allocates millions of small tuples and frees none until the comparison ends; every collection meanwhile
    traverses them all again, which took over half of a full-size DeepSeek-V3's check (``bench/isolation.py``).
    What is compared is the same either way; the walk's own garbage is freed by reference counting."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclasses.dataclass
class Walk:
    """One traversal of a model, shared by every check: its sublayers, and every tensor they hold by key
    (``tensor layers.0.weight`` for a parameter or buffer slot, ``tensor attribute x of layers.0`` for a plain
    one; ``None`` for an emptied slot). Giant models have tens of thousands of sublayers: walk them once."""

    layers: list[tuple[str, paddle.nn.Layer]]
    tensors: dict[str, paddle.Tensor | None]
    first_keys: dict[str, paddle.Tensor]  # each tensor once (tied weights sit in several slots), by its first key

    @classmethod
    def of(cls, model: paddle.nn.Layer) -> Walk:
        layers = list(model.named_sublayers(include_self=True))
        tensors: dict[str, paddle.Tensor | None] = {}
        for path, layer in layers:
            for name, value in registered_slots(layer):
                tensors[f"tensor {path}.{name}" if path else f"tensor {name}"] = value
            for name, value in _plain_attributes(layer):
                if isinstance(value, paddle.Tensor):
                    tensors[f"tensor attribute {name} of {path or 'the model'}"] = value
        first: dict[int, tuple[str, paddle.Tensor]] = {}
        for key, tensor in tensors.items():
            if tensor is not None:
                first.setdefault(id(tensor), (key, tensor))
        return cls(layers, tensors, dict(first.values()))

    def unique_tensors(self) -> list[paddle.Tensor]:
        return list(self.first_keys.values())


def _kept_copies(walk: Walk) -> dict[int, np.ndarray]:
    """Copies of the small CPU tensors that are not mapped, by identity (tied ones once)."""
    return {
        id(tensor): host_view(tensor).copy()
        for tensor in walk.unique_tensors()
        if _restored_exactly(tensor) and mapped.region_of(tensor) is None
    }


def _plain_attributes(layer: paddle.nn.Layer) -> Iterator[tuple[str, Any]]:
    for name, value in vars(layer).items():
        if name not in LAYER_INTERNALS:
            yield name, value


def _own_attributes(tensor: paddle.Tensor) -> list[tuple[str, Any]]:
    """A tensor's flags (``name``, ``stop_gradient``, ...) and its ``__dict__`` (a parameter's ``need_clip``, ...)."""
    flags = [(flag, getattr(tensor, flag, ABSENT)) for flag in TENSOR_FLAGS]
    return [(flag, value) for flag, value in flags if value is not ABSENT] + list(vars(tensor).items())


@dataclasses.dataclass(frozen=True)
class Attributes:
    """The described attributes of one layer or tensor, compared as one (after most tests, nothing changed);
    ``one_by_one`` keys them singly to say which differ: ``attribute note of layers.1``, ``need_clip of tensor w``."""

    prefix: str
    suffix: str
    described: tuple[tuple[str, Any], ...]
    tensor_key: str | None = None  # the tensor whose own attributes these are

    def one_by_one(self) -> dict[str, Any]:
        return {f"{self.prefix}{name}{self.suffix}": state for name, state in self.described}


def _model_state(model: paddle.nn.Layer, walk: Walk, strict: bool) -> dict[str, Any]:
    """What a test can leave behind, keyed by what it is: ``tensor layers.0.weight``, ``attributes of layers.0``, ..."""
    state: dict[str, Any] = {
        key: None if tensor is None else _tensor_state(tensor, strict, _restored_exactly(tensor)) for key, tensor in walk.tensors.items()
    }
    walked = {id(tensor): key for key, tensor in walk.first_keys.items()}
    describer = Describer(
        lambda tensor: walked.get(id(tensor)) or _tensor_state(tensor, strict, restored=False),
        {id(layer): path or "the model" for path, layer in walk.layers},
    )
    state["config"] = describer.state("config", getattr(model, "config", None))  # first: the sublayers' references name it
    for path, layer in walk.layers:
        where = path or "the model"
        state[f"sublayer {where}"] = id(layer)
        hooks = forward_hooks(layer)
        if any(hooks):
            state[f"hooks of {where}"] = hooks
        attributes = [
            (name, value)
            for name, value in _plain_attributes(layer)
            if not isinstance(value, paddle.Tensor) and not (layer is model and name == "config")
        ]
        state[f"attributes of {where}"] = Attributes("attribute ", f" of {where}", describer.attributes(where, attributes))
    for key, tensor in walk.first_keys.items():
        described = describer.attributes(key, _own_attributes(tensor))
        state[f"attributes of {key}"] = Attributes("", f" of {key}", described, tensor_key=key)
    return state


def _one_by_one(state: dict[str, Any], split: set[str]) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    """``state`` with the groups of attributes named in ``split`` split into one key per attribute (a group
    the other side lacks stays whole: its tensor or sublayer is what was added or dropped); and which tensor
    and attribute name each split tensor attribute key stands for."""
    single: dict[str, Any] = {}
    owners: dict[str, tuple[str, str]] = {}
    for key, value in state.items():
        if not (isinstance(value, Attributes) and key in split):
            single[key] = value
            continue
        single.update(value.one_by_one())
        if value.tensor_key is not None:
            owners.update({f"{name}{value.suffix}": (value.tensor_key, name) for name, _ in value.described})
    return single, owners


def _some(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


@dataclasses.dataclass
class Verdict:
    """What a test left changed: ``rebuild`` lists what needs a fresh build, ``restored`` what was put back in place."""

    rebuild: list[str]
    restored: list[str]


@dataclasses.dataclass
class Snapshot:
    """What a model looked like when it was built."""

    state: dict[str, Any]
    strict: bool
    kept: dict[int, np.ndarray]  # small CPU tensors' bytes, by identity
    kept_attributes: dict[str, tuple[str, str, Any]]  # tensors' own attributes holding plain data: key -> tensor key, name, value

    @classmethod
    @collector_paused()
    def of(cls, model: paddle.nn.Layer, mode: str = "fast") -> Snapshot:
        strict, walk = mode == "strict", Walk.of(model)
        kept_attributes = {
            f"{name} of {key}": (key, name, copy.deepcopy(value))
            for key, tensor in walk.first_keys.items()
            for name, value in _own_attributes(tensor)
            if is_plain_data(value)
        }
        return cls(_model_state(model, walk, strict), strict, _kept_copies(walk), kept_attributes)

    def _restore_values(self, tensors: list[paddle.Tensor]) -> int:
        """Put back every byte a test wrote into tensors restored exactly; the bytes restored."""
        restored = mapped.restore_tensors(tensors)
        for tensor in tensors:
            kept = self.kept.get(id(tensor))
            if kept is not None and not np.array_equal(view := host_view(tensor), kept):
                view[:] = kept
                restored += kept.nbytes
        return restored

    def _restore_attributes(self, walk: Walk, keys: list[str], owners: dict[str, tuple[str, str]]) -> None:
        """Set tensors' own attributes back to their built values, in their built order; delete those a test added."""
        for key in keys:
            if key in self.kept_attributes:
                tensor_key, name, value = self.kept_attributes[key]
                setattr(walk.tensors[tensor_key], name, copy.deepcopy(value))
            else:
                tensor_key, name = owners[key]
                delattr(walk.tensors[tensor_key], name)
        for tensor_key in {self.kept_attributes[key][0] if key in self.kept_attributes else owners[key][0] for key in keys}:
            attributes = vars(walk.tensors[tensor_key])
            now = dict(attributes)
            attributes.clear()
            attributes.update({name: now.pop(name) for name, _ in self.state[f"attributes of {tensor_key}"].described if name in now})

    @collector_paused()
    def check(self, model: paddle.nn.Layer) -> Verdict:
        """Compare the model with the snapshot; restore values, mode, gradients and tensors' own attributes in place."""
        walk = Walk.of(model)
        now = _model_state(model, walk, self.strict)
        # After most tests nothing changed: one comparison of the whole state (a giant model's is a quarter of a
        # million keys) says so; what differs is looked for key by key only when something does.
        differing: list[str] = []
        if not equal(self.state, now):
            differing = [key for key in self.state.keys() | now.keys() if not equal(self.state.get(key, ABSENT), now.get(key, ABSENT))]
        on_both_sides = {key for key in differing if key in self.state and key in now}
        before, _ = _one_by_one({key: self.state[key] for key in differing if key in self.state}, on_both_sides)
        after, owners = _one_by_one({key: now[key] for key in differing if key in now}, on_both_sides)

        def restorable(key: str) -> bool:
            return key in self.kept_attributes or (key in owners and key not in before)

        unknown = {
            key: state.reason for key, state in [*before.items(), *after.items()] if isinstance(state, Unknown) and not restorable(key)
        }
        added = sorted(after.keys() - before.keys() - unknown.keys())
        dropped = sorted(before.keys() - after.keys() - unknown.keys())
        changed = sorted(key for key in after.keys() & before.keys() - unknown.keys() if not equal(after[key], before[key]))
        kinds = (("added", added), ("dropped", dropped), ("changed", changed))
        verdict = Verdict([f"{what} {_some(keys)}" for what, keys in kinds if keys], [])
        if unknown:
            verdict.rebuild.append("cannot compare " + _some([f"{key} ({reason})" for key, reason in sorted(unknown.items())]))
        set_back = [key for key in added + dropped + changed if restorable(key)]
        if unknown or len(set_back) < len(added) + len(dropped) + len(changed):
            return verdict
        verdict.rebuild.clear()
        if set_back:
            self._restore_attributes(walk, set_back, owners)
            verdict.restored.append(f"{_some(sorted(set_back))} set back as built")
        tensors = walk.unique_tensors()
        restored = self._restore_values(tensors)
        if restored:
            verdict.restored.append(f"{human_bytes(restored)} of written weights restored")
        if any(tensor.grad is not None for tensor in tensors):
            model.clear_gradients(set_to_zero=False)  # None, as built: zeroed gradients would read as "left behind" again
            verdict.restored.append("gradients cleared")
        if any(layer.training for _, layer in walk.layers):
            model.eval()
            verdict.restored.append("train mode reset to eval")
        return verdict
