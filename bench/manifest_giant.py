"""A manifest of a full-size DeepSeek-V3-shaped checkpoint: wall time and peak RSS, from headers only.

    python bench/manifest_giant.py [--repeat 3] [--json PATH] [--check] [--dir DIR] [--shards 163] [--set key=value ...]

Writes (once, under ``bench/.checkpoints/``, git-ignored) the published DeepSeek-V3 checkpoint's
layout as 163 sparse safetensors files: every tensor name, dtype and shape of the Hugging Face
release (fp8 block-quantized linears with their ``weight_scale_inv``, bf16 norms, embeddings and
router, the multi-token-prediction layer 61), generated from ``configs/deepseek-v3/config.json``;
each file is its header followed by a hole, so about 700 GB of apparent size take a few MB of disk.
Then runs ``python -m pytest_dummyweights manifest DIR -o FILE`` in a fresh subprocess per round and
reports its wall time (interpreter start-up included) and peak RSS. Targets: < 5 s, < 200 MB.

``--check`` also constructs the full-size PaddleFormers ``DeepseekV3ForCausalLM`` lazily (no storage)
and runs the structure check against the manifest, reporting each step's seconds and what disagrees.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from pytest_dummyweights._checkpoints.manifest import INDEX_NAME, read_manifest
from pytest_dummyweights._checkpoints.sparse import write_sparse_checkpoint
from pytest_dummyweights.cli import parse_assignment

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "deepseek-v3" / "config.json"
SHARDS = 163


def fp8_linear(name: str, out_features: int, in_features: int, block: tuple[int, int]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """An fp8 block-quantized linear as published: the weight, and one float32 scale per block."""
    return {
        f"{name}.weight": ("F8_E4M3", (out_features, in_features)),
        f"{name}.weight_scale_inv": ("F32", (math.ceil(out_features / block[0]), math.ceil(in_features / block[1]))),
    }


def mlp(prefix: str, hidden: int, intermediate: int, block: tuple[int, int]) -> dict:
    tensors = {}
    for projection in ("gate_proj", "up_proj"):
        tensors.update(fp8_linear(f"{prefix}.{projection}", intermediate, hidden, block))
    tensors.update(fp8_linear(f"{prefix}.down_proj", hidden, intermediate, block))
    return tensors


def decoder_layer(c: dict, index: int, block: tuple[int, int]) -> dict:
    p, hidden, heads = f"model.layers.{index}", c["hidden_size"], c["num_attention_heads"]
    qk_head = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
    tensors = {
        f"{p}.input_layernorm.weight": ("BF16", (hidden,)),
        f"{p}.post_attention_layernorm.weight": ("BF16", (hidden,)),
        f"{p}.self_attn.q_a_layernorm.weight": ("BF16", (c["q_lora_rank"],)),
        f"{p}.self_attn.kv_a_layernorm.weight": ("BF16", (c["kv_lora_rank"],)),
    }
    tensors.update(fp8_linear(f"{p}.self_attn.q_a_proj", c["q_lora_rank"], hidden, block))
    tensors.update(fp8_linear(f"{p}.self_attn.q_b_proj", heads * qk_head, c["q_lora_rank"], block))
    tensors.update(fp8_linear(f"{p}.self_attn.kv_a_proj_with_mqa", c["kv_lora_rank"] + c["qk_rope_head_dim"], hidden, block))
    tensors.update(fp8_linear(f"{p}.self_attn.kv_b_proj", heads * (c["qk_nope_head_dim"] + c["v_head_dim"]), c["kv_lora_rank"], block))
    tensors.update(fp8_linear(f"{p}.self_attn.o_proj", hidden, heads * c["v_head_dim"], block))
    if index < c["first_k_dense_replace"]:
        tensors.update(mlp(f"{p}.mlp", hidden, c["intermediate_size"], block))
        return tensors
    tensors[f"{p}.mlp.gate.weight"] = ("BF16", (c["n_routed_experts"], hidden))
    tensors[f"{p}.mlp.gate.e_score_correction_bias"] = ("F32", (c["n_routed_experts"],))
    for expert in range(c["n_routed_experts"]):
        tensors.update(mlp(f"{p}.mlp.experts.{expert}", hidden, c["moe_intermediate_size"], block))
    tensors.update(mlp(f"{p}.mlp.shared_experts", hidden, c["moe_intermediate_size"] * c["n_shared_experts"], block))
    return tensors


def published_layout(c: dict) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Every tensor of the published checkpoint, in its Hugging Face names, dtypes and shapes."""
    block = tuple(c["quantization_config"]["weight_block_size"])
    hidden, vocab = c["hidden_size"], c["vocab_size"]
    tensors = {"model.embed_tokens.weight": ("BF16", (vocab, hidden))}
    layers = c["num_hidden_layers"]
    for index in range(layers + c["num_nextn_predict_layers"]):
        tensors.update(decoder_layer(c, index, block))
    for index in range(layers, layers + c["num_nextn_predict_layers"]):  # multi-token prediction
        p = f"model.layers.{index}"
        tensors.update(
            {
                f"{p}.embed_tokens.weight": ("BF16", (vocab, hidden)),
                f"{p}.enorm.weight": ("BF16", (hidden,)),
                f"{p}.hnorm.weight": ("BF16", (hidden,)),
                f"{p}.eh_proj.weight": ("BF16", (hidden, 2 * hidden)),
                f"{p}.shared_head.norm.weight": ("BF16", (hidden,)),
                f"{p}.shared_head.head.weight": ("BF16", (vocab, hidden)),
            }
        )
    tensors["model.norm.weight"] = ("BF16", (hidden,))
    tensors["lm_head.weight"] = ("BF16", (vocab, hidden))
    return tensors


def ensure_checkpoint(directory: Path, config: dict, shards: int) -> dict:
    """Write the sparse checkpoint unless the directory already holds this one."""
    tensors = published_layout(config)
    index = directory / INDEX_NAME
    if (
        not index.is_file()
        or json.loads(index.read_text())["weight_map"].keys() != tensors.keys()
        or len(list(directory.glob("*.safetensors"))) != shards
    ):
        for stale in directory.glob("*.safetensors"):
            stale.unlink()
        write_sparse_checkpoint(directory, tensors, shards, {"format": "pt"})
    return tensors


def run_once(directory: Path, output: Path) -> dict:
    """One CLI run in a fresh process: wall time and that child's peak RSS."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest_dummyweights", "manifest", str(directory), "-o", str(output)], check=True, capture_output=True
    )
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def run_check(directory: Path, overrides: dict) -> dict:
    """Lazy full-size construction, then the structure check: seconds per step and the counts it reports."""
    from pytest_dummyweights import DummySpec, check_model, plan_build
    from pytest_dummyweights._building.construct import construct

    start = time.perf_counter()
    plan = plan_build(DummySpec(str(CONFIG.parent), dtype="bfloat16", overrides=overrides or None))
    model = construct(plan.factory, plan.loaded_config.model_config, "bfloat16")
    constructed = time.perf_counter()
    manifest = read_manifest(directory)
    read = time.perf_counter()
    report = check_model(model, manifest)
    checked = time.perf_counter()
    print("\n".join(report.table()[:3]))
    return {
        "check_construct_seconds": constructed - start,
        "check_manifest_seconds": read - constructed,
        "check_compare_seconds": checked - read,
        "check_missing": len(report.missing),
        "check_unexpected": len(report.unexpected),
        "check_shape_mismatches": len(report.shape_mismatches),
        "check_dtype_mismatches": len(report.dtype_mismatches),
        "check_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--check", action="store_true", help="also check the full-size PaddleFormers model against the manifest")
    parser.add_argument(
        "--dir", type=Path, default=REPO / "bench" / ".checkpoints" / "deepseek-v3-sparse", help="where the sparse checkpoint goes"
    )
    parser.add_argument("--shards", type=int, default=SHARDS)
    parser.add_argument(
        "--set", type=parse_assignment, action="append", default=[], metavar="KEY=VALUE", help="override a config key, to shrink it"
    )
    args = parser.parse_args()
    directory, overrides = args.dir, dict(args.set)
    tensors = ensure_checkpoint(directory, {**json.loads(CONFIG.read_text()), **overrides}, args.shards)
    files = sorted(directory.glob("*.safetensors"))
    apparent = sum(f.stat().st_size for f in files)
    on_disk = sum(f.stat().st_blocks * 512 for f in files)
    output = directory.parent / "deepseek-v3.manifest.json"
    runs = [run_once(directory, output) for _ in range(args.repeat)]  # RUSAGE_CHILDREN's max is over all runs
    start = time.perf_counter()
    manifest = read_manifest(directory)
    in_process = time.perf_counter() - start
    assert len(manifest.tensors) == len(tensors) and manifest.index_problems == []
    result = {
        "shards": len(files),
        "tensors": len(tensors),
        "apparent_gb": apparent / 1e9,
        "on_disk_mb": on_disk / 1e6,
        "manifest_kb": output.stat().st_size / 1e3,
        "total_bytes": manifest.total_bytes,
        "cli_seconds_median": statistics.median(r["seconds"] for r in runs),
        "cli_seconds_min": min(r["seconds"] for r in runs),
        "cli_peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "read_manifest_seconds": in_process,
    }
    if args.check:
        result.update(run_check(directory, overrides))
    for key, value in result.items():
        print(f"{key:<24}{value:,.3f}" if isinstance(value, float) else f"{key:<24}{value:,}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
