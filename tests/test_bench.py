"""The benchmark script runs end to end on a shrunk config and reports every case (no timing assertions);
the manual's plots are drawn from the committed reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "build_vs_load.py"
PLOT = ROOT / "bench" / "plot.py"
TINY = {
    "num_hidden_layers": 1,
    "hidden_size": 64,
    "intermediate_size": 128,
    "vocab_size": 512,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 32,
}
CASES = {"floor", "floor_numpy", "build", "build_filled", "build_repeat", "naive", "default_init", "real_load"}

pytestmark = pytest.mark.paddleformers


def test_benchmark_runs_end_to_end_on_a_tiny_config(tmp_path: Path) -> None:
    pytest.importorskip("paddleformers")
    out = tmp_path / "bench.json"
    command = [sys.executable, str(SCRIPT), str(ROOT / "configs" / "qwen3-0.6b"), "--repeat", "1", "--json", str(out)]
    command += ["--checkpoints", str(tmp_path / "checkpoints")]
    for key, value in TINY.items():
        command += ["--set", f"{key}={value}"]
    process = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    assert "build / floor" in process.stdout

    report = json.loads(out.read_text())
    assert set(report["cases"]) == CASES
    nbytes = report["model"]["nbytes"]
    assert nbytes == 2 * report["model"]["parameters"] > 0  # bfloat16
    for name, case in report["cases"].items():
        assert len(case["runs"]) == 1, name
        assert 0 <= case["wall_min_s"] <= case["wall_median_s"] < 120, name
        assert case["peak_rss_mb"] >= case["runs"][0]["baseline_rss_mb"] > 0, name
    assert set(report["build_phases_median_s"]) >= {"construct", "init"}
    assert report["cases"]["real_load"]["runs"][0]["checked_tensor"]
    assert report["cases"]["build_filled"]["runs"][0]["storage"] == "filled"
    assert {"build / floor", "real load / build", "naive / build"} <= set(report["ratios"])
    assert all(ratio["median"] > 0 for ratio in report["ratios"].values())
    assert report["rss_check"]["limit_mb"] > 300
    assert Path(report["model"]["checkpoint"]).parent == tmp_path / "checkpoints"


def test_an_unknown_case_is_one_usage_error() -> None:
    process = subprocess.run([sys.executable, str(SCRIPT), "--cases", "build,reel_load"], capture_output=True, text=True, timeout=60)
    assert process.returncode == 2
    assert "unknown case reel_load: use some of floor, " in process.stderr.splitlines()[-1]


def test_the_docs_plots_are_drawn_from_the_committed_reports(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    reports = sorted((ROOT / "bench" / "results").glob("*.json"))
    assert len(reports) >= 2
    process = subprocess.run([sys.executable, str(PLOT), "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr[-3000:]
    for name in ("build-time.png", "build-memory.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG\r\n"), name
        assert (ROOT / "docs" / "img" / name).is_file(), f"docs/img/{name} is not committed: run bench/plot.py"


def test_the_interception_benchmark_reports_both_speedups_on_a_tiny_config(tmp_path: Path) -> None:
    """bench/intercept.py end to end (it exits non-zero when a run's weights are not the ones expected)."""
    pytest.importorskip("paddleformers")
    out = tmp_path / "intercept.json"
    command = [sys.executable, str(ROOT / "bench" / "intercept.py"), "--dir", str(tmp_path / "checkpoints"), "--json", str(out)]
    for key, value in TINY.items():
        command += ["--set", f"{key}={value}"]
    process = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["speedup"]) == {"load", "server"} and all(ratio > 0 for ratio in report["speedup"].values())
    assert report["layers"] == 1 and len(report["loadavg_before"]) == 3
    assert "stand-in server, time to ready" in process.stdout
