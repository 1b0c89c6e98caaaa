"""Mapped vs. filled storage: build time against the model's own constructor, and memory, in one run.

    python bench/mapped_build.py [--json PATH] [--skip-deepseek]

Cases, each in a fresh subprocess (this script re-invoked with ``--case``), timed after imports (Paddle,
PaddleFormers, the model class) with the value store already made (it persists across runs):
- Qwen3-0.6B and Llama-3.2-1B, bfloat16, full size: construct only (config, class, constructor under
  the build's guards), build ``filled``, build ``mapped``. Resident growth from init is the build's
  RSS at the end minus the construct-only case's.
- DeepSeek-V3, bfloat16, the published config with only ``seq_length`` overridden: construct only
  (the parameter count of the lazily constructed class), and the mapped build twice, in two
  processes, each reading the same parameters' bits (their digests must match).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "configs"
MODELS = {"qwen3-0.6b": {}, "llama-3.2-1b": {}, "deepseek-v3": {"seq_length": 8}}
READ_BACK = ("model.layers.30.mlp.experts.100.up_proj.weight", "model.layers.60.self_attn.o_proj.weight", "model.norm.weight")
RESULT_PREFIX = "BENCH-RESULT "
GB = 1e9


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))


def run_case(config: str, case: str) -> dict:
    """One case in this process: imports first (untimed), then the timed work."""
    import numpy as np

    from pytest_dummyweights import DummySpec, execute, plan_build
    from pytest_dummyweights._building.construct import construct
    from pytest_dummyweights._runtime import private_paddle as internals

    storage = None if case == "construct" else case
    spec = DummySpec(str(CONFIGS / config), dtype="bfloat16", device="cpu", overrides=MODELS[config] or None, storage=storage)
    plan_build(spec)  # imports PaddleFormers and the class: not timed
    rss_before = rss_bytes()
    start = time.perf_counter()
    plan = plan_build(spec)
    if case == "construct":
        model = construct(plan.factory, plan.loaded_config.model_config, "bfloat16")
        parameters = sum(int(np.prod(param.shape)) for _, param in model.named_parameters())
        phases = {}
    else:
        result = execute(plan)
        model, parameters, phases = result.model, result.parameters, result.seconds
    seconds = time.perf_counter() - start
    out = {
        "config": config,
        "case": case,
        "seconds": seconds,
        "phases": phases,
        "parameters": parameters,
        "tensors": len(list(model.named_parameters())),
        "rss_before": rss_before,
        "rss_after": rss_bytes(),
    }
    out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # before the reads below
    if case == "mapped":
        from pytest_dummyweights._values import mapped

        named = dict(model.named_parameters())
        out["mapped"] = sum(mapped.is_mapped(param) for param in named.values())
        with open("/proc/self/maps") as maps:
            out["process_mappings"] = sum(1 for _ in maps)
        out["digests"] = {name: hashlib.sha256(internals.host_view(named[name])).hexdigest() for name in READ_BACK if name in named}
        out.update(isolation_cost(model, [param for param in named.values() if mapped.is_mapped(param)]))
    return out


def isolation_cost(model, params: list) -> dict:
    """What a test's isolation costs: write one element of the largest mapped parameter, then find the
    model's written pages (one scan), and restore them."""
    from pytest_dummyweights._runtime import private_paddle as internals
    from pytest_dummyweights._values import mapped

    largest = max(params, key=lambda param: param.numel())
    view = internals.host_view(largest)
    view[view.size // 2] ^= 1
    start = time.perf_counter()
    written = mapped.written_bytes(model)
    found = time.perf_counter() - start
    start = time.perf_counter()
    restored = mapped.restore_model(model)
    return {"find_seconds": found, "written_bytes": written, "restore_seconds": time.perf_counter() - start, "restored_bytes": restored}


def spawn(config: str, case: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--case", case, "--config", config], capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode or not lines:
        raise SystemExit(f"case {config}/{case} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT_PREFIX) :])


def isolation_line(run: dict) -> str:
    return (
        f"  isolation over {run['mapped']} mapped parameters, one element written: find written pages {run['find_seconds'] * 1e3:.1f} ms "
        f"({run['written_bytes']} bytes), restore {run['restore_seconds'] * 1e3:.1f} ms ({run['restored_bytes']} bytes)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case")
    parser.add_argument("--config")
    parser.add_argument("--json")
    parser.add_argument("--skip-deepseek", action="store_true")
    args = parser.parse_args()
    if args.case:
        print(RESULT_PREFIX + json.dumps(run_case(args.config, args.case)), flush=True)
        return
    from pytest_dummyweights._values import store

    store.open_store("bfloat16", 0, 0.02)  # made once per machine, like every later run finds it
    results = []
    for config in ("qwen3-0.6b", "llama-3.2-1b"):
        cases = {case: spawn(config, case) for case in ("construct", "filled", "mapped")}
        results += cases.values()
        construct = cases["construct"]
        print(f"{config} bfloat16: construct only {construct['seconds']:.2f} s")
        for case in ("filled", "mapped"):
            built = cases[case]
            print(
                f"  {case:6s} build {built['seconds']:.2f} s (construct + {built['seconds'] - construct['seconds']:+.2f} s; "
                f"init {built['phases']['init']:.3f} s), RSS growth from init "
                f"{(built['rss_after'] - construct['rss_after']) / 1e6:.0f} MB, peak RSS {built['peak_rss'] / GB:.2f} GB"
            )
        print(isolation_line(cases["mapped"]))
    if not args.skip_deepseek:
        construct = spawn("deepseek-v3", "construct")
        first, second = spawn("deepseek-v3", "mapped"), spawn("deepseek-v3", "mapped")
        results += [construct, first, second]
        print(
            f"deepseek-v3 bfloat16 (seq_length=8): construct only {construct['seconds']:.1f} s, "
            f"{construct['parameters'] / 1e9:.1f} B parameters in {construct['tensors']} tensors"
        )
        for run in (first, second):
            print(
                f"  mapped build {run['seconds']:.1f} s (init {run['phases']['init']:.1f} s), peak RSS {run['peak_rss'] / GB:.2f} GB, "
                f"{run['parameters'] / 1e9:.1f} B parameters, {run['mapped']} mapped, {run['process_mappings']} process mappings"
            )
        print(isolation_line(first))
        print(
            f"  same parameter count as constructed: {first['parameters'] == construct['parameters']}; "
            f"same bits read in two processes: {first['digests'] == second['digests']} ({len(first['digests'])} parameters)"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
