"""The compatibility matrix: the suite against the oldest and newest supported versions.

Each session is one cell: the pinned stack of ``ci/requirements.txt`` (its per-Python lines as the cell's
Python selects them) with a few pins changed, installed by uv together with the cell's extras of the project
in one resolve (so a pin below a declared floor fails the install), then ``pytest -n 2 -p dummyweights``.
uv resolves from PyPI and ignores pip's configuration; from a warm uv cache a cell installs in seconds.

The cells are chosen, not a cross product: the pinned stack on each supported Python, the oldest supported
pytest (8.4.2), and the newest pytest and pytest-xdist releases (unpinned: resolved when the cell runs).
On Python 3.13 the cell is the core (``CORE``): paddleformers 0.4.1 caps numpy at 1.26.4, which has no
3.13 wheel, so that cell installs without the ``paddleformers`` extra and deselects the tests marked
``paddleformers``. paddlepaddle has no cell of its own: paddleformers 0.4.1 imports
``paddle.nn.functional.swiglu``, which 3.0.0, 3.1.1 and 3.2.2 lack, so the floor is the pinned 3.3.1
(docs/versions.md says what each cell and release gave). ``nox -l`` lists the cells; ``ci/matrix`` runs one.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.download_python = "never"  # a cell runs on an installed Python (pyenv, actions/setup-python)
nox.options.sessions = ["pinned-3.11"]

PINNED = Path(__file__).parent / "ci" / "requirements.txt"
NEWEST = ""  # a change to NEWEST unpins the package: the cell resolves its newest release
FULL = "cpu,paddleformers,gate,test"
CORE = "cpu,gate,test"
WITHOUT_PADDLEFORMERS = ("-m", "not paddleformers")


@dataclasses.dataclass(frozen=True)
class Cell:
    """One matrix entry: a session name, its Python, the pins it changes (package -> exact version, or NEWEST),
    the project's extras it installs, and the pytest options that select what it runs."""

    name: str
    python: str
    changes: dict[str, str] = dataclasses.field(default_factory=dict)
    extras: str = FULL
    selection: tuple[str, ...] = ()


# pytest-8 holds the floor pyproject.toml declares for pytest (8.4.2); the other floors are the pinned versions,
# the only ones run. Python 3.10 is not supported: the pinned stack needs 3.11, and the plugin uses exception
# notes (3.11+).
CELLS = (
    Cell("pinned-3.11", "3.11"),
    Cell("pinned-3.12", "3.12"),
    Cell("core-3.13", "3.13", extras=CORE, selection=WITHOUT_PADDLEFORMERS),
    Cell("pytest-8", "3.11", {"pytest": "8.4.2"}),
    Cell("newest-3.12", "3.12", {"pytest": NEWEST, "pytest-xdist": NEWEST}),
)


REPORT_VERSIONS = (
    "import importlib.metadata as m, platform; names = ('pytest', 'pytest-xdist', 'pytest-cov', 'diff-cover', "
    "'paddlepaddle', 'paddleformers', 'numpy'); installed = {d.metadata['Name'].lower().replace('_', '-') for d in m.distributions()}; "
    "print('cell versions:', ' | '.join([f'python {platform.python_version()}', "
    "*(f'{n} {m.version(n) if n in installed else \"not installed\"}' for n in names)]))"
)


def requirement_name(line: str) -> str:
    return line.split(";")[0].split("==")[0].strip().lower()


def cell_requirements(cell: Cell) -> list[str]:
    """ci/requirements.txt with the cell's changes applied (a changed pin replaces each of its per-Python lines);
    every changed package must be pinned there."""
    pinned = [line.strip() for line in PINNED.read_text().splitlines() if line.strip() and not line.startswith("#")]
    unknown = set(cell.changes) - {requirement_name(line) for line in pinned}
    if unknown:
        raise ValueError(f"cell {cell.name} changes {sorted(unknown)}, which ci/requirements.txt does not pin")

    def changed(line: str) -> str:
        name = requirement_name(line)
        if name not in cell.changes:
            return line
        return f"{name}=={cell.changes[name]}" if cell.changes[name] else name

    return list(dict.fromkeys(changed(line) for line in pinned))


def register(cell: Cell) -> None:
    @nox.session(name=cell.name, python=cell.python, venv_params=["--seed"])  # pip in the venv: tests/test_wheel.py uses it
    def run_cell(session: nox.Session) -> None:
        # Not in session.create_tmp(): that also points TMPDIR into the checkout, a git repository, which the
        # gate's "outside a git repository" tests must not be in.
        requirements = Path(session.virtualenv.location) / "cell-requirements.txt"
        requirements.write_text("\n".join(cell_requirements(cell)) + "\n")
        started = time.monotonic()
        session.install("-r", str(requirements), "-e", f".[{cell.extras}]")
        session.log(f"cell {cell.name} installed in {time.monotonic() - started:.0f} s")
        session.run("python", "-c", REPORT_VERSIONS)
        session.run("python", "-m", "pytest", "-n", "2", "-p", "dummyweights", *cell.selection, *session.posargs)


for each_cell in CELLS:
    register(each_cell)
