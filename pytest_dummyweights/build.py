"""The build, as plain functions usable without pytest: config, resolve, construct, init, post-process."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import paddle

from . import mla
from .config import LoadedConfig, load_config
from .device import default_dtype, on_device, resolve_device
from .errors import DummyWeightsError
from .fill import initialize_dummy_weights, parameter_stats
from .resolve import resolve_model
from .spec import DTYPES, DummySpec

DEFAULT_SEED = 0
DEFAULT_STD = 0.02
PHASES = ("config", "resolve", "construct", "init", "post_process")


class BuildHooks(Protocol):
    """What the build calls out to; pytest's ``config.hook`` is one."""

    def pytest_dummyweights_resolve_model(self, *, model_config: Any, spec: DummySpec) -> Any: ...

    def pytest_dummyweights_post_process(self, *, model: Any, model_config: Any, spec: DummySpec) -> Any: ...


@dataclasses.dataclass
class BuildResult:
    model: paddle.nn.Layer
    model_config: Any
    spec: DummySpec  # with every default filled in: what was actually built
    config: LoadedConfig
    source: str  # where the class came from
    parameters: int
    nbytes: int
    seconds: dict[str, float]


@contextlib.contextmanager
def _timed(seconds: dict[str, float], phase: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[phase] = time.perf_counter() - start


def choose_dtype(spec_dtype: str | None, raw: Mapping[str, Any], device: str) -> str:
    """The spec's dtype; else the config's on GPU; else float32 (Paddle's CPU kernels lack bfloat16 for some ops)."""
    if spec_dtype is not None:
        return spec_dtype
    if device.startswith("gpu"):
        declared = raw.get("torch_dtype") or raw.get("dtype")
        if declared in DTYPES:
            return declared
    return "float32"


def choose_std(spec_std: float | None, model_config: Any) -> float:
    initializer_range = getattr(model_config, "initializer_range", None)
    if spec_std is not None:
        return float(spec_std)
    if isinstance(initializer_range, (int, float)) and initializer_range > 0:
        return float(initializer_range)
    return DEFAULT_STD


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
                layer.add_parameter(attribute, layer.create_parameter(shape, dtype=dtype))


def construct(factory: Any, model_config: Any, dtype: str) -> paddle.nn.Layer:
    with construction_guards(dtype):
        model = factory(model_config)
        if not isinstance(model, paddle.nn.Layer):
            raise DummyWeightsError(
                f"{getattr(factory, '__qualname__', factory)!r} returned {type(model).__name__}, not a paddle.nn.Layer"
            )
        add_mla_derived_weights(model, dtype)
    return model


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


def _user_code(what: str, spec: DummySpec, call: Any, *args: Any) -> Any:
    """Run model code; its failure becomes an error naming the step and the config, cause chained."""
    try:
        return call(*args)
    except DummyWeightsError:
        raise
    except Exception as error:
        raise DummyWeightsError(f"{what} failed for config {spec.describe()}: {type(error).__name__}: {error}") from error


@dataclasses.dataclass
class Plan:
    """Everything decided before construction: cheap to make, and all that the result depends on."""

    spec: DummySpec  # with every default filled in: what will actually be built
    config: LoadedConfig
    factory: Any
    source: str  # where the class came from
    seconds: dict[str, float]


def plan_build(
    spec: DummySpec,
    *,
    search_dirs: Iterable[str | os.PathLike] = (),
    hooks: BuildHooks | None = None,
    worker_id: str | None = None,
) -> Plan:
    """Read the config, choose device, dtype and std, and find the model class; ``search_dirs`` resolve a relative config path."""
    spec.validate()
    seconds: dict[str, float] = {}
    with _timed(seconds, "config"):
        loaded = load_config(spec.config, spec.overrides, spec.new_keys, [Path(d) for d in search_dirs])
        device = resolve_device(spec.device or "auto", worker_id)
        dtype = choose_dtype(spec.dtype, loaded.raw, device)
        loaded.model_config.dtype = dtype  # configs read from JSON keep float32 unless told
        spec = dataclasses.replace(
            spec,
            dtype=dtype,
            device=device,
            seed=DEFAULT_SEED if spec.seed is None else spec.seed,
            std=choose_std(spec.std, loaded.model_config),
        )
    with _timed(seconds, "resolve"), on_device(device):
        resolve_hook = hooks.pytest_dummyweights_resolve_model if hooks is not None else None
        factory, source = resolve_model(loaded.model_config, spec, resolve_hook)
    return Plan(spec, loaded, factory, source, seconds)


def execute(plan: Plan, hooks: BuildHooks | None = None) -> BuildResult:
    """Construct, dummy-init and post-process the planned model on its device."""
    spec, model_config, seconds = plan.spec, plan.config.model_config, dict(plan.seconds)
    with on_device(spec.device):
        with _timed(seconds, "construct"):
            model = _user_code(f"constructing {plan.source}", spec, construct, plan.factory, model_config, spec.dtype)
        with _timed(seconds, "init"):
            initialize_dummy_weights(model, seed=spec.seed, std=spec.std, storage=spec.storage)
        with _timed(seconds, "post_process"):
            _user_code("post-processing", spec, post_process, model, model_config, spec, hooks)
    parameters, nbytes = parameter_stats(model)
    return BuildResult(model, model_config, spec, plan.config, plan.source, parameters, nbytes, seconds)


def build(spec: DummySpec, *, hooks: BuildHooks | None = None, **where: Any) -> BuildResult:
    """Plan and execute in one go; ``where``: ``search_dirs`` and ``worker_id`` of :func:`plan_build`."""
    return execute(plan_build(spec, hooks=hooks, **where), hooks)


def build_dummy_model(config: Any, **keywords: Any) -> paddle.nn.Layer:
    """Build the real model class from ``config`` with dummy weights, outside pytest (a server's start-up, a script).

    Keywords are those of ``DummySpec``; a relative config path resolves against the working directory.
    """
    return build(DummySpec(config, **keywords), search_dirs=[Path.cwd()]).model
