"""pytest plugin (``-p memory_probe``): at session end, each process writes its memory counters to
``$SUITE_MEMORY_DIR/<worker>.json`` (``gw0``, ``gw1``... under xdist; ``main`` for the controller or a
plain run). Peak RSS is the kernel's high-water mark (VmHWM); PSS splits shared pages among processes."""

from __future__ import annotations

import json
import os
from pathlib import Path

STATUS_FIELDS = {"VmHWM": "peak_rss", "VmRSS": "rss", "RssAnon": "rss_anon", "RssFile": "rss_file", "RssShmem": "rss_shmem"}


def kilobyte_fields(path: str, wanted: dict) -> dict:
    out = {}
    with open(path) as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in wanted:
                out[wanted[key]] = int(rest.split()[0]) * 1024
    return out


def pytest_sessionfinish(session):
    directory = os.environ.get("SUITE_MEMORY_DIR")
    if not directory:
        return
    counters = kilobyte_fields("/proc/self/status", STATUS_FIELDS) | kilobyte_fields("/proc/self/smaps_rollup", {"Pss": "pss"})
    name = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (Path(directory) / f"{name}.json").write_text(json.dumps(counters))
