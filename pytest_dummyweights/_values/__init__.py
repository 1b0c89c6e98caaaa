"""Dummy values: the value store (``store``, one file of normal samples per dtype, seed and std), mapped
storage over it (``mapped``, ``pages``), filling a model's parameters (``fill``) and exact value rules
(``value_rules``, neutral scales).

May import: ``_runtime``, the vocabulary, ``errors``. Knows nothing of checkpoints, builds or pytest.
"""
