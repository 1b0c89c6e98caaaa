"""What isolation costs a cached model: the snapshot taken at its build, and the check after each test, in one run.

    python bench/isolation.py [--json PATH] [--checks 3] [--skip-deepseek]

Models, bfloat16, mapped storage, full size: Qwen3-0.6B and DeepSeek-V3 (the published config with only
``seq_length`` overridden; 75,399 sublayers and 45,396 tensors, which isolation walks and describes after every
test). Each case runs in a fresh subprocess (this script re-invoked with ``--case``): the build (untimed), then
``Snapshot.of`` once and ``Snapshot.check`` ``--checks`` times on the untouched model, as after a test that
changed nothing (the median is reported).

Two variants of each model, interleaved in one run:

- ``as shipped``: the snapshot and the check pause Python's cyclic garbage collector
  (``isolation.collector_paused``);
- ``collector running``: the same code with the pause made a no-op, as before it existed: every collection during
  the walk traverses the millions of tuples the description has made so far.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "configs"
MODELS = {"qwen3-0.6b": None, "deepseek-v3": {"seq_length": 8}}
VARIANTS = ("as shipped", "collector running")
RESULT_PREFIX = "BENCH-RESULT "


class RunningCollector:
    """``gc`` for isolation's module, with ``disable`` a no-op: the collector runs through the walk, as before the pause."""

    isenabled = staticmethod(gc.isenabled)
    enable = staticmethod(gc.enable)

    @staticmethod
    def disable() -> None:
        pass


def run_case(config: str, variant: str, checks: int) -> dict:
    from pytest_dummyweights import build_dummy_model
    from pytest_dummyweights._cache import isolation

    if variant == "collector running":
        isolation.gc = RunningCollector  # type: ignore[assignment]
    model = build_dummy_model(str(CONFIGS / config), dtype="bfloat16", device="cpu", storage="mapped", overrides=MODELS[config])
    start = time.perf_counter()
    snapshot = isolation.Snapshot.of(model)
    snapshot_seconds = time.perf_counter() - start
    check_seconds = []
    for _ in range(checks):
        start = time.perf_counter()
        verdict = snapshot.check(model)
        check_seconds.append(time.perf_counter() - start)
        assert not verdict.rebuild and not verdict.restored, verdict  # nothing changed: nothing to say
    return {
        "config": config,
        "variant": variant,
        "sublayers": sum(1 for _ in model.named_sublayers(include_self=True)),
        "snapshot_seconds": snapshot_seconds,
        "check_seconds": check_seconds,
    }


def spawn(config: str, variant: str, checks: int) -> dict:
    command = [sys.executable, __file__, "--case", variant, "--config", config, "--checks", str(checks)]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode or not lines:
        raise SystemExit(f"case {config}/{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT_PREFIX) :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=VARIANTS)
    parser.add_argument("--config")
    parser.add_argument("--checks", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--skip-deepseek", action="store_true")
    args = parser.parse_args()
    if args.case:
        print(RESULT_PREFIX + json.dumps(run_case(args.config, args.case, args.checks)), flush=True)
        return
    results = []
    for config in [name for name in MODELS if not (args.skip_deepseek and name == "deepseek-v3")]:
        cases = {variant: spawn(config, variant, args.checks) for variant in VARIANTS}
        results += cases.values()
        shipped, running = cases["as shipped"], cases["collector running"]
        print(f"{config} bfloat16, mapped, {shipped['sublayers']} sublayers:")
        for variant, case in cases.items():
            print(f"  {variant:17s}: snapshot {case['snapshot_seconds']:6.2f} s, check {statistics.median(case['check_seconds']):6.2f} s")
        snapshot_ratio = running["snapshot_seconds"] / shipped["snapshot_seconds"]
        check_ratio = statistics.median(running["check_seconds"]) / statistics.median(shipped["check_seconds"])
        print(f"  collector running / as shipped: snapshot {snapshot_ratio:.2f}x, check {check_ratio:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
