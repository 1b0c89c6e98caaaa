"""Hooks this plugin adds; implement them in a conftest.py or a plugin (registered via ``pytest_addhooks``)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec(firstresult=True)
def pytest_dummyweights_resolve_model(model_config: Any, spec: Any) -> Any:
    """Return the class (or factory callable) that builds a model from ``model_config``, or None to pass.

    ``model_config`` is PaddleFormers' config class when it knows the ``model_type``, else a plain
    attribute object, after overrides. Asked after the spec's ``model=``, before PaddleFormers.
    """


def pytest_dummyweights_post_process(model: Any, model_config: Any, spec: Any) -> None:
    """Final processing of a built model with dummy weights, after its own ``process_weights_after_loading``."""


@pytest.hookspec(firstresult=True)
def pytest_dummyweights_smoke(model: Any, model_config: Any, spec: Any) -> Any:
    """Run the finiteness smoke's forward pass (``smoke=True``) and return the model's outputs, or None for the
    default: token ids ``[[1, 2, 3, 4]]`` for causal-LM classes. Every floating-point tensor returned must be finite."""


@pytest.hookspec(firstresult=True)
def pytest_dummyweights_checkpoint_layout(model: Any, model_config: Any, spec: Any, manifest: Any) -> Any:
    """Return the ``pytest_dummyweights.checkpoint.Layout`` the (lazily constructed) ``model`` loads from a
    checkpoint described by ``manifest``, or None for the default: PaddleFormers' ``from_pretrained`` rules.
    Asked for a spec with ``checkpoint=`` whose model has no ``load_weights`` (those are checked by loading)."""
