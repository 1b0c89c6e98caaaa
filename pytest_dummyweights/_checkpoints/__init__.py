"""Checkpoints without their data: manifests of safetensors headers (``manifest``, ``hub``), the structure
check of a model against one (``structure``), checkpoint-shaped loading through a model's own
``load_weights`` (``loader_feed``), the contract inside a build (``contract``), and sparse stand-in
checkpoints for benchmarks and tests (``sparse``).

May import: ``_values``, ``_runtime``, the spec, the vocabulary, ``errors``. Never builds a model itself.
"""
