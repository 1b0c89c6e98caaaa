"""bench/manifest_giant.py runs end to end on a shrunk DeepSeek-V3 (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHRUNK = {
    "num_hidden_layers": 4,
    "n_routed_experts": 8,
    "first_k_dense_replace": 1,
    "n_group": 4,
    "topk_group": 2,
    "num_experts_per_tok": 2,
}

pytestmark = pytest.mark.paddleformers


def test_giant_manifest_bench_runs_on_a_shrunk_layout(tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(ROOT / "bench" / "manifest_giant.py"),
        "--repeat",
        "1",
        "--check",
        "--shards",
        "5",
        "--dir",
        str(tmp_path / "ckpt"),
        "--json",
        str(tmp_path / "out.json"),
    ]
    command += [f"--set={key}={value}" for key, value in SHRUNK.items()]
    process = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads((tmp_path / "out.json").read_text())
    # 4 layers and the multi-token-prediction layer; 1 dense, 4 with 8 experts and a shared one
    assert result["shards"] == 5 and result["tensors"] > 5 * 20
    # PaddleFormers' bf16 model loads no fp8 scales and no MTP layer, and its weights are not float8: the check says so
    assert result["check_missing"] == 0 and result["check_shape_mismatches"] == 0
    assert result["check_unexpected"] > 0 and result["check_dtype_mismatches"] > 0
