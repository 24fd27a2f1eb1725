"""Prometheus's promqltest harness for the bridge: parse ``.test`` files, load their series
through a store's ``Appender``, evaluate their queries with the engine, check the results.

Depends on the storage contract only (``storage.Appender``/``Querier``); the CLI decides which
store it runs against. ``main`` is ``grafana-agent-bridge promql-test``.
"""

from .cli import expand_paths, main, summarize
from .runner import (
    DEFAULT_KNOWN_FAILURES,
    FileReport,
    OpenStore,
    Outcome,
    Runner,
    ScratchStore,
    load_known_failures,
)

__all__ = [
    "DEFAULT_KNOWN_FAILURES",
    "FileReport",
    "OpenStore",
    "Outcome",
    "Runner",
    "ScratchStore",
    "expand_paths",
    "load_known_failures",
    "main",
    "summarize",
]
