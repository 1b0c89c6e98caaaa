"""Property: whatever a user passes (overrides, marker arguments, config documents), the build gives a model or one
``DummyWeightsError`` line naming the cause; never another exception type from the plugin."""

from __future__ import annotations

import json
import math

import numpy as np
import paddle
from engine_models import SHRINK
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    """"model" or the error line; anything else propagates and fails the property."""
    try:
        result = build(make_spec(), search_dirs=search_dirs)
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
        st.sampled_from(["dtype", "seed", "std", "device", "fresh", "new_keys", "model", "overrides", "dtypes", "smoke", "scales", "shrink"]),
        st.one_of(
            values,
            st.sampled_from(["bfloat16", "float32", "cpu", "gpu:7", "auto", "neutral", "x.y:Z", "engine_models.layers:ParamZoo"]),
            st.sampled_from([np.int64(3), np.float32(0.5), 1e39, float("inf"), -0.0]),
        ),
        max_size=3,
    ),
    positional=st.lists(st.one_of(st.just(str(QWEN3_DIR)), values), max_size=2),
)
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
