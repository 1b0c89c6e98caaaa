"""Interception: unchanged test files that load checkpoints themselves get dummy weights under ``--dummy-weights`` or a
``dummy_load`` marker, in-process and in the Python processes they start, and real weights otherwise.

Each inner session writes what its loads returned to a JSON file (``OUT``); the same file is run with and without
interception and the two answers compared: equal in everything but the weights' values, which are the
checkpoint's without interception and the dummy build's with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from engine_models.pretrained import TINY_QWEN2, checkpoint_digest, dummy_digest, write_pretrained

from pytest_dummyweights._intercept import patches
from pytest_dummyweights._intercept.subprocesses import ENV, RUN_HOOK_PREFIX

pytestmark = pytest.mark.paddleformers  # interception of PaddleFormers' from_pretrained

DESCRIBE = """
import hashlib, json, os
from pathlib import Path

from engine_models.pretrained import weight_digest

CKPT = os.environ["CKPT"]


def describe(model):
    return {
        "class": type(model).__name__,
        "training": all(layer.training for layer in model.sublayers(include_self=True)),
        "parameters": {name: [list(p.shape), str(p.dtype)] for name, p in model.state_dict().items()},
        "config": model.config.to_dict(),
        "generation": model.generation_config.to_dict(),
        "digest": weight_digest(model),
    }


def record(key, value):
    out = Path(os.environ["OUT"])
    answers = json.loads(out.read_text()) if out.exists() else {}
    answers[key] = value
    out.write_text(json.dumps(answers, default=str))
"""


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pretrained(tmp_path_factory.mktemp("pretrained") / "qwen2-tiny", TINY_QWEN2)


@pytest.fixture(scope="module")
def digests(pretrained: Path) -> dict[str, str]:
    return {"real": checkpoint_digest(pretrained), "dummy": dummy_digest(TINY_QWEN2), "dummy float32": dummy_digest(TINY_QWEN2, "float32")}


def answers(inner, pretrained: Path, *args: str, subprocess: bool = False) -> tuple[dict, pytest.RunResult]:
    out = inner.path / f"answers-{len(list(inner.path.glob('answers-*')))}.json"
    inner.monkeypatch.setenv("CKPT", str(pretrained))
    inner.monkeypatch.setenv("OUT", str(out))
    result = inner.run(*args, subprocess=subprocess)
    return (json.loads(out.read_text()) if out.exists() else {}), result


def assert_nothing_left_active() -> None:
    from paddleformers.transformers import AutoModelForCausalLM, PretrainedModel

    assert not patches.is_patched(PretrainedModel.from_pretrained)
    assert not patches.is_patched(AutoModelForCausalLM._from_pretrained)
    assert patches.active() is None and ENV not in os.environ
    site_packages = Path(sys.prefix, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}", "site-packages")
    assert not (site_packages / f"{RUN_HOOK_PREFIX}{os.getpid()}.pth").exists()  # this run's (another xdist worker may have its own)


def test_an_unchanged_test_file_gets_what_real_loading_returns_with_dummy_weights(inner, pretrained: Path, digests) -> None:
    inner.write(
        "conftest.py",
        DESCRIBE,
        """
        from paddleformers.transformers import AutoModelForCausalLM

        record("conftest import", weight_digest(AutoModelForCausalLM.from_pretrained(CKPT, convert_from_hf=True)))
        """,
    )
    inner.write(
        "test_load.py",
        DESCRIBE,
        """
        from paddleformers.transformers import AutoModelForCausalLM, Qwen2Config, Qwen2ForCausalLM


        def outcome(load):
            try:
                return describe(load())
            except Exception as error:
                return {"raised": type(error).__name__, "message": str(error).splitlines()[0]}


        def test_loads():
            config = Qwen2Config.from_pretrained(CKPT)
            calls = {
                "auto": lambda: AutoModelForCausalLM.from_pretrained(CKPT, convert_from_hf=True),
                "class": lambda: Qwen2ForCausalLM.from_pretrained(CKPT, convert_from_hf=True),
                "dtype": lambda: AutoModelForCausalLM.from_pretrained(CKPT, convert_from_hf=True, dtype="float32"),
                "config keyword": lambda: AutoModelForCausalLM.from_pretrained(CKPT, convert_from_hf=True, rms_norm_eps=1e-5),
                "fewer layers": lambda: AutoModelForCausalLM.from_pretrained(CKPT, convert_from_hf=True, num_hidden_layers=1),
                "config path": lambda: Qwen2ForCausalLM.from_pretrained(CKPT, config=CKPT, convert_from_hf=True),
                "output_loading_info": lambda: AutoModelForCausalLM.from_pretrained(CKPT, convert_from_hf=True, output_loading_info=True),
                "config object and keyword": lambda: Qwen2ForCausalLM.from_pretrained(CKPT, config=config, num_hidden_layers=1),
            }
            for name, load in calls.items():
                record(name, outcome(load))
            model = Qwen2ForCausalLM.from_pretrained(CKPT, config=config, convert_from_hf=True)
            record("config object", [model.config is config, model.config.dtype])
        """,
    )
    real, result = answers(inner, pretrained)
    result.assert_outcomes(passed=1)
    dummy, result = answers(inner, pretrained, "--dummy-weights")
    result.assert_outcomes(passed=1)
    assert_nothing_left_active()

    assert real["conftest import"] == digests["real"] and dummy["conftest import"] == digests["dummy"]  # active from start-up
    assert real["output_loading_info"] == dummy["output_loading_info"]  # PaddleFormers 0.4.1 has none: TypeError from __init__
    assert real["output_loading_info"]["raised"] == "TypeError" and "output_loading_info" in real["output_loading_info"]["message"]
    assert real["config object and keyword"] == dummy["config object and keyword"]  # keywords go to __init__ then
    assert real["config object and keyword"]["raised"] == "TypeError"
    assert real["config object"] == dummy["config object"] == [True, "bfloat16"]
    for name in ("auto", "class", "dtype", "config keyword", "fewer layers", "config path"):
        assert "raised" not in real[name] and "raised" not in dummy[name], (name, real[name].get("message"), dummy[name].get("message"))
        assert real[name].pop("digest") != dummy[name].pop("digest"), name
        assert real[name] == dummy[name], name
    assert real["auto"]["class"] == "Qwen2ForCausalLM" and real["auto"]["training"]
    assert {dtype for _, dtype in real["auto"]["parameters"].values()} == {"paddle.bfloat16"}  # the config's torch_dtype
    assert {dtype for _, dtype in real["dtype"]["parameters"].values()} == {"paddle.float32"}
    assert real["fewer layers"]["config"]["num_hidden_layers"] == 1 and real["config keyword"]["config"]["rms_norm_eps"] == 1e-5
    result.stdout.fnmatch_lines(["interceptions: 10 checkpoint loads given dummy weights (*2 failed): 10 in pytest, 0 in 0 subprocesses"])


SERVER_TEST = """
import subprocess, sys


def ask_server(question):
    command = [sys.executable, "-m", "engine_models.standin_server", CKPT]
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        while server.stdout.readline().strip() != "ready":
            pass
        server.stdin.write(json.dumps(question) + "\\n")
        server.stdin.flush()
        return json.loads(server.stdout.readline())
    finally:
        server.kill()
        server.wait()


def test_server_answers():
    record("server", ask_server([1, 2, 3]))
"""


def test_a_server_the_test_starts_loads_dummy_weights_and_its_build_is_in_the_summary(inner, pretrained: Path, digests) -> None:
    inner.write("test_server.py", DESCRIBE, SERVER_TEST)
    real, result = answers(inner, pretrained)
    result.assert_outcomes(passed=1)
    dummy, result = answers(inner, pretrained, "--dummy-weights", "-v")
    result.assert_outcomes(passed=1)
    assert_nothing_left_active()

    assert real["server"] == {"shape": [1, 3, 512], "digest": digests["real"]}
    assert dummy["server"] == {"shape": [1, 3, 512], "digest": digests["dummy float32"]}
    result.stdout.fnmatch_lines(
        [
            "models: 1 built in *",  # the server's build, counted by the run
            "interceptions: 1 checkpoint loads given dummy weights (1 built): 0 in pytest, 1 in 1 subprocesses",
            f"  test_server.py::test_server_answers: AutoModelForCausalLM.from_pretrained('{pretrained}') -> built: "
            "Qwen2ForCausalLM float32 with dummy weights (* s, subprocess *)",
        ]
    )


LOADS = """
import os


def load_digest(_=None):
    from paddleformers.transformers import AutoModelForCausalLM

    from engine_models.pretrained import weight_digest

    return weight_digest(AutoModelForCausalLM.from_pretrained(os.environ["CKPT"], convert_from_hf=True))
"""
MIXED = """
import multiprocessing, subprocess, sys

import pytest

from loads import load_digest


def three_ways():
    child = subprocess.run([sys.executable, "-c", "import loads; print(loads.load_digest())"], capture_output=True, text=True, check=True)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        spawned = pool.apply(load_digest)
    return {"in-process": load_digest(), "subprocess": child.stdout.split()[-1], "spawn": spawned}


@pytest.mark.dummy_load
def test_marked():
    record("marked", three_ways())


def test_unmarked():
    record("unmarked", three_ways())


@pytest.mark.dummy_load
class TestMarked:
    def test_in_a_marked_class(self):
        record("class", load_digest())
"""


def test_marked_tests_get_dummy_weights_and_unmarked_ones_real_weights_in_one_run(inner, pretrained: Path, digests) -> None:
    inner.write("loads.py", LOADS)
    inner.write("test_mixed.py", DESCRIBE, MIXED)
    inner.write(
        "test_module_marked.py",
        DESCRIBE,
        """
        import pytest

        from loads import load_digest

        pytestmark = pytest.mark.dummy_load


        def test_in_a_marked_module():
            record("module", load_digest())
        """,
    )
    found, result = answers(inner, pretrained, "-v")
    result.assert_outcomes(passed=4)
    assert_nothing_left_active()

    assert found["marked"] == dict.fromkeys(("in-process", "subprocess", "spawn"), digests["dummy"])
    assert found["unmarked"] == dict.fromkeys(("in-process", "subprocess", "spawn"), digests["real"])
    assert found["class"] == found["module"] == digests["dummy"]
    result.stdout.fnmatch_lines(["interceptions: 5 checkpoint loads given dummy weights (*): 3 in pytest, 2 in 2 subprocesses"])
    assert "test_unmarked" not in "".join(line for line in result.stdout.lines if "from_pretrained(" in line)


def test_a_config_one_layer_longer_than_its_checkpoint_fails_loading_with_the_missing_keys_named(inner, pretrained: Path) -> None:
    longer = pretrained.parent / "qwen2-config-one-layer-longer"
    if not longer.exists():
        longer.mkdir()
        for file in pretrained.iterdir():
            (longer / file.name).symlink_to(file)
        (longer / "config.json").unlink()
        config = json.loads((pretrained / "config.json").read_text())
        (longer / "config.json").write_text(json.dumps({**config, "num_hidden_layers": config["num_hidden_layers"] + 1}))
    inner.write(
        "test_longer.py",
        DESCRIBE,
        """
        import subprocess, sys

        from paddleformers.transformers import AutoModelForCausalLM


        def test_in_process():
            AutoModelForCausalLM.from_pretrained(CKPT, convert_from_hf=True)


        def test_in_a_subprocess():
            code = "import os; from paddleformers.transformers import AutoModelForCausalLM as A; "
            code += "A.from_pretrained(os.environ['CKPT'], convert_from_hf=True)"
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            assert done.returncode == 0, done.stderr[-2000:]
        """,
    )
    _, result = answers(inner, longer)
    result.assert_outcomes(passed=2)  # PaddleFormers only warns, and the last layer keeps random weights
    _, result = answers(inner, longer, "--dummy-weights")
    result.assert_outcomes(failed=2)
    output = result.stdout.str().partition("short test summary info")[0]  # the failures, not their summary
    assert output.count("CheckpointMismatch: the model does not match checkpoint") == 2  # in-process and in the subprocess
    assert output.count("missing (the model needs it, the checkpoint lacks it): 12") == 2  # Qwen2 has q, k, v biases
    assert output.count("model.layers.2.mlp.down_proj.weight") >= 2
    result.stdout.fnmatch_lines(["checkpoint checks: 0 passed, 2 failed", "interceptions: 2 checkpoint loads * (2 failed)*"])


def test_dummy_weights_with_real_weights_is_a_usage_error(inner) -> None:
    inner.write("test_nothing.py", "def test_nothing():\n    pass\n")
    result = inner.run("--dummy-weights", "--real-weights")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--dummy-weights and --real-weights ask for opposite things" in result.stderr.str()
    inner.write("pytest.ini", "[pytest]\ndummyweights_dummy_weights = true\ndummyweights_real_weights = true\n")
    assert inner.run().ret == pytest.ExitCode.USAGE_ERROR


def test_the_ini_key_intercepts_and_a_real_weights_run_never_does(inner, pretrained: Path, digests) -> None:
    inner.write("loads.py", LOADS)
    inner.write(
        "test_marked.py",
        DESCRIBE,
        """
        import pytest

        from loads import load_digest


        @pytest.mark.dummy_load
        def test_marked():
            record("marked", load_digest())


        def test_unmarked():
            record("unmarked", load_digest())
        """,
    )
    found, result = answers(inner, pretrained, "--real-weights")  # the nightly run: real weights, markers or not
    result.assert_outcomes(passed=2)
    assert found == {"marked": digests["real"], "unmarked": digests["real"]}
    inner.write("pytest.ini", "[pytest]\ndummyweights_dummy_weights = true\n")
    found, result = answers(inner, pretrained)
    result.assert_outcomes(passed=2)
    assert found == {"marked": digests["dummy"], "unmarked": digests["dummy"]}
    assert_nothing_left_active()


def test_each_load_returns_a_model_no_other_live_caller_holds(inner, pretrained: Path, digests) -> None:
    inner.write(
        "test_owned.py",
        DESCRIBE,
        """
        import paddle
        import pytest
        from paddleformers.transformers import AutoModelForCausalLM


        def load():
            return AutoModelForCausalLM.from_pretrained(CKPT, convert_from_hf=True)


        @pytest.mark.dummy_load
        def test_owned():
            first, second = load(), load()
            assert first is not second and first.lm_head is not second.lm_head
            with paddle.no_grad():
                first.state_dict()["model.layers.0.mlp.down_proj.weight"].set_value(paddle.ones([128, 64], "bfloat16"))
            first.eval()
            kept = first.lm_head
            del first, second
            third = load()  # a model its holder dropped, but for a sublayer it kept: not handed out again
            assert third.lm_head is not kept
            del kept, third
            fourth = load()  # dropped whole: handed out again, as built
            record("fourth", [weight_digest(fourth), fourth.training])
        """,
    )
    found, result = answers(inner, pretrained, "-v")
    result.assert_outcomes(passed=1)
    assert found["fourth"] == [digests["dummy"], True]
    result.stdout.fnmatch_lines(
        [
            "isolation repaired after its previous holder: Qwen2ForCausalLM: * of written weights restored",
            "interceptions: 4 checkpoint loads given dummy weights (3 built, 1 reused): 4 in pytest, 0 in 0 subprocesses",
        ]
    )


def test_hook_named_engine_loaders_give_dummy_weights_to_the_engine_model(inner, tmp_path: Path) -> None:
    from engine_models.engine_loader import write_engine_checkpoint

    checkpoint = write_engine_checkpoint(tmp_path / "engine")
    inner.monkeypatch.setenv("ENGINE_CKPT", str(checkpoint))
    inner.write(
        "conftest.py",
        """
        from engine_models.engine_loader import TARGETS


        def pytest_dummyweights_intercept():
            return TARGETS
        """,
    )
    inner.write(
        "test_engine.py",
        DESCRIBE,
        """
        import subprocess, sys
        from types import SimpleNamespace

        import pytest

        from engine_models.checkpoint_models import EngineCheckpointModel
        from engine_models.engine_loader import load_model, safetensors_weights  # bound before any interception

        ENGINE_CKPT = Path(os.environ["ENGINE_CKPT"])
        SUBPROCESS = "import sys; from engine_models.engine_loader import load_model; from engine_models.pretrained import weight_digest; "
        SUBPROCESS += "print(weight_digest(load_model(sys.argv[1]), 'lm_head.weight'))"


        def seen(model):
            return [type(model).__name__, model.loaded_tensors, weight_digest(model, "lm_head.weight")]


        def by_the_engine():
            model = EngineCheckpointModel(SimpleNamespace(**json.loads((ENGINE_CKPT / "config.json").read_text())))
            model.load_weights(safetensors_weights(sorted(ENGINE_CKPT.glob("*.safetensors"))))
            return model


        def three_ways():
            return {"model loader": seen(load_model(ENGINE_CKPT)), "weights": seen(by_the_engine()), "subprocess": in_a_subprocess()}


        def in_a_subprocess():
            done = subprocess.run([sys.executable, "-c", SUBPROCESS, str(ENGINE_CKPT)], capture_output=True, text=True, check=True)
            return done.stdout.split()[-1]


        @pytest.mark.dummy_load
        def test_marked():
            record("marked", three_ways())


        def test_unmarked():
            record("unmarked", three_ways())
        """,
    )
    found, result = answers(inner, Path("unused"), "-v")
    result.assert_outcomes(passed=2)
    assert_nothing_left_active()

    real, dummy = found["unmarked"], found["marked"]
    zeros = real["model loader"][2]  # the sparse checkpoint holds zeros
    loaded = ["EngineCheckpointModel", 21, zeros]
    assert real == {"model loader": loaded, "weights": loaded, "subprocess": zeros}
    assert dummy["model loader"] == dummy["weights"] == ["EngineCheckpointModel", 21, dummy["subprocess"]]  # the engine's own loader ran
    assert dummy["subprocess"] != zeros
    result.stdout.fnmatch_lines(
        [
            "interceptions: 3 checkpoint loads given dummy weights (2 built, 1 fed): 2 in pytest, 1 in 1 subprocesses",
            f"  test_engine.py::test_marked: engine_models.engine_loader.load_model('{checkpoint}') -> built: "
            "EngineCheckpointModel with dummy weights (*, pytest)",
            f"  test_engine.py::test_marked: engine_models.engine_loader.safetensors_weights(2 files in {checkpoint}) -> fed: "
            "21 dummy tensors for 2 files (*, pytest)",
        ]
    )


def hub_cache_snapshot(cache: Path, repo: str, files: list[Path]) -> None:
    """A repository as huggingface_hub caches it: refs/main names a snapshot holding the files."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    (root / "snapshots" / commit).mkdir(parents=True)
    for file in files:
        (root / "snapshots" / commit / file.name).symlink_to(file)


def test_hub_names_resolve_through_the_hugging_face_cache_or_a_manifest(inner, pretrained: Path, digests, tmp_path: Path) -> None:
    cache, manifests, no_config = tmp_path / "hf-cache", tmp_path / "manifests", tmp_path / "no-config"
    hub_cache_snapshot(cache, "org/cached", [pretrained / "config.json", pretrained / "model.safetensors"])
    hub_cache_snapshot(cache, "org/config-only", [pretrained / "config.json"])
    manifests.mkdir()
    no_config.mkdir()
    for name in ("org--manifested.json", "org--config-only.json"):
        done = subprocess.run([sys.executable, "-m", "pytest_dummyweights", "manifest", str(pretrained), "-o", str(manifests / name)])
        assert done.returncode == 0
    inner.monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    inner.monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    inner.monkeypatch.setenv("NO_CONFIG", str(no_config))
    inner.write(
        "test_hub.py",
        DESCRIBE,
        """
        import pytest
        from paddleformers.transformers import AutoModelForCausalLM

        from pytest_dummyweights import DummyWeightsError


        @pytest.mark.dummy_load
        @pytest.mark.parametrize("name", ["org/cached", "org/config-only", "org/manifested"])
        def test_loads(name):
            record(name, weight_digest(AutoModelForCausalLM.from_pretrained(name, convert_from_hf=True)))


        @pytest.mark.dummy_load
        @pytest.mark.parametrize("name", ["org/nothing", os.environ["NO_CONFIG"]])
        def test_one_line_when_there_is_no_config(name):
            with pytest.raises(DummyWeightsError) as raised:
                AutoModelForCausalLM.from_pretrained(name)
            record(name, str(raised.value))
        """,
    )
    found, result = answers(inner, pretrained, "--dummy-manifest-dir", str(manifests), subprocess=True)
    result.assert_outcomes(passed=5)
    assert found["org/cached"] == found["org/config-only"] == found["org/manifested"] == digests["dummy"]
    result.stdout.fnmatch_lines(["checkpoint checks: 3 passed, 0 failed"])  # the cached files, then the manifest twice
    assert found["org/nothing"] == (
        f"'org/nothing' is not a local directory and no config for it was found (not in the Hugging Face cache {cache}; "
        f"no manifest {manifests / 'org--nothing.json'}): download its config.json (huggingface-cli download org/nothing "
        f"config.json), write a manifest (python -m pytest_dummyweights manifest --hub org/nothing -o {manifests / 'org--nothing.json'}), "
        "or pass a local directory holding config.json"
    )
    assert found[str(no_config)].startswith(f"checkpoint directory {no_config} has no config.json, and with dummy weights")
    assert all("\n" not in message for message in (found["org/nothing"], found[str(no_config)]))


def dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def test_the_start_up_hook_is_written_for_the_run_only_and_does_nothing_without_the_variable(inner, pretrained: Path) -> None:
    import sysconfig

    site_packages = Path(sysconfig.get_paths()["purelib"])
    stale = site_packages / f"{RUN_HOOK_PREFIX}{dead_pid()}.pth"  # left by a run that crashed
    stale.write_text("import os\n")
    inner.write(
        "test_hook.py",
        DESCRIBE,
        """
        import subprocess, sys, sysconfig

        import pytest


        def imported_at_start_up(**environment):
            env = {key: value for key, value in os.environ.items() if key != "PYTEST_DUMMYWEIGHTS_INTERCEPT"}
            command = [sys.executable, "-X", "importtime", "-c", "pass"]
            done = subprocess.run(command, env={**env, **environment}, capture_output=True, text=True)
            modules = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
            return sorted(module for module in modules if module.startswith(("pytest_dummyweights", "paddle", "numpy")))


        @pytest.mark.dummy_load
        def test_hook():
            hooks = sorted(path.name for path in Path(sysconfig.get_paths()["purelib"]).glob("pytest_dummyweights-run-*.pth"))
            record("hooks", hooks)
            record("unset", imported_at_start_up())
            record("set", imported_at_start_up(PYTEST_DUMMYWEIGHTS_INTERCEPT=os.environ["PYTEST_DUMMYWEIGHTS_INTERCEPT"]))
        """,
    )
    found, result = answers(inner, pretrained)
    result.assert_outcomes(passed=1)
    assert f"{RUN_HOOK_PREFIX}{os.getpid()}.pth" in found["hooks"]  # this run's own copy (another xdist worker may have its own)
    assert stale.name not in found["hooks"]  # the one a crashed run left is removed
    assert found["unset"] == []  # the line looked the variable up, and imported nothing
    assert "pytest_dummyweights._intercept.startup" in found["set"]
    assert not [module for module in found["set"] if module.startswith("paddle")]  # Paddle waits for the first load
    assert_nothing_left_active()


def test_a_site_packages_the_run_cannot_write_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import sysconfig

    from pytest_dummyweights import DummyWeightsError
    from pytest_dummyweights._intercept.subprocesses import install_run_hook

    monkeypatch.setattr(sysconfig, "get_paths", lambda: {"purelib": "/dev/null/site-packages"})
    with pytest.raises(DummyWeightsError) as raised:
        install_run_hook()
    assert str(raised.value).startswith(f"cannot write the start-up hook /dev/null/site-packages/{RUN_HOOK_PREFIX}")
    assert "Python processes the tests start will load real weights" in str(raised.value) and "\n" not in str(raised.value)


def test_under_xdist_the_workers_interceptions_reach_the_controllers_summary(inner, pretrained: Path, digests) -> None:
    inner.write(
        "test_server.py",
        DESCRIBE,
        SERVER_TEST,
        """

        def test_in_process():
            from paddleformers.transformers import AutoModelForCausalLM

            record("in-process", weight_digest(AutoModelForCausalLM.from_pretrained(CKPT, convert_from_hf=True)))
        """,
    )
    found, result = answers(inner, pretrained, "--dummy-weights", "-p", "xdist", "-n", "1", "-v", subprocess=True)
    result.assert_outcomes(passed=2)
    assert found["in-process"] == digests["dummy"] and found["server"]["digest"] == digests["dummy float32"]
    result.stdout.fnmatch_lines(["models: 2 built *", "interceptions: 2 checkpoint loads * (2 built): 1 in pytest, 1 in 1 subprocesses"])
