"""The diff-coverage gate: the measurement with diff-cover's library (``measure``) and its pytest glue
(``plugin``: options, start-up checks, the plugin object).

``measure`` may import ``errors`` and the vocabulary only; ``plugin`` is pytest glue, imported by the
dummy-weights plugin and by nothing in the core.
"""
