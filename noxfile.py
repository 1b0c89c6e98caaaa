"""The compatibility matrix: the suite against the oldest and newest supported versions.

Each session is one cell: the pinned stack of ``ci/requirements.txt`` with a few pins changed, installed
together with ``.[cpu,paddleformers,gate,test]`` in one resolve (so a pin below a declared floor fails the
install), then ``pytest -n 2 -p dummyweights``. The cells are chosen, not a cross product: the pinned stack
on each supported Python, and the oldest supported pytest (8.4.2). paddlepaddle has no cell
of its own: paddleformers 0.4.1 imports ``paddle.nn.functional.swiglu``, which 3.0.0, 3.1.1 and 3.2.2 lack,
so the floor is the pinned 3.3.1 (README: "Supported versions" says what each release gave). ``nox -l``
lists the cells.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["pinned-3.11"]

PINNED = Path(__file__).parent / "ci" / "requirements.txt"


@dataclasses.dataclass(frozen=True)
class Cell:
    """One matrix entry: a session name, its Python, and the pins it changes (package -> exact version)."""

    name: str
    python: str
    changes: dict[str, str] = dataclasses.field(default_factory=dict)


# pytest-8 holds the floor pyproject.toml declares for pytest (8.4.2); pytest-xdist, pytest-cov and diff-cover
# are declared at the pinned versions, the only ones run. Python 3.10 is not supported: the pinned stack needs
# 3.11, and the plugin uses exception notes (3.11+).
# Python 3.12 and 3.13 have no cell yet: neither has passed (README: Supported versions); add one with its run.
CELLS = (
    Cell("pinned-3.11", "3.11"),
    Cell("pytest-8", "3.11", {"pytest": "8.4.2"}),
)


REPORT_VERSIONS = (
    "import importlib.metadata as m, platform; names = ('pytest', 'pytest-xdist', 'pytest-cov', 'diff-cover', "
    "'paddlepaddle', 'paddleformers', 'numpy'); "
    "print('cell versions:', ' | '.join([f'python {platform.python_version()}', *(f'{n} {m.version(n)}' for n in names)]))"
)


def requirement_name(line: str) -> str:
    return line.split("==")[0].strip().lower()


def cell_requirements(cell: Cell) -> list[str]:
    """ci/requirements.txt with the cell's changes applied (a changed pin replaces each of its per-Python lines);
    every changed package must be pinned there."""
    pinned = [line.strip() for line in PINNED.read_text().splitlines() if line.strip() and not line.startswith("#")]
    unknown = set(cell.changes) - {requirement_name(line) for line in pinned}
    if unknown:
        raise ValueError(f"cell {cell.name} changes {sorted(unknown)}, which ci/requirements.txt does not pin")
    changed = [f"{requirement_name(line)}=={cell.changes[requirement_name(line)]}" if requirement_name(line) in cell.changes else line for line in pinned]
    return list(dict.fromkeys(changed))


def register(cell: Cell) -> None:
    @nox.session(name=cell.name, python=cell.python)
    def run_cell(session: nox.Session) -> None:
        # Not in session.create_tmp(): that also points TMPDIR into the checkout, a git repository, which the
        # gate's "outside a git repository" tests must not be in.
        requirements = Path(session.virtualenv.location) / "cell-requirements.txt"
        requirements.write_text("\n".join(cell_requirements(cell)) + "\n")
        session.install("--disable-pip-version-check", "-r", str(requirements), "-e", ".[cpu,paddleformers,gate,test]")
        session.run("python", "-c", REPORT_VERSIONS)
        session.run("python", "-m", "pytest", "-n", "2", "-p", "dummyweights", *session.posargs)


for each_cell in CELLS:
    register(each_cell)
