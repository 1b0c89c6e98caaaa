"""Isolation between tests sharing a cached model: what a test may have changed, and whether to restore or rebuild.

A snapshot is taken when the model is built; after each test that borrowed it, the model is
compared with the snapshot:

- tensors (parameters, buffers, and tensors kept as plain attributes of a sublayer): identity, shape,
  dtype, ``stop_gradient`` and storage address; then their values, exactly where that is cheap:
  a mapped parameter's written pages are found and dropped (``mapped.restore_model``: it reads the
  value store again), and a small CPU tensor is compared with a copy kept at build time and copied
  back. Other tensors (large filled ones, GPU ones) are witnessed by Paddle's in-place version counter
  plus, in ``fast`` mode, a few probed elements (``set_value`` and optimizer steps bump no counter),
  in ``strict`` mode a digest of every byte;
- the set of parameters, buffers, sublayers and forward hooks;
- the model's ``config``, against the config as built;
- every other plain attribute of every sublayer (its ``__dict__`` entries that are not tensors or sublayers).

Values restored exactly, train mode and gradients are put back in place; any other change drops the
model, so the next test gets a rebuild, bit-identical to the first build.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import paddle

from pytest_dummyweights._cache.fingerprint import describe
from pytest_dummyweights._cache.stats import human_bytes
from pytest_dummyweights._runtime.private_apis import element_count, forward_hooks, host_view, inplace_version, registered_slots
from pytest_dummyweights._values import mapped

PROBES_PER_TENSOR = 8
KEPT_COPY_MAX_BYTES = 1 << 20  # CPU tensors up to this size are restored from a copy (larger parameters are mapped)
# Layer internals compared by the dedicated checks above (or restored in place), not as plain attributes.
LAYER_INTERNALS = frozenset({"_parameters", "_sub_layers", "_buffers", "_forward_pre_hooks", "_forward_post_hooks", "training"})


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


def _tensor_state(tensor: paddle.Tensor, strict: bool) -> tuple:
    identity = (id(tensor), tuple(tensor.shape), str(tensor.dtype), tensor.stop_gradient, tensor.data_ptr())
    if _restored_exactly(tensor):
        return identity
    return (*identity, inplace_version(tensor), _digest(tensor) if strict else _probe(tensor))


@dataclasses.dataclass
class Walk:
    """One traversal of a model, shared by every check: its sublayers, and every tensor they hold by key
    (``tensor layers.0.weight`` for a parameter or buffer slot, ``tensor attribute x of layers.0`` for a plain
    one; ``None`` for an emptied slot). Giant models have tens of thousands of sublayers: walk them once."""

    layers: list[tuple[str, paddle.nn.Layer]]
    tensors: dict[str, paddle.Tensor | None]

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
        return cls(layers, tensors)

    def unique_tensors(self) -> list[paddle.Tensor]:
        """Each tensor once (tied weights sit in several slots)."""
        return list({id(tensor): tensor for tensor in self.tensors.values() if tensor is not None}.values())


def _kept_copies(walk: Walk) -> dict[int, np.ndarray]:
    """Copies of the small CPU tensors that are not mapped, by identity (tied ones once)."""
    return {
        id(tensor): host_view(tensor).copy()
        for tensor in walk.unique_tensors()
        if _restored_exactly(tensor) and mapped.region_of(tensor) is None
    }


def _plain_attributes(layer: paddle.nn.Layer) -> Iterator[tuple[str, Any]]:
    for name, value in vars(layer).items():
        if name not in LAYER_INTERNALS and not isinstance(value, paddle.nn.Layer):
            yield name, value


def config_state(model_config: Any) -> Any:
    """The config's values, as a dict when the config can give one."""
    to_dict = getattr(model_config, "to_dict", None)
    return copy.deepcopy(to_dict() if callable(to_dict) else vars(model_config))


def _model_state(model: paddle.nn.Layer, walk: Walk, strict: bool) -> dict[str, Any]:
    """What a test can leave behind, keyed by what it is: ``tensor layers.0.weight``, ``attribute ...``."""
    state: dict[str, Any] = {key: None if tensor is None else _tensor_state(tensor, strict) for key, tensor in walk.tensors.items()}
    for path, layer in walk.layers:
        where = path or "the model"
        state[f"sublayer {where}"] = id(layer)
        hooks = forward_hooks(layer)
        if any(hooks):
            state[f"hooks of {where}"] = hooks
        for name, value in _plain_attributes(layer):
            if not isinstance(value, paddle.Tensor) and not (layer is model and name == "config"):
                state[f"attribute {name} of {where}"] = (id(value), describe(value))
    config = getattr(model, "config", None)
    state["config"] = (id(config), config_state(config) if config is not None else None)
    return state


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

    @classmethod
    def of(cls, model: paddle.nn.Layer, mode: str = "fast") -> Snapshot:
        strict, walk = mode == "strict", Walk.of(model)
        return cls(_model_state(model, walk, strict), strict, _kept_copies(walk))

    def _restore_values(self, tensors: list[paddle.Tensor]) -> int:
        """Put back every byte a test wrote into tensors restored exactly; the bytes restored."""
        restored = mapped.restore_tensors(tensors)
        for tensor in tensors:
            kept = self.kept.get(id(tensor))
            if kept is not None and not np.array_equal(view := host_view(tensor), kept):
                view[:] = kept
                restored += kept.nbytes
        return restored

    def check(self, model: paddle.nn.Layer) -> Verdict:
        """Compare the model with the snapshot; restore mode and gradients in place."""
        walk = Walk.of(model)
        now = _model_state(model, walk, self.strict)
        added = sorted(now.keys() - self.state.keys())
        dropped = sorted(self.state.keys() - now.keys())
        changed = sorted(key for key in now.keys() & self.state.keys() if now[key] != self.state[key])
        kinds = (("added", added), ("dropped", dropped), ("changed", changed))
        verdict = Verdict([f"{what} {_some(keys)}" for what, keys in kinds if keys], [])
        if verdict.rebuild:
            return verdict
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
