"""GPO: gradient-inspired prompt optimization (arXiv 2402.17564), as a pure library.

:func:`~pytest_gpo.optimize.loop.optimize` takes plain values and callables (the prompt, the
case ids, an ``evaluate`` callback, a model client, an embedder, a checkpoint store) and returns
an :class:`~pytest_gpo.optimize.result.OptimizationResult`. This package never writes prompt
files, never imports pytest, the plugin, the write-back or the reports, and never imports
litellm or torch (import-linter contracts in pyproject.toml hold it to that). Import what you
need from its modules; this file imports nothing, so reading a suite's ``optimize:`` settings at
collection loads only :mod:`.config`.
"""
