"""``python -m pytest_dummyweights build``: what it prints, and a one-line error with exit status 2 on bad input."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys

import numpy as np
import pytest
from engine_models import REPO, SHRINK

from pytest_dummyweights import build_dummy_model, cli

QWEN3_SETS = [f"--set={key}={value}" for key, value in SHRINK["qwen3"][1].items()]


@pytest.mark.paddleformers
def test_build_prints_class_size_and_seconds_per_phase(capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # the config path is relative to the working directory
    assert cli.main(["build", "configs/qwen3-0.6b", *QWEN3_SETS, "--seed", "3"]) == 0
    fields = dict(re.fullmatch(r"(\w+)\s+(.*)", line).groups() for line in capsys.readouterr().out.splitlines())
    expected = build_dummy_model(SHRINK["qwen3"][0], overrides=SHRINK["qwen3"][1], seed=3)
    count = sum(int(np.prod(p.shape)) for p in expected.parameters())
    assert fields["class"] == "paddleformers.transformers.qwen3.modeling.Qwen3ForCausalLM (paddleformers.transformers.Qwen3ForCausalLM)"
    assert fields["dtype"] == "float32 on cpu, seed 3, std 0.02"
    assert fields["parameters"] == f"{count:,}"
    assert fields["bytes"].startswith(f"{4 * count:,} (")  # float32
    for phase in ("resolve", "construct", "init", "post_process", "total"):
        assert re.fullmatch(r"\d+\.\d{3} s", fields[phase]), phase


def test_bad_input_exits_2_with_a_one_line_error():
    """The real command, in its own process: the exit status."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest_dummyweights", "build", "no_such_dir"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2 and not done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [done.stderr.splitlines()[-1]] and "Traceback" not in done.stderr
    assert errors[0].startswith("error: config 'no_such_dir' not found (looked at: ")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--set", "num_hiden_layers=1"], "override key 'num_hiden_layers' is not in config *; did you mean 'num_hidden_layers'? *"),
        (["--set", "brand_new=1", "--set", "num_hidden_layers=1"], "override key 'brand_new' is not in config *"),
        (["--seed", "-1"], "seed must be a non-negative integer; got -1"),
        (["--seed", "18446744073709551616"], "seed must be below 2**64 *; got 18446744073709551616"),
        (["--device", "tpu"], "unknown device 'tpu'*"),
    ],
    ids=["override-typo", "new-key-not-allowed", "negative-seed", "seed-beyond-64-bits", "unknown-device"],
)
def test_bad_input_in_process(capsys, monkeypatch, args, error):
    monkeypatch.chdir(REPO)
    assert cli.main(["build", "configs/qwen3-0.6b", *args]) == 2
    out, err = capsys.readouterr()
    assert not out and err.count("\n") == 1
    assert fnmatch.fnmatchcase(err.strip(), f"error: {error}"), err


@pytest.mark.paddleformers
def test_new_key_allowed_with_new_key(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert cli.main(["build", "configs/qwen3-0.6b", *QWEN3_SETS, "--set", "brand_new=1", "--new-key", "brand_new"]) == 0
    assert "Qwen3ForCausalLM" in capsys.readouterr().out


def test_a_config_naming_a_paddleformers_class_without_paddleformers_names_the_install_command():
    """In a process where PaddleFormers cannot be imported (blocked in ``sys.modules``, as if not installed)."""
    blocked = "import sys; sys.modules['paddleformers'] = None; from pytest_dummyweights.cli import main; sys.exit(main())"
    command = [sys.executable, "-c", blocked, "build", "configs/qwen3-0.6b", "--shrink"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and not done.stdout and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        "error: no model class found for 'Qwen3ForCausalLM'; looked at: the spec's model= (not given); "
        'PaddleFormers is not installed: pip install "paddleformers<0.5". '
        "Pass model='package.module:Class', or implement pytest_dummyweights_resolve_model in a conftest.py"
    )
