"""The PaddleFormers stand-ins: ``from_pretrained`` of every model class and of the ``Auto*`` classes, with dummy weights.

What they return is what PaddleFormers 0.4.1's ``from_pretrained`` returns, checked against the real thing in the
tests: the class asked for (an ``Auto*`` class resolves it from the config as PaddleFormers does); the config
read as ``config_class.from_pretrained`` reads it, keyword arguments that are config keys overriding it
(``num_hidden_layers=2``) and the others passed to the model's ``__init__``, as PaddleFormers passes them (so
``output_loading_info=True``, which 0.4.1 does not know, raises the same ``TypeError``); ``config=`` a config
object (used as it is, and returned as ``model.config``) or a path to read one from; the dtype ``dtype=`` or
else the config's (its ``torch_dtype``); the generation config of a ``generation_config.json``; training mode.
Only the weights differ: dummy values from the value store, and no tensor data is read.

When the checkpoint holds safetensors files, the model is checked against their headers as ``from_pretrained``
would load them (``convert_from_hf`` decides the layout, as it does for PaddleFormers: the files' own ``format``
is not read); with ``--dummy-checkpoint-check=error`` a disagreement raises ``CheckpointMismatch`` from
``from_pretrained`` itself, with the missing keys named, where PaddleFormers only warns. A call that changes the
config (config keywords, ``config=``) may leave checkpoint keys unloaded, as ``num_hidden_layers=2`` on a
24-layer checkpoint does: those are not reported; keys the model needs and the checkpoint lacks always are.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

from pytest_dummyweights._building.context import BuildContext
from pytest_dummyweights._checkpoints.structure import expected_layout
from pytest_dummyweights._intercept import patches
from pytest_dummyweights._intercept.sources import Source, locate_source
from pytest_dummyweights._intercept.subprocesses import worker_id

PRETRAINED = "paddleformers.transformers.model_utils:PretrainedModel.from_pretrained"
AUTO = "paddleformers.transformers.auto.modeling:_BaseAutoModelClass._from_pretrained"
# What only steers reading files: popped by PaddleFormers before the config and the model see the keywords.
LOADING_ONLY = (
    "from_hf_hub",
    "from_aistudio",
    "convert_from_torch",
    "state_dict",
    "cache_dir",
    "force_download",
    "ignore_mismatched_sizes",
    "download_hub",
    "subfolder",
    "load_via_cpu",
    "load_checkpoint_format",
    "variant",
    "use_safetensors",
    "low_cpu_mem_usage",
    "load_state_as_np",
    "key_mapping",
)
CONVERTING_HUBS = ("huggingface", "modelscope")  # download hubs for which convert_from_hf defaults to True


def pretrained_config(cls: Any, raw: dict[str, Any], keywords: dict[str, Any], given_config: Any) -> tuple[Any, dict[str, Any]]:
    """The config object and the keywords left for ``__init__``, as ``from_pretrained`` makes them: keywords that are
    config keys set on the config (after its own checks, as PaddleFormers does), the others kept; a given config object
    is used as it is, and every keyword kept."""
    if given_config is not None:
        return given_config, dict(keywords)
    return cls.config_class.from_dict(copy.deepcopy(raw), return_unused_kwargs=True, **keywords)


def construct_pretrained(
    cls: Any,
    raw: dict[str, Any],
    keywords: dict[str, Any],
    dtype: str,
    generation_dir: str | None,
    check: CallCheck,
    build_config: Any,
    *,
    given_config: Any = None,
) -> Any:
    """The model ``from_pretrained`` constructs, with the checkpoint's generation config. ``build_config``, the build's
    own config object, is not used: the model gets the config ``from_pretrained`` would give it. ``check`` is not used
    either: it keys the cache (the checkpoint check depends on it), as every argument does."""
    config, model_kwargs = pretrained_config(cls, raw, keywords, given_config)
    config.dtype = dtype
    model = cls(config, **model_kwargs)
    if generation_dir is not None and model.can_generate():
        # lazy: PaddleFormers, imported by intercepted loads only
        from paddleformers.generation import GenerationConfig

        with contextlib.suppress(Exception):  # as from_pretrained: without a generation_config.json, the one of the config
            model.generation_config = GenerationConfig.from_pretrained(generation_dir)
    return model


class CallCheck(NamedTuple):
    """How one call's model is checked against the checkpoint, when the project has no layout of its own."""

    layout: str  # "hf" with convert_from_hf, else "paddle"
    config_changed: bool  # config keywords or config=: keys the model does not load are not reported


@dataclasses.dataclass
class CallHooks:
    """The build's hook relay for one intercepted call: the project's hooks, and the check the call means."""

    project: Any
    check: CallCheck

    @property
    def relay(self) -> Any:
        """The project's relay, whose implementations decide the model (the cache key names them)."""
        return self.project

    def pytest_dummyweights_resolve_model(self, **arguments: Any) -> Any:
        return None if self.project is None else self.project.pytest_dummyweights_resolve_model(**arguments)

    def pytest_dummyweights_post_process(self, **arguments: Any) -> None:
        if self.project is not None:
            self.project.pytest_dummyweights_post_process(**arguments)

    def pytest_dummyweights_smoke(self, **arguments: Any) -> Any:
        return None if self.project is None else self.project.pytest_dummyweights_smoke(**arguments)

    def pytest_dummyweights_checkpoint_layout(self, **arguments: Any) -> Any:
        found = None if self.project is None else self.project.pytest_dummyweights_checkpoint_layout(**arguments)
        if found is not None:
            return found
        layout = expected_layout(arguments["model"], self.check.layout)
        return dataclasses.replace(layout, ignore_unexpected=(".*",)) if self.check.config_changed else layout


def dtype_name(dtype: Any) -> str:
    """``"bfloat16"`` for ``"bfloat16"`` or ``paddle.bfloat16``."""
    return str(dtype).removeprefix("paddle.")


def build_pretrained(cls: Any, name: Any, keywords: dict[str, Any], source: Source | None, cache: Any) -> tuple[Any, str]:
    """What ``cls.from_pretrained(name, **keywords)`` returns, with dummy weights; and a description of it."""
    # lazy: Paddle and PaddleFormers, imported when a load is intercepted (a process that loads none never imports them)
    import paddle
    from paddleformers.transformers.configuration_utils import PretrainedConfig

    interception = patches.active()
    settings = interception.settings
    keywords = dict(keywords)
    given_config = keywords.pop("config", None)
    dtype = keywords.pop("dtype", None)
    convert_from_hf = keywords.pop("convert_from_hf", None)
    if convert_from_hf is None:
        convert_from_hf = str(getattr(keywords.get("download_hub"), "value", keywords.get("download_hub"))) in CONVERTING_HUBS
    subfolder = keywords.get("subfolder") or ""
    for key in LOADING_ONLY:
        keywords.pop(key, None)
    source = source or locate_source(name, subfolder=subfolder, manifest_dir=settings.manifest_dir)
    given_object = given_config if isinstance(given_config, PretrainedConfig) else None
    if given_object is not None:  # the build reads the checkpoint's own config when it has one
        raw = given_object.to_dict() if source.config_file is None and source.manifest is None else source.raw_config()
    else:
        raw = (source if given_config is None else locate_source(given_config, manifest_dir=settings.manifest_dir)).raw_config()
    model_config, model_kwargs = pretrained_config(cls, raw, keywords, given_object)
    check = CallCheck("hf" if convert_from_hf else "paddle", given_config is not None or len(model_kwargs) < len(keywords))
    dtype = dtype_name(dtype or model_config.dtype or paddle.get_default_dtype())
    generation_dir = None if source.config_file is None else str(source.config_file.parent)
    factory = functools.partial(construct_pretrained, cls, raw, keywords, dtype, generation_dir, check, given_config=given_object)
    spec = settings.spec(config=raw, dtype=dtype, model=factory, checkpoint=source.checkpoint)
    model = cache.get_unshared(spec, BuildContext(hooks=CallHooks(interception.hooks, check), worker_id=worker_id()))
    model.train()  # from_pretrained leaves the model in training mode
    return model, f"{type(model).__name__} {dtype} with dummy weights"


def arguments(original: Callable[..., Any], args: tuple, kwargs: dict) -> dict[str, Any]:
    return inspect.signature(original).bind(*args, **kwargs).arguments


def load_pretrained(original: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """``PretrainedModel.from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs)``, intercepted."""
    bound = arguments(original, args, kwargs)
    cls, name, keywords = bound["cls"], bound["pretrained_model_name_or_path"], bound.get("kwargs", {})

    def build(cache: Any) -> tuple[Any, str]:
        return build_pretrained(cls, name, keywords, None, cache)

    return patches.active().serve(f"{cls.__name__}.from_pretrained({name!r})", build)


def load_auto(original: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """``_BaseAutoModelClass._from_pretrained(cls, name, task=None, *model_args, **kwargs)``, intercepted: the class
    from the checkpoint's config as PaddleFormers finds it, then as ``load_pretrained``."""
    bound = arguments(original, args, kwargs)
    cls, name, task, keywords = bound["cls"], bound["pretrained_model_name_or_path"], bound.get("task"), bound.get("kwargs", {})
    settings = patches.active().settings

    def build(cache: Any) -> tuple[Any, str]:
        if task and cls._task_choice:
            cls._name_mapping = sys.modules[original.__module__].get_name_mapping(task)
        source = locate_source(name, subfolder=keywords.get("subfolder") or "", manifest_dir=settings.manifest_dir)
        model_class = cls._get_model_class_from_config(name, None, config=copy.deepcopy(source.raw_config()))
        return build_pretrained(model_class, name, keywords, source, cache)

    return patches.active().serve(f"{cls.__name__}.from_pretrained({name!r})", build)


PATCHES = (patches.Patch(PRETRAINED, load_pretrained), patches.Patch(AUTO, load_auto))
