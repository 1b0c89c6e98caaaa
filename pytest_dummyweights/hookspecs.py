"""The hooks this plugin adds, typed; implement them in a conftest.py or a plugin (registered via ``pytest_addhooks``).

Hook arguments say ``model_config`` (the model's config object), never ``config``: in pytest hooks that
name means pytest's own ``Config``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import paddle

    from pytest_dummyweights import DummySpec, InterceptTarget, Layout, Manifest


@pytest.hookspec(firstresult=True)
def pytest_dummyweights_resolve_model(model_config: Any, spec: DummySpec) -> Any:
    """Return the class (or factory callable) that builds a model from ``model_config``, or None to pass.

    ``model_config`` is PaddleFormers' config class when it knows the ``model_type``, else a plain
    attribute object, after shrink and overrides. Asked after the spec's ``model=``, before PaddleFormers.
    """


@pytest.hookspec
def pytest_dummyweights_post_process(model: paddle.nn.Layer, model_config: Any, spec: DummySpec) -> None:
    """Final processing of a built model with dummy weights, after its own ``process_weights_after_loading``."""


@pytest.hookspec(firstresult=True)
def pytest_dummyweights_smoke(model: paddle.nn.Layer, model_config: Any, spec: DummySpec) -> Any:
    """Run the finiteness smoke's forward pass (``smoke=True``) and return the model's outputs, or None for the
    default: token ids ``[[1, 2, 3, 4]]`` for causal-LM classes. Every floating-point tensor returned must be finite."""


@pytest.hookspec(firstresult=True)
def pytest_dummyweights_checkpoint_layout(model: paddle.nn.Layer, model_config: Any, spec: DummySpec, manifest: Manifest) -> Layout | None:
    """Return the ``pytest_dummyweights.Layout`` the (lazily constructed) ``model`` loads from a
    checkpoint described by ``manifest``, or None for the default: PaddleFormers' ``from_pretrained`` rules.
    Asked for a spec with ``checkpoint=`` whose model has no ``load_weights`` (those are checked by loading)."""


@pytest.hookspec
def pytest_dummyweights_intercept() -> list[InterceptTarget] | None:
    """Return more functions to intercept while interception is on (``--dummy-weights``, a ``dummy_load`` marker), as
    ``pytest_dummyweights.InterceptTarget(function, kind, model=None)``: an engine's model loader (``kind="model"``,
    it returns a model for a checkpoint path) or weights iterator (``kind="weights"``, it yields ``(name, tensor)``
    from checkpoint files). Asked at start-up (implement it in the rootdir's conftest.py or a plugin) and for each
    test (its conftest.py files); the targets reach the Python processes the test starts."""
