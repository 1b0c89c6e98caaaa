"""The build, as plain functions usable without pytest: config, resolve, construct, init, post-process."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import paddle

from pytest_dummyweights._building.config import LoadedConfig, load_config
from pytest_dummyweights._building.construct import check_fits, construct, post_process
from pytest_dummyweights._building.context import BuildContext
from pytest_dummyweights._building.resolve import resolve_model
from pytest_dummyweights._building.smoke import run_smoke
from pytest_dummyweights._building.unset import check_nothing_unset
from pytest_dummyweights._checkpoints import contract
from pytest_dummyweights._checkpoints.structure import CheckReport
from pytest_dummyweights._runtime.device import on_device, resolve_device
from pytest_dummyweights._values.fill import InitReport, initialize_dummy_weights, parameter_stats
from pytest_dummyweights._values.mapped import MemoryUsage, memory_usage
from pytest_dummyweights._values.value_rules import RulesApplied, apply_value_rules, warn_not_applied
from pytest_dummyweights.errors import DummyWeightsError, folded
from pytest_dummyweights.spec import DummySpec
from pytest_dummyweights.vocabulary import (
    DEFAULT_CHECKPOINT_CHECK,
    DEFAULT_DEVICE,
    DEFAULT_DTYPE,
    DEFAULT_SCALES,
    DEFAULT_SEED,
    DEFAULT_STD,
    DTYPES,
)

MAX_ABS_SAMPLE = 8.0  # a bound on |normal sample| / std that the dummy values never exceed in practice


@dataclasses.dataclass
class BuildResult:
    """A built model, and what was built, how, and at what cost."""

    model: paddle.nn.Layer
    model_config: Any  # the config object the model was constructed from
    spec: DummySpec  # with every default filled in: what was actually built
    loaded_config: LoadedConfig  # the config as read: its source, raw dict (after shrink and overrides), shrink
    source: str  # where the class came from
    parameters: int
    nbytes: int
    seconds: dict[str, float]
    rules_applied: RulesApplied
    init: InitReport  # the storage used, and messages (a fallback directory or storage)
    memory: MemoryUsage  # parameter bytes: virtual, resident, shared with the value store, private
    check: CheckReport | None = None  # the checkpoint check, when a checkpoint was named and checked
    real_bytes: int = 0  # checkpoint bytes read (real_weights)


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
    return DEFAULT_DTYPE


def choose_std(spec_std: float | None, model_config: Any, dtype: str) -> float:
    """The spec's std; else the config's ``initializer_range``; else ``DEFAULT_STD``. It must leave every value finite
    in ``dtype``."""
    initializer_range = getattr(model_config, "initializer_range", None)
    if spec_std is not None:
        std, where = float(spec_std), "std"
    elif isinstance(initializer_range, (int, float)) and not isinstance(initializer_range, bool) and initializer_range > 0:
        std, where = float(initializer_range), "the config's initializer_range"
    else:
        std, where = DEFAULT_STD, "std"
    limit = float(paddle.finfo(getattr(paddle, dtype)).max) / MAX_ABS_SAMPLE
    if not (math.isfinite(std) and 0 < std <= limit):
        raise DummyWeightsError(
            f"{where} {std!r} cannot give finite {dtype} values: normal samples reach {MAX_ABS_SAMPLE:g} std, "
            f"so std must be positive and at most {limit:.4g}; pass a smaller std="
        )
    return std


def run_model_code(what: str, spec: DummySpec, users_own: bool, call: Callable[[], Any]) -> Any:
    """Run code the plugin does not own. The user's own code (a factory, a hook, an engine's post-processing)
    keeps its exception and traceback, with a note naming the step: that is their bug and they need the
    frames. A library model class (PaddleFormers) failing on the config is bad input: one line."""
    __tracebackhide__ = True
    try:
        return call()
    except DummyWeightsError:
        raise
    except Exception as error:
        if users_own:
            error.add_note(f"pytest-dummyweights: raised while {what} for config {spec.describe()}")
            raise
        raise DummyWeightsError(f"{what} failed for config {spec.describe()}: {folded(error)}; check the config and overrides") from None


@dataclasses.dataclass(frozen=True)
class Resolved:
    """The spec's defaults as decided for this build (the spec keeps them too, typed as optional)."""

    device: str  # concrete: cpu, gpu:N
    dtype: str
    seed: int
    std: float


@dataclasses.dataclass
class Plan:
    """Everything decided before construction: cheap to make, and all that the result depends on."""

    spec: DummySpec  # with every default filled in: what will actually be built
    context: BuildContext  # where it is built: its hooks run in ``execute`` too
    resolved: Resolved
    loaded_config: LoadedConfig  # the config as read; its ``model_config`` is what the model is constructed from
    factory: Any
    source: str  # where the class came from
    users_own: bool  # the factory is the test's (model=, a hook), not a library's class
    seconds: dict[str, float]
    checkpoint: contract.CheckpointPlan | None = None  # the spec's checkpoint, headers read


def plan_build(spec: DummySpec, context: BuildContext | None = None) -> Plan:
    """Read the config and the checkpoint's headers, choose device, dtype and std, and find the model class, without
    constructing anything; ``context`` (default: no hooks, no search directories, no xdist worker) says where."""
    if not isinstance(spec, DummySpec):
        raise DummyWeightsError(f"a build takes a DummySpec, such as DummySpec('path/to/config'); got {type(spec).__name__}: {spec!r}")
    if context is not None and not isinstance(context, BuildContext):
        raise DummyWeightsError(f"context must be a BuildContext or None; got {type(context).__name__}: {context!r}")
    context = context or BuildContext()
    spec.validate()
    seconds: dict[str, float] = {}
    with _timed(seconds, "manifest") if spec.checkpoint is not None else contextlib.nullcontext():
        checkpoint = contract.plan_checkpoint(spec.checkpoint, bool(spec.real_weights), context.search_dirs)
    with _timed(seconds, "config"):
        loaded = load_config(spec.config, spec.overrides, spec.new_keys, context.search_dirs, spec.shrink)
        device = resolve_device(spec.device or DEFAULT_DEVICE, context.worker_id)
        dtype = choose_dtype(spec.dtype, loaded.raw, device)
        resolved = Resolved(
            device, dtype, DEFAULT_SEED if spec.seed is None else int(spec.seed), choose_std(spec.std, loaded.model_config, dtype)
        )
        loaded.model_config.dtype = dtype  # configs read from JSON keep float32 unless told
        spec = dataclasses.replace(
            spec,
            dtype=dtype,
            device=device,
            seed=resolved.seed,
            std=resolved.std,
            scales=spec.scales or DEFAULT_SCALES,
            smoke=bool(spec.smoke),
            checkpoint=None if checkpoint is None else str(checkpoint.path),
            checkpoint_check=spec.checkpoint_check or DEFAULT_CHECKPOINT_CHECK,
            real_weights=bool(spec.real_weights),
        )
    with _timed(seconds, "resolve"), on_device(device):
        resolve_hook = None
        if context.hooks is not None:
            hook = context.hooks.pytest_dummyweights_resolve_model

            def resolve_hook(**arguments: Any) -> Any:
                return run_model_code("resolving the model class in a hook", spec, True, lambda: hook(**arguments))

        factory, source = resolve_model(loaded.model_config, spec, resolve_hook)
    return Plan(spec, context, resolved, loaded, factory, source, not source.startswith("paddleformers."), seconds, checkpoint)


def execute(plan: Plan) -> BuildResult:
    """Construct, load the checkpoint's contract (see ``contract``), dummy-init and post-process the planned model on its device."""
    if not isinstance(plan, Plan):
        raise DummyWeightsError(f"execute takes the Plan that plan_build returned; got {type(plan).__name__}: {plan!r}")
    spec, resolved, model_config, seconds = plan.spec, plan.resolved, plan.loaded_config.model_config, dict(plan.seconds)
    hooks = plan.context.hooks
    loaded = contract.LoadResult(None)
    with on_device(resolved.device):
        with _timed(seconds, "construct"):
            model = run_model_code(
                f"constructing {plan.source}",
                spec,
                plan.users_own,
                lambda: construct(plan.factory, model_config, resolved.dtype, has_checkpoint=plan.checkpoint is not None),
            )
        check_fits(model, resolved.device, "filled" if spec.real_weights else spec.storage)
        if plan.checkpoint is not None:
            checkpoint = plan.checkpoint
            with _timed(seconds, "real_load" if spec.real_weights else "checkpoint_check"):
                loaded = run_model_code(
                    f"loading checkpoint {checkpoint.path}",
                    spec,
                    plan.users_own,
                    lambda: contract.load_before_init(model, model_config, spec, checkpoint, hooks, plan.factory),
                )
            if loaded.model is not None:
                model = loaded.model
        with _timed(seconds, "init"):
            if loaded.model is None:
                init = initialize_dummy_weights(
                    model, seed=resolved.seed, std=resolved.std, storage=spec.storage, store_dir=spec.store_dir, skip=loaded.written
                )
            else:
                init = InitReport("real")
            if spec.real_weights:
                warn_not_applied(spec.scales, spec.value_rules, f"config {spec.describe()}")
                rules_applied = RulesApplied()
            else:
                rules_applied = apply_value_rules(model, spec.scales, spec.value_rules, model_config)
        with _timed(seconds, "post_process"):
            run_model_code("post-processing", spec, True, lambda: post_process(model, model_config, spec, hooks))
            check_nothing_unset(model, spec.allow_unset)
        if spec.smoke:
            with _timed(seconds, "smoke"):
                run_smoke(model, model_config, spec, getattr(hooks, "pytest_dummyweights_smoke", None))
    parameters, nbytes = parameter_stats(model)
    return BuildResult(
        model,
        model_config,
        spec,
        plan.loaded_config,
        plan.source,
        parameters,
        nbytes,
        seconds,
        rules_applied,
        init,
        memory_usage(model),
        loaded.report,
        loaded.real_bytes,
    )


def build(spec: DummySpec, context: BuildContext | None = None) -> BuildResult:
    """Plan and execute in one go."""
    return execute(plan_build(spec, context))


def build_dummy_model(config: Any, **keywords: Any) -> paddle.nn.Layer:
    """Build the real model class from ``config`` with dummy weights, outside pytest (a server's start-up, a script).

    Keywords are those of ``DummySpec``; a relative config path resolves against the working directory.
    """
    return build(DummySpec(config, **keywords), BuildContext(search_dirs=(Path.cwd(),))).model
