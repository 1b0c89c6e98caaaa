"""Serving built models to tests: the per-worker LRU cache (``model_cache``), its key (``fingerprint``),
isolation between the tests that borrow a model (``isolation``), its memory budget (``budget``), the build lock
shared by a run's processes (``build_lock``) and the run statistics behind the summary (``stats``).

May import: ``_building`` and everything below it. Knows nothing of pytest.
"""
