"""``python -m pytest_dummyweights``: build a model from the command line and show what it cost."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import DummyWeightsError
from .spec import DTYPES, DummySpec


def parse_assignment(text: str) -> tuple[str, object]:
    """``key=value``; the value is read as JSON when it parses (``2``, ``true``, ``[1, 2]``), else kept as text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def run_build(args: argparse.Namespace) -> int:
    from .build import PHASES, build

    spec = DummySpec(
        args.config,
        dtype=args.dtype,
        overrides=dict(args.set) or None,
        seed=args.seed,
        std=args.std,
        device=args.device,
        model=args.model,
        new_keys=tuple(args.new_key),
    )
    result = build(spec, search_dirs=[Path.cwd()])
    print(f"class         {type(result.model).__module__}.{type(result.model).__qualname__} ({result.source})")
    print(f"config        {result.config.source}")
    print(f"dtype         {result.spec.dtype} on {result.spec.device}, seed {result.spec.seed}, std {result.spec.std:g}")
    print(f"parameters    {result.parameters:,}")
    print(f"bytes         {result.nbytes:,} ({result.nbytes / 2**20:,.1f} MiB)")
    for phase in PHASES:
        print(f"{phase:<14}{result.seconds[phase]:.3f} s")
    print(f"{'total':<14}{sum(result.seconds.values()):.3f} s")
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_dummyweights", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build a model with dummy weights and print class, size and seconds per phase")
    build.add_argument("config", help="a directory holding config.json, or a JSON file")
    build.add_argument("--dtype", choices=DTYPES)
    build.add_argument("--set", type=parse_assignment, action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)")
    build.add_argument("--new-key", action="append", default=[], metavar="KEY", help="allow --set to add this key the config does not have")
    build.add_argument("--seed", type=int)
    build.add_argument("--std", type=float)
    build.add_argument("--device", help="auto, cpu, gpu or gpu:N")
    build.add_argument("--model", help="package.module:Class, instead of looking the class up")
    build.set_defaults(run=run_build)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.run(args)
    except DummyWeightsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
