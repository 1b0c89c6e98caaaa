"""Errors and warnings a user can act on: each message says what was asked, what was found, and what to do.

The one home of every error and warning type the plugin raises or emits: errors derive from
``DummyWeightsError``, warnings from ``DummyWeightsWarning``. It also folds foreign exceptions (an
``OSError``, a ``json`` error, a model's own ``ValueError``) into one line of those errors: ``folded`` and
``reraised_as``. Imports nothing of the package and nothing heavy, so every layer may import it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol


class DummyWeightsError(Exception):
    """Bad input to a dummy build: reported without an internal traceback."""


class RealWeightsUnavailable(DummyWeightsError):
    """``real_weights`` was asked for a spec without a checkpoint that holds data: the test is skipped, not failed."""


class MissingDependency(DummyWeightsError, ImportError):
    """Paddle or PaddleFormers is not installed, or cannot be imported; the message names the install command.

    An ``ImportError`` too, for code that tests for optional imports."""


class MismatchReport(Protocol):
    """What ``CheckpointMismatch`` reads of a structure check's report (``CheckReport``)."""

    source: str

    def table(self) -> list[str]: ...


class CheckpointMismatch(DummyWeightsError):
    """The model and its checkpoint disagree (``checkpoint_check="error"``); the message is the report's table."""

    def __init__(self, report: MismatchReport) -> None:
        self.report = report
        heading = (
            f"the model does not match checkpoint {report.source}: fix the config, the model's loader or the checkpoint "
            "(or set checkpoint_check='warn' / --dummy-checkpoint-check=warn)"
        )
        super().__init__("\n".join([heading, *report.table()]))


class GateError(DummyWeightsError):
    """The gate could not measure anything: no git repository, an unknown compare ref, a missing package."""


class DummyWeightsWarning(Warning):
    """Something was asked that the build did not do, or did differently. Not a ``UserWarning``: projects filter
    those away for Paddle's own noise (``ignore::UserWarning``), and these must be seen; Python's default filters
    show them too. Filter them by this class, or by a subclass."""


class CheckpointMismatchWarning(DummyWeightsWarning):
    """The model and its checkpoint disagree (``checkpoint_check="warn"``)."""


class ShrinkWarning(DummyWeightsWarning):
    """A shrink request met a config it does not understand; the config was used unchanged."""


class ValueRulesIgnoredWarning(DummyWeightsWarning):
    """``scales``/``value_rules`` asked for a build with ``real_weights``: the checkpoint's values stay."""


class InterceptPluginWarning(DummyWeightsWarning):
    """Interception cannot reach the Python processes the tests start."""


def folded(error: BaseException) -> str:
    """A foreign exception as one line that keeps its whole message: ``Type: message``, each run of white space
    (Paddle's messages span lines) one space."""
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


@contextlib.contextmanager
def reraised_as(
    error_type: type[DummyWeightsError], what: str, hint: str | None = None, catch: tuple[type[Exception], ...] = (Exception,)
) -> Iterator[None]:
    """Re-raise an exception of a ``catch`` type as one ``error_type`` line, ``{what}: {folded(exception)}; {hint}``,
    without the foreign traceback (bad input, not a bug here). This package's own errors pass through unchanged."""
    try:
        yield
    except DummyWeightsError:
        raise
    except catch as error:
        raise error_type(f"{what}: {folded(error)}" + (f"; {hint}" if hint else "")) from None
