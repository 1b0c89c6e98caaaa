"""pytest glue of interception: ``--dummy-weights`` from start-up to the end of the run, a ``dummy_load`` marker
around its test (setup, call and teardown), and the summary's interception lines, merged across xdist workers.

Rules: ``--dummy-weights`` (ini ``dummyweights_dummy_weights``) intercepts from the moment pytest loads its
conftest files until it unconfigures; each test also gets its own interception, so records name it. A test
marked ``dummy_load`` (on it, its class or module; with or without a config) intercepts while it runs, in any
run but a ``--real-weights`` one; ``--dummy-weights`` with ``--real-weights`` is a usage error. A process's
interception (settings, cache, records, the start-up hook, the subprocess reports) is made at its first use.

Interception's machinery (``run``, ``session``, ``targets``, ``patches``, and through them the config
and manifest readers) is imported where it is first used, not at the top: every pytest run in an environment
that has the plugin installed loads this module, and most never intercept (``bench/startup.py`` measures it).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest

from pytest_dummyweights.errors import DummyWeightsError
from pytest_dummyweights.marker import MARKER
from pytest_dummyweights.settings import SETTINGS

if TYPE_CHECKING:
    from pytest_dummyweights._intercept.run import InterceptRun

RUN = pytest.StashKey["InterceptRun"]()
WORKER_REPORTS = pytest.StashKey[list[dict[str, Any]]]()
ACTIVE = pytest.StashKey[contextlib.ExitStack]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dummyweights")
    group.addoption(
        "--dummy-weights",
        action="store_true",
        default=None,
        help="intercept checkpoint loading from start-up, in this process and the Python processes it starts: PaddleFormers' "
        "from_pretrained and hook-named engine loaders build the model from the checkpoint's config with dummy weights "
        "(default: ini dummyweights_dummy_weights)",
    )
    group.addoption(
        "--dummy-manifest-dir",
        default=None,
        help="directory of manifests for hub names an intercepted load is given, OWNER--NAME.json as written by "
        "`python -m pytest_dummyweights manifest --hub OWNER/NAME -o FILE` (default: ini dummyweights_manifest_dir)",
    )
    parser.addini("dummyweights_dummy_weights", "intercept checkpoint loading with dummy weights from start-up", type="bool", default=False)
    parser.addini("dummyweights_manifest_dir", "directory of manifests (OWNER--NAME.json) for hub names", default="")


class EarlyOptions:
    """pytest's config at start-up, before its options are parsed in full: the values pytest parsed early."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def getoption(self, name: str) -> Any:
        return getattr(self.config.known_args_namespace, name.lstrip("-").replace("-", "_"), None)

    def getini(self, name: str) -> Any:
        return self.config.getini(name)


def collect_targets(hook: Any) -> tuple[Any, ...]:
    """The targets the ``pytest_dummyweights_intercept`` implementations name, checked, each once."""
    from pytest_dummyweights._intercept.targets import InterceptTarget  # lazy: see the module docstring

    found: list[InterceptTarget] = []
    for answer in hook.pytest_dummyweights_intercept():
        for target in answer or ():
            if not isinstance(target, InterceptTarget):
                raise DummyWeightsError(
                    f"pytest_dummyweights_intercept returned {type(target).__name__} {target!r}: return a list of "
                    "pytest_dummyweights.InterceptTarget(function, kind)"
                )
            target.check()
            found.append(target)
    return tuple(dict.fromkeys(found))


def whole_run_requested(options: Any) -> bool:
    return bool(options.getoption("--dummy-weights") or options.getini("dummyweights_dummy_weights"))


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """``--dummy-weights``: intercept before any conftest.py is imported."""
    options = EarlyOptions(early_config)
    if not whole_run_requested(options):
        return
    if options.getoption("--real-weights") or options.getini("dummyweights_real_weights"):
        raise pytest.UsageError(
            "pytest-dummyweights: --dummy-weights and --real-weights ask for opposite things (dummy weights everywhere, "
            "real weights for the tests that name a checkpoint); choose one"
        )
    from pytest_dummyweights._intercept.run import InterceptRun  # lazy: see the module docstring

    run = early_config.stash[RUN] = InterceptRun(early_config, options, whole_run=True)
    run.whole_run.enter_context(run.active(None, ()))


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """The whole run's engine targets, now that the initial conftest files are loaded."""
    config.stash[WORKER_REPORTS] = []
    run = config.stash.get(RUN, None)
    if run is None:
        return
    try:
        targets = collect_targets(config.hook)
    except DummyWeightsError as error:
        raise pytest.UsageError(f"pytest-dummyweights: {error}") from None
    if targets:
        run.whole_run.enter_context(run.active(None, targets))


def intercepting(item: pytest.Item) -> InterceptRun | None:
    """The run to intercept ``item`` with: the whole run's, else (a marked test) this process's, made at first use."""
    run = item.config.stash.get(RUN, None)
    if run is not None and run.whole:
        return run
    if item.get_closest_marker(MARKER) is None or item.config.stash[SETTINGS].real_weights:
        return None
    if run is None:
        from pytest_dummyweights._intercept.run import InterceptRun  # lazy: see the module docstring

        run = item.config.stash[RUN] = InterceptRun(item.config, item.config, whole_run=False)
    return run


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    run = intercepting(item)
    if run is not None:
        stack = item.stash[ACTIVE] = contextlib.ExitStack()
        try:
            stack.enter_context(run.active(item.nodeid, collect_targets(item.ihook)))
        except DummyWeightsError as error:
            raise pytest.fail.Exception(f"{item.nodeid}: interception: {error}", pytrace=False) from None
    return (yield)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> Any:
    try:
        return (yield)
    finally:
        stack = item.stash.get(ACTIVE, None)
        if stack is not None:
            del item.stash[ACTIVE]
            stack.close()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker, hand its interceptions (and its subprocesses') to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    run = session.config.stash.get(RUN, None)
    if workeroutput is not None and run is not None:
        workeroutput["dummyweights_intercept"] = run.report()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    report = getattr(node, "workeroutput", {}).get("dummyweights_intercept")
    if report is not None:
        node.config.stash[WORKER_REPORTS].append(report)


def summary(config: pytest.Config) -> tuple[list[dict[str, Any]], list[str]]:
    """The cache counts of every intercepting process of the run, and the interception lines of the summary."""
    reports = [*config.stash[WORKER_REPORTS]]  # set at configure
    run = config.stash.get(RUN, None)
    if run is not None:
        reports.append(run.report())
    if not reports:
        return [], []
    from pytest_dummyweights._intercept.session import summary_lines  # lazy: see the module docstring

    records = [record for report in reports for record in report["records"]]
    return [stats for report in reports for stats in report["stats"]], summary_lines(records, config.option.verbose)


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(RUN, None)
    if run is not None:
        del config.stash[RUN]
        run.close()
