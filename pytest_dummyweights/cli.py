"""``python -m pytest_dummyweights``: build a model and show what it cost; write a checkpoint's manifest; gate a coverage XML on
diff coverage."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from pytest_dummyweights._building.config import read_raw_config
from pytest_dummyweights._building.context import BuildContext
from pytest_dummyweights._building.shrink import describe_changes
from pytest_dummyweights._checkpoints.hub import read_hub_manifest
from pytest_dummyweights._checkpoints.manifest import load_manifest
from pytest_dummyweights._gate.measure import configured_coverage, measure, parse_threshold, resolve_compare_ref
from pytest_dummyweights._runtime.requirements import require_paddle
from pytest_dummyweights.errors import CheckpointMismatchWarning, DummyWeightsError
from pytest_dummyweights.spec import DummySpec
from pytest_dummyweights.vocabulary import DTYPES, SCALE_PRESETS, STORAGES

T = TypeVar("T")


def parse_assignment(text: str) -> tuple[str, object]:
    """``key=value``; the value is read as JSON when it parses (``2``, ``true``, ``[1, 2]``), else kept as text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def as_argument_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """A parser whose ValueError message argparse shows as is."""

    def parse_argument(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse_argument


def shrink_request(args: argparse.Namespace) -> bool | dict[str, int]:
    """``--shrink`` alone: defaults; ``--shrink-layers``/``--shrink-experts`` set targets (and imply ``--shrink``)."""
    targets = {key: value for key, value in (("layers", args.shrink_layers), ("experts", args.shrink_experts)) if value is not None}
    return targets or args.shrink


def run_build(args: argparse.Namespace) -> int:
    """Exit status 0, or with ``--checkpoint`` 1 when the model and the checkpoint disagree."""
    require_paddle()
    # lazy: the build imports Paddle, which the manifest and gate commands never need
    from pytest_dummyweights._building.pipeline import build

    spec = DummySpec(
        args.config,
        dtype=args.dtype,
        overrides=dict(args.set) or None,
        seed=args.seed,
        std=args.std,
        device=args.device,
        model=args.model,
        new_keys=tuple(args.new_key),
        shrink=shrink_request(args),
        storage=args.storage,
        scales=args.scales,
        smoke=args.smoke or None,
        checkpoint=args.checkpoint,
        checkpoint_check="warn" if args.checkpoint else None,  # the table is printed below, and sets the exit status
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CheckpointMismatchWarning)
        result = build(spec, BuildContext(search_dirs=(Path.cwd(),)))
    print(f"class         {type(result.model).__module__}.{type(result.model).__qualname__} ({result.source})")
    print(f"config        {result.loaded_config.source}")
    print(f"dtype         {result.spec.dtype} on {result.spec.device}, seed {result.spec.seed}, std {result.spec.std:g}")
    if result.loaded_config.shrink is not None:
        print("\n".join(describe_changes(result.loaded_config.shrink)))
    print(f"parameters    {result.parameters:,}")
    print(f"bytes         {result.nbytes:,} ({result.nbytes / 2**20:,.1f} MiB)")
    memory = result.memory
    print(f"storage       {result.init.storage}: {memory.resident / 2**20:,.1f} MiB resident, {memory.shared / 2**20:,.1f} MiB shared")
    if result.rules_applied.rules:
        print(f"value rules   {result.rules_applied.summary_line()}")
    for message in result.init.messages:
        print(f"note          {message}")
    for phase, seconds in result.seconds.items():
        print(f"{phase:<14}{seconds:.3f} s")
    print(f"{'total':<14}{sum(result.seconds.values()):.3f} s")
    if result.check is None:
        return 0
    print("\n".join(result.check.table()))
    return 0 if result.check.ok else 1


def run_manifest(args: argparse.Namespace) -> int:
    if (args.checkpoint is None) == (args.hub is None):
        raise DummyWeightsError("manifest: give a CHECKPOINT directory or manifest file, or --hub REPO_ID[@REVISION] (one of them)")
    if args.hub is not None:
        manifest = read_hub_manifest(args.hub)
    else:
        manifest = load_manifest(args.checkpoint)
        if (Path(args.checkpoint) / "config.json").is_file():  # a manifest of a directory carries its config too
            manifest.config, _ = read_raw_config(Path(args.checkpoint).resolve(), [])
    for problem in manifest.index_problems:
        print(f"stale index: {problem}", file=sys.stderr)
    if args.output is None:
        print(manifest.to_text(), end="")
        return 0
    manifest.write(args.output)
    print(
        f"{args.output}: {len(manifest.tensors):,} tensors in {len(manifest.formats)} files, {manifest.total_bytes:,} bytes of "
        f"data, {manifest.layout} layout"
    )
    return 0


def run_gate(args: argparse.Namespace) -> int:
    report = measure(args.coverage_xml, resolve_compare_ref(args.compare_branch), args.fail_under, configured_coverage())
    print("\n".join(report.lines()))
    return 0 if report.passed else 1


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_dummyweights", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build a model with dummy weights and print class, size and seconds per phase")
    build.add_argument("config", help="a directory holding config.json, or a JSON file")
    build.add_argument("--dtype", choices=DTYPES)
    build.add_argument(
        "--set", type=parse_assignment, action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)"
    )
    build.add_argument("--new-key", action="append", default=[], metavar="KEY", help="allow --set to add this key the config does not have")
    build.add_argument("--seed", type=int)
    build.add_argument("--std", type=float)
    build.add_argument("--device", help="auto, cpu, gpu or gpu:N")
    build.add_argument(
        "--storage", choices=STORAGES, help="mapped (copy-on-write value store) or filled (default: mapped for CPU on Linux)"
    )
    build.add_argument("--scales", choices=SCALE_PRESETS, help="values of scale-like parameters (default: the published rule)")
    build.add_argument("--smoke", action="store_true", help="run one tiny forward pass and check every output is finite")
    build.add_argument("--model", help="package.module:Class, instead of looking the class up")
    build.add_argument(
        "--shrink", action="store_true", help="fewer layers and experts, keeping every layer kind and real widths; prints what changed"
    )
    build.add_argument("--shrink-layers", type=int, metavar="N", help="shrink to N layers (implies --shrink)")
    build.add_argument("--shrink-experts", type=int, metavar="E", help="shrink to E routed experts (implies --shrink)")
    build.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="check the model against a checkpoint directory or manifest file: print the table, exit 1 when they disagree",
    )
    build.set_defaults(run=run_build)
    manifest = commands.add_parser(
        "manifest", help="read a checkpoint's safetensors headers (never its data) and write its manifest as JSON"
    )
    manifest.add_argument(
        "checkpoint",
        nargs="?",
        help="a directory of *.safetensors files (with model.safetensors.index.json when sharded), or a manifest file",
    )
    manifest.add_argument(
        "--hub",
        metavar="REPO_ID[@REVISION]",
        help="read the headers of a Hugging Face Hub repository instead (needs huggingface_hub; honours HF_ENDPOINT)",
    )
    manifest.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the manifest here (default: print it)")
    manifest.set_defaults(run=run_manifest)
    gate = commands.add_parser("gate", help="fail when the lines changed since the merge base are covered less than a threshold")
    gate.add_argument(
        "--coverage-xml",
        type=Path,
        default=Path("coverage.xml"),
        help="Cobertura XML, as written by --cov-report=xml (default: coverage.xml)",
    )
    gate.add_argument(
        "--compare-branch",
        metavar="REF",
        help="ref whose merge base with HEAD the changes are measured from (default: origin/main, else main)",
    )
    gate.add_argument(
        "--fail-under",
        type=as_argument_type(parse_threshold),
        required=True,
        metavar="PCT",
        help="lowest acceptable percentage of changed lines covered",
    )
    gate.set_defaults(run=run_gate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.run(args)
    except DummyWeightsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
