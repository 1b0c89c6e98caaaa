"""What ``--dummy-weights`` saves a suite that loads checkpoints itself: both speed-ups, in one run.

    python bench/intercept.py [--runs 1] [--dir DIR] [--set key=value ...] [--json PATH]

A full-size Qwen2.5-0.5B checkpoint (the published config, ``configs/qwen2.5-0.5b``; bfloat16 safetensors of
0.99 GB in Hugging Face layout, written once with ``save_pretrained`` under ``DIR``, default
``bench/.checkpoints/``) is loaded by an unchanged two-test suite, run as ``python -m pytest`` with and without
``--dummy-weights``, the two variants interleaved ``--runs`` times:

- in-process load: a test times ``AutoModelForCausalLM.from_pretrained(checkpoint, convert_from_hf=True)``;
- stand-in server: a test starts ``python -m engine_models.standin_server checkpoint`` with ``subprocess.Popen``,
  times it to its ``ready`` line (imports, then the load, in float32 as a CPU server does), and asks it one
  forward pass.

Each answer carries a digest of one weight, checked against the checkpoint's tensor (real runs) and against a
dummy build with the runs' seed (dummy runs): a speed-up with the wrong weights would not count. Reports the
medians, the two speed-ups and the load average before and after. ``--set`` shrinks the model (the project's
test of this script). The checkpoint is read from the page cache after the first run: real loading is timed warm.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # engine_models: the checkpoint writer, the digests, the stand-in server

from engine_models.pretrained import checkpoint_digest, dummy_digest, published_config, write_pretrained  # noqa: E402

from pytest_dummyweights.cli import parse_assignment  # noqa: E402

SUITE = """
import json, os, subprocess, sys, time

from paddleformers.transformers import AutoModelForCausalLM

from engine_models.pretrained import weight_digest

CHECKPOINT = os.environ["BENCH_CHECKPOINT"]


def report(key, value):
    with open(os.environ["BENCH_OUT"], "a") as out:
        out.write(json.dumps({key: value}) + "\\n")


def test_in_process_load():
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(CHECKPOINT, convert_from_hf=True)
    report("load", {"seconds": time.perf_counter() - started, "digest": weight_digest(model)})


def test_server():
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "engine_models.standin_server", CHECKPOINT], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        while server.stdout.readline().strip() != "ready":
            pass
        ready = time.perf_counter() - started
        server.stdin.write("[1, 2, 3]\\n")
        server.stdin.flush()
        answer = json.loads(server.stdout.readline())
    finally:
        server.kill()
        server.wait()
    report("server", {"seconds": ready, "digest": answer["digest"]})
"""
VARIANTS = {"real": (), "dummy": ("--dummy-weights",)}


def checkpoint_for(directory: Path, overrides: dict) -> Path:
    """The checkpoint of the (overridden) config, written on first use."""
    name = "qwen2.5-0.5b" + "".join(f"-{key}{value}" for key, value in sorted(overrides.items()))
    checkpoint = directory / name
    if not (checkpoint / "config.json").is_file():
        checkpoint.mkdir(parents=True, exist_ok=True)
        print(f"writing the checkpoint {checkpoint} (once)", flush=True)
        write_pretrained(checkpoint, overrides)
    return checkpoint


def one_run(project: Path, checkpoint: Path, variant: str) -> dict:
    out = project / f"{variant}.jsonl"
    out.unlink(missing_ok=True)
    environment = {
        **os.environ,
        "BENCH_CHECKPOINT": str(checkpoint),
        "BENCH_OUT": str(out),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "dummyweights", *VARIANTS[variant]]
    done = subprocess.run(command, cwd=project, env=environment, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"the {variant} run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    found: dict = {}
    for line in out.read_text().splitlines():
        found.update(json.loads(line))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=ROOT / "bench" / ".checkpoints", help="where the checkpoint is written once")
    parser.add_argument("--set", type=parse_assignment, action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    overrides = dict(args.set)
    checkpoint = checkpoint_for(args.dir, overrides)
    expected = {
        "real": checkpoint_digest(checkpoint),
        "dummy": {"load": dummy_digest(overrides), "server": dummy_digest(overrides, "float32")},
    }
    load_before = os.getloadavg()
    times: dict[str, dict[str, list[float]]] = {variant: {"load": [], "server": []} for variant in VARIANTS}
    with tempfile.TemporaryDirectory() as directory:
        project = Path(directory)
        (project / "test_suite.py").write_text(textwrap.dedent(SUITE))
        started = time.perf_counter()
        for _ in range(args.runs):
            for variant in VARIANTS:
                found = one_run(project, checkpoint, variant)
                for case in ("load", "server"):
                    want = expected["real"] if variant == "real" else expected["dummy"][case]
                    if found[case]["digest"] != want:
                        raise SystemExit(f"{variant} {case}: the weights' digest is {found[case]['digest']}, expected {want}")
                    times[variant][case].append(found[case]["seconds"])
    medians = {variant: {case: statistics.median(values) for case, values in cases.items()} for variant, cases in times.items()}
    config = published_config(overrides)
    result = {
        "model": {"config": "configs/qwen2.5-0.5b", "overrides": overrides, "checkpoint": str(checkpoint)},
        "checkpoint_bytes": sum(file.stat().st_size for file in checkpoint.glob("*.safetensors")),
        "layers": config["num_hidden_layers"],
        "runs": args.runs,
        "median_seconds": medians,
        "speedup": {case: medians["real"][case] / medians["dummy"][case] for case in ("load", "server")},
        "weights_checked": "real runs: the checkpoint's values; dummy runs: the dummy build's (seed 0)",
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "wall_seconds": time.perf_counter() - started,
    }
    print(f"checkpoint {checkpoint} ({result['checkpoint_bytes'] / 1e9:.2f} GB), {args.runs} run(s) of each variant")
    for case, what in (("load", "in-process from_pretrained"), ("server", "stand-in server, time to ready")):
        real, dummy = medians["real"][case], medians["dummy"][case]
        print(f"{what:>32}: real {real:7.2f} s, --dummy-weights {dummy:7.2f} s: {result['speedup'][case]:5.1f}x")
    before, after = (" ".join(f"{x:.2f}" for x in loads) for loads in (load_before, result["loadavg_after"]))
    print(f"load average: {before} before, {after} after")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
