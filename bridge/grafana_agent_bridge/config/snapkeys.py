"""The snap's keys: each ``snap set`` key, the configuration key it lands in, and its help.

The table is the snap's vocabulary, shared by the configure hook (``snapconfig``), the reference
documentation (``config.docs``) and the charm's tests (the keys the charm sets must be here).
The limits (``LIMIT_PATHS``) are not written out one by one: their snap key, help and example
come from the schema (``storage.max_head_series`` is ``storage-max-head-series``, its example
the default), so a limit added to the schema is one line here and documented by itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .schema import BridgeConfig
from .types import secret_paths, value_kind
from .units import format_duration, format_size

__all__ = ["LIMIT_PATHS", "SNAP_KEYS", "SnapKey", "SnapSettingError", "snap_key_for"]


class SnapSettingError(ValueError):
    """A snap setting is invalid; the message starts with the snap key's name."""


def _as_list(key: str, value: object) -> list[str]:
    """Comma-separated text (what ``snap set k=a,b`` gives) or a JSON list of strings."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value if item.strip()]
    raise SnapSettingError(f"{key}: expected a comma-separated list, got {json.dumps(value)}")


def _scalar(key: str, value: object) -> object:
    if isinstance(value, (dict, list)):
        raise SnapSettingError(f"{key}: expected a single value, got {json.dumps(value)}")
    return value


def _forward_targets(key: str, value: object) -> list[dict[str, object]]:
    return [{"url": url} for url in _as_list(key, value)]


def _scrape_targets(key: str, value: object) -> list[dict[str, object]]:
    targets: list[dict[str, object]] = []
    for item in _as_list(key, value):
        job, sep, url = item.partition("=")
        if not sep or not job.strip() or not url.strip():
            raise SnapSettingError(f"{key}: expected JOB=URL items, got {json.dumps(item)}")
        targets.append({"job_name": job.strip(), "url": url.strip()})
    return targets


@dataclass(frozen=True)
class SnapKey:
    """One ``snap set`` key and where it lands in the bridge's configuration file."""

    name: str
    path: str
    help: str
    convert: Callable[[str, object], object] = _scalar
    example: str = ""

    @property
    def secret(self) -> bool:
        """Whether the schema declares the key it sets a secret (its value is never shown)."""
        return self.path in _secret_paths()


_NAMED_KEYS: tuple[SnapKey, ...] = (
    SnapKey(
        "listen-address",
        "listen_address",
        "HOST:PORT the bridge listens on; unset = 127.0.0.1:9099 (loopback only).",
        example="0.0.0.0:9099",
    ),
    SnapKey("log-level", "log.level", "debug, info, warning or error.", example="info"),
    SnapKey("log-format", "log.format", "text or json.", example="json"),
    SnapKey("retention-time", "storage.retention_time", "Keep samples this long.", example="30d"),
    SnapKey(
        "retention-size", "storage.retention_size", "Disk budget, 0 = unlimited.", example="20GB"
    ),
    SnapKey(
        "allowed-clients",
        "ingest.allowed_clients",
        "Comma-separated IPs/CIDRs allowed to remote-write; empty = anyone.",
        _as_list,
        "10.0.0.0/8,192.168.1.20",
    ),
    SnapKey(
        "max-body-size", "ingest.max_body_bytes", "Largest remote-write body.", example="32MiB"
    ),
    SnapKey(
        "query-auth-token",
        "query.auth_token",
        "Bearer token the query API requires; empty = none.",
        example="s3cret",
    ),
    SnapKey("query-timeout", "query.timeout", "Query time limit.", example="2m"),
    SnapKey(
        "query-max-samples", "query.max_samples", "Per-query sample limit.", example="50000000"
    ),
    SnapKey("collect-interval", "collect.interval", "Collection interval.", example="15s"),
    SnapKey("collect-host", "collect.host", "Collect host metrics (true/false).", example="true"),
    SnapKey("collect-self", "collect.self", "Collect own metrics (true/false).", example="true"),
    SnapKey(
        "scrape-targets",
        "collect.scrape",
        "Comma-separated JOB=URL exposition endpoints to scrape.",
        _scrape_targets,
        "node=http://127.0.0.1:9100/metrics",
    ),
    SnapKey(
        "forward-urls",
        "forward.targets",
        "Comma-separated remote-write URLs to forward everything to.",
        _forward_targets,
        "http://mimir:9009/api/v1/push",
    ),
    SnapKey(
        "tracing-endpoint",
        "tracing.otlp_endpoint",
        "OTLP/HTTP receiver for the bridge's traces; empty = off.",
        example="http://tempo:4318",
    ),
    SnapKey(
        "tracing-sample-ratio", "tracing.sample_ratio", "Fraction of traces kept.", example="1.0"
    ),
    SnapKey("tls-cert-file", "tls.cert_file", "PEM certificate; serve HTTPS when set."),
    SnapKey("tls-key-file", "tls.key_file", "PEM key of tls-cert-file."),
)

LIMIT_PATHS = (
    "storage.max_head_series",
    "storage.max_labels_per_series",
    "storage.max_label_name_length",
    "storage.max_label_value_length",
    "storage.max_exemplar_labels_length",
    "ingest.max_series_per_request",
    "ingest.max_samples_per_request",
    "ingest.max_decoded_bytes",
    "ingest.max_decoded_elements",
    "ingest.max_concurrent_writes",
    "query.max_points_per_series",
    "query.max_query_length",
    "query.max_nesting_depth",
    "query.max_memory",
    "web.read_header_timeout",
    "web.read_timeout",
    "web.idle_timeout",
    "web.max_connections",
)
"""Configuration keys that bound what a client can cost, each a snap key of the same name."""


def _field(path: str) -> FieldInfo:
    model: type[BaseModel] = BridgeConfig
    *sections, leaf = path.split(".")
    for section in sections:
        annotation = model.model_fields[section].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel), path
        model = annotation
    return model.model_fields[leaf]


def _shown_default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if isinstance(value, timedelta):
        return format_duration(value)
    if value_kind(field.metadata) == "size" and isinstance(value, int):
        return format_size(value)
    return str(value)


def _limit_keys() -> Iterator[SnapKey]:
    for path in LIMIT_PATHS:
        field = _field(path)
        description = field.description or ""
        first = description.split(". ")[0].rstrip(".") + "."
        if "`0` means unlimited" in description:
            first += " 0 = unlimited."
        example = _shown_default(field)
        yield SnapKey(path.replace(".", "-").replace("_", "-"), path, first, example=example)


SNAP_KEYS: tuple[SnapKey, ...] = (*_NAMED_KEYS, *_limit_keys())
"""Every ``snap set`` key the configure hook reads."""


@cache
def _secret_paths() -> frozenset[str]:
    return frozenset(secret_paths(BridgeConfig))


def snap_key_for(path: str) -> str:
    """Name the snap key(s) behind a config error path (``forward.targets[1].url``)."""
    names = []
    for part in path.split(" and "):
        for key in SNAP_KEYS:
            if part == key.path or part.startswith((key.path + ".", key.path + "[")):
                names.append(key.name)
                break
        else:
            names.append(part)
    return " and ".join(names)
