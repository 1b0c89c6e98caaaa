"""Building a model: the config (``config``, ``shrink``, ``layer_kinds``), the class (``resolve``),
construction without default init and post-processing (``construct``), the whole pipeline as plain
functions (``pipeline``: plan, then execute) and where a build runs (``context``: search directories, hooks,
worker), and the checks after a build (``smoke``, ``unset``).

May import: ``_checkpoints``, ``_values``, ``_runtime``, the spec, the vocabulary, ``errors``. Knows nothing of
pytest: hooks arrive as a callable relay.
"""
