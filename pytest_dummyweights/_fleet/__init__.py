"""One build per model across the fleet: which model each test needs (``keys``), tests grouped into work units
(``units``), the costs learned from earlier runs (``durations``), the xdist scheduler that sends each unit to one
worker (``scheduler``), the split of a suite into CI shards (``shards``), and their pytest glue (``plugin``).

May import: ``_cache`` (the fleet key), ``_building`` (planning a build, to compute that key), the spec, the
vocabulary, ``errors``. ``scheduler`` imports pytest-xdist and is imported only when xdist runs the session;
``plugin`` is pytest glue, registered by the dummy-weights plugin; it imports Paddle only where keys are
computed (the workers of the model scheduler, and a run with ``--dummy-shard``), and reads the tests' specs
(``marker``) and the run's settings and statistics (``settings``) as every piece of pytest glue does.
"""
