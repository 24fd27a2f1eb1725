"""The bridge's configuration: one YAML file, the contract shared by daemon, snap and charm.

Errors are reported as ``ConfigError`` whose lines each name the exact key path
(``storage.retention_time: invalid duration "15x"``), because the people reading them are
operators running ``check-config`` or ``snap set``, not Python developers.

The package's rooms: ``units`` (durations, sizes: the grammar Prometheus, the API and the charm
share), ``types`` (how each kind of value is read, shown and dumped; which are secret),
``schema`` (the sections), ``errors`` (operator-readable messages), ``loading`` (YAML),
``snapkeys`` (the ``snap set`` vocabulary) and ``docs`` (the generated reference). Importable
with only pydantic, PyYAML and the standard library.
"""

from __future__ import annotations

from .errors import ConfigError
from .loading import load_config, parse_config
from .schema import (
    DEFAULT_LISTEN_ADDRESS,
    BridgeConfig,
    CollectConfig,
    ForwardConfig,
    ForwardTarget,
    IngestConfig,
    LogConfig,
    QueryConfig,
    ScrapeTarget,
    StorageConfig,
    TLSConfig,
    TracingConfig,
    WebConfig,
)
from .types import (
    ByteSize,
    Duration,
    Secret,
    derived_target_name,
    legacy_target_name,
    parse_host_port,
    secret_paths,
)
from .units import duration_ms, format_duration, format_size, parse_duration, parse_size

__all__ = [
    "DEFAULT_LISTEN_ADDRESS",
    "BridgeConfig",
    "ByteSize",
    "CollectConfig",
    "ConfigError",
    "Duration",
    "ForwardConfig",
    "ForwardTarget",
    "IngestConfig",
    "LogConfig",
    "QueryConfig",
    "ScrapeTarget",
    "Secret",
    "StorageConfig",
    "TLSConfig",
    "TracingConfig",
    "WebConfig",
    "derived_target_name",
    "duration_ms",
    "format_duration",
    "format_size",
    "legacy_target_name",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_host_port",
    "parse_size",
    "secret_paths",
]
