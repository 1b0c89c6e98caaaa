"""The dummy values: deterministic across processes and build orders, normal with the right std
(with no visible repetition past the value store's slot area), the exact dtype rules, and the seed/std defaults."""

from __future__ import annotations

import json

import numpy as np
import paddle
import pytest
from engine_models import SHRINK, ZOO_PARAMS, zoo_config
from engine_models.layers import ParamZoo, parameter_digests

from pytest_dummyweights import build_dummy_model, initialize_dummy_weights
from pytest_dummyweights._values import store

FLOATS = ("float16", "bfloat16", "float32", "float64")


def as_float64(param: paddle.Tensor) -> np.ndarray:
    wide = param.astype("float32") if param.dtype != paddle.float64 else param
    return wide.numpy().astype(np.float64).ravel()


def build_zoo(std: float | None = None, seed: int = 0, **params) -> ParamZoo:
    return build_dummy_model(zoo_config(**params), model=ParamZoo, std=std, seed=seed)


DETERMINISM = """
    import json
    import pytest
    from pytest_dummyweights import DummySpec
    from engine_models import SHRINK, ZOO, ZOO_PARAMS, zoo_config
    from engine_models.layers import parameter_digests

    SPECS = {
        "qwen3": DummySpec(SHRINK["qwen3"][0], overrides=SHRINK["qwen3"][1]),
        "zoo": DummySpec(zoo_config(**ZOO_PARAMS), model=ZOO),
    }

    @pytest.mark.parametrize("dummy_model", list(SPECS.values()), indirect=True, ids=list(SPECS))
    def test_dump(dummy_model, request):
        with open(f"{request.node.callspec.id}.json", "w") as out:
            json.dump(parameter_digests(dummy_model), out)
    """


@pytest.mark.paddleformers
def test_two_processes_and_any_build_order_give_bit_identical_parameters(inner):
    """A fresh process builds qwen3 then the zoo; this one (pools warm from other tests) the reverse."""
    inner.write("test_determinism.py", DETERMINISM)
    inner.run(subprocess=True).assert_outcomes(passed=2)
    there = {name: json.loads((inner.path / f"{name}.json").read_text()) for name in ("zoo", "qwen3")}
    here = {
        "zoo": parameter_digests(build_zoo(**ZOO_PARAMS)),
        "qwen3": parameter_digests(build_dummy_model(SHRINK["qwen3"][0], overrides=SHRINK["qwen3"][1])),
    }
    assert here == there
    assert len(here["qwen3"]) > 10 and len(here["zoo"]) == len(ZOO_PARAMS)
    other_seed = parameter_digests(build_zoo(seed=1, **ZOO_PARAMS))  # the digests do tell values apart
    assert all(other_seed[name] != digest for name, digest in here["zoo"].items())


def test_large_parameter_is_normal_with_no_visible_repetition():
    store_elements = store.SLOT_AREA_BYTES // 4
    rows = store_elements // store.CHUNK + 8  # more elements than the store's slot area holds, in chunk-sized rows
    std = 0.05
    values = as_float64(build_zoo(std=std, big=("float32", [rows, store.CHUNK])).big)
    assert values.size > store_elements
    assert abs(values.mean()) < 0.002 * std
    assert values.std() == pytest.approx(std, rel=0.005)
    assert np.mean(np.abs(values) > 3 * std) == pytest.approx(0.0027, abs=0.0005)  # normal tails, not uniform

    def autocorrelation(lag: int) -> float:
        return float(np.dot(values[:-lag], values[lag:]) / (values.size - lag) / values.var())

    for lag in (1, store.CHUNK, store.POOL_SIZE, store.WINDOW_BYTES // 4, store_elements):
        assert abs(autocorrelation(lag)) < 0.01, lag
    table = values.reshape(rows, store.CHUNK)
    assert len({row.tobytes() for row in table}) == rows
    assert len({np.abs(row).tobytes() for row in table}) == rows  # not even up to sign


def test_dtype_rules():
    floats = {f"w_{dtype}": (dtype, [64, 1024]) for dtype in FLOATS}
    float8 = {f"w_{dtype}": (dtype, [64, 1024]) for dtype in ("float8_e4m3fn", "float8_e5m2")}
    others = {f"w_{dtype}": (dtype, [16, 8]) for dtype in ("int8", "int32", "int64", "uint8", "bool")}
    empty = {"empty_float32": ("float32", [0, 8]), "empty_float8": ("float8_e4m3fn", [8, 0]), "empty_int8": ("int8", [0])}
    model = build_zoo(**floats, **float8, **others, **empty)
    parameters = dict(model.named_parameters())
    assert set(parameters) == {*floats, *float8, *others, *empty}
    for name, (dtype, shape) in {**floats, **float8, **others, **empty}.items():
        assert parameters[name].dtype == getattr(paddle, dtype) and list(parameters[name].shape) == shape, name
    for name in floats:
        values = as_float64(parameters[name])
        assert abs(values.mean()) < 0.0005 and values.std() == pytest.approx(0.02, rel=0.02), name
        assert np.count_nonzero(values) > 0.99 * values.size
    for name in float8:  # coarse, but normal-ish: through copy_ from wider floats
        values = as_float64(parameters[name])
        assert np.isfinite(values).all() and abs(values.mean()) < 0.001, name
        assert values.std() == pytest.approx(0.02, rel=0.1) and len(np.unique(values)) > 20, name
    for name in others:
        assert not np.any(parameters[name].numpy()), name


def test_std_defaults_to_the_configs_initializer_range():
    def std_of(config: dict, **keywords) -> float:
        return float(as_float64(build_dummy_model(config, model=ParamZoo, **keywords).w).std())

    big = zoo_config(w=("float32", [256, 256]))
    assert std_of({**big, "initializer_range": 0.3}) == pytest.approx(0.3, rel=0.02)
    assert std_of({**big, "initializer_range": 0.3}, std=0.1) == pytest.approx(0.1, rel=0.02)
    assert std_of(big) == pytest.approx(0.02, rel=0.02)


SEEDS = """
    import os
    import pytest
    from pytest_dummyweights import build_dummy_model
    from engine_models import ZOO, zoo_config
    from engine_models.layers import tensor_digest

    CONFIG = zoo_config("seed")

    def digest_for(seed):
        return tensor_digest(build_dummy_model(CONFIG, model=ZOO, seed=seed).w)

    @pytest.mark.dummy_load(CONFIG, model=ZOO)
    def test_run_default(dummy_model):
        assert tensor_digest(dummy_model.w) == digest_for(int(os.environ["EXPECTED_SEED"]))

    @pytest.mark.dummy_load(CONFIG, model=ZOO, seed=7)
    def test_marker_beats_option_and_ini(dummy_model):
        assert tensor_digest(dummy_model.w) == digest_for(7)

    def test_seeds_differ():
        assert len({digest_for(seed) for seed in (0, 3, 5, 7)}) == 4
    """


@pytest.mark.parametrize(
    ("ini_seed", "option", "expected"),
    [(None, None, 0), ("3", None, 3), ("3", "5", 5)],
    ids=["default-0", "ini", "option-beats-ini"],
)
def test_seed_precedence(inner, monkeypatch, ini_seed, option, expected):
    inner.write("test_seeds.py", SEEDS)
    if ini_seed is not None:
        inner.pytester.makeini(f"[pytest]\ndummyweights_seed = {ini_seed}\n")
    monkeypatch.setenv("EXPECTED_SEED", str(expected))
    inner.run(*(("--dummy-seed", option) if option else ())).assert_outcomes(passed=3)


def test_initialize_dummy_weights_overwrites_an_eagerly_built_model():
    """The public API outside the build: whatever the layers' own initializers drew is replaced."""
    first, second = paddle.nn.Linear(64, 64), paddle.nn.Linear(64, 64)
    assert not np.array_equal(first.weight.numpy(), second.weight.numpy())
    for layer in (first, second):
        initialize_dummy_weights(layer, seed=1, std=0.1)
    for name in ("weight", "bias"):
        np.testing.assert_array_equal(getattr(first, name).numpy(), getattr(second, name).numpy())
    assert float(first.weight.std()) == pytest.approx(0.1, rel=0.05) and float(first.bias.abs().max()) > 0


@pytest.mark.paddleformers
def test_bfloat16_build_on_cpu():
    config, overrides = SHRINK["qwen3"]
    model = build_dummy_model(config, overrides=overrides, dtype="bfloat16")
    assert {param.dtype for param in model.parameters()} == {paddle.bfloat16}
    assert as_float64(model.lm_head.weight).std() == pytest.approx(0.02, rel=0.05)
