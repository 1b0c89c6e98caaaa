"""What earlier runs learned, kept in pytest's cache for this machine and in a durations file committed for
CI machines: each model's measured build seconds (by fleet key), the models each test was served (so tests
that build through ``dummy_model_factory``, invisible at collection, are grouped from the second run on),
and the seconds each work unit took, as the next run forms its units.

Build seconds are measured inside the build, after the build lock is taken: a test report's duration would
count imports and lock waits too. The file is JSON::

    {"version": 1,
     "models": {"<fleet key>": {"build_seconds": 2.1, "model": "Qwen3ForCausalLM float32 (...)"}},
     "tests": {"tests/test_x.py::test_shapes[qwen3]": ["<fleet key>"]},
     "units": [12.5, 3.0, 0.4]}

``units`` (seconds of each work unit of the run that wrote it, joined where their tests were served one model,
as the next run groups them) sizes ``-n auto`` and ``-n N``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pytest_dummyweights.errors import DummyWeightsError, reraised_as

VERSION = 1
REWRITE = "write it again with --dummy-write-durations, or delete it"
UNKNOWN_BUILD_SECONDS = 1.0  # a model no run has measured yet, when no model was measured at all


@dataclasses.dataclass
class Durations:
    build_seconds: dict[str, float] = dataclasses.field(default_factory=dict)  # by fleet key
    labels: dict[str, str] = dataclasses.field(default_factory=dict)  # by fleet key: what the model is, for people
    tests: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # node id -> fleet keys it was served
    units: list[float] = dataclasses.field(default_factory=list)

    def build_seconds_of(self, key: str) -> float:
        """The learned seconds; for a model never measured, the mean of those measured."""
        if key in self.build_seconds:
            return self.build_seconds[key]
        known = self.build_seconds.values()
        return sum(known) / len(known) if known else UNKNOWN_BUILD_SECONDS

    def updated(self, newer: Durations) -> Durations:
        """These durations with ``newer``'s measurements replacing theirs (units: ``newer``'s when it has any)."""
        return Durations(
            {**self.build_seconds, **newer.build_seconds},
            {**self.labels, **newer.labels},
            {**self.tests, **newer.tests},
            list(newer.units or self.units),
        )

    def to_json(self) -> dict[str, Any]:
        models = {
            key: {"build_seconds": round(seconds, 3), "model": self.labels.get(key, "")} for key, seconds in self.build_seconds.items()
        }
        return {
            "version": VERSION,
            "models": dict(sorted(models.items())),
            "tests": dict(sorted(self.tests.items())),
            "units": [round(s, 3) for s in self.units],
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> Durations:
        """Durations from parsed JSON; anything else is one error naming ``where``."""
        malformed = (AttributeError, TypeError, KeyError, ValueError)
        with reraised_as(DummyWeightsError, f"{where} is not a dummyweights durations file", REWRITE, malformed):
            if data.get("version") != VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {VERSION}")
            models: Mapping[str, Any] = data.get("models", {})
            seconds = {str(key): float(entry["build_seconds"]) for key, entry in models.items()}
            labels = {str(key): str(entry.get("model", "")) for key, entry in models.items()}
            tests = {str(nodeid): [str(key) for key in keys] for nodeid, keys in data.get("tests", {}).items()}
            return cls(seconds, labels, tests, [float(s) for s in data.get("units", [])])


def measured(models: Iterable[Any], test_models: Mapping[str, list[str]], unit_seconds: Iterable[float]) -> Durations:
    """This run's measurements from the run's ``ModelRecord``s (mean build seconds per fleet key), the models each
    test was served, and the seconds of each work unit."""
    total: dict[str, list[float]] = {}
    labels = {}
    for model in models:
        if model.fleet_key is not None and model.builds:
            seconds, builds = total.setdefault(model.fleet_key, [0.0, 0])
            total[model.fleet_key] = [seconds + model.build_seconds, builds + model.builds]
            labels[model.fleet_key] = model.description
    mean = {key: seconds / builds for key, (seconds, builds) in total.items()}
    return Durations(mean, labels, dict(test_models), sorted(unit_seconds, reverse=True))


def read_durations(path: str | os.PathLike) -> Durations:
    """The durations file at ``path``; a missing file holds no durations (the first run writes it)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Durations()
    except OSError as error:
        raise DummyWeightsError(f"cannot read the durations file {path}: {error.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise DummyWeightsError(f"durations file {path} is not JSON ({error}); write it again with --dummy-write-durations") from None
    return Durations.from_json(data, f"durations file {path}")


def write_durations(path: str | os.PathLike, durations: Durations) -> None:
    """Write atomically: a run stopped halfway leaves the old file, never half of a new one."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(durations.to_json(), indent=1) + "\n", encoding="utf-8")
    partial.replace(path)
