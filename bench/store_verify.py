"""What checking every byte of a value store costs: the digest against other hashes, a process's first
open of a store, and what that adds to a Qwen3-0.6B build.

    python bench/store_verify.py [--repeat N]

Cases, best of N each, in wall and in CPU seconds (CPU time is what a shared machine's load changes least;
the load average is printed with the numbers):
- digest: one store's data (288 MiB, in the default store directory, /dev/shm where there is one) hashed
  in this process by xxh3-128 (the store's digest), xxh3-64, blake2b and sha256.
- open: a fresh process opens the existing store (imports untimed): open, map and check every byte.
- build: Qwen3-0.6B, bfloat16, full size, mapped storage, each in a fresh process, timed after imports
  and planning: ``first`` opens (so checks) the store itself, as a process's first build does;
  ``checked before`` opens the store before the timer starts. The difference is what the check adds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
QWEN3 = HERE.parent / "configs" / "qwen3-0.6b"
STORE = ("bfloat16", 0, 0.02)  # the store a Qwen3-0.6B bfloat16 build reads (its initializer_range is 0.02)
RESULT_PREFIX = "BENCH-RESULT "


def run_case(case: str) -> dict:
    """One case in this process: imports first (untimed), then the timed work."""
    from pytest_dummyweights import DummySpec
    from pytest_dummyweights._values import store

    if case == "open":
        return timed(lambda: store.open_store(*STORE))
    from pytest_dummyweights import execute, plan_build

    spec = DummySpec(str(QWEN3), dtype="bfloat16", device="cpu", storage="mapped")
    plan_build(spec)  # imports PaddleFormers and the class: not timed
    if case == "checked before":
        store.open_store(*STORE)
    return {**timed(lambda: execute(plan_build(spec))), "stores": store._open_once.cache_info().currsize}


def timed(work: Callable[[], object]) -> dict:
    """Wall and CPU seconds (every thread of the process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return {"seconds": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def spawn(case: str, repeat: int) -> list[dict]:
    runs = []
    for _ in range(repeat):
        done = subprocess.run([sys.executable, __file__, "--case", case], capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
        if done.returncode or not lines:
            raise SystemExit(f"case {case} failed:\n{done.stderr[-3000:]}")
        runs.append(json.loads(lines[-1][len(RESULT_PREFIX) :]))
    return runs


def best(runs: list[dict]) -> str:
    return f"{min(run['seconds'] for run in runs) * 1e3:6.1f} ms ({min(run['cpu'] for run in runs) * 1e3:6.1f} ms CPU)"


def added(first: list[dict], before: list[dict], key: str) -> float:
    return (min(run[key] for run in first) - min(run[key] for run in before)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.case:
        print(RESULT_PREFIX + json.dumps(run_case(args.case)), flush=True)
        return
    import mmap

    import xxhash

    from pytest_dummyweights._values import store

    opened = store.open_store(*STORE)  # made once per machine, like every later run finds it
    print(f"store {opened.path} ({store.DATA_BYTES / 2**20:.0f} MiB of data)")
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    hashes = {
        "xxh3-128 (the store's digest)": xxhash.xxh3_128_digest,
        "xxh3-64": xxhash.xxh3_64_digest,
        "blake2b": lambda data: hashlib.blake2b(data).digest(),
        "sha256": lambda data: hashlib.sha256(data).digest(),
    }
    with mmap.mmap(opened.fd, store.FILE_BYTES, prot=mmap.PROT_READ) as mapped, memoryview(mapped) as view:
        data = view[store.HEADER_BYTES :]
        for name, hash_bytes in hashes.items():
            runs = [timed(lambda hash_bytes=hash_bytes: hash_bytes(data)) for _ in range(args.repeat)]
            rate = store.DATA_BYTES / min(run["cpu"] for run in runs) / 1e9
            print(f"  digest {name:30s} {best(runs)}  {rate:5.1f} GB/s of CPU time")
        data.release()
    print(f"  a fresh process's first open of the store (open, map, check every byte): {best(spawn('open', args.repeat))}")
    first, before = spawn("first", args.repeat), spawn("checked before", args.repeat)
    print(f"qwen3-0.6b bfloat16 mapped build, {first[0]['stores']} store: first {best(first)}, store checked before {best(before)}")
    print(f"  the check adds {added(first, before, 'seconds'):+.0f} ms ({added(first, before, 'cpu'):+.0f} ms CPU) to the build")
    print(f"  load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
