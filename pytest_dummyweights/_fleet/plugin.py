"""pytest glue of the fleet: the scheduler choice (``--dummy-dist``), CI shards (``--dummy-shard``), the learned
costs (``--dummy-durations``), ``-n auto``'s worker count, and the summary's notes on where models were built.

Rules a user relies on:

- With ``-n`` and no ``--dist``, xdist runs the plugin's scheduler (``--dummy-dist=model``, the default; ini
  ``dummyweights_dist``): each model's tests run on one worker. ``--dummy-dist=off``, or any ``--dist``, gives
  xdist's own modes back; ``--dummy-dist=model`` with ``--dist`` is a usage error.
- ``-n auto`` and ``-n N`` start no more workers than the last run's work units can use: the count whose
  predicted run, plus ~2 s of start per worker, is shortest (``units.workers_worth_starting``), at most
  xdist's (or N); with ``-n N`` the header says so. Without a record of a last run (pytest's cache, or the
  durations file), or with ``PYTEST_XDIST_AUTO_NUM_WORKERS`` set for ``-n auto``, xdist's count.
- ``--dummy-shard K/N`` keeps shard K's tests and deselects the rest (see ``shards``).
- Build seconds are learned in pytest's cache on every run; ``--dummy-durations FILE`` (ini
  ``dummyweights_durations``) adds a file, read by every machine, and ``--dummy-write-durations`` writes this
  run's measurements into it. Shards read the file only, so every machine splits alike.

Every pytest run with the plugin installed loads this module, and most neither distribute, shard nor build: the
fleet's machinery (durations, units, shards, the run's counts, the scheduler) is imported by the hook that first
has work for it, not at the top (``bench/startup.py`` measures it).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_dummyweights._fleet.keys import KeyPlanner, read_keys, write_keys
from pytest_dummyweights.errors import DummyWeightsError
from pytest_dummyweights.marker import spec_of_item
from pytest_dummyweights.settings import Setting, checked, one_of, read_setting, run_spec, run_stats, worker_id
from pytest_dummyweights.vocabulary import DEFAULT_DIST, DIST_MODES

if TYPE_CHECKING:
    from pytest_dummyweights._cache.stats import CacheStats
    from pytest_dummyweights._fleet.durations import Durations
    from pytest_dummyweights._fleet.shards import Shard
    from pytest_dummyweights._fleet.units import Unit

CACHE_KEY = "dummyweights/fleet"
RUN_DIR_INPUT = "dummyweights_run_dir"  # workerinput: where workers write their keys
SHARD_OUTPUT = "dummyweights_shard"  # workeroutput: what the worker's shard kept
DIST_GIVEN = pytest.StashKey[bool]()
AUTO_GIVEN = pytest.StashKey[bool]()
FLEET = pytest.StashKey["Fleet"]()


@dataclasses.dataclass
class Fleet:
    """This process's part of the fleet."""

    schedules: bool  # the controller runs the model scheduler
    shard: Shard | None
    durations_file: Path | None
    file_durations: Durations | None  # what the durations file held at the start (read once: every shard alike); None: no file
    write_durations: bool
    planner: KeyPlanner
    run_dir: Path | None = None  # controller: made when the first worker starts; worker: given in workerinput
    scheduler: Any = None
    kept: tuple[int, int, int] | None = None  # shard: tests kept, tests collected, models kept
    header: str | None = None  # a line for the session header
    keys: dict[str, str | None] = dataclasses.field(default_factory=dict)
    starting: set[Any] = dataclasses.field(default_factory=set)  # controller: workers started, not yet ready


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dummyweights")
    group.addoption(
        "--dummy-dist",
        default=None,
        choices=DIST_MODES,
        help="with -n and no --dist: model runs each model's tests on one worker (default: ini dummyweights_dist, else model); "
        "off leaves it to xdist's --dist load",
    )
    group.addoption(
        "--dummy-shard",
        default=None,
        metavar="K/N",
        help="keep shard K of N (the rest deselected): whole models per shard, balanced by the durations file",
    )
    group.addoption(
        "--dummy-durations",
        default=None,
        metavar="FILE",
        help="learned build seconds per model, for the scheduler, the shards and -n auto (default: ini dummyweights_durations)",
    )
    group.addoption(
        "--dummy-write-durations", action="store_true", help="write this run's measured build seconds into the --dummy-durations file"
    )
    parser.addini("dummyweights_dist", "xdist scheduling with -n and no --dist: model or off", default=DEFAULT_DIST)
    parser.addini("dummyweights_durations", "durations file of learned build seconds (relative to the ini file)", default="")


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Any:
    """Note whether --dist and ``-n auto`` were given, before xdist fills in its default (``load`` with ``-n``) and its count."""
    config.stash[DIST_GIVEN] = getattr(config.option, "dist", "no") != "no"
    config.stash[AUTO_GIVEN] = getattr(config.option, "numprocesses", None) in ("auto", "logical")
    return (yield)


def _dist_mode(config: pytest.Config) -> str:
    return checked(read_setting(config, "--dummy-dist", "dummyweights_dist"), one_of(*DIST_MODES))


def _durations_file(config: pytest.Config) -> Path | None:
    setting = read_setting(config, "--dummy-durations", "dummyweights_durations")
    if setting.text is None:
        return None
    base = config.inipath.parent if setting.source.startswith("ini") and config.inipath else config.invocation_params.dir
    return base / setting.text


def _xdist_distributes(config: pytest.Config) -> bool:
    return getattr(config.option, "dist", "no") != "no" and bool(getattr(config.option, "tx", None))


def pytest_configure(config: pytest.Config) -> None:
    dist_given = config.stash.get(DIST_GIVEN, False)
    if config.getoption("--dummy-dist") == "model" and dist_given and worker_id(config) is None:
        raise pytest.UsageError(
            f"pytest-dummyweights: --dummy-dist=model and --dist={config.option.dist} both choose how xdist sends tests; drop one"
        )
    shard_text = config.getoption("--dummy-shard")
    durations_file = _durations_file(config)
    if config.getoption("--dummy-write-durations") and durations_file is None:
        raise pytest.UsageError("pytest-dummyweights: --dummy-write-durations needs --dummy-durations FILE, the file to write")
    workerinput = getattr(config, "workerinput", {})
    config.stash[FLEET] = Fleet(
        schedules=_dist_mode(config) == "model" and not dist_given and _xdist_distributes(config) and worker_id(config) is None,
        shard=_shard(shard_text),
        durations_file=durations_file,
        file_durations=_file_durations(durations_file),
        write_durations=bool(config.getoption("--dummy-write-durations")),
        planner=KeyPlanner(config.hook),
        run_dir=Path(workerinput[RUN_DIR_INPUT]) if RUN_DIR_INPUT in workerinput else None,
    )
    _start_fewer_workers(config, config.stash[FLEET])


def _shard(text: str | None) -> Shard | None:
    if text is None:
        return None
    from pytest_dummyweights._fleet.shards import parse_shard  # lazy: see the module docstring

    return checked(Setting(text, "--dummy-shard"), parse_shard)


def _file_durations(path: Path | None) -> Durations | None:
    if path is None:
        return None
    from pytest_dummyweights._fleet.durations import read_durations  # lazy: see the module docstring

    try:
        return read_durations(path)
    except DummyWeightsError as error:
        raise pytest.UsageError(f"pytest-dummyweights: --dummy-durations: {error}") from None


def _cached(cache: pytest.Cache | None) -> Durations:
    from pytest_dummyweights._fleet.durations import Durations  # lazy: see the module docstring

    cached = cache.get(CACHE_KEY, None) if cache is not None else None
    try:
        return Durations.from_json(cached, CACHE_KEY) if cached else Durations()
    except DummyWeightsError:
        return Durations()  # written by another version of the plugin: this run learns it again


def _learned(config: pytest.Config, file_durations: Durations | None) -> Durations:
    """The durations file's costs, updated by this machine's cache."""
    # lazy (see the module docstring); the module, not its function: a pytest_* name here would be taken for a hook
    from pytest_dummyweights._runtime import private_pytest

    cached = _cached(private_pytest.pytest_cache_of(config))
    return file_durations.updated(cached) if file_durations is not None else cached


# --- -n auto and the scheduler, on the xdist controller ------------------------------------------------


def _workers_worth_starting(config: pytest.Config, file_durations: Durations | None, most: int) -> int:
    from pytest_dummyweights._fleet.units import workers_worth_starting  # lazy: see the module docstring

    units = _learned(config, file_durations).units
    return workers_worth_starting(units, most) if units else most


@pytest.hookimpl(optionalhook=True, wrapper=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> Any:
    """xdist's count, lowered to the workers the last run's units could use (see the module docstring)."""
    count = yield
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") or config.stash.get(DIST_GIVEN, False) or _dist_mode(config) != "model":
        return count
    return _workers_worth_starting(config, _file_durations(_durations_file(config)), count)


def _start_fewer_workers(config: pytest.Config, fleet: Fleet) -> None:
    """``-n N``: start no more of the N workers than the last run's units could use, and say so in the header."""
    tx = list(getattr(config.option, "tx", None) or [])
    if not fleet.schedules or config.stash.get(AUTO_GIVEN, False) or len(tx) < 2 or set(tx) != {"popen"}:
        return
    worth = _workers_worth_starting(config, fleet.file_durations, len(tx))
    if worth < len(tx):
        config.option.tx = tx[:worth]
        fleet.header = (
            f"dummyweights: starting {worth} of {len(tx)} workers: the last run's work units keep no more busy "
            "(--dummy-dist=off starts them all)"
        )


def pytest_report_header(config: pytest.Config) -> str | None:
    return config.stash[FLEET].header


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Name the run directory to each worker, where it writes its tests' keys; the scheduler holds its shutdowns
    until the worker is ready (see ``scheduler``)."""
    fleet = node.config.stash[FLEET]
    if not fleet.schedules:
        return
    fleet.starting.add(node)
    if fleet.run_dir is None:
        from pytest_dummyweights._runtime import private_pytest  # lazy: see _learned

        fleet.run_dir = private_pytest.basetemp_of(node.config) / "dummyweights-fleet"
        fleet.run_dir.mkdir(exist_ok=True)
    node.workerinput[RUN_DIR_INPUT] = str(fleet.run_dir)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    fleet = config.stash[FLEET]
    if not fleet.schedules:
        return None
    # lazy: the scheduler subclasses xdist's, and xdist is imported only by runs that distribute
    from pytest_dummyweights._fleet.scheduler import ModelScheduling
    from pytest_dummyweights._fleet.units import make_units, models_of

    durations = _learned(config, fleet.file_durations)
    run_dir = fleet.run_dir
    assert run_dir is not None  # every worker was configured first

    def units_of(nodeids: list[str]) -> list[Unit]:
        keys, groups = _workers_keys(run_dir, nodeids)
        return make_units(nodeids, models_of(nodeids, keys, durations), groups, durations)

    fleet.scheduler = ModelScheduling(config, log, units_of, fleet.starting)
    return fleet.scheduler


def _workers_keys(run_dir: Path, nodeids: Sequence[str]) -> tuple[dict[str, str | None], dict[str, list[str]]]:
    """The keys every worker agrees on (a test they disagree on keeps no key), and the groups they name."""
    written = [found for path in sorted(run_dir.glob("keys-*.json")) if (found := read_keys(run_dir, path.stem[len("keys-") :]))]
    keys: dict[str, str | None] = {}
    groups: dict[str, list[str]] = {}
    for nodeid in nodeids:
        seen = {worker_keys.get(nodeid) for worker_keys, _ in written}
        keys[nodeid] = seen.pop() if len(seen) == 1 else None
        groups[nodeid] = sorted({name for _, worker_groups in written for name in worker_groups.get(nodeid, ())})
    return keys, groups


# --- collection: keys, shards ----------------------------------------------------------------------------


def _keys_of(config: pytest.Config, items: Sequence[pytest.Item]) -> dict[str, str | None]:
    fleet = config.stash[FLEET]
    for item in items:
        if item.nodeid in fleet.keys:
            continue
        try:
            spec = spec_of_item(item)
        except DummyWeightsError:  # the test's setup reports it
            spec = None
        key = None
        if spec is not None:
            key = fleet.planner.key_of(run_spec(config, spec), [item.path.parent, config.rootpath])
        fleet.keys[item.nodeid] = key
    return {item.nodeid: fleet.keys[item.nodeid] for item in items}


def _groups_of(items: Sequence[pytest.Item]) -> dict[str, list[str]]:
    """Each test's explicit ``xdist_group`` names, read as xdist reads them."""
    return {
        item.nodeid: sorted(
            {str(mark.args[0] if mark.args else mark.kwargs.get("name", "default")) for mark in item.iter_markers("xdist_group")}
        )
        for item in items
    }


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep this shard's tests, after every other plugin has selected and ordered them."""
    fleet = config.stash[FLEET]
    if fleet.shard is None:
        return
    from pytest_dummyweights._fleet.durations import Durations  # lazy: see the module docstring
    from pytest_dummyweights._fleet.shards import tests_of_shard
    from pytest_dummyweights._fleet.units import make_units, models_of

    nodeids = [item.nodeid for item in items]
    durations = fleet.file_durations or Durations()
    units = make_units(nodeids, models_of(nodeids, _keys_of(config, items), durations), _groups_of(items), durations)
    kept = tests_of_shard(units, nodeids, fleet.shard)
    fleet.kept = (len(kept), len(items), len({key for unit in units if unit.tests[0] in kept for key in unit.models}))
    config.hook.pytest_deselected(items=[item for i, item in enumerate(items) if i not in kept])
    items[:] = [item for i, item in enumerate(items) if i in kept]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """On a worker of the model scheduler: write the tests' keys before xdist reports the collection."""
    fleet = session.config.stash[FLEET]
    worker = worker_id(session.config)
    if fleet.run_dir is None or worker is None:
        return
    write_keys(fleet.run_dir, worker, _keys_of(session.config, session.items), _groups_of(session.items))


# --- after the run: learned costs, the summary's notes ---------------------------------------------------


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Keep this run's measured build seconds in pytest's cache, and in the durations file when asked; an xdist
    worker hands what its shard kept to the controller, which does not collect."""
    config = session.config
    fleet = config.stash[FLEET]
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None and fleet.kept is not None:
        workeroutput[SHARD_OUTPUT] = list(fleet.kept)
    if worker_id(config) is not None or config.option.collectonly:
        return
    stats = run_stats(config)
    if stats is None and fleet.scheduler is None:
        return  # nothing was built or scheduled: nothing to learn
    from pytest_dummyweights._fleet.durations import measured, write_durations  # lazy: see the module docstring

    models, served = (stats.models.values(), stats.test_models) if stats is not None else ((), {})
    now = measured(models, served, fleet.scheduler.unit_durations(served) if fleet.scheduler else [])
    if not now.build_seconds and not now.units:
        return
    cache = getattr(config, "cache", None)
    if cache is not None:
        cache.set(CACHE_KEY, _cached(cache).updated(now).to_json())
    if fleet.write_durations and fleet.durations_file is not None and fleet.file_durations is not None:  # read at configure
        write_durations(fleet.durations_file, fleet.file_durations.updated(now))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    kept = getattr(node, "workeroutput", {}).get(SHARD_OUTPUT)
    if kept is not None:
        node.config.stash[FLEET].kept = tuple(kept)


def spread_notes(config: pytest.Config, stats: CacheStats | None) -> list[str]:
    """The summary's fleet lines: the shard kept, and why a model was built on more than one worker (a crashed
    worker reports no counts, so the workers the scheduler sent a model's tests to count too). ``stats``: the
    run's counts, None when nothing was built."""
    fleet = config.stash[FLEET]
    lines = []
    if fleet.kept is not None:
        kept, collected, models = fleet.kept
        lines.append(f"shard {fleet.shard}: {kept} of {collected} tests, {models} models (the rest deselected)")
    placed = fleet.scheduler.placed if fleet.scheduler else {}
    for model in sorted(stats.models.values() if stats is not None else (), key=lambda model: model.description):
        workers = sorted({*model.workers, *placed.get(model.fleet_key, ())})
        if len(workers) > 1:
            lines.append(
                f"note: {model.description} was built on {len(workers)} workers ({', '.join(workers)}): {_why(config, workers, model)}"
            )
    return lines


def _why(config: pytest.Config, workers: list[str], model: Any) -> str:
    fleet = config.stash[FLEET]
    if fleet.scheduler is None:
        return (
            f"xdist's --dist {config.option.dist} sends a model's tests to any worker; "
            "without --dist, the plugin's scheduler (--dummy-dist=model) keeps them on one"
        )
    if model.fleet_key is None:
        return "its factory carries values that cannot be described, so it is neither cached nor kept together"
    crashed = [crash for crash in fleet.scheduler.crashes if crash.worker in workers]
    if crashed:
        return f"worker {crashed[0].worker} crashed running {crashed[0].test}; its other tests were sent to another worker"
    if model.fleet_key not in fleet.scheduler.placed:
        return "no test asked for it through dummy_model at collection (dummy_model_factory builds inside the test), so none were grouped"
    return "tests of other units asked for it too, through dummy_model_factory, which the scheduler cannot see at collection"
