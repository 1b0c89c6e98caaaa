"""Errors a user can act on: each message says what was asked, what was found, and what to do."""


class DummyWeightsError(Exception):
    """Bad input to a dummy build: reported without an internal traceback."""


class RealWeightsUnavailable(DummyWeightsError):
    """``real_weights`` was asked for a spec without a checkpoint that holds data: the test is skipped, not failed."""
