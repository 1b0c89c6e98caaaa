"""The package's metadata says only what the matrix (noxfile.py) runs: its Pythons, and floors that some cell pins.

docs/versions.md lists every cell; ci/requirements.txt keeps the per-Python pins, which each cell's Python selects.
"""

from __future__ import annotations

import re
import tomllib

from matrix_support import ROOT, load_noxfile
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PYTHON_CLASSIFIER = re.compile(r"^Programming Language :: Python :: (3\.\d+)$")


def cell_pythons() -> set[str]:
    return {cell.python for cell in load_noxfile().CELLS}


def versions_run() -> dict[str, set[Version]]:
    """Each package a cell pins (on that cell's Python) -> the versions the cells install; unpinned lines add none."""
    noxfile = load_noxfile()
    run: dict[str, set[Version]] = {}
    for cell in noxfile.CELLS:
        for line in noxfile.cell_requirements(cell):
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate({"python_version": cell.python}):
                continue
            pinned = {Version(spec.version) for spec in requirement.specifier}
            run.setdefault(requirement.name.lower().replace("_", "-"), set()).update(pinned)
    return run


def declared_requirements() -> list[Requirement]:
    extras = [line for lines in PYPROJECT["optional-dependencies"].values() for line in lines]
    return [Requirement(line) for line in [*PYPROJECT["dependencies"], *extras]]


def test_classifiers_and_requires_python_name_the_cells_pythons() -> None:
    classified = {match.group(1) for classifier in PYPROJECT["classifiers"] if (match := PYTHON_CLASSIFIER.match(classifier))}
    assert classified == cell_pythons()
    assert PYPROJECT["requires-python"] == f">={min(cell_pythons(), key=Version)}"


def test_every_floor_is_the_oldest_version_a_cell_runs() -> None:
    run = versions_run()
    floors = {}
    for requirement in declared_requirements():
        (floor,) = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        floors[requirement.name.lower().replace("_", "-")] = Version(floor)
    assert floors == {name: min(run[name]) for name in floors}


def test_on_3_13_the_pins_drop_paddleformers_and_take_a_numpy_with_a_wheel() -> None:
    """paddleformers 0.4.1 caps numpy at 1.26.4, which has no CPython 3.13 wheel: the 3.13 cell is the core."""
    (core,) = [cell for cell in load_noxfile().CELLS if cell.python == "3.13"]
    selected = [Requirement(line) for line in load_noxfile().cell_requirements(core)]
    on_3_13 = [requirement for requirement in selected if not requirement.marker or requirement.marker.evaluate({"python_version": "3.13"})]
    pins = {requirement.name: str(requirement.specifier) for requirement in on_3_13}
    assert "paddleformers" not in pins and Version(pins["numpy"].removeprefix("==")) >= Version("2.1.0")
    assert "paddleformers" not in core.extras.split(",")
    assert core.selection == ("-m", "not paddleformers")


def test_the_supported_versions_page_lists_every_cell() -> None:
    page = (ROOT / "docs" / "versions.md").read_text()
    listed = re.findall(r"^\| `([\w.-]+)` \|", page, re.MULTILINE)
    assert listed == [cell.name for cell in load_noxfile().CELLS]
