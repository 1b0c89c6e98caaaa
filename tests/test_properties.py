"""Properties: whatever a user passes (overrides, marker arguments, config documents), the build gives a model or one
``DummyWeightsError`` line naming the cause, never another exception type from the plugin; and whatever a test does
to a cached model (values, parameter attributes, configs, new attributes, mode, hooks, ...), the next test's model
equals a fresh build, bit for bit and in its Python state."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import paddle
import pytest
from cache_support import view_of
from engine_models import SHRINK
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pytest_dummyweights._building.context import BuildContext
from pytest_dummyweights._building.pipeline import build
from pytest_dummyweights.errors import DummyWeightsError
from pytest_dummyweights.spec import spec_from_call

QWEN3_DIR, TINY = SHRINK["qwen3"]
PUBLISHED = json.loads((QWEN3_DIR / "config.json").read_text())
SMALL_KEYS = ("num_hidden_layers", "hidden_size", "intermediate_size", "head_dim", "num_attention_heads", "num_key_value_heads")

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 6),
    st.sampled_from([10**12, -(10**12), 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(0, 3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
# keys that only change values, plus sizes kept small (a huge size is a real model, not bad input), plus unknown keys
override_keys = st.sampled_from(["rms_norm_eps", "rope_theta", "tie_word_embeddings", "architectures", "torch_dtype", "initializer_range"])


def outcome(make_spec, search_dirs=()) -> str:
    """ "model" or the error line; anything else propagates and fails the property."""
    try:
        result = build(make_spec(), BuildContext(search_dirs=search_dirs))
    except DummyWeightsError as error:
        message = str(error)
        assert message and "\n" not in message, message
        assert "Traceback" not in message
        return message
    assert isinstance(result.model, paddle.nn.Layer)
    assert all(math.isfinite(float(p.astype("float32").abs().max())) for p in result.model.parameters() if p.size)
    return "model"


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(
    overrides=st.dictionaries(override_keys | st.text(min_size=1, max_size=6), values, max_size=3),
    sizes=st.dictionaries(st.sampled_from(SMALL_KEYS), st.one_of(st.integers(-2, 4).map(lambda n: n * 16), values), max_size=2),
)
def test_any_overrides_give_a_model_or_one_error_line(overrides, sizes) -> None:
    everything = {**TINY, **sizes, **overrides}
    outcome(lambda: spec_from_call((QWEN3_DIR,), {"overrides": everything, "device": "cpu"}, "dummy_load"))


@PROPERTY
@given(
    keywords=st.dictionaries(
        st.sampled_from(
            ["dtype", "seed", "std", "device", "fresh", "new_keys", "model", "overrides", "dtypes", "smoke", "scales", "shrink"]
        ),
        st.one_of(
            values,
            st.sampled_from(["bfloat16", "float32", "cpu", "gpu:7", "auto", "neutral", "x.y:Z", "engine_models.layers:ParamZoo"]),
            st.sampled_from([np.int64(3), np.float32(0.5), 1e39, float("inf"), -0.0]),
        ),
        max_size=3,
    ),
    positional=st.lists(st.one_of(st.just(str(QWEN3_DIR)), values), max_size=2),
)
@example(keywords={}, positional=["\n"])  # a path with a newline, named in the one-line "not found" message
def test_any_marker_arguments_give_a_model_or_one_error_line(keywords, positional) -> None:
    keywords = {**keywords, "overrides": TINY} if "overrides" not in keywords else keywords
    outcome(lambda: spec_from_call(tuple(positional), keywords, "dummy_load"))


@PROPERTY
@given(
    document=st.one_of(
        st.binary(max_size=40),
        st.text(max_size=40).map(str.encode),
        st.dictionaries(
            st.sampled_from(["model_type", "architectures", "vocab_size", "initializer_range", "ünïcødé"]), values, max_size=4
        ).map(lambda extra: json.dumps({**PUBLISHED, **TINY, **extra}).encode()),
        st.sampled_from([b"[]", b"3", b'"qwen3"', b"null", b"{}"]),
    )
)
def test_any_config_document_gives_a_model_or_one_error_line(tmp_path_factory, document) -> None:
    folder = tmp_path_factory.mktemp("config")
    (folder / "config.json").write_bytes(document)
    outcome(lambda: spec_from_call((folder,), {"device": "cpu"}, "dummy_load"))


# --- whatever a test does to a cached model, the next test gets a fresh one --------------------------

MUTATING_TESTS = """
import threading
from math import inf, nan  # the steps' repr may hold them

import paddle
import pytest

from cache_support import save_view
from pytest_dummyweights._runtime.private_paddle import host_view

STEPS = {steps!r}
qwen3 = pytest.mark.dummy_load({config!r}, overrides={overrides!r})

def nested(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value

VALUES = {{"lock": threading.Lock, "deep": lambda: nested(5000), "decay": lambda: paddle.regularizer.L2Decay(0.5)}}

def made(value):
    return VALUES[value]() if isinstance(value, str) and value in VALUES else value

def apply(model, kind, index, value):
    names = [name for name, _ in model.named_parameters()]
    param = dict(model.named_parameters())[names[index % len(names)]]
    layer = model.sublayers(include_self=True)[index % len(model.sublayers(include_self=True))]
    if kind == "set_value":
        param.set_value(paddle.full_like(param, value))
    elif kind == "scale_":
        with paddle.no_grad():
            param.scale_(value)
    elif kind == "flip_bit":
        host_view(param)[value % param.size] ^= 1
    elif kind == "optimizer_step":
        model.train()
        optimizer = paddle.optimizer.SGD(learning_rate=value, parameters=model.parameters())
        model(paddle.to_tensor([[1, 2, 3, 4]]))[0].astype("float32").sum().backward()
        optimizer.step()
    elif kind == "parameter_attribute":
        setattr(param, value[0], made(value[1]))
    elif kind == "parameter_attribute_deleted" and value in vars(param):
        delattr(param, value)
    elif kind == "optimize_attr":
        param.optimize_attr["learning_rate"] = value
    elif kind in ("config", "generation_config"):
        setattr(getattr(model, kind), value[0], made(value[1]))
    elif kind == "config_list":
        model.config.layer_types.append(value)
    elif kind == "attribute":
        setattr(layer, value[0], made(value[1]))
    elif kind == "train":
        layer.train()
    elif kind == "hook":
        layer.register_forward_post_hook(lambda layer, inputs, output: output)
    elif kind == "buffer":
        layer.register_buffer("left_behind", paddle.ones([2]))

@qwen3
def test_1_mutates(dummy_model):
    save_view(dummy_model, "before")
    for step in STEPS:
        apply(dummy_model, *step)

@qwen3
def test_2_next(dummy_model):
    save_view(dummy_model, "after")
"""
QWEN3_CONFIG, QWEN3_OVERRIDES = SHRINK["qwen3"]
plain = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True), st.text(max_size=4), st.lists(st.integers(0, 3), max_size=2)
)
odd = st.sampled_from(["lock", "deep", "decay"])  # made inside the test: an object with no comparable state, 5,000 levels, a regularizer
index = st.integers(0, 1000)
FLAGS = ["need_clip", "do_model_average", "is_distributed", "trainable", "stop_gradient"]
steps = st.one_of(
    st.tuples(st.just("set_value"), index, st.floats(-2, 2)),
    st.tuples(st.just("scale_"), index, st.floats(-2, 2)),
    st.tuples(st.just("flip_bit"), index, st.integers(0, 10**6)),
    st.tuples(st.just("optimizer_step"), index, st.floats(0.001, 1)),
    st.tuples(st.just("parameter_attribute"), index, st.tuples(st.sampled_from(FLAGS), st.booleans())),
    st.tuples(st.just("parameter_attribute"), index, st.tuples(st.just("name"), st.text(min_size=1, max_size=4))),
    st.tuples(st.just("parameter_attribute"), index, st.tuples(st.sampled_from(["regularizer", "note"]), plain | odd)),
    st.tuples(st.just("parameter_attribute_deleted"), index, st.sampled_from(["need_clip", "optimize_attr", "regularizer"])),
    st.tuples(st.just("optimize_attr"), index, st.floats(0, 1)),
    st.tuples(st.just("config"), index, st.tuples(st.sampled_from(["rms_norm_eps", "rope_theta", "tie_word_embeddings", "note"]), plain)),
    st.tuples(st.just("generation_config"), index, st.tuples(st.sampled_from(["max_length", "eos_token_id", "note"]), plain | odd)),
    st.tuples(st.just("config_list"), index, st.text(max_size=4)),
    st.tuples(st.just("attribute"), index, st.tuples(st.sampled_from(["note", "scaling", "hidden_size", "_dtype"]), plain | odd)),
    st.tuples(st.sampled_from(["train", "hook", "buffer"]), index, st.none()),
)


@pytest.mark.paddleformers
def test_whatever_a_test_does_to_a_cached_model_the_next_test_gets_a_fresh_one(inner, tmp_path: Path) -> None:
    records = tmp_path / "records"
    records.mkdir()
    inner.monkeypatch.setenv("ISOLATION_RECORDS", str(records))
    fresh = view_of(build(spec_from_call((QWEN3_CONFIG,), {"overrides": QWEN3_OVERRIDES, "device": "cpu"}, "dummy_load")).model)

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutations=st.lists(steps, min_size=1, max_size=4))
    @example(mutations=[("parameter_attribute_deleted", 0, "need_clip"), ("parameter_attribute", 0, ("need_clip", True))])  # order only
    def the_next_test_gets_a_fresh_model(mutations) -> None:
        inner.write("test_mutations.py", MUTATING_TESTS.format(steps=mutations, config=str(QWEN3_CONFIG), overrides=QWEN3_OVERRIDES))
        result = inner.run("-q", "-rA")
        # never a teardown error; the mutating test itself may fail (a step can break the forward pass a later step runs)
        assert "errors" not in result.parseoutcomes(), result.stdout.str()
        result.stdout.fnmatch_lines(["PASSED test_mutations.py::test_2_next"])
        before, after = (json.loads((records / f"{name}.json").read_text()) for name in ("before", "after"))
        for view in (before, after):
            assert (view["digest"], view["python"], view["training"], view["grads"]) == (fresh["digest"], fresh["python"], False, False)
        assert after["id"] != before["id"] or after["names"] == before["names"]  # kept: names exactly as built

    the_next_test_gets_a_fresh_model()
