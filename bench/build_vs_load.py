"""Dummy build vs. real loading: wall time and peak RSS of each way to get a model, in one run.

    python bench/build_vs_load.py [CONFIG] [--dtype bfloat16] [--repeat 3] [--json PATH] [--shrink] [--set key=value ...]
                                  [--cases build,build_filled,real_load]

CONFIG defaults to the shipped Qwen3-0.6B config at full size. Each case runs in a fresh subprocess
(this script re-invoked with a hidden ``--case NAME``), which imports everything first, notes its RSS,
then times only the case and prints one JSON line. Cases run round-robin, ``--repeat`` rounds, after
an untimed warm-up; the table shows the median and the minimum wall time.

The floor for the ratio is ``paddle.zeros`` per parameter: the build's own allocator and page size.
One NumPy buffer of the same bytes is shown too; NumPy advises huge pages for it, and their first
touch on this kind of VM varied from 0.2 s to 2 s for 1.2 GB, too noisy to divide by.

The real-load case needs a checkpoint: the first run writes one with the model's own
``save_pretrained(..., safe_serialization=True)`` under ``bench/.checkpoints/`` (git-ignored) and later
runs reuse it while the config, dtype and PaddleFormers version match.

``--cases`` times only the cases named (``build`` always runs: the ratios divide by it); ratios whose
cases did not run are left out. ``bench/plot.py`` draws the docs' plots from the ``--json`` reports.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_dummyweights.cli import parse_assignment  # light: imports neither Paddle nor PaddleFormers

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE.parent / "configs" / "qwen3-0.6b"
CHECKPOINTS = HERE / ".checkpoints"
RESULT_PREFIX = "BENCH-RESULT "
MIB = 2**20
FLOOR_METHOD = "paddle.zeros per parameter shape and dtype"
RSS_FACTOR, RSS_SLACK_MB = 1.15, 300
TARGETS = {  # ratio -> (numerator, denominator, comparison, bound)
    "build / floor": ("build", "floor", "<=", 2.0),
    "real load / build": ("real_load", "build", ">=", 10.0),
    "naive / build": ("naive", "build", ">=", 10.0),
    "default init / build": ("default_init", "build", ">=", None),
    "build (repeat) / build": ("build_repeat", "build", "<=", None),
}


# --------------------------------------------------------------------------- the child: one case


@dataclasses.dataclass
class Context:
    """What a case needs, rebuilt in each child from the command line."""

    config: str
    dtype: str
    overrides: dict[str, Any]
    shrink: bool
    nbytes: int
    shapes: list  # [shape, dtype name] per unique parameter
    checkpoint: str | None
    checkpoints: Path = CHECKPOINTS
    storage: str | None = None  # the build's default (mapped on CPU under Linux), or "filled"

    def spec(self) -> Any:
        from pytest_dummyweights import DummySpec

        return DummySpec(
            self.config, dtype=self.dtype, device="cpu", overrides=self.overrides or None, shrink=self.shrink, storage=self.storage
        )

    def model_config(self) -> tuple[type, Any]:
        """The PaddleFormers class and config object, as the build makes them (dtype set on the config)."""
        from pytest_dummyweights._building.config import load_config
        from pytest_dummyweights._building.resolve import paddleformers_class

        model_config = load_config(self.config, self.overrides, shrink=self.shrink).model_config
        model_config.dtype = self.dtype
        cls, where = paddleformers_class(model_config.architectures[0])
        if cls is None:
            raise SystemExit(where)
        return cls, model_config


@dataclasses.dataclass
class Case:
    """A way to get the model. ``prepare`` runs untimed, ``run`` is timed, ``check`` runs untimed after."""

    label: str
    run: Callable[[Context, Any], Any]
    prepare: Callable[[Context], Any] = lambda ctx: None
    check: Callable[[Context, Any, Any], dict] = lambda ctx, state, result: {}


def run_floor(ctx: Context, _: Any) -> Any:
    """Allocate and zero the parameters' bytes as the build's allocator lays them out: one tensor per parameter."""
    import paddle

    return [paddle.zeros(shape, dtype=dtype) for shape, dtype in ctx.shapes]


def run_floor_numpy(ctx: Context, _: Any) -> Any:
    """The same bytes as one NumPy buffer; NumPy asks for huge pages, whose first touch varies a lot on a VM."""
    import numpy as np

    buffer = np.empty(ctx.nbytes, dtype=np.uint8)
    buffer.fill(0)  # touches every page
    return buffer


def run_build(ctx: Context, _: Any) -> Any:
    from pytest_dummyweights._building.pipeline import build

    return build(ctx.spec())


def run_build_filled(ctx: Context, state: Any) -> Any:
    """The build with every byte written (``storage="filled"``), as off Linux or on a GPU."""
    return run_build(dataclasses.replace(ctx, storage="filled"), state)


def check_build(ctx: Context, _: Any, result: Any) -> dict:
    return {"phases": result.seconds, "parameters": result.parameters, "nbytes": result.nbytes, "storage": result.init.storage}


def prepare_repeat(ctx: Context) -> Any:
    """The first get builds; then the cache checks the model back in, as after a test (timed apart)."""
    from pytest_dummyweights._cache.model_cache import ModelCache

    cache = ModelCache()
    cache.get(ctx.spec())
    start = time.perf_counter()
    cache.check_loans("bench")
    return cache, time.perf_counter() - start


def run_repeat(ctx: Context, state: Any) -> Any:
    return state[0].get(ctx.spec())


def check_repeat(ctx: Context, state: Any, _: Any) -> dict:
    return {"check_loans_s": state[1]}


def run_naive(ctx: Context, _: Any) -> Any:
    """The published dummy load of Paddle inference engines: lazy construction, then randn per parameter."""
    import paddle

    from pytest_dummyweights._building.construct import construction_guards
    from pytest_dummyweights._values.fill import materialize

    cls, model_config = ctx.model_config()
    std = getattr(model_config, "initializer_range", 0.02)
    with construction_guards(ctx.dtype):
        model = cls(model_config)
    for param in model.parameters():
        materialize(param, zeros=False)  # a lazy parameter has no storage yet: give it one, skip its initializer
        if param.is_floating_point():
            param.set_value((paddle.randn(param.shape, dtype="float32") * std).astype(param.dtype))
        else:
            param.set_value(paddle.zeros(param.shape, dtype=param.dtype))
    return model


def run_default_init(ctx: Context, _: Any) -> Any:
    from pytest_dummyweights._runtime.device import default_dtype

    cls, model_config = ctx.model_config()
    with default_dtype(ctx.dtype):
        return cls(model_config)


def prepare_real_load(ctx: Context) -> Any:
    """Read every checkpoint file once, so the timed load finds the page cache warm."""
    for file in Path(ctx.checkpoint).iterdir():
        with open(file, "rb") as handle:
            while handle.read(64 * MIB):
                pass
    return ctx.model_config()[0]


def run_real_load(ctx: Context, cls: Any) -> Any:
    return cls.from_pretrained(ctx.checkpoint, dtype=ctx.dtype)


def check_real_load(ctx: Context, _: Any, model: Any) -> dict:
    """Prove the load read the weights: the smallest matrix equals the checkpoint's bytes."""
    import numpy as np

    name, param = min(((n, p) for n, p in model.state_dict().items() if len(p.shape) == 2), key=lambda item: int(np.prod(item[1].shape)))
    stored = checkpoint_tensor(Path(ctx.checkpoint), name)
    loaded = param.astype("float32").numpy()
    if stored.shape != loaded.shape or not np.array_equal(stored, loaded):
        raise SystemExit(f"from_pretrained did not load {name} from {ctx.checkpoint}")
    return {"checked_tensor": name, "checked_std": float(loaded.std())}


CASES = {
    "floor": Case("floor (paddle.zeros per parameter)", run_floor),
    "floor_numpy": Case("floor, one NumPy buffer (np.empty().fill(0))", run_floor_numpy),
    "build": Case("build (cold)", run_build, check=check_build),
    "build_filled": Case("build, filled storage (cold)", run_build_filled, check=check_build),
    "build_repeat": Case("build (repeat, in-process cache)", run_repeat, prepare=prepare_repeat, check=check_repeat),
    "naive": Case("naive (LazyGuard + set_value(randn))", run_naive),
    "default_init": Case("default init (PaddleFormers initializers)", run_default_init),
    "real_load": Case("real load (from_pretrained, warm cache)", run_real_load, prepare=prepare_real_load, check=check_real_load),
}


def checkpoint_tensor(directory: Path, name: str) -> Any:
    """One tensor of a safetensors checkpoint as float32, read from the file's header and bytes directly."""
    import numpy as np

    decode = {
        "BF16": lambda raw: (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32),
        "F16": lambda raw: np.frombuffer(raw, np.float16).astype(np.float32),
        "F32": lambda raw: np.frombuffer(raw, np.float32),
    }
    for file in sorted(directory.glob("*.safetensors")):
        with open(file, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
            if name not in header:
                continue
            entry = header[name]
            start, end = entry["data_offsets"]
            handle.seek(8 + length + start)
            return decode[entry["dtype"]](handle.read(end - start)).reshape(entry["shape"])
    raise SystemExit(f"tensor {name} is not in the checkpoint {directory}")


def current_rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    """ru_maxrss (kilobytes on Linux); the kernel updates it lazily, so never below the current RSS."""
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, current_rss())


def import_everything(ctx: Context) -> None:
    """The imports every case shares, done before the baseline so no case pays for them."""
    import numpy  # noqa: F401
    import paddle  # noqa: F401

    import pytest_dummyweights._building.config
    import pytest_dummyweights._building.pipeline  # noqa: F401

    ctx.model_config()  # imports the model's PaddleFormers modules


def run_child(name: str, ctx: Context) -> dict:
    import gc

    case = CASES[name]
    import_everything(ctx)
    gc.collect()
    baseline = current_rss()
    state = case.prepare(ctx)
    start = time.perf_counter()
    result = case.run(ctx, state)
    wall = time.perf_counter() - start
    peak = peak_rss()
    return {
        "case": name,
        "wall_s": wall,
        "peak_rss_mb": peak / MIB,
        "baseline_rss_mb": baseline / MIB,
        "rss_over_baseline_mb": (peak - baseline) / MIB,
        **case.check(ctx, state, result),
    }


def buffer_bytes(model: Any) -> int:
    """Bytes of the model's buffers (rotary caches and the like): memory a build holds beyond the parameters."""
    import numpy as np

    return sum(int(np.prod(buffer.shape)) * buffer.element_size() for _, buffer in model.named_buffers())


def prepare_checkpoint(ctx: Context) -> dict:
    """Build once (a warm-up too), report the model's size, and write the checkpoint unless a matching one exists."""
    import paddle
    import paddleformers

    from pytest_dummyweights._building.pipeline import build

    result = build(ctx.spec())
    key = json.dumps({"config": result.loaded_config.raw, "dtype": ctx.dtype, "paddleformers": paddleformers.__version__}, sort_keys=True)
    architecture = result.model_config.architectures[0]
    directory = ctx.checkpoints / f"{architecture}-{ctx.dtype}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    meta = directory / "bench-meta.json"
    written = False
    if not (meta.is_file() and meta.read_text() == key):
        partial = directory.with_name(directory.name + f".partial-{os.getpid()}")
        result.model.save_pretrained(str(partial), safe_serialization=True)
        (partial / "bench-meta.json").write_text(key)  # written last: marks the checkpoint complete
        shutil.rmtree(directory, ignore_errors=True)
        partial.rename(directory)
        written = True
    return {
        "case": "prepare",
        "checkpoint": str(directory),
        "checkpoint_written": written,
        "architecture": architecture,
        "class": f"{type(result.model).__module__}.{type(result.model).__qualname__}",
        "parameters": result.parameters,
        "nbytes": result.nbytes,
        "buffer_bytes": buffer_bytes(result.model),
        "shapes": [[list(param.shape), str(param.dtype).removeprefix("paddle.")] for _, param in result.model.named_parameters()],
        "paddle": paddle.__version__,
        "paddleformers": paddleformers.__version__,
    }


# --------------------------------------------------------------------------- the parent: orchestrate, report


def spawn(args: argparse.Namespace, case: str, model_file: Path | None = None, checkpoint: str | None = None) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), str(args.config), "--dtype", args.dtype, "--case", case]
    command += ["--shrink"] if args.shrink else []
    command += ["--model-file", str(model_file)] if model_file else []
    command += ["--checkpoint", checkpoint] if checkpoint else ["--checkpoints", str(args.checkpoints)]
    for key, value in args.set:
        command += ["--set", f"{key}={json.dumps(value)}"]
    process = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    lines = [line for line in process.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if process.returncode != 0 or not lines:
        raise SystemExit(f"case {case} failed (exit {process.returncode}):\n{process.stderr[-4000:]}")
    return json.loads(lines[-1][len(RESULT_PREFIX) :])


def machine() -> dict:
    def first(path: str, key: str) -> str:
        try:
            with open(path) as handle:
                return next((line.split(":", 1)[1].strip() for line in handle if line.startswith(key)), "?")
        except OSError:
            return "?"

    ram_kb = first("/proc/meminfo", "MemTotal").split()[0]
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": first("/proc/cpuinfo", "model name"),
        "ram_gib": round(int(ram_kb) / 2**20, 1) if ram_kb.isdigit() else None,
        "python": platform.python_version(),
        "load_avg_start": os.getloadavg(),
    }


def code_state() -> str:
    """The commit measured, and which package files differ from it (the build is measured as it is on disk)."""

    def git(*words: str) -> str:
        try:
            return subprocess.run(["git", *words], cwd=HERE, capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = git("status", "--porcelain", "--", "../pytest_dummyweights").splitlines()
    return f"{git('rev-parse', '--short', 'HEAD').strip() or '?'}" + (
        f" + uncommitted {', '.join(line[3:] for line in changed)}" if changed else ""
    )


def summarize(runs: list[dict]) -> dict:
    walls = [run["wall_s"] for run in runs]
    return {
        "wall_median_s": statistics.median(walls),
        "wall_min_s": min(walls),
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        "rss_over_baseline_mb": max(run["rss_over_baseline_mb"] for run in runs),
        "runs": runs,
    }


def ratios(cases: dict) -> dict:
    out = {}
    for label, (top, bottom, comparison, bound) in TARGETS.items():
        if top not in cases or bottom not in cases:
            continue
        median = cases[top]["wall_median_s"] / cases[bottom]["wall_median_s"]
        minimum = cases[top]["wall_min_s"] / cases[bottom]["wall_min_s"]
        met = None if bound is None else (median <= bound if comparison == "<=" else median >= bound)
        out[label] = {"median": median, "min": minimum, "target": None if bound is None else f"{comparison} {bound:g}", "met": met}
    return out


def rss_check(cases: dict, nbytes: int) -> dict:
    limit = RSS_FACTOR * nbytes / MIB + RSS_SLACK_MB
    increase = cases["build"]["rss_over_baseline_mb"]
    return {
        "build_rss_increase_mb": increase,
        "limit_mb": limit,
        "met": increase <= limit,
        "rule": f"build peak RSS increase <= {RSS_FACTOR} x param bytes + {RSS_SLACK_MB} MB",
    }


def verdict(met: bool | None) -> str:
    return {True: "ok", False: "MISSED", None: ""}[met]


def render(report: dict) -> str:
    m, model = report["machine"], report["model"]
    lines = [
        f"machine: {m['nproc']} CPUs, {m['cpu']}, {m['ram_gib']} GiB RAM, python {m['python']}, paddle {model['paddle']}, "
        f"paddleformers {model['paddleformers']}; load average at start {' '.join(f'{x:.2f}' for x in m['load_avg_start'])}",
        f"code: {m['code']}",
        f"model: {model['class']} from {report['config']}{' shrunk' if report['shrink'] else ''} {report['overrides'] or ''}".rstrip(),
        f"       {report['dtype']}, {model['parameters']:,} parameters, {model['nbytes']:,} bytes ({model['nbytes'] / MIB:,.1f} MiB); "
        f"buffers {model['buffer_bytes'] / MIB:,.1f} MiB (in neither the floor nor the RSS bound)",
        f"runs: {report['repeat']} per case, round-robin, each in a fresh subprocess, after an untimed warm-up; floor = {FLOOR_METHOD}",
        "",
        f"{'case':<46}{'wall s median':>14}{'min':>9}{'peak RSS MB':>13}{'RSS over baseline MB':>22}",
    ]
    for name, case in report["cases"].items():
        lines.append(
            f"{CASES[name].label:<46}{case['wall_median_s']:>14.3f}{case['wall_min_s']:>9.3f}"
            f"{case['peak_rss_mb']:>13.0f}{case['rss_over_baseline_mb']:>22.0f}"
        )
    lines += ["", f"{'ratio of wall times':<28}{'median':>8}{'min':>8}  target"]
    for label, ratio in report["ratios"].items():
        lines.append(f"{label:<28}{ratio['median']:>8.2f}{ratio['min']:>8.2f}  {ratio['target'] or ''} {verdict(ratio['met'])}".rstrip())
    phases = report["build_phases_median_s"]
    rss = report["rss_check"]
    lines += [
        "",
        "build phases, median s: " + ", ".join(f"{phase} {seconds:.3f}" for phase, seconds in phases.items()),
        f"RSS: {rss['rule']}: {rss['build_rss_increase_mb']:,.0f} MB <= {rss['limit_mb']:,.0f} MB {verdict(rss['met'])}",
        "peak RSS of build (repeat) includes its untimed first build; RSS columns are the maximum over runs",
    ]
    return "\n".join(lines)


def run_benchmark(args: argparse.Namespace) -> dict:
    args.config = Path(args.config).resolve()
    start_machine = {**machine(), "code": code_state()}
    prepared = spawn(args, "prepare")
    nbytes, checkpoint = prepared["nbytes"], prepared["checkpoint"]
    runs: dict[str, list[dict]] = {name: [] for name in CASES if name in args.cases}
    with tempfile.TemporaryDirectory() as scratch:
        model_file = Path(scratch) / "model.json"  # the parameters' shapes, for the floor
        model_file.write_text(json.dumps({"nbytes": nbytes, "shapes": prepared.pop("shapes")}))
        spawn(args, "floor", model_file)  # warm-up, untimed: the first touch of fresh memory can be slow on a VM
        for round_index in range(args.repeat):
            for name in runs:
                runs[name].append(spawn(args, name, model_file, checkpoint))
                print(f"  round {round_index + 1}/{args.repeat} {name:<13}{runs[name][-1]['wall_s']:8.3f} s", file=sys.stderr)
    cases = {name: summarize(case_runs) for name, case_runs in runs.items()}
    phases = {phase: statistics.median(run["phases"][phase] for run in runs["build"]) for phase in runs["build"][0]["phases"]}
    return {
        "machine": start_machine,
        "config": str(args.config),
        "overrides": dict(args.set),
        "shrink": args.shrink,
        "dtype": args.dtype,
        "repeat": args.repeat,
        "floor_method": FLOOR_METHOD,
        "model": prepared,
        "cases": cases,
        "ratios": ratios(cases),
        "build_phases_median_s": phases,
        "rss_check": rss_check(cases, nbytes),
    }


def parse_cases(text: str) -> tuple[str, ...]:
    names = {name.strip() for name in text.split(",") if name.strip()}
    unknown = names - set(CASES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown case {', '.join(sorted(unknown))}: use some of {', '.join(CASES)}")
    return tuple(name for name in CASES if name in names | {"build"})


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", default=str(DEFAULT_CONFIG), help="a directory holding config.json (default: %(default)s)")
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the table shows median and min (default: 3)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON here")
    parser.add_argument(
        "--set",
        type=parse_assignment,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set num_hidden_layers=2 (repeatable)",
    )
    parser.add_argument("--shrink", action="store_true", help="shrink the config first (fewer layers and experts), as shrink=True does")
    parser.add_argument(
        "--cases",
        type=parse_cases,
        default=tuple(CASES),
        metavar="NAME,...",
        help=f"the cases to time, of {', '.join(CASES)} (default: all; build always runs)",
    )
    parser.add_argument(
        "--checkpoints", type=Path, default=CHECKPOINTS, help="where checkpoints are written and reused (default: %(default)s)"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per case subprocess")
    parser.add_argument("--case", choices=("prepare", *CASES), help=argparse.SUPPRESS)
    parser.add_argument("--model-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    if args.case:
        model = json.loads(args.model_file.read_text()) if args.model_file else {"nbytes": 0, "shapes": []}
        ctx = Context(
            str(args.config),
            args.dtype,
            dict(args.set),
            args.shrink,
            model["nbytes"],
            model["shapes"],
            args.checkpoint,
            args.checkpoints.resolve(),
        )
        result = prepare_checkpoint(ctx) if args.case == "prepare" else run_child(args.case, ctx)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    report = run_benchmark(args)
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
