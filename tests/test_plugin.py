"""The plugin as users load and use it: real pytest sessions with ``-p dummyweights`` and autoloading off."""

from __future__ import annotations

import json

import pytest
from engine_models import SHRINK, zoo_config

HEADER = """
    import json
    import paddle
    import pytest
    from pytest_dummyweights import DummySpec
    from engine_models import CONFIGS, ENGINE, SHRINK, ZOO, zoo_config
    from engine_models.layers import EngineModel, make_engine_model
    """

MARKERS = (
    HEADER
    + """
    pytestmark = pytest.mark.dummy_load(zoo_config("module"), model=ZOO)

    def test_module_marker(dummy_model):
        assert dummy_model.config.tag == "module"

    @pytest.mark.dummy_load(zoo_config("function"), model=ZOO)
    def test_function_marker_beats_module(dummy_model):
        assert dummy_model.config.tag == "function"

    @pytest.mark.dummy_load(zoo_config("class"), model=ZOO)
    class TestClass:
        def test_class_marker_beats_module(self, dummy_model):
            assert dummy_model.config.tag == "class"

        @pytest.mark.dummy_load(zoo_config("method"), model=ZOO)
        def test_method_marker_beats_class(self, dummy_model):
            assert dummy_model.config.tag == "method"

    def test_plugin_registered_under_its_name(request):
        assert request.config.pluginmanager.has_plugin("dummyweights")
    """
)

RELATIVE = (
    HEADER
    + """
    def where(config, expected_tag, name):
        return pytest.param(expected_tag, marks=pytest.mark.dummy_load(config, model=ZOO), id=name)

    @pytest.mark.parametrize("expected_tag", [
        where("beside", "sub/beside", "beside-the-test-file"),
        where("at_root", "at_root", "rootdir-when-not-beside"),
        where("both", "sub/both", "test-dir-before-rootdir"),
        where("beside/config.json", "sub/beside", "json-file"),
    ])
    def test_relative_config(dummy_model, expected_tag):
        assert dummy_model.config.tag == expected_tag
    """
)


def write_relative_configs(inner) -> None:
    for relative in ("sub/beside", "at_root", "sub/both", "both"):
        inner.config_dir(relative, zoo_config(relative))
    inner.write("sub/test_relative.py", RELATIVE)


def test_loads_with_autoload_off_markers_nearest_wins_and_relative_paths(inner):
    inner.write("test_markers.py", MARKERS)
    write_relative_configs(inner)
    result = inner.run("--strict-markers", "-v", subprocess=True)
    result.assert_outcomes(passed=9)
    result.stdout.fnmatch_lines(["*test_relative_config?test-dir-before-rootdir? PASSED*", "*test_function_marker_beats_module PASSED*"])


def test_without_the_plugin_marker_and_fixture_are_unknown(inner):
    """In a subprocess: in-process sessions share pytest's global marker cache."""
    inner.write("test_markers.py", "import pytest\n\n@pytest.mark.dummy_load({})\ndef test_marked():\n    pass\n")
    inner.write("test_fixture.py", "def test_uses_fixture(dummy_model):\n    pass\n")
    result = inner.run("--strict-markers", "--continue-on-collection-errors", plugin=False, subprocess=True)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*'dummy_load' not found in `markers` configuration option*", "*fixture 'dummy_model' not found*"])


def test_no_dummyweights_disables_the_autoloaded_plugin(inner, monkeypatch):
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    inner.write(
        "test_fixture.py",
        """
        def test_uses_fixture(dummy_model):
            pass

        def test_not_registered(request):
            assert not request.config.pluginmanager.has_plugin("dummyweights")
        """,
    )
    enabled = inner.run("-p", "no:xdist", "-p", "no:randomly", plugin=False, subprocess=True)
    enabled.stdout.fnmatch_lines(["*dummy_model needs @pytest.mark.dummy_load*"])  # autoloaded: fixture exists
    disabled = inner.run("-p", "no:dummyweights", plugin=False, subprocess=True)
    disabled.assert_outcomes(passed=1, errors=1)
    disabled.stdout.fnmatch_lines(["*fixture 'dummy_model' not found*"])


def test_help_fixtures_and_markers_are_documented(inner):
    help_text = inner.run("--help").stdout.lines
    start = next(i for i, line in enumerate(help_text) if line.startswith("dummy weights for Paddle models"))
    group = help_text[start : help_text.index("", start)]
    assert any("--dummy-seed" in line for line in group) and any("--dummy-device" in line for line in group)
    assert any("dummyweights_seed" in line for line in help_text)
    assert any("dummyweights_device" in line for line in help_text)
    inner.run("--fixtures").stdout.fnmatch_lines(["dummy_model*", "*real model class built*", "dummy_model_factory*"])
    inner.run("--markers").stdout.fnmatch_lines(["@pytest.mark.dummy_load(config, *dtype=None*"])


@pytest.mark.paddleformers
def test_indirect_parametrization_factory_and_model_forms(inner):
    name, overrides = "qwen3", SHRINK["qwen3"][1]
    tiny = {**json.loads((SHRINK[name][0] / "config.json").read_text()), **overrides}
    inner.config_dir("tiny_qwen3", tiny)
    inner.write(
        "test_use.py",
        HEADER,
        """
        QWEN3 = DummySpec(SHRINK["qwen3"][0], overrides=SHRINK["qwen3"][1])

        @pytest.mark.parametrize("dummy_model", ["tiny_qwen3", QWEN3], indirect=True, ids=["path", "spec"])
        def test_indirect(dummy_model):
            assert type(dummy_model).__name__ == "Qwen3ForCausalLM"
            assert not dummy_model.training

        @pytest.mark.parametrize("dummy_model", [DummySpec(zoo_config("spec"), model=ZOO, seed=3)], indirect=True)
        def test_indirect_spec_keywords(dummy_model):
            assert dummy_model.config.tag == "spec"

        def test_factory_builds_two_models(dummy_model_factory):
            qwen = dummy_model_factory(SHRINK["qwen3"][0], overrides=SHRINK["qwen3"][1])
            engine = dummy_model_factory(config=engine_config(), model=ENGINE)
            assert type(qwen).__name__ == "Qwen3ForCausalLM" and isinstance(engine, EngineModel)

        def engine_config():
            from engine_models.layers import ENGINE_CONFIG
            return ENGINE_CONFIG

        @pytest.mark.parametrize("model", [ENGINE, EngineModel, make_engine_model], ids=["reference", "class", "factory"])
        def test_model_keyword(dummy_model_factory, model):
            built = dummy_model_factory(engine_config(), model=model)
            assert isinstance(built, EngineModel)
            assert bool(paddle.isfinite(built(paddle.to_tensor([[1, 2, 3]]))).all())
        """,
    )
    result = inner.run("-v")
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(["*test_indirect?path? PASSED*", "*test_model_keyword?factory? PASSED*"])


HOOKS_CONFTEST = """
    import json, os
    from engine_models.layers import ParamZoo

    def pytest_dummyweights_resolve_model(model_config, spec):
        with open("resolve.log", "a") as log:
            log.write(getattr(model_config, "model_type", "?") + "\\n")
        return ParamZoo if model_config.model_type == "param_zoo" else None

    def pytest_dummyweights_post_process(model, model_config, spec):
        quant = getattr(model, "quant", None)
        with open("post.log", "a") as log:
            log.write(json.dumps({
                "model": type(model).__name__,
                "config": type(model_config).__name__,
                "tag": getattr(model_config, "tag", None),
                "seed": spec.seed,
                "training": model.training,
                "quant_done": len(quant.quant_method.seen) if quant is not None else None,
            }) + "\\n")
    """


@pytest.mark.paddleformers
def test_hooks_resolve_then_post_process_once(inner):
    inner.write("conftest.py", HOOKS_CONFTEST)
    inner.write(
        "test_hooks.py",
        HEADER,
        """
        @pytest.mark.dummy_load(zoo_config("hooked"), seed=5)
        def test_hook_resolves(dummy_model):
            assert type(dummy_model).__name__ == "ParamZoo" and dummy_model.config.tag == "hooked"

        @pytest.mark.dummy_load(SHRINK["qwen3"][0], overrides=SHRINK["qwen3"][1])
        def test_hook_passes_to_paddleformers(dummy_model):
            assert type(dummy_model).__name__ == "Qwen3ForCausalLM"

        @pytest.mark.dummy_load(dict(model_type="param_zoo", hidden_size=32, vocab_size=64, num_heads=2, kv_lora_rank=16,
                                     qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8), model=ENGINE)
        def test_model_keyword_wins_over_hook(dummy_model):
            assert type(dummy_model).__name__ == "EngineModel"
        """,
    )
    result = inner.run("-v")
    result.assert_outcomes(passed=3)
    assert (inner.path / "resolve.log").read_text().split() == ["param_zoo", "qwen3"]  # not asked when model= is given
    calls = [json.loads(line) for line in (inner.path / "post.log").read_text().splitlines()]
    assert calls == [
        {"model": "ParamZoo", "config": "PlainConfig", "tag": "hooked", "seed": 5, "training": True, "quant_done": None},
        {"model": "Qwen3ForCausalLM", "config": "Qwen3Config", "tag": None, "seed": 0, "training": True, "quant_done": None},
        {"model": "EngineModel", "config": "PlainConfig", "tag": None, "seed": 0, "training": True, "quant_done": 1},
    ]


@pytest.mark.paddleformers
def test_auto_map_is_never_imported(inner):
    published = json.loads((SHRINK["qwen3"][0] / "config.json").read_text())
    auto_map = {"AutoConfig": "configuration_evil.EvilConfig", "AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    inner.config_dir("evil", {**published, **SHRINK["qwen3"][1], "auto_map": auto_map})
    inner.config_dir("evil_only", {**published, **SHRINK["qwen3"][1], "auto_map": auto_map, "architectures": ["EvilForCausalLM"]})
    for module in ("configuration_evil", "modeling_evil"):
        code = (
            f"import pathlib; pathlib.Path({str(inner.path / 'IMPORTED')!r}).write_text({module!r})\n"
            "class EvilConfig: pass\nclass EvilForCausalLM: pass\n"
        )
        for where in ("evil", "evil_only", "."):  # beside the config, and on sys.path (the test's dir)
            inner.write(f"{where}/{module}.py", code)
    inner.write(
        "test_evil.py",
        HEADER,
        """
        @pytest.mark.dummy_load("evil")
        def test_builds_the_paddleformers_class(dummy_model):
            assert type(dummy_model).__name__ == "Qwen3ForCausalLM"

        @pytest.mark.dummy_load("evil_only")
        def test_auto_map_only_is_unresolved(dummy_model):
            pass
        """,
    )
    result = inner.run("-v")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*no model class found for 'EvilForCausalLM'*"])
    assert not (inner.path / "IMPORTED").exists()


SCOPED_CONFTEST = """
    import paddleformers.transformers as transformers

    def pytest_dummyweights_resolve_model(model_config, spec):
        return transformers.{model_class}

    def pytest_dummyweights_post_process(model, model_config, spec):
        model.processed_by = (*getattr(model, "processed_by", ()), {directory!r})
    """

SCOPED_TESTS = """
    import pytest
    from engine_models import SHRINK

    QWEN3, TINY = str(SHRINK["qwen3"][0]), SHRINK["qwen3"][1]

    @pytest.mark.dummy_load(QWEN3, overrides=TINY)
    def test_resolved_by_this_directory(dummy_model):
        assert (type(dummy_model).__name__, dummy_model.processed_by) == ({model_class!r}, ({directory!r},))

    @pytest.mark.dummy_load(QWEN3, overrides=TINY, model="paddleformers.transformers:Qwen3Model")
    def test_same_class_post_processed_by_this_directory(dummy_model):
        assert (type(dummy_model).__name__, dummy_model.processed_by) == ("Qwen3Model", ({directory!r},))
    """


@pytest.mark.paddleformers  # real Qwen3 classes
@pytest.mark.parametrize("workers", [(), ("-p", "xdist", "-n", "2")], ids=["one-process", "xdist"])
def test_hooks_apply_to_the_tests_under_their_conftest_only(inner, workers):
    """Two directories resolve one config to different classes and post-process differently; one directory's
    models are never served to the other's tests, even when the class and the config are the same."""
    for directory, model_class in (("a", "Qwen3ForCausalLM"), ("b", "Qwen3Model")):
        inner.write(f"{directory}/conftest.py", SCOPED_CONFTEST.format(directory=directory, model_class=model_class))
        inner.write(f"{directory}/test_{directory}.py", SCOPED_TESTS.format(directory=directory, model_class=model_class))
    result = inner.run("-v", *workers, subprocess=bool(workers))
    result.assert_outcomes(passed=4)
