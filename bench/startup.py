"""What installing the plugin costs every pytest run: a one-test file in a venv with the plugin's wheel installed
and in one without it, in one run.

    python bench/startup.py [--runs 20] [--json PATH]

Installed, the plugin autoloads in every pytest run of its environment, ``--help`` included, so loading it must
stay cheap. The bench makes two fresh venvs with this environment's pytest and pytest-xdist (from the package
index), and installs the checkout's wheel, with its dependencies, into one of them: as a user has it, so pytest
rewrites the plugin's modules (it marks an installed plugin's package for assertion rewriting; an editable
install is not marked) and the ``.pth`` start-up hook of interception is there. Each run is a fresh
``python -m pytest -q`` of a one-test file, the two venvs interleaved so that load from other jobs falls on both
alike. Two modes:

- bytecode on (Python's default): pip compiled the modules and pytest keeps its rewritten ones after its first
  run, as on a developer's machine or a CI runner;
- ``PYTHONDONTWRITEBYTECODE=1`` (common in containers): pytest writes no rewritten modules, so every run
  rewrites every plugin module it imports. Measured first, before anything is cached.

Reports the medians of the wall time and of the CPU time (user and system) and their differences, the median of
the rounds' paired differences (each round runs both, back to back, which cancels the machine's drift), and
which of the plugin's modules a run without builds imports (the
fewer the better: numpy and Paddle wait for the first build, and the build's machinery for its first use).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "paddle", "paddleformers", "diff_cover", "coverage", "filelock", "xxhash")
MODES = {"bytecode off (PYTHONDONTWRITEBYTECODE=1)": "1", "bytecode on": None}
PROBE = (
    "import sys, pytest; pytest.main(['-q', '-p', 'no:cacheprovider']); "
    f"print(sorted(m for m in sys.modules if m.startswith('pytest_dummyweights') or m.split('.')[0] in {HEAVY!r}))"
)


def clean_environment(dont_write_bytecode: str | None) -> dict[str, str]:
    """This environment without Python, pytest or coverage variables, which would reach into the fresh venvs."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "PYTEST", "COV"))}
    return environment if dont_write_bytecode is None else {**environment, "PYTHONDONTWRITEBYTECODE": dont_write_bytecode}


def make_venv(where: Path, requirements: list[str]) -> Path:
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements]
    subprocess.run(pip, env=clean_environment(None), check=True)
    return python


def build_wheel(out: Path) -> Path:
    """The checkout's wheel, built from a copy of what it is made of (a stale build/ cannot leak in)."""
    source = out / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "MANIFEST.in", "pytest_dummyweights.pth"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "pytest_dummyweights", source / "pytest_dummyweights", ignore=shutil.ignore_patterns("__pycache__"))
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps", "-w", str(out), str(source)]
    subprocess.run(command, check=True)
    (wheel,) = out.glob("pytest_dummyweights-*.whl")
    return wheel


def one_run(python: Path, project: Path, environment: dict[str, str]) -> tuple[float, float]:
    """Wall seconds of one pytest run, and the CPU seconds (user and system) it used: on a shared machine the
    CPU time is the steadier of the two, for time spent waiting for a core counts in the wall time only."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    command = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    subprocess.run(command, cwd=project, env=environment, check=True, capture_output=True)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    stack = [f"pytest=={importlib.metadata.version('pytest')}", f"pytest-xdist=={importlib.metadata.version('pytest-xdist')}"]
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        pythons = {
            "without the plugin": make_venv(work / "without", stack),
            "with the plugin": make_venv(work / "with", [*stack, str(build_wheel(work))]),
        }
        project = work / "project"
        project.mkdir()
        (project / "test_one.py").write_text("def test_one():\n    assert True\n")
        result: dict[str, object] = {"runs": args.runs, "stack": stack, "modes": {}}
        for mode, dont_write_bytecode in MODES.items():
            environment = clean_environment(dont_write_bytecode)
            for python in pythons.values():
                one_run(python, project, environment)  # untimed: warms the file cache (and, bytecode on, pytest's own)
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in pythons}
            for _ in range(args.runs):
                for name, python in pythons.items():
                    times[name].append(one_run(python, project, environment))
            wall = {name: statistics.median(run[0] for run in runs) * 1e3 for name, runs in times.items()}
            cpu = {name: statistics.median(run[1] for run in runs) * 1e3 for name, runs in times.items()}
            cost, cpu_cost = (median["with the plugin"] - median["without the plugin"] for median in (wall, cpu))
            # each round runs both back to back: the median of the rounds' differences cancels the machine's drift
            rounds = zip(times["with the plugin"], times["without the plugin"], strict=True)
            paired = statistics.median(with_plugin[0] - without[0] for with_plugin, without in rounds) * 1e3
            result["modes"][mode] = {  # type: ignore[index]
                "median_ms": wall,
                "plugin_cost_ms": cost,
                "median_cpu_ms": cpu,
                "plugin_cpu_cost_ms": cpu_cost,
                "plugin_cost_paired_ms": paired,
            }
            print(
                f"{mode}: with {wall['with the plugin']:.1f} ms, without {wall['without the plugin']:.1f} ms, cost {cost:+.1f} ms; "
                f"CPU time cost {cpu_cost:+.1f} ms; median of the {args.runs} rounds' differences {paired:+.1f} ms"
            )
        probe = subprocess.run(
            [str(pythons["with the plugin"]), "-c", PROBE],
            cwd=project,
            env=clean_environment(None),
            check=True,
            capture_output=True,
            text=True,
        )
        imported = json.loads(probe.stdout.splitlines()[-1].replace("'", '"'))
    result["imported"] = imported
    heavy = [name for name in imported if not name.startswith("pytest_dummyweights")]
    print(f"a run without builds imports {len(imported) - len(heavy)} of the plugin's modules; heavy ones: {', '.join(heavy) or 'none'}")
    print("  " + " ".join(name.removeprefix("pytest_dummyweights") or "pytest_dummyweights" for name in imported))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
