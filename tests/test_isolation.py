"""Isolation by value with real models: a test's changes to Python state (a parameter's ``optimize_attr``,
``need_clip``, ``name``, ``regularizer``, the ``generation_config``, attributes nested too deep to compare)
never reach the next test, under ``-n 2 --dist loadfile``; a model whose state cannot be described is
never kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cache_support import view_of
from engine_models import SHRINK

from pytest_dummyweights._building.pipeline import build
from pytest_dummyweights.spec import DummySpec

pytestmark = pytest.mark.paddleformers  # real PaddleFormers models

CONFIG, OVERRIDES = SHRINK["qwen3"]
HEADER = f"""
import paddle
import pytest

from cache_support import save_view

qwen3 = pytest.mark.dummy_load({str(CONFIG)!r}, overrides={OVERRIDES!r})

def record(request, model):
    save_view(model, request.node.name)
"""
GENERATION = """
@qwen3
def test_1_generation(request, dummy_model):
    record(request, dummy_model)
    dummy_model.generation_config.max_length = 1
    dummy_model.config.layer_types.append("sliding_attention")

@qwen3
def test_2_generation(request, dummy_model):
    record(request, dummy_model)

@qwen3
def test_3_deep(request, dummy_model):
    record(request, dummy_model)
    deep = []
    for _ in range(5000):
        deep = [deep]
    dummy_model.model.layers[0].mlp.deep = deep

@qwen3
def test_4_deep(request, dummy_model):
    record(request, dummy_model)
"""
PARAMETERS = """
@qwen3
def test_1_parameters(request, dummy_model):
    record(request, dummy_model)
    for param in dummy_model.parameters():
        param.optimize_attr["learning_rate"] = 0.0
    norm = dummy_model.model.norm.weight
    norm.need_clip, norm.regularizer, norm.name = False, paddle.regularizer.L2Decay(0.5), "renamed"
    norm.do_model_average, norm.is_distributed, norm.trainable = False, True, False

@qwen3
def test_2_parameters(request, dummy_model):
    record(request, dummy_model)
    # the probe's symptom: an optimizer step moves every weight again
    before = {name: param.numpy().copy() for name, param in dummy_model.named_parameters()}
    optimizer = paddle.optimizer.SGD(learning_rate=0.1, parameters=dummy_model.parameters())
    dummy_model(paddle.to_tensor([[1, 2, 3, 4]]))[0].astype("float32").sum().backward()
    optimizer.step()
    still = [name for name, param in dummy_model.named_parameters() if (param.numpy() == before[name]).all()]
    assert not still
"""


def test_python_state_a_test_leaves_is_undone_under_loadfile(inner, tmp_path: Path) -> None:
    records = tmp_path / "records"
    records.mkdir()
    inner.monkeypatch.setenv("ISOLATION_RECORDS", str(records))
    inner.write("test_generation.py", HEADER, GENERATION)
    inner.write("test_parameters.py", HEADER, PARAMETERS)
    result = inner.run("-p", "xdist", "-n", "2", "--dist", "loadfile", "-v", subprocess=True)
    result.assert_outcomes(passed=6)

    fresh = view_of(build(DummySpec(CONFIG, overrides=OVERRIDES, device="cpu")).model)
    seen = {path.stem: json.loads(path.read_text()) for path in records.glob("*.json")}
    for name, view in seen.items():
        assert (view["digest"], view["python"]) == (fresh["digest"], fresh["python"]), name
    assert seen["test_2_generation"]["id"] != seen["test_1_generation"]["id"]  # rebuilt
    assert seen["test_4_deep"]["id"] != seen["test_3_deep"]["id"]  # rebuilt
    assert seen["test_2_parameters"]["id"] == seen["test_1_parameters"]["id"]  # set back in place
    assert seen["test_2_parameters"]["names"] == seen["test_1_parameters"]["names"]
    result.stdout.fnmatch_lines_random(
        [
            "isolation repaired after test_generation.py::test_1_generation: Qwen3ForCausalLM: changed attribute generation_config "
            "of the model, config; dropped, the next test gets a rebuild",
            "isolation repaired after test_generation.py::test_3_deep: Qwen3ForCausalLM: cannot compare attribute deep of "
            "model.layers.0.mlp (nested deeper than 100 levels); dropped, the next test gets a rebuild",
            "isolation repaired after test_parameters.py::test_1_parameters: Qwen3ForCausalLM: do_model_average of tensor "
            "model.norm.weight, is_distributed of tensor model.norm.weight, name of tensor model.norm.weight and * more set back as built",
        ]
    )


LOCKED = """
import pytest

locked = pytest.mark.dummy_load({"name": "l", "width": 4, "depth": 2}, model="cache_support:LockedTiny")

@locked
def test_first(dummy_model, record):
    record(dummy_model)

@locked
def test_second(dummy_model, record):
    record(dummy_model)
"""


def test_a_model_whose_state_cannot_be_compared_is_never_kept(inner, tmp_path: Path) -> None:
    """A lock has no state to compare: whatever a test did to it, the next test cannot be promised a fresh one."""
    from cache_support import read_log, summary_counts, summary_section, write_conftest

    write_conftest(inner, tmp_path / "logs")
    inner.write("test_locked.py", LOCKED)
    result = inner.run("-p", "xdist", "-n", "1", subprocess=True)
    result.assert_outcomes(passed=2)
    first, second = read_log(tmp_path / "logs", "seen")
    assert first["id"] != second["id"] and first["digest"] == second["digest"]
    lines = summary_section(result.outlines)
    assert summary_counts(lines)["built"] == 2
    for test in ("test_first", "test_second"):
        assert (
            f"isolation repaired after test_locked.py::{test}: LockedTiny: cannot compare attribute lock of the model "
            "(a lock cannot be compared by value); dropped, the next test gets a rebuild"
        ) in lines
