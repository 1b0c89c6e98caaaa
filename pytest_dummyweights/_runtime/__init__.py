"""The process's platform, at the bottom of the package: devices and their memory (``device``), what a build
needs installed (``requirements``), where a path the user wrote is (``paths``), the one table of dtypes
(``dtypes``), and the only home of private APIs, one module per owner (``private_paddle``, ``private_pytest``,
``private_coverage``), each behind a named function.

May import: ``errors`` and the vocabulary. Paddle is imported here, lazily by the modules that need it.
"""
