"""Nothing left unset: a derived weight that post-processing forgot fails the build, naming sublayer and attribute."""

from __future__ import annotations

import paddle
import pytest
from engine_models import zoo_config
from engine_models.layers import ParamZoo
from engine_models.quant_models import FP8_CONFIG, Fp8EngineModel

from pytest_dummyweights import DummySpec, DummyWeightsError
from pytest_dummyweights._building.config import make_model_config
from pytest_dummyweights._building.construct import construct
from pytest_dummyweights._building.pipeline import build
from pytest_dummyweights._building.unset import check_nothing_unset

FORGETFUL = {**FP8_CONFIG, "forget_derived": "down_proj"}


class Placeholders(paddle.nn.Layer):
    """None placeholders of every kind: a plain attribute, a registered parameter slot, a buffer slot, and names that are not weights."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = paddle.nn.Linear(2, 2)
        self.inner.w_kc_weight = None
        self.k_scale = self.create_parameter([], dtype="float32")
        self.k_scale = None  # keeps its slot in the parameter table
        self.register_buffer("v_scale_inv", None)
        self.bias_term = None  # not a weight name
        self.cache = None


def test_the_build_fails_naming_the_sublayer_and_attribute():
    with pytest.raises(DummyWeightsError) as raised:
        build(DummySpec(FORGETFUL, model=Fp8EngineModel))
    assert str(raised.value) == (
        "weights left unset (None) after post-processing, which a checkpoint loader would fill: "
        "sublayer 'down_proj' (UE8M0Linear): dequant_weight; derive them in process_weights_after_loading or a "
        "pytest_dummyweights_post_process hook, or, if the model leaves them None on purpose, allow_unset=['down_proj.dequant_weight']"
    )
    build(DummySpec(FP8_CONFIG, model=Fp8EngineModel))  # the same model that derives it builds


def test_every_kind_of_placeholder_is_found_and_the_allow_list_takes_patterns():
    model = Placeholders()
    with pytest.raises(
        DummyWeightsError, match=r"fill: the model \(Placeholders\): k_scale, v_scale_inv; sublayer 'inner' \(Linear\): w_kc_weight; "
    ):
        check_nothing_unset(model)
    with pytest.raises(DummyWeightsError, match=r"the model \(Placeholders\): v_scale_inv; .*allow_unset=\['v_scale_inv'\]$"):
        check_nothing_unset(model, allow=["inner.w_kc_weight", "k_scale"])
    check_nothing_unset(model, allow=["*_weight", "*scale*"])


def test_parameters_without_storage_are_named():
    params = {"a": ("float32", [2]), "b": ("int8", [3]), "empty": ("float32", [0, 4])}  # an empty one has no storage to give
    model = construct(ParamZoo, make_model_config(zoo_config(**params)), "float32")  # never filled
    with pytest.raises(DummyWeightsError, match=r"^parameters without storage after post-processing: a, b; "):
        check_nothing_unset(model)
    check_nothing_unset(model, allow=["a", "b"])


def test_setup_fails_with_one_clean_line_and_allow_unset_lets_it_build(inner):
    inner.write(
        "test_unset_session.py",
        """
        import pytest
        from engine_models.quant_models import FP8_CONFIG, FP8_MODEL

        FORGETFUL = {**FP8_CONFIG, "forget_derived": "down_proj"}

        @pytest.mark.dummy_load(FORGETFUL, model=FP8_MODEL)
        def test_forgotten(dummy_model):
            pass

        @pytest.mark.dummy_load(FORGETFUL, model=FP8_MODEL, allow_unset=["down_proj.dequant_weight"])
        def test_allowed(dummy_model):
            assert dummy_model.down_proj.dequant_weight is None

        @pytest.mark.dummy_load(FORGETFUL, model=FP8_MODEL, allow_unset="down_proj.dequant_weight")
        def test_allow_list_is_not_a_string(dummy_model):
            pass
        """,
    )
    result = inner.run()
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "test_unset_session.py::test_forgotten: dummy build of config '<dict>' failed: weights left unset (None) after "
            "post-processing, which a checkpoint loader would fill: sublayer 'down_proj' (UE8M0Linear): dequant_weight; *",
            "*test_allow_list_is_not_a_string: dummy build of config '<dict>' failed: allow_unset must be a collection of name patterns*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*unset.py*")
