"""The checkpoint contract through pytest: ``checkpoint=`` checks a model at setup, loads an engine model
through its own ``load_weights``, and ``--real-weights`` runs the same test file on the checkpoint's real weights."""

from __future__ import annotations

import json
import re
import shutil
import types
from pathlib import Path

import paddle
import pytest
from engine_models.checkpoint_models import CHECKPOINT_CONFIG, EngineCheckpointModel, checkpoint_tensors
from engine_models.checkpoints import corrupted_copy, edit_header, raw_shard, saved_checkpoint
from safetensors.paddle import save_file

from pytest_dummyweights import DummySpec
from pytest_dummyweights._building.pipeline import build
from pytest_dummyweights._checkpoints.loader_feed import dummy_tensor
from pytest_dummyweights._checkpoints.manifest import FORMAT_VERSION, MANIFEST_KIND, TensorEntry, load_manifest
from pytest_dummyweights.errors import DummyWeightsError
from pytest_dummyweights.vocabulary import human_bytes

REAL_SEED = 7  # the checkpoints' values: not those of a dummy build (seed 0)

BOTH_MODES = """
    import numpy as np
    import paddle
    import pytest
    from safetensors import safe_open

    from engine_models import SHRINK
    from engine_models.checkpoint_models import CHECKPOINT_CONFIG, EngineCheckpointModel
    from pytest_dummyweights._checkpoints.loader_feed import dummy_tensor
    from pytest_dummyweights._checkpoints.manifest import load_manifest

    QWEN3, OVERRIDES = str(SHRINK["qwen3"][0]), SHRINK["qwen3"][1]
    DOWN = "model.layers.0.mlp.down_proj.weight"
    KV_B = "model.layers.1.self_attn.kv_b_proj.weight"


    def stored(request, checkpoint, name):
        directory = request.path.parent / checkpoint
        manifest = load_manifest(directory)
        with safe_open(str(directory / manifest.tensors[name].shard), framework="paddle") as file:
            return file.get_tensor(name), manifest.tensors[name]


    def real(request):
        return bool(request.config.getoption("--real-weights"))


    @pytest.mark.parametrize("layout", ["hf", "paddle"])
    def test_qwen3_runs_and_its_weights_are_the_checkpoints_only_when_real(dummy_model_factory, request, layout):
        model = dummy_model_factory(QWEN3, overrides=OVERRIDES, checkpoint=f"ckpt/qwen3-{layout}")
        logits = model(paddle.to_tensor([[1, 2, 3, 4]]))[0]
        assert bool(paddle.isfinite(logits).all())
        weight = model.state_dict()[DOWN].numpy()
        tensor, _ = stored(request, f"ckpt/qwen3-{layout}", DOWN)
        checkpoint = tensor.numpy().T if layout == "hf" else tensor.numpy()  # Hugging Face layout: Linear weights transposed
        assert weight.dtype == checkpoint.dtype == np.float32
        assert np.array_equal(weight.view(np.uint32), checkpoint.view(np.uint32)) == real(request)


    @pytest.mark.dummy_load(CHECKPOINT_CONFIG, model=EngineCheckpointModel, checkpoint="ckpt/engine", device="cpu")
    def test_engine_loads_through_its_own_loader_and_derives_mla_weights(dummy_model, request):
        # its own loader ran, on every tensor
        assert dummy_model.loaded_tensors == len(load_manifest(request.path.parent / "ckpt/engine").tensors)
        tensor, entry = stored(request, "ckpt/engine", KV_B)
        if not real(request):
            tensor = dummy_tensor(KV_B, entry, seed=0, std=0.02)  # what the dummy build fed the loader
        kv_b = tensor.astype("float32").numpy().reshape([4, 16, 16])  # heads, nope + v, rank
        attention = dummy_model.model.layers[1].self_attn
        np.testing.assert_array_equal(attention.k_b_proj_weight.numpy(), kv_b[:, :8, :])
        np.testing.assert_array_equal(attention.v_b_proj_weight.numpy(), kv_b[:, 8:, :].transpose(0, 2, 1))


    @pytest.mark.dummy_load(QWEN3, overrides=OVERRIDES, checkpoint="qwen3.manifest.json")
    def test_manifest_only(dummy_model):
        assert not dummy_model.training


    @pytest.mark.dummy_load(QWEN3, overrides=OVERRIDES)
    def test_no_checkpoint(dummy_model):
        assert not dummy_model.training
    """


def write_engine_checkpoint(directory: Path) -> int:
    """The engine model's checkpoint with real data (values of seed ``REAL_SEED``); returns its data bytes."""
    entries = {
        name: TensorEntry(dtype, shape, "")
        for name, (dtype, shape) in checkpoint_tensors(types.SimpleNamespace(**CHECKPOINT_CONFIG)).items()
    }
    directory.mkdir(parents=True)
    save_file(
        {name: dummy_tensor(name, entry, seed=REAL_SEED) for name, entry in entries.items()},
        str(directory / "model.safetensors"),
        metadata={"format": "pt"},
    )
    return sum(entry.nbytes for entry in entries.values())


@pytest.fixture
def checkpoints(inner) -> int:
    """``ckpt/qwen3-hf`` and ``ckpt/qwen3-paddle`` (save_pretrained), ``ckpt/engine``, ``qwen3.manifest.json``; returns their data bytes."""
    manifests = [load_manifest(saved_checkpoint(inner.path / "ckpt", "qwen3", layout, seed=REAL_SEED)) for layout in ("hf", "paddle")]
    manifests[0].write(inner.path / "qwen3.manifest.json")
    return sum(manifest.total_bytes for manifest in manifests) + write_engine_checkpoint(inner.path / "ckpt" / "engine")


@pytest.mark.paddleformers
def test_one_file_passes_with_dummy_and_with_real_weights(inner, checkpoints: int) -> None:
    inner.write("test_both_modes.py", BOTH_MODES)
    dummy = inner.run("-v")
    dummy.assert_outcomes(passed=5)
    dummy.stdout.fnmatch_lines(["*checkpoint checks: 4 passed, 0 failed*"])
    assert "real weights:" not in dummy.stdout.str()

    real = inner.run("-v", "-rs", "--real-weights")
    real.assert_outcomes(passed=3, skipped=2)
    real.stdout.fnmatch_lines(
        [
            "SKIPPED * --real-weights: checkpoint */qwen3.manifest.json is a manifest only, without tensor data; "
            "it runs with dummy weights only",
            "SKIPPED * --real-weights: the test names no checkpoint= to load real weights from; it runs with dummy weights only",
        ]
    )
    real.stdout.fnmatch_lines([f"*real weights: 3 models loaded real, {human_bytes(checkpoints)} read from checkpoints*"])


CORRUPT = """
    import pytest
    from engine_models import SHRINK

    @pytest.mark.dummy_load(str(SHRINK["qwen3"][0]), overrides=SHRINK["qwen3"][1], checkpoint="ckpt/qwen3-hf-drop")
    def test_against_a_corrupted_checkpoint(dummy_model):
        pass

    def test_neighbour():
        pass
    """


@pytest.fixture
def dropped(inner) -> None:
    """A checkpoint that lacks one tensor: ``from_pretrained`` would only warn and leave it random."""
    corrupted_copy(saved_checkpoint(inner.path / "ckpt", "qwen3", "hf"), inner.path / "ckpt", "drop", "model.layers.0.mlp.down_proj.weight")
    inner.write("test_corrupt.py", CORRUPT)


@pytest.mark.paddleformers
def test_a_corrupted_checkpoint_fails_setup_with_the_table(inner, dropped: None) -> None:
    result = inner.run("-v")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_against_a_corrupted_checkpoint: dummy build of config * failed: the model does not match checkpoint *qwen3-hf-drop: "
            "fix the config, the model's loader or the checkpoint (or set checkpoint_check='warn' / --dummy-checkpoint-check=warn)",
            "checkpoint *qwen3-hf-drop: the model and the checkpoint disagree",
            "  missing (the model needs it, the checkpoint lacks it): 1",
            "    model.layers.0.mlp.down_proj.weight",
        ]
    )
    result.stdout.fnmatch_lines(["*checkpoint checks: 0 passed, 1 failed*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.paddleformers
def test_warn_mode_warns_with_the_table(inner, dropped: None) -> None:
    result = inner.run("-v", "--dummy-checkpoint-check=warn")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*CheckpointMismatchWarning: checkpoint *qwen3-hf-drop: the model and the checkpoint disagree",
            "*  missing (the model needs it, the checkpoint lacks it): 1",
            "*    model.layers.0.mlp.down_proj.weight",
        ]
    )
    result.stdout.fnmatch_lines(["*checkpoint checks: 0 passed, 1 failed*"])


@pytest.mark.paddleformers
def test_off_mode_from_the_ini_skips_the_check(inner, dropped: None) -> None:
    inner.write("pytest.ini", "[pytest]\ndummyweights_checkpoint_check = off\n")
    result = inner.run("-v")
    result.assert_outcomes(passed=2)
    assert "checkpoint checks" not in result.stdout.str()


BAD_INPUT = """
    import pytest
    from engine_models import SHRINK

    QWEN3, OVERRIDES = str(SHRINK["qwen3"][0]), SHRINK["qwen3"][1]

    @pytest.mark.dummy_load(QWEN3, overrides=OVERRIDES, checkpoint="no/such/checkpoint")
    def test_missing(dummy_model):
        pass

    @pytest.mark.dummy_load(QWEN3, overrides=OVERRIDES, checkpoint="empty")
    def test_no_safetensors(dummy_model):
        pass

    def test_not_a_manifest(dummy_model_factory):
        dummy_model_factory(QWEN3, overrides=OVERRIDES, checkpoint="notes.json")

    @pytest.mark.dummy_load(QWEN3, overrides=OVERRIDES, checkpoint=3)
    def test_not_a_path(dummy_model):
        pass

    @pytest.mark.dummy_load(QWEN3, overrides=OVERRIDES, checkpoint="ckpt/qwen3-hf", checkpoint_check="loud")
    def test_unknown_mode(dummy_model):
        pass

    @pytest.mark.dummy_load(QWEN3, overrides=OVERRIDES, checkpoint="ckpt/qwen3-hf")
    def test_healthy_neighbour(dummy_model):
        pass
    """

BAD_CAUSES = {
    "test_missing": r"checkpoint 'no/such/checkpoint' not found \(looked at: [^;]*\); "
    r"give a directory of \*\.safetensors files or a manifest JSON file",
    "test_no_safetensors": r"checkpoint \S*empty: the directory has no \*\.safetensors files",
    "test_not_a_manifest": r"\S*notes\.json: not a manifest JSON file \(.*\); give a checkpoint directory",
    "test_not_a_path": r"checkpoint must be a checkpoint directory or a manifest JSON file path; got int: 3",
    "test_unknown_mode": r"unknown checkpoint_check 'loud': use 'error', 'warn' or 'off'",
}


@pytest.mark.paddleformers
def test_bad_checkpoint_inputs_fail_their_test_with_one_line(inner) -> None:
    saved_checkpoint(inner.path / "ckpt", "qwen3", "hf")
    (inner.path / "empty").mkdir()
    inner.write("notes.json", "not json")
    inner.write("test_bad_checkpoint.py", BAD_INPUT)
    result = inner.run("-v")
    result.assert_outcomes(passed=1, failed=1, errors=len(BAD_CAUSES) - 1)
    assert_one_line_each(result, "test_bad_checkpoint.py", BAD_CAUSES)


def assert_one_line_each(result: pytest.RunResult, module: str, causes: dict[str, str]) -> None:
    """Each test of ``causes`` failed with one line (no traceback) that matches its cause."""
    lines = result.stdout.lines
    for test, cause in causes.items():
        [index] = [i for i, line in enumerate(lines) if line.startswith(f"{module}::{test}: dummy build of config")]
        assert re.search(cause, lines[index]), lines[index]
        assert not lines[index + 1].startswith(" "), lines[index : index + 2]  # one line
    assert "Traceback" not in result.stdout.str()


def test_a_rewritten_or_other_checkpoint_is_never_served_from_the_cache(tmp_path: Path) -> None:
    """The key holds the checkpoint's resolved path and its files' identity (sizes, modification times)."""
    from engine_models.checkpoint_models import EngineCheckpointModel

    from pytest_dummyweights import BuildContext, DummySpec
    from pytest_dummyweights._cache.model_cache import ModelCache

    write_engine_checkpoint(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    cache = ModelCache()

    def served(checkpoint: str) -> paddle.nn.Layer:
        spec = DummySpec(CHECKPOINT_CONFIG, model=EngineCheckpointModel, checkpoint=checkpoint, device="cpu", real_weights=True)
        return cache.get(spec, BuildContext(search_dirs=(tmp_path,)))

    first = served("a")
    assert served("a") is first and served(str(tmp_path / "a")) is first
    assert served("b") is not first
    shutil.rmtree(tmp_path / "a")
    write_engine_checkpoint(tmp_path / "a")  # the same bytes, written again: a new modification time
    assert served("a") is not first
    assert cache.stats.built == 3 and cache.stats.real_loaded == 3


HOOK_CONFTEST = """
    from pytest_dummyweights import Layout, TensorSpec

    def pytest_dummyweights_checkpoint_layout(model, model_config, spec, manifest):
        if model_config.tag != "own-naming":
            return None
        # this project's loader reads parameter "w" from checkpoint tensor "weights.w", stored transposed
        return Layout({"weights.w": TensorSpec(tuple(model.w.shape)[::-1], "float")})
    """

HOOK_TESTS = """
    import pytest
    from engine_models import ZOO, zoo_config

    @pytest.mark.dummy_load(zoo_config("own-naming", w=("float32", [4, 6])), model=ZOO, checkpoint="zoo")
    def test_the_projects_layout_agrees(dummy_model):
        assert tuple(dummy_model.w.shape) == (4, 6)

    @pytest.mark.dummy_load(zoo_config("default-rules", w=("float32", [4, 6])), model=ZOO, checkpoint="zoo")
    def test_default_rules_disagree(dummy_model):
        pass
    """


def test_the_checkpoint_layout_hook_names_what_the_model_loads(inner) -> None:
    (inner.path / "zoo").mkdir()
    save_file({"weights.w": paddle.zeros([6, 4])}, str(inner.path / "zoo" / "model.safetensors"), metadata={"format": "np"})
    inner.write("conftest.py", HOOK_CONFTEST)
    inner.write("test_hook.py", HOOK_TESTS)
    result = inner.run("-v")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_the_projects_layout_agrees PASSED*"])
    result.stdout.fnmatch_lines(
        [
            "  missing (the model needs it, the checkpoint lacks it): 1",
            "    w",
            "  unexpected (the checkpoint has it, nothing loads it): 1",
            "    weights.w",
        ]
    )


@pytest.mark.paddleformers
def test_cli_build_prints_the_checks_table_and_exits_1_when_it_fails(tmp_path: Path, capsys, monkeypatch) -> None:
    from engine_models import SHRINK

    from pytest_dummyweights import cli

    config, overrides = SHRINK["qwen3"]
    sets = [f"--set={key}={value}" for key, value in overrides.items()]
    checkpoint = saved_checkpoint(tmp_path, "qwen3", "hf")
    assert cli.main(["build", str(config), *sets, "--checkpoint", str(checkpoint)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"checkpoint {checkpoint}: the model and the checkpoint agree"

    monkeypatch.chdir(tmp_path)  # a relative checkpoint path resolves against the working directory
    assert cli.main(["build", str(config), *sets, "--set=num_hidden_layers=3", "--checkpoint", checkpoint.name]) == 1
    out = capsys.readouterr().out
    assert (
        f"checkpoint {checkpoint}: the model and the checkpoint disagree\n  missing (the model needs it, the checkpoint lacks it): 11\n"
        in out
    )

    assert cli.main(["build", str(config), *sets, "--checkpoint", "no_such_checkpoint"]) == 2
    out, err = capsys.readouterr()
    assert not out and err.count("\n") == 1 and err.startswith("error: checkpoint 'no_such_checkpoint' not found")


def test_the_ini_turns_real_weights_on(inner) -> None:
    inner.write("pytest.ini", "[pytest]\ndummyweights_real_weights = true\n")
    inner.write(
        "test_ini.py",
        """
        import pytest
        from engine_models import ZOO, zoo_config

        @pytest.mark.dummy_load(zoo_config(), model=ZOO)
        def test_without_a_checkpoint(dummy_model):
            pass
        """,
    )
    result = inner.run("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * --real-weights: the test names no checkpoint= *"])


RULES_UNDER_REAL_WEIGHTS = """
    import pytest
    from engine_models.checkpoint_models import CHECKPOINT_CONFIG, EngineCheckpointModel

    @pytest.mark.dummy_load(CHECKPOINT_CONFIG, model=EngineCheckpointModel, checkpoint="engine", device="cpu",
                            scales="neutral", value_rules={"*.weight_scale": 2.0})
    def test_rules_meet_real_weights(dummy_model):
        pass
    """


def test_value_rules_under_real_weights_warn_that_the_checkpoints_values_stay(inner) -> None:
    """Not applied, as before, but no longer silently; and not hidden by the filter projects set for Paddle's noise."""
    write_engine_checkpoint(inner.path / "engine")
    inner.write("test_rules.py", RULES_UNDER_REAL_WEIGHTS)
    result = inner.run("--real-weights", "-W", "ignore::UserWarning")
    result.assert_outcomes(passed=1, warnings=1)
    warning = (
        "*ValueRulesIgnoredWarning: config <dict>: scales='neutral' and value_rules={'*.weight_scale': 2.0} are not applied: "
        "they replace dummy values, and real_weights loads the checkpoint's own; the test sees the checkpoint's values"
    )
    result.stdout.fnmatch_lines([warning])


def test_real_weights_from_a_header_safetensors_rejects_are_refused_before_the_models_loader(tmp_path: Path) -> None:
    """Offsets that disagree with shape x dtype: refused when the checkpoint is read, never blamed on ``load_weights``."""
    shard = tmp_path / "engine" / "model.safetensors"
    write_engine_checkpoint(shard.parent)
    edit_header(shard, lambda header: header["model.norm.weight"].update(shape=[16]))
    for real in (False, True):
        spec = DummySpec(CHECKPOINT_CONFIG, model=EngineCheckpointModel, checkpoint=str(shard.parent), device="cpu", real_weights=real)
        with pytest.raises(DummyWeightsError) as raised:
            build(spec)
        message = str(raised.value)
        assert message.startswith(f"{shard}: tensor 'model.norm.weight': data_offsets [") and "\n" not in message
        assert "span 64 bytes, shape [16] of BF16 is 32 bytes" in message and "load_weights" not in message


MALFORMED = {  # test: (its checkpoint, the cause its one line states)
    "test_string_offsets": ("string_offsets", r"""\S*string_offsets/model\.safetensors: tensor 'w': data_offsets \["0", "4"\] is not \["""),
    "test_metadata_list": ("metadata_list", r'\S*metadata_list/model\.safetensors: "__metadata__" is \[\], not an object of'),
    "test_shard_directory": ("shard_directory", r"\S*shard_directory/model\.safetensors: is a directory, not a file"),
    "test_hand_edited_manifest": ("edited.manifest.json", r'\S*edited\.manifest\.json: tensor \'w\': no "dtype"'),
}


def test_malformed_checkpoint_files_fail_their_test_at_setup_with_one_line(inner) -> None:
    raw_shard(inner.path / "string_offsets" / "model.safetensors", '{"w": {"dtype": "F32", "shape": [1], "data_offsets": ["0", "4"]}}', 4)
    raw_shard(inner.path / "metadata_list" / "model.safetensors", '{"__metadata__": []}')
    (inner.path / "shard_directory" / "model.safetensors").mkdir(parents=True)
    edited = {
        "kind": MANIFEST_KIND,
        "format_version": FORMAT_VERSION,
        "source": "x",
        "total_bytes": 4,
        "formats": {"a.safetensors": "pt"},
        "tensors": {"w": {"shape": [1], "shard": "a.safetensors"}},
    }
    inner.write("edited.manifest.json", json.dumps(edited))
    tests = [
        f"@pytest.mark.dummy_load(QWEN3, overrides=OVERRIDES, checkpoint={checkpoint!r})\ndef {test}(dummy_model):\n    pass\n"
        for test, (checkpoint, _) in MALFORMED.items()
    ]
    header = 'import pytest\nfrom engine_models import SHRINK\n\nQWEN3, OVERRIDES = str(SHRINK["qwen3"][0]), SHRINK["qwen3"][1]\n'
    inner.write("test_malformed.py", header, *tests)
    result = inner.run("-v")
    result.assert_outcomes(errors=len(MALFORMED))
    assert_one_line_each(result, "test_malformed.py", {test: cause for test, (_, cause) in MALFORMED.items()})
