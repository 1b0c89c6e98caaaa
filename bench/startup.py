"""What loading the plugin costs every pytest run: a one-test file with the plugin and without it, in one run.

    python bench/startup.py [--runs 20] [--json PATH]

Installed, the plugin autoloads in every pytest run of its environment, ``--help`` included, so its import must
stay cheap. Each run is a fresh ``python -m pytest -q`` of a one-test file in a temporary directory, the two
variants interleaved so that load from other jobs falls on both alike: autoloaded (as installed), and
``-p no:dummyweights`` (pytest then never imports it: the run without the plugin). Reports the medians, their
difference, and which heavy modules loading the plugin imports (none is the goal: numpy and Paddle wait for the
first build).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("numpy", "paddle", "paddleformers", "diff_cover", "coverage", "filelock")
VARIANTS = {"with the plugin": (), "without the plugin": ("-p", "no:dummyweights")}


def with_bytecode(bytecode_dir: Path) -> dict[str, str]:
    """This environment with Python's bytecode cache on, kept in ``bytecode_dir``: an installed package has its
    bytecode (pip compiles it), and a run without it would time the compiler (``PYTHONDONTWRITEBYTECODE`` is
    set on some machines), not the import."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**environment, "PYTHONPYCACHEPREFIX": str(bytecode_dir)}


def one_run(directory: Path, extra: tuple[str, ...], environment: dict[str, str]) -> float:
    start = time.perf_counter()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    subprocess.run(command, cwd=directory, env=environment, check=True, capture_output=True)
    return time.perf_counter() - start


def heavy_imports() -> list[str]:
    """The heavy modules that importing the plugin module (what autoloading does) brings in."""
    probe = f"import sys, pytest_dummyweights.plugin; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, tempfile.TemporaryDirectory() as bytecode_dir:
        (Path(directory) / "test_one.py").write_text("def test_one():\n    assert True\n")
        environment = with_bytecode(Path(bytecode_dir))
        one_run(Path(directory), (), environment)  # untimed: warms the file cache and writes the bytecode
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(args.runs):
            for name, extra in VARIANTS.items():
                times[name].append(one_run(Path(directory), extra, environment))
    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "runs": args.runs,
        "median_seconds": medians,
        "plugin_cost_ms": (medians["with the plugin"] - medians["without the plugin"]) * 1e3,
        "heavy_imports": heavy_imports(),
    }
    for name, median in medians.items():
        print(f"{name:>20}: median {median * 1e3:7.1f} ms over {args.runs} runs")
    heavy = result["heavy_imports"] or "none"
    print(f"{'plugin cost':>20}: {result['plugin_cost_ms']:+7.1f} ms; heavy modules imported by loading it: {heavy}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
