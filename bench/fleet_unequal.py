"""Four models of very unequal cost under xdist: is ``-n 4`` no slower than ``-n 2`` (issue 17)?

    python bench/fleet_unequal.py [--json PATH] [--keep DIR]

The suite is ``bench/structural_suite/`` (its conftest and tests, copied into a temporary directory) over a
generated ``models.json`` of four models in bfloat16, mapped storage, whose builds differ by two orders of
magnitude: DeepSeek-V3 at full size (671 B parameters, a build of tens of seconds), Llama-3.2-1B at full size
(seconds, most of it its rotary caches), Qwen3-0.6B at full size and Qwen3-30B-A3B shrunk (under a second
each). Each model gets the suite's cheap tests (parameter count and architecture, embedding and depth against
its config, attention and expert shapes, dtypes); no forward pass. The parameter counts are the published
configs' (below), so no model is built before the runs.

The runs reuse ``bench/suite.py``'s machinery: each pytest is a fresh subprocess with plugin autoloading off,
``-p dummyweights -p xdist``; an untimed ``-n 1`` warm-up writes the value stores and the durations file
(``--dummy-write-durations``), then ``-n 1``, ``-n 2`` and ``-n 4`` each read it. "builds" is the run summary's
count of models built by all workers; "workers" the xdist workers that ran (the plugin starts fewer than
``-n`` asks when the learned work units cannot keep more busy). The load average is printed at the start and
the end of the script: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import suite  # bench/suite.py: its pytest runs, machine description and suite files

MODELS = {  # name: config, shrink, parameters (counted from a build of the shipped config)
    "deepseek-v3-full-bf16": ("deepseek-v3", False, 671_026_404_352),
    "llama-3.2-1b-full-bf16": ("llama-3.2-1b", False, 1_235_814_400),
    "qwen3-0.6b-full-bf16": ("qwen3-0.6b", False, 596_049_920),
    "qwen3-30b-a3b-shrunk-bf16": ("qwen3-30b-a3b", True, 811_149_824),
}
ARCHITECTURES = {
    "deepseek-v3": "DeepseekV3ForCausalLM",
    "llama-3.2-1b": "LlamaForCausalLM",
    "qwen3-0.6b": "Qwen3ForCausalLM",
    "qwen3-30b-a3b": "Qwen3MoeForCausalLM",
}
WORKERS = (1, 2, 4)
TARGET = "<= 1.0"  # issue 17: -n 4 no slower than -n 2


def models_json() -> dict:
    """The structural suite's model entries: no recorded values and no forward pass (those need a build first)."""
    return {
        name: {
            "config": str(suite.CONFIGS / config),
            "dtype": "bfloat16",
            "shrink": shrink,
            "overrides": {},
            "forward": False,
            "architecture": ARCHITECTURES[config],
            "parameters": parameters,
            "values": {},
        }
        for name, (config, shrink, parameters) in MODELS.items()
    }


def render(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"machine: {m['cpus']} CPUs, {m['cpu']}, {m['ram_gib']} GiB RAM, python {m['python']}, commit {m['commit']}",
        f"load average at start: {report['load_start'][0]:.1f}, at end: {report['load_end'][0]:.1f}",
        f"suite: {len(MODELS)} models, " + ", ".join(f"{name} {count / 1e9:,.1f} B" for name, (_, _, count) in MODELS.items()),
        "",
        f"{'run':<8}{'wall s':>8}{'builds':>8}{'workers':>9}  load before/after  outcome",
    ]
    for name, result in report["runs"].items():
        lines.append(
            f"{name:<8}{result['wall_s']:>8.1f}{result['builds']:>8}{result['started']:>9}  "
            f"{result['load_before'][0]:>5.1f} / {result['load_after'][0]:<5.1f}     {result['outcome']}"
        )
    lines += ["", "ratios (one run):"] + [
        f"  {name:<12}{value:>6.2f}  {report['targets'].get(name, '')}".rstrip() for name, value in report["ratios"].items()
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the report here")
    parser.add_argument("--keep", help="generate the suite into this directory and keep it")
    args = parser.parse_args()
    load_start = os.getloadavg()
    print(f"load average at start: {load_start[0]:.1f} {load_start[1]:.1f} {load_start[2]:.1f}", file=sys.stderr, flush=True)
    suite_dir = Path(args.keep or tempfile.mkdtemp(prefix="unequal-suite-"))
    suite_dir.mkdir(parents=True, exist_ok=True)
    suite.write_suite(suite_dir, models_json())
    # untimed: value stores, imports, and the durations file (which model each test uses, build seconds)
    suite.run_pytest(suite.Run("warm-up", "unequal", "dummy", 1, "mapped", ("--dummy-write-durations",)), suite_dir)
    runs = [suite.Run(f"-n {workers}", "unequal", "dummy", workers, "mapped") for workers in WORKERS]
    report = {"machine": suite.machine(), "models": models_json(), "load_start": load_start, "runs": suite.timed_runs(runs, suite_dir)}
    report["load_end"] = os.getloadavg()
    wall = {name: result["wall_s"] for name, result in report["runs"].items()}
    report["ratios"] = {"-n 4 / -n 2": wall["-n 4"] / wall["-n 2"], "-n 2 / -n 1": wall["-n 2"] / wall["-n 1"]}
    report["targets"] = {"-n 4 / -n 2": TARGET}
    suite.publish(render(report), report, args.json)
    if not args.keep:
        shutil.rmtree(suite_dir)


if __name__ == "__main__":
    main()
