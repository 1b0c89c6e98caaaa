"""Finiteness smoke: one tiny forward pass after the build; a non-finite output names the sublayer that made it.

The pass runs through the hook ``pytest_dummyweights_smoke`` (which returns the model's outputs), else,
for causal-LM classes, on a few token ids. Only when an output is not finite does the pass run again
with forward post-hooks on every sublayer, to name the first one, in execution order, whose output is
not finite; the hooks are removed afterwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import paddle

from pytest_dummyweights._runtime.private_paddle import element_count
from pytest_dummyweights.errors import DummyWeightsError, reraised_as

DEFAULT_TOKENS = (1, 2, 3, 4)
MAX_SEQ_LENGTH_TOKENS = 64  # DeepSeek-V3 reshapes with config.seq_length: feed that many tokens when it is this small


@dataclasses.dataclass(frozen=True)
class NonFinite:
    """Where non-finite values were first seen."""

    sublayer: str  # structured name; "" for the model itself
    class_name: str
    bad: int  # non-finite elements
    total: int

    def where_and_how_many(self) -> str:
        where = f"sublayer {self.sublayer!r}" if self.sublayer else "the model's own forward"
        return f"{where} ({self.class_name}) gave {self.bad} non-finite of {self.total} values"


def tensors_in(outputs: Any) -> Iterator[paddle.Tensor]:
    """Every tensor in a forward's result: tensors, tuples, lists, dicts (PaddleFormers' ModelOutput is one), dataclasses."""
    if isinstance(outputs, paddle.Tensor):
        yield outputs
    elif isinstance(outputs, Mapping):
        for value in outputs.values():
            yield from tensors_in(value)
    elif isinstance(outputs, (tuple, list)):
        for value in outputs:
            yield from tensors_in(value)
    elif dataclasses.is_dataclass(outputs) and not isinstance(outputs, type):
        for field in dataclasses.fields(outputs):
            yield from tensors_in(getattr(outputs, field.name))


def count_non_finite(outputs: Any) -> tuple[int, int]:
    """(non-finite elements, elements) over the floating-point tensors in ``outputs``."""
    bad = total = 0
    for tensor in tensors_in(outputs):
        if not tensor.is_floating_point() or tensor.size == 0:
            continue
        wide = tensor if tensor.dtype in (paddle.float32, paddle.float64) else tensor.astype("float32")
        bad += int((~paddle.isfinite(wide)).sum().numpy())
        total += element_count(tensor.shape)
    return bad, total


def default_inputs(model: paddle.nn.Layer, model_config: Any) -> paddle.Tensor | None:
    """Token ids ``[[1, 2, 3, 4]]`` for a causal LM (``seq_length`` tokens when the config sets a small one), else None."""
    vocab_size = getattr(model_config, "vocab_size", None)
    if "CausalLM" not in type(model).__name__ and not isinstance(vocab_size, int):
        return None
    seq_length = getattr(model_config, "seq_length", None)
    count = seq_length if isinstance(seq_length, int) and 0 < seq_length <= MAX_SEQ_LENGTH_TOKENS else len(DEFAULT_TOKENS)
    vocab = vocab_size if isinstance(vocab_size, int) and vocab_size > 1 else max(DEFAULT_TOKENS) + 1
    return paddle.to_tensor([[1 + index % (vocab - 1) for index in range(count)]], dtype="int64")


def first_non_finite_sublayer(model: paddle.nn.Layer, forward: Callable[[], Any]) -> NonFinite | None:
    """Run ``forward`` with a post-hook on every sublayer; the first whose output is not finite, in execution order."""
    found: list[NonFinite] = []

    def make_hook(name: str) -> Callable[[paddle.nn.Layer, paddle.Tensor, paddle.Tensor], paddle.Tensor]:
        def hook(layer: paddle.nn.Layer, inputs: paddle.Tensor, outputs: paddle.Tensor) -> paddle.Tensor:
            if not found:
                bad, total = count_non_finite(outputs)
                if bad:
                    found.append(NonFinite(name, type(layer).__name__, bad, total))
            return outputs  # the output unchanged: a hook that returns None also leaves it, but the stubs want a tensor

        return hook

    handles = [layer.register_forward_post_hook(make_hook(name)) for name, layer in model.named_sublayers(include_self=True)]
    try:
        forward()
    finally:
        for handle in handles:
            handle.remove()
    return found[0] if found else None


def run_smoke(model: paddle.nn.Layer, model_config: Any, spec: Any, hook: Callable[..., Any] | None = None) -> None:
    """One tiny forward pass (``hook`` returns the outputs, or None for the default); raise ``DummyWeightsError``
    naming the first non-finite sublayer and the config."""
    where = f"config {spec.describe()}"

    def forward() -> Any:
        with paddle.no_grad():
            outputs = hook(model=model, model_config=model_config, spec=spec) if hook is not None else None
            if outputs is not None:
                return outputs
            inputs = default_inputs(model, model_config)
            if inputs is None:
                raise DummyWeightsError(
                    f"smoke=True for {where}, but {type(model).__name__} is not a causal LM, so there is no default input: "
                    "return its outputs from a pytest_dummyweights_smoke(model, model_config, spec) hook in a conftest.py"
                )
            return model(inputs)

    give_inputs = "give the model its inputs with a pytest_dummyweights_smoke hook"
    with reraised_as(DummyWeightsError, f"finiteness smoke for {where}: the forward pass failed", give_inputs):
        bad, total = count_non_finite(forward())
    if not bad:
        return
    culprit = first_non_finite_sublayer(model, forward)
    origin = (
        f"{culprit.where_and_how_many()}, the first in execution order: check its weights and post-processing "
        "(quantized scales: scales='neutral' or value_rules)"
        if culprit
        else "no sublayer's output was non-finite: check what the pytest_dummyweights_smoke hook computes"
    )
    raise DummyWeightsError(f"finiteness smoke failed for {where}: {bad} of {total} output values are not finite; {origin}")
