"""The process's platform, at the bottom of the package: devices and their memory, the one table of dtypes
(``dtypes``), and the only home of private Paddle and pytest-cov APIs (``private_apis``), each behind a named function.

May import: ``errors`` and the vocabulary. Paddle is imported here, lazily by the modules that need it.
"""
