"""Interception: dummy weights for code that loads checkpoints itself, without changing that code.

While a run with ``--dummy-weights`` or a test marked ``dummy_load`` runs, PaddleFormers' ``from_pretrained``
(every model class and the ``Auto*`` classes) and the functions a project names with the
``pytest_dummyweights_intercept`` hook return what real loading would, built from the checkpoint's config with
dummy weights; so do the Python processes started meanwhile.

- ``patches``: what is patched and how (a function's code swapped for a trampoline, so every reference to it is
  intercepted; a module imported later is patched as it loads), and which interception is active;
- ``session``: one process's interception: the run's settings as plain data, the cache its builds go through and
  the records behind the summary;
- ``sources``: where a checkpoint name's config comes from (a directory, the Hugging Face cache, a manifest);
- ``from_pretrained``: the PaddleFormers stand-ins; ``targets``: the hook-named engine targets;
- ``subprocesses``: the environment variable, the start-up hook, the subprocesses' reports; ``startup``: what the
  hook runs in a new process;
- ``plugin``: the pytest glue; ``run``: one pytest process's interception, made by the glue at its first use.

May import: ``_cache`` and everything below it; ``plugin`` and ``run``, the pytest glue, also read ``settings``
and ``marker``. ``startup`` and ``subprocesses`` import neither NumPy nor Paddle (they run in every process the run
starts).
"""
