"""The run summary: counts from every xdist worker, merged and written for the terminal."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable


@dataclasses.dataclass
class CacheStats:
    """One process's counts; plain data so an xdist worker can send it to the controller."""

    built: int = 0
    build_seconds: float = 0.0
    built_bytes: int = 0
    hits: int = 0
    evictions: int = 0
    lock_wait_seconds: float = 0.0
    served_bytes: int = 0  # checkpoint bytes a real load would have read for every model served
    repairs: list = dataclasses.field(default_factory=list)  # [test, model class, what]
    models: dict = dataclasses.field(default_factory=dict)  # fingerprint -> [description, bytes, builds, hits]

    @classmethod
    def merged(cls, reports: Iterable[dict]) -> CacheStats:
        total = cls()
        for report in reports:
            for field in ("built", "build_seconds", "built_bytes", "hits", "evictions", "lock_wait_seconds", "served_bytes"):
                setattr(total, field, getattr(total, field) + report[field])
            total.repairs.extend(report["repairs"])
            for key, (description, nbytes, builds, hits) in report["models"].items():
                known = total.models.setdefault(key, [description, nbytes, 0, 0])
                known[2] += builds
                known[3] += hits
        return total


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def summary_lines(reports: list[dict], verbosity: int) -> list[str]:
    """Nothing when no model was served; one line with -q; the counts by default; per model with -v."""
    stats = CacheStats.merged(reports)
    if not stats.built and not stats.hits:
        return []
    counts = (
        f"{stats.built} built in {stats.build_seconds:.2f} s ({human_bytes(stats.built_bytes)}), "
        f"{stats.hits} cache hits, {stats.evictions} evictions, {len(stats.repairs)} isolation repairs, "
        f"{stats.lock_wait_seconds:.2f} s waiting for the build lock"
    )
    not_read = f"checkpoint bytes not read: {human_bytes(stats.served_bytes)}"
    repairs = [f"isolation repaired after {test}: {model}: {what}" for test, model, what in stats.repairs]
    if verbosity < 0:
        return [f"dummyweights: {counts}; {not_read}", *repairs]
    lines = [f"models: {counts}", not_read, *repairs]
    if verbosity > 0:
        for key, (description, nbytes, builds, hits) in sorted(stats.models.items(), key=lambda item: item[1][0]):
            lines.append(f"  {key}  {description}  {human_bytes(nbytes)}  built {builds}x, served from cache {hits}x")
    return lines
