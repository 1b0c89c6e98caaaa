"""Errors and warnings a user can act on: each message says what was asked, what was found, and what to do."""


class DummyWeightsError(Exception):
    """Bad input to a dummy build: reported without an internal traceback."""


class RealWeightsUnavailable(DummyWeightsError):
    """``real_weights`` was asked for a spec without a checkpoint that holds data: the test is skipped, not failed."""


class DummyWeightsWarning(Warning):
    """Something was asked that the build did not do, or did differently. Not a ``UserWarning``: projects filter
    those away for Paddle's own noise (``ignore::UserWarning``), and these must be seen; Python's default filters
    show them too. Filter them by this class, or by a subclass."""
