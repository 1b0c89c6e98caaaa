"""The structural suite's one fixture, ``model``, in two implementations selected by ``SUITE_MODELS``.

``SUITE_MODELS=dummy``: the plugin's ``dummy_model_factory`` (run with ``-p dummyweights``).
``SUITE_MODELS=checkpoint``: ``from_pretrained`` of the checkpoint ``bench/suite.py`` wrote, once per
test, as a suite without the plugin loads its models. The tests are the same either way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

MODELS = json.loads((Path(__file__).parent / "models.json").read_text())


def load_checkpoint(entry: dict):
    import paddleformers.transformers

    cls = getattr(paddleformers.transformers, entry["architecture"])
    model = cls.from_pretrained(entry["checkpoint"], dtype=entry["dtype"])
    model.eval()
    return model


@pytest.fixture
def model(request):
    entry = MODELS[request.param]
    if os.environ["SUITE_MODELS"] == "checkpoint":
        return load_checkpoint(entry)
    factory = request.getfixturevalue("dummy_model_factory")
    return factory(entry["config"], dtype=entry["dtype"], shrink=entry["shrink"], overrides=entry["overrides"] or None)


@pytest.fixture
def entry(request) -> dict:
    """What bench/suite.py recorded about the test's model: parameter count, dtype, a few values."""
    return MODELS[request.node.callspec.params["model"]]


def pytest_generate_tests(metafunc):
    if "model" in metafunc.fixturenames:
        wanted = getattr(metafunc.function, "models", lambda entry: True)
        names = [name for name, entry in MODELS.items() if wanted(entry)]
        metafunc.parametrize("model", names, indirect=True)
