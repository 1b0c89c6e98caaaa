"""Find the model class (or factory) for a config: the spec's ``model``, then the hook, then PaddleFormers.

A config can only name a model class PaddleFormers exports (a ``paddle.nn.Layer`` subclass); only
code the test itself names (``model=``, a hook) may be any factory.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

import paddle

from pytest_dummyweights._runtime.requirements import install_hint, missing
from pytest_dummyweights.errors import DummyWeightsError


def import_reference(reference: str) -> Any:
    """``"package.module:Name"`` -> the object. Only references the test code wrote, never a config's."""
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise DummyWeightsError(f"model={reference!r} is not of the form 'package.module:Name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        hint = install_hint(error.name)
        raise DummyWeightsError(f"model={reference!r}: cannot import {module_name!r} ({error}){f': {hint}' if hint else ''}") from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise DummyWeightsError(f"model={reference!r}: module {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    return target


def is_model_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, paddle.nn.Layer)


def paddleformers_class(architecture: str) -> tuple[Any | None, str]:
    """PaddleFormers' model class for an architecture name, or None and why not."""
    problem = missing("paddleformers")
    if problem is not None:
        return None, problem
    # lazy: PaddleFormers is optional, and serves only configs that name its classes
    import paddleformers
    import paddleformers.transformers as transformers

    found = getattr(transformers, architecture, None)
    if is_model_class(found):
        return found, f"paddleformers.transformers.{architecture}"
    version = getattr(paddleformers, "__version__", "?")
    what = (
        "no model class"
        if found is None
        else f"{architecture!r} there, but it is a {type(found).__name__}, not a model class; no model class"
    )
    models = [name for name in dir(transformers) if name.endswith(("ForCausalLM", "Model")) and name[0].isupper()]
    close = difflib.get_close_matches(architecture, models, n=1)
    hint = f" (closest model class: {close[0]!r})" if close else ""
    return None, f"PaddleFormers {version} has {what} {architecture!r} in paddleformers.transformers{hint}"


def check_not_a_paddleformers_helper(target: Any, given: Any, model_config: Any) -> None:
    """A PaddleFormers class given as ``model=`` must be a model class: an Auto class (or a config class) raises
    deep inside PaddleFormers when constructed from a config. Say what to give instead."""
    if not isinstance(target, type) or is_model_class(target) or not target.__module__.startswith("paddleformers."):
        return
    what = (
        "an Auto class, which picks a model class while loading a checkpoint (from_pretrained), not a model class"
        if target.__name__.startswith("Auto")
        else f"a {target.__name__}, not a model class (a paddle.nn.Layer subclass)"
    )
    architectures = getattr(model_config, "architectures", None) or []
    instead = (
        f"e.g. model='paddleformers.transformers:{architectures[0]}' (the config's architectures[0]), or leave model= out"
        if architectures
        else "e.g. model='paddleformers.transformers:Qwen3ForCausalLM'"
    )
    raise DummyWeightsError(f"model={given!r} is {what} to construct from a config: name the model class, {instead}")


def _checked_hook_result(found: Any) -> Any:
    if not callable(found):
        raise DummyWeightsError(
            f"hook pytest_dummyweights_resolve_model returned {type(found).__name__} {found!r}, not a class or factory callable: "
            "return the model class, or None to pass"
        )
    return found


def resolve_model(model_config: Any, spec: Any, resolve_hook: Callable[..., Any] | None) -> tuple[Callable[..., Any], str]:
    """The class or factory that builds the model from ``model_config``, and where it came from."""
    if spec.model is not None:
        target = import_reference(spec.model) if isinstance(spec.model, str) else spec.model
        if not callable(target):
            raise DummyWeightsError(f"model={spec.model!r} is neither a class nor a factory callable")
        check_not_a_paddleformers_helper(target, spec.model, model_config)
        return target, f"model={getattr(target, '__qualname__', target)!r}"
    looked = ["the spec's model= (not given)"]
    if resolve_hook is not None:
        found = resolve_hook(model_config=model_config, spec=spec)
        if found is not None:
            return _checked_hook_result(found), "hook pytest_dummyweights_resolve_model"
        looked.append("hook pytest_dummyweights_resolve_model (no implementation returned a class)")
    architectures = getattr(model_config, "architectures", None) or []
    if architectures:
        found, where = paddleformers_class(architectures[0])
        if found is not None:
            return found, where
        looked.append(where)
    else:
        looked.append("PaddleFormers (the config has no 'architectures' list to look up)")
    name = architectures[0] if architectures else getattr(model_config, "model_type", "<unknown>")
    raise DummyWeightsError(
        f"no model class found for {name!r}; looked at: {'; '.join(looked)}. "
        "Pass model='package.module:Class', or implement pytest_dummyweights_resolve_model in a conftest.py"
    )
