"""Construction and post-processing: build a model's class without default initialization, and finish it
as after a real load (its own ``process_weights_after_loading``, the project's hooks, eval mode)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import paddle

from pytest_dummyweights import mla
from pytest_dummyweights._building.context import BuildHooks
from pytest_dummyweights._checkpoints.loader_feed import has_load_weights
from pytest_dummyweights._runtime.device import default_dtype, device_memory_bytes
from pytest_dummyweights._values.fill import bytes_needing_memory
from pytest_dummyweights.errors import DummyWeightsError
from pytest_dummyweights.spec import DummySpec
from pytest_dummyweights.vocabulary import human_bytes


@contextlib.contextmanager
def construction_guards(dtype: str) -> Iterator[None]:
    """Construct without default initialization: ``LazyGuard``, plus PaddleFormers' ``no_init_weights``
    when PaddleFormers is loaded (its models run their own ``init_weights`` in ``__init__``)."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(paddle.LazyGuard())
        stack.enter_context(default_dtype(dtype))
        model_utils = sys.modules.get("paddleformers.transformers.model_utils")
        if model_utils is not None:
            stack.enter_context(model_utils.no_init_weights())
        yield


def add_mla_derived_weights(model: paddle.nn.Layer, dtype: str) -> None:
    """Create the MLA weights an engine derives while loading a checkpoint (the build loads none)."""
    for layer in model.sublayers(include_self=True):
        if not mla.is_mla_layer(layer):
            continue
        for attribute, shape in mla.derived_weight_shapes(layer).items():
            if getattr(layer, attribute, None) is None:
                layer.__dict__.pop(attribute, None)  # a `self.k_b_proj_weight = None` placeholder blocks add_parameter
                layer.add_parameter(attribute, layer.create_parameter(shape, dtype=getattr(paddle, dtype)))


def construct(factory: Any, model_config: Any, dtype: str, *, has_checkpoint: bool = False) -> paddle.nn.Layer:
    """The model, without default initialization, with its MLA derived weights: unless a checkpoint goes through
    the model's own ``load_weights`` (checkpoint-shaped loading), which must derive them itself."""
    with construction_guards(dtype):
        model = factory(model_config)
        if not isinstance(model, paddle.nn.Layer):
            raise DummyWeightsError(f"{getattr(factory, '__qualname__', factory)!r} returned {type(model).__name__}, not a paddle.nn.Layer")
        if not (has_checkpoint and has_load_weights(model)):
            add_mla_derived_weights(model, dtype)
    return model


def check_fits(model: paddle.nn.Layer, device: str, storage: str | None) -> None:
    """A model larger than its device is a config to shrink, not an out-of-memory crash halfway through the fill."""
    needed = bytes_needing_memory(model, storage)
    available = device_memory_bytes(device)
    if needed > available:
        raise DummyWeightsError(
            f"the model's parameters need {human_bytes(needed)} of memory, more than the {human_bytes(available)} of {device}: "
            "shrink it (shrink=True, or overrides such as num_hidden_layers)"
        )


def post_process(model: paddle.nn.Layer, model_config: Any, spec: DummySpec, hooks: BuildHooks | None) -> None:
    """The model's own final processing, as after a real load, then the project's hooks, then eval mode."""
    for _, layer in model.named_sublayers(include_self=True):
        quant_method = getattr(layer, "quant_method", None)
        if quant_method is not None and hasattr(quant_method, "process_weights_after_loading"):
            quant_method.process_weights_after_loading(layer)
        elif callable(getattr(layer, "process_weights_after_loading", None)):
            layer.process_weights_after_loading()
    if hooks is not None:
        hooks.pytest_dummyweights_post_process(model=model, model_config=model_config, spec=spec)
    model.eval()
