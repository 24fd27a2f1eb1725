"""The bridge's configuration: one YAML file, the contract shared by daemon, snap and charm.

Every key has a default, so an empty file (or no file) means "the embedded defaults": listen on
0.0.0.0:9099, collect this host's and the bridge's own metrics every 15 s, forward nowhere.

Errors are reported as ``ConfigError`` whose lines each name the exact key path
(``storage.retention_time: invalid duration "15x"``), because the people reading them are
operators running ``check-config`` or ``snap set``, not Python developers.

This module must stay importable with only pydantic, PyYAML and the standard library: the charm
imports it to validate what it is about to hand to the snap.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import typing
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    SerializationInfo,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from .redact import MASK, first_unsafe_char, one_line, redact_url, redacted_netloc

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
]

DEFAULT_LISTEN_ADDRESS = "0.0.0.0:9099"


def _quote(value: object) -> str:
    """A value quoted for an error message, escaped so the message stays on one line."""
    return one_line(json.dumps(str(value), ensure_ascii=False))


class ConfigError(ValueError):
    """Invalid configuration; ``errors`` holds ``(key path, message)`` pairs, one per problem."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("\n".join(f"{path}: {msg}" if path else msg for path, msg in errors))


# --- durations ------------------------------------------------------------------------------

# Prometheus's model.ParseDuration: units in decreasing order, each at most once, integers only.
_DURATION_RE = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_MAX_DURATION_MS = 1000 * 365 * 86_400_000
_DURATION_UNITS_MS = (
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
)


def parse_duration(text: str) -> timedelta:
    """Parse a Prometheus duration (``30s``, ``1h30m``, ``15d``, ``0``) into a timedelta."""
    s = text.strip()
    if s == "0":
        return timedelta(0)
    m = _DURATION_RE.match(s)
    if not s or m is None:
        raise ValueError(f'invalid duration {_quote(text)} (use e.g. "30s", "1h30m", "15d")')
    total = sum(int(g) * ms for g, (_, ms) in zip(m.groups(), _DURATION_UNITS_MS) if g)
    if total > _MAX_DURATION_MS:
        raise ValueError(f"duration {_quote(text)} is too long (at most 1000y)")
    return timedelta(milliseconds=total)


def format_duration(value: timedelta) -> str:
    """Render a timedelta the way Prometheus prints durations (``1h30m``; ``0s`` for zero)."""
    ms = duration_ms(value)
    if ms == 0:
        return "0s"
    out = []
    for unit, size in _DURATION_UNITS_MS[2:]:  # days at most: "15d" reads better than "2w1d"
        n, ms = divmod(ms, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def duration_ms(value: timedelta) -> int:
    """Whole milliseconds of a duration: the bridge's internal time unit."""
    return value // timedelta(milliseconds=1)


def _validate_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f'expected a duration such as "30s", got {value!r}')
    if isinstance(value, int) and value == 0:
        return timedelta(0)
    if isinstance(value, (int, float)):
        raise ValueError(f'a duration needs a unit, e.g. "{value}s"; got {value!r}')
    if not isinstance(value, str):
        raise ValueError(f'expected a duration such as "30s", got {type(value).__name__}')
    return parse_duration(value)


Duration = Annotated[
    timedelta,
    BeforeValidator(_validate_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "description": "Prometheus duration, e.g. 30s, 1h30m"}),
]
"""A Prometheus-syntax duration in YAML, a ``timedelta`` in Python (see ``duration_ms``)."""


# --- sizes ----------------------------------------------------------------------------------

# As Prometheus's --storage.tsdb.retention.size: KB and KiB both mean 1024 bytes.
_SIZE_UNITS = {
    "B": 1,
    "KB": 1 << 10,
    "MB": 1 << 20,
    "GB": 1 << 30,
    "TB": 1 << 40,
    "PB": 1 << 50,
    "KIB": 1 << 10,
    "MIB": 1 << 20,
    "GIB": 1 << 30,
    "TIB": 1 << 40,
    "PIB": 1 << 50,
}
_MAX_SIZE = 1 << 60
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$")


def parse_size(text: str) -> int:
    """Parse a byte size (``512MB``, ``1.5GiB``, ``1024``) into bytes; units are powers of 1024."""
    m = _SIZE_RE.match(text.strip())
    if m is None:
        raise ValueError(f'invalid size {_quote(text)} (use e.g. "512MiB", "10GB", "0B")')
    number, unit = m.groups()
    factor = _SIZE_UNITS.get(unit.upper() or "B")
    if factor is None:
        raise ValueError(
            f"invalid size {_quote(text)}: unknown unit {_quote(unit)} "
            "(B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
        )
    size = float(number) * factor
    if not size < _MAX_SIZE:
        raise ValueError(f"size {_quote(text)} is too large (at most 1024PiB)")
    return math.floor(size)


def format_size(value: int) -> str:
    """Render bytes with the largest binary unit that divides them exactly (``32MiB``)."""
    for unit in ("PiB", "TiB", "GiB", "MiB", "KiB"):
        factor = _SIZE_UNITS[unit.upper()]
        if value and value % factor == 0:
            return f"{value // factor}{unit}"
    return f"{value}B"


def _validate_size(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f'expected a size such as "512MiB", got {value!r}')
    if isinstance(value, int):
        if not 0 <= value < _MAX_SIZE:
            raise ValueError(f"a size must be between 0 and 1024PiB, got {value}")
        return value
    if not isinstance(value, str):
        raise ValueError(f'expected a size such as "512MiB", got {type(value).__name__}')
    return parse_size(value)


def _not_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
"""An integer that refuses YAML booleans (pydantic would read `true` as 1)."""
Float = Annotated[float, BeforeValidator(_not_bool)]

ByteSize = Annotated[
    int,
    BeforeValidator(_validate_size),
    PlainSerializer(format_size, return_type=str),
    WithJsonSchema({"type": ["string", "integer"], "description": "bytes, e.g. 512MiB, 10GB"}),
]
"""A byte count; YAML accepts an integer or a number with a unit (B, KB/KiB, MB/MiB, ...)."""


# --- addresses and URLs ---------------------------------------------------------------------


def parse_host_port(text: str) -> tuple[str, int]:
    """Split ``host:port``, ``[v6]:port`` or ``:port`` (all interfaces, host ``""``).

    Raises:
        ValueError: with a message fit to show after the key path.
    """
    s = text.strip()
    host, sep, port_text = s.rpartition(":")
    if not sep:
        raise ValueError(
            f'invalid address {_quote(text)}: expected HOST:PORT, e.g. "0.0.0.0:9099"'
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        _check_ip(host, text)
    elif ":" in host:
        raise ValueError(
            f'invalid address {_quote(text)}: write IPv6 hosts in brackets, "[::]:9099"'
        )
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"invalid address {_quote(text)}: port must be 1-65535")
    if host and not re.fullmatch(r"[A-Za-z0-9.:_-]+", host):
        raise ValueError(f"invalid address {_quote(text)}: bad host {_quote(host)}")
    return host, int(port_text)


def _check_ip(host: str, text: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"invalid address {_quote(text)}: {_quote(host)} is not an IP address"
        ) from None


def _check_http_url(value: str) -> str:
    """``value`` if it is an http(s) URL; errors show it with credentials masked."""
    shown = _quote(redact_url(value))
    unsafe = first_unsafe_char(value)
    if unsafe is not None:  # urlsplit would silently drop CR, LF and TAB: refuse them first
        at, char = unsafe
        raise ValueError(f"invalid URL {shown}: control character {char} at position {at}")
    if " " in value:
        raise ValueError(f"invalid URL {shown}: spaces must be percent-encoded (%20)")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise ValueError(f"invalid URL {shown}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid URL {shown}: expected http(s)://host[:port]/path")
    return value


def _validate_http_url(value: object) -> object:
    return _check_http_url(value) if isinstance(value, str) else value


def _reveal(info: SerializationInfo) -> bool:
    """Whether a dump is for the daemon itself (``to_yaml``) rather than for showing."""
    context = info.context
    return isinstance(context, dict) and bool(context.get(_REVEAL))


_REVEAL = "reveal_secrets"


def _dump_url(value: str, info: SerializationInfo) -> str:
    return value if _reveal(info) else redact_url(value)


HttpUrl = Annotated[
    str,
    BeforeValidator(_validate_http_url),
    PlainSerializer(_dump_url, return_type=str),
]
"""An http(s) URL. A dump masks its credentials (``redact_url``) unless ``to_yaml`` asks."""


def _is_url_field(field: FieldInfo) -> bool:
    return any(getattr(m, "func", None) in (_validate_http_url, _dump_url) for m in field.metadata)


def _validate_secret(value: object) -> object:
    if isinstance(value, str):
        unsafe = first_unsafe_char(value)
        if unsafe is not None:  # not echoed: the value is a secret
            raise ValueError(f"control character {unsafe[1]} at position {unsafe[0]}")
    return value


def _dump_secret(value: SecretStr, info: SerializationInfo) -> str:
    secret = value.get_secret_value()
    return secret if _reveal(info) or not secret else MASK


Secret = Annotated[
    SecretStr,
    BeforeValidator(_validate_secret),
    PlainSerializer(_dump_secret, return_type=str),
    WithJsonSchema({"type": "string", "writeOnly": True, "description": "a secret"}),
]
"""A secret string: ``repr`` and dumps show ``***`` (``to_yaml`` keeps the value) and config
errors never echo it; read it with ``.get_secret_value()``."""

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token


def _name_from(netloc: str, path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{netloc}{path}".strip("/")) or "target"


def derived_target_name(url: str) -> str:
    """A target's default name: host, port and path; never its userinfo or query, which may
    hold credentials (the name is a metrics label and part of file names)."""
    parts = urlsplit(url)
    return _name_from(redacted_netloc(parts.netloc).removeprefix(f"{MASK}@"), parts.path)


def legacy_target_name(url: str) -> str:
    """The name earlier versions derived from ``url``, userinfo included: forwarding renames
    state saved under it to the current name, so no cursor is lost."""
    parts = urlsplit(url)
    return _name_from(parts.netloc, parts.path)


# --- the models -----------------------------------------------------------------------------


class _Section(BaseModel):
    """Common settings: unknown keys are errors, defaults are validated too."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """``repr`` (what a stray log line would show) masks URL credentials as dumps do."""
        for name, value in super().__repr_args__():
            field = type(self).model_fields.get(name or "")
            if field is not None and isinstance(value, str) and _is_url_field(field):
                yield name, redact_url(value)
            else:
                yield name, value


class LogConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Least severe log level written."
    )
    format: Literal["text", "json"] = Field(
        default="text",
        description="`text` for people, `json` (one object per line) for log shippers.",
    )


class StorageConfig(_Section):
    retention_time: Duration = Field(
        default=timedelta(days=15),
        description="Samples older than this are deleted (whole blocks at a time). `0` keeps "
        "data until `retention_size` is reached.",
    )
    retention_size: ByteSize = Field(
        default=0,
        description="Maximum bytes of blocks plus WAL; the oldest blocks are deleted first. "
        "`0` means unlimited.",
    )
    block_duration: Duration = Field(
        default=timedelta(hours=2),
        description="Time span of each immutable compressed block cut from the WAL.",
    )
    wal_segment_size: ByteSize = Field(
        default=32 << 20, description="Size at which a write-ahead-log segment file is closed."
    )
    # Limits on what a sender can make the bridge keep in memory. Defaults: far above what a
    # machine deployment sends (node_exporter: ~1,000-2,000 series of ≤ 10 short labels per
    # machine), low enough that a runaway or hostile sender cannot exhaust memory.
    max_head_series: Int = Field(
        default=250_000,
        ge=0,
        description="Most series in the in-memory head (those with recent samples); a sample "
        "that would create one more is rejected (400), existing series keep being written. "
        "Measured on 2 cores: 250,000 head series peak at ~0.8 GiB RSS and replay in ~5 s, "
        "500,000 at ~1.8 GiB (during replay) and ~12 s; the default is 125 machines of 2,000 "
        "series each. `0` means unlimited.",
    )
    max_labels_per_series: Int = Field(
        default=64,
        ge=0,
        description="Most labels a series may have, `__name__` included; a series with more "
        "is rejected. (Prometheus's `label_limit` has no default; Mimir's is 30.) `0` means "
        "unlimited.",
    )
    max_label_name_length: Int = Field(
        default=1024,
        ge=0,
        description="Longest label name in bytes (UTF-8), as Prometheus's "
        "`label_name_length_limit` counts; a series with a longer one is rejected. `0` means "
        "unlimited.",
    )
    max_label_value_length: Int = Field(
        default=2048,
        ge=0,
        description="Longest label value in bytes (UTF-8), as Prometheus's "
        "`label_value_length_limit` counts; a series with a longer one is rejected. `0` means "
        "unlimited.",
    )
    max_exemplar_labels_length: Int = Field(
        default=128,
        ge=0,
        description="Most characters of an exemplar's label names and values together "
        "(Prometheus's fixed limit and the OpenMetrics rule); a longer exemplar is rejected, "
        "its sample kept. `0` means unlimited.",
    )

    @model_validator(mode="after")
    def _sane(self) -> StorageConfig:
        if self.block_duration < timedelta(minutes=1):
            raise ValueError("block_duration: must be at least 1m")
        if self.wal_segment_size < 64 << 10:
            raise ValueError("wal_segment_size: must be at least 64KiB")
        return self


class IngestConfig(_Section):
    allowed_clients: list[str] = Field(
        default_factory=list,
        description="IP addresses or CIDR networks allowed to `POST /api/v1/write`; others get "
        "403. Empty means anyone. Hostnames are not accepted (resolve them first).",
    )
    max_body_bytes: ByteSize = Field(
        default=32 << 20,
        description="Largest accepted remote-write request body (compressed); larger gets 413.",
    )
    max_series_per_request: Int = Field(
        default=100_000,
        ge=0,
        description="Most series one remote-write request may carry; later series are "
        "rejected (400), the earlier ones stored. Senders batch 2,000 samples by default. "
        "`0` means unlimited.",
    )
    max_samples_per_request: Int = Field(
        default=1_000_000,
        ge=0,
        description="Most samples one remote-write request may carry; the series that would "
        "exceed it and all after it are rejected (400), the earlier ones stored. `0` means "
        "unlimited.",
    )
    max_decoded_bytes: ByteSize = Field(
        default=64 << 20,
        description="Largest size a remote-write body may decompress to; larger gets 413, "
        "checked against the size the snappy header declares before anything is "
        "decompressed. A sender's batch of 2,000 samples is well under 1MiB decoded.",
    )
    max_decoded_elements: Int = Field(
        default=2_000_000,
        gt=0,
        description="Most protobuf elements (series, labels, samples, exemplars, metadata) a "
        "remote-write body may hold, counted before it is parsed; more gets 413. It bounds "
        "the decoder's memory: an element costs up to ~60 bytes parsed however few it is sent "
        "in.",
    )
    max_concurrent_writes: Int = Field(
        default=4,
        gt=0,
        description="Remote writes read and decoded at once; more wait up to 5s, then get "
        "503 with `Retry-After` (which senders retry).",
    )

    @field_validator("allowed_clients")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for i, item in enumerate(value):
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"[{i}]: {_quote(item)} is not an IP address or CIDR network"
                ) from None
        return [item.strip() for item in value]

    def allowed_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The allow-list as networks (a bare address is a /32 or /128)."""
        return [ipaddress.ip_network(item, strict=False) for item in self.allowed_clients]


class OTLPConfig(_Section):
    """How OTLP metrics become Prometheus series: the keys of Prometheus 3.x's ``otlp`` block,
    with its defaults."""

    translation_strategy: Literal[
        "UnderscoreEscapingWithSuffixes",
        "UnderscoreEscapingWithoutSuffixes",
        "NoUTF8EscapingWithSuffixes",
        "NoTranslation",
    ] = Field(
        default="UnderscoreEscapingWithSuffixes",
        description="Metric and label names: escaped to `[a-zA-Z0-9_:]` with unit and "
        "`_total` suffixes (the default, as Prometheus), escaped without suffixes, kept as "
        "sent (UTF-8) with suffixes, or kept as sent.",
    )
    promote_resource_attributes: list[str] = Field(
        default_factory=list,
        description="Resource attributes copied onto every series of the resource as labels "
        "(all resource attributes but `service.*` are on `target_info` anyway).",
    )
    promote_all_resource_attributes: bool = Field(
        default=False,
        description="Copy every resource attribute (but `ignore_resource_attributes`) onto "
        "every series; excludes `promote_resource_attributes`.",
    )
    ignore_resource_attributes: list[str] = Field(
        default_factory=list,
        description="Resource attributes not copied when `promote_all_resource_attributes`.",
    )
    keep_identifying_resource_attributes: bool = Field(
        default=False,
        description="Keep `service.name`, `service.namespace` and `service.instance.id` on "
        "`target_info` too (they are always `job` and `instance`).",
    )
    promote_scope_metadata: bool = Field(
        default=False,
        description="Add the instrumentation scope as `otel_scope_name`, `otel_scope_version`, "
        "`otel_scope_schema_url` and `otel_scope_<attribute>` labels.",
    )
    allow_delta_temporality: bool = Field(
        default=False,
        description="Store delta sums and histograms as sent; by default their points are "
        "refused (partial success), as Prometheus does.",
    )

    @model_validator(mode="after")
    def _exclusive(self) -> OTLPConfig:
        if self.promote_all_resource_attributes and self.promote_resource_attributes:
            raise ValueError(
                "promote_all_resource_attributes and promote_resource_attributes are exclusive"
            )
        if self.ignore_resource_attributes and not self.promote_all_resource_attributes:
            raise ValueError("ignore_resource_attributes needs promote_all_resource_attributes")
        return self


class QueryConfig(_Section):
    auth_token: Secret = Field(
        default=SecretStr(""),
        description="When set, every query API request must carry `Authorization: Bearer "
        "<token>` (401 otherwise). `/-/healthy`, `/-/ready` and `/metrics` stay open.",
    )
    auth_token_file: str = Field(
        default="",
        description="Read the bearer token from this file instead (surrounding whitespace "
        'ignored; an empty file is an error, not "no authentication"). Mutually exclusive '
        "with `auth_token`.",
    )
    timeout: Duration = Field(
        default=timedelta(minutes=2),
        description="A query running longer is aborted with 503 `timeout`.",
    )
    max_samples: Int = Field(
        default=50_000_000,
        gt=0,
        description="Most samples a single query may hold in memory at once (422 beyond).",
    )
    lookback_delta: Duration = Field(
        default=timedelta(minutes=5),
        description="How far back an instant selector looks for the latest sample.",
    )
    max_points_per_series: Int = Field(
        default=11_000,
        gt=0,
        description="Most points a range query may return per series (400 beyond).",
    )
    max_query_length: Int = Field(
        default=1 << 20,
        gt=0,
        description="Longest PromQL text (characters) accepted by any endpoint, checked "
        "before parsing (400 beyond).",
    )
    max_nesting_depth: Int = Field(
        default=200,
        gt=0,
        le=1000,
        description="Deepest PromQL expression accepted (bracket levels plus chained "
        "operators), checked before parsing: far deeper input crashes the parser (400 beyond).",
    )
    max_memory: ByteSize = Field(
        default=1 << 30,
        gt=0,
        description="Estimated working memory a single query may build up (series x steps "
        "arrays and loaded samples), refused before allocating (422 beyond).",
    )

    @model_validator(mode="after")
    def _one_token_source(self) -> QueryConfig:
        token = self.auth_token.get_secret_value()
        if token and self.auth_token_file:
            raise ValueError("auth_token and auth_token_file: set at most one")
        if token and not token.strip():
            raise ValueError("auth_token: is only whitespace (leave it empty for no token)")
        if self.timeout <= timedelta(0):
            raise ValueError("timeout: must be greater than 0")
        if self.lookback_delta <= timedelta(0):
            raise ValueError("lookback_delta: must be greater than 0")
        return self

    def resolve_auth_token(self) -> str:
        """The effective token ("" = no authentication); reads ``auth_token_file`` if set.

        Fails closed: a token file that is empty (or only whitespace) is an error, never
        "no authentication", since it most likely means a token that failed to be written.

        Raises:
            ConfigError: the token file cannot be read, is empty, or holds control characters.
        """
        if not self.auth_token_file:
            return self.auth_token.get_secret_value()
        key = "query.auth_token_file"
        try:
            token = Path(self.auth_token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise ConfigError([(key, f"cannot read {self.auth_token_file}: {reason}")]) from None
        if not token:
            raise ConfigError(
                [
                    (
                        key,
                        f"{self.auth_token_file} is empty (or only whitespace); refusing to "
                        "serve the query API without authentication",
                    )
                ]
            )
        unsafe = first_unsafe_char(token)
        if unsafe is not None:
            raise ConfigError(
                [(key, f"{self.auth_token_file}: control character {unsafe[1]} in the token")]
            )
        return token


class ScrapeTarget(_Section):
    job_name: str = Field(
        min_length=1, description="Value of the `job` label of the scraped series."
    )
    url: HttpUrl = Field(description="Prometheus exposition endpoint, e.g. http://host/metrics.")
    interval: Duration | None = Field(
        default=None, description="Scrape interval; defaults to `collect.interval`."
    )
    timeout: Duration | None = Field(
        default=None, description="Scrape timeout; defaults to the interval (at most 10s)."
    )

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> ScrapeTarget:
        if self.interval is not None and self.interval <= timedelta(0):
            raise ValueError("interval: must be greater than 0")
        if self.timeout is not None and self.timeout <= timedelta(0):
            raise ValueError("timeout: must be greater than 0")
        if self.interval and self.timeout and self.timeout > self.interval:
            raise ValueError("timeout: must not exceed interval")
        return self


class CollectConfig(_Section):
    interval: Duration = Field(
        default=timedelta(seconds=15),
        description="How often host and self metrics are collected, and the default scrape "
        "interval.",
    )
    host: bool = Field(
        default=True,
        description="Collect this machine's CPU, memory, load, filesystem and network metrics "
        'from /proc and /sys under node_exporter names (`job="node"`).',
    )
    self: bool = Field(
        default=True,
        description='Store the bridge\'s own `/metrics` (`job="grafana-agent-bridge"`).',
    )
    rootfs: str = Field(
        default="/",
        description="Where the host's root filesystem is visible, for filesystem metrics. "
        "`/` normally; inside a strict snap the host's is at `/var/lib/snapd/hostfs` (the snap "
        "sets this itself), and then mounts are read from PID 1's mount table.",
    )
    scrape: list[ScrapeTarget] = Field(
        default_factory=list,
        description="Extra Prometheus exposition endpoints to scrape, each a mapping with "
        "`job_name`, `url` and optional `interval`, `timeout`.",
    )

    @model_validator(mode="after")
    def _check(self) -> CollectConfig:
        if self.interval <= timedelta(0):
            raise ValueError("interval: must be greater than 0")
        if not self.rootfs.startswith("/"):
            raise ValueError(f"rootfs: must be an absolute path, not {_quote(self.rootfs)}")
        seen: set[str] = set()
        for i, target in enumerate(self.scrape):
            if target.job_name in seen:
                raise ValueError(
                    f"scrape[{i}].job_name: duplicate job name {_quote(target.job_name)}"
                )
            seen.add(target.job_name)
        return self

    def scrape_interval(self, target: ScrapeTarget) -> timedelta:
        """The interval a scrape target actually uses."""
        return target.interval or self.interval

    def scrape_timeout(self, target: ScrapeTarget) -> timedelta:
        """The timeout a scrape target actually uses."""
        return target.timeout or min(self.scrape_interval(target), timedelta(seconds=10))


class ForwardTarget(_Section):
    name: str = Field(
        default="",
        description="Stable identifier of the target (metrics label, progress file name); "
        "letters, digits, `_`, `.`, `-`. Derived from the URL's host, port and path when empty "
        "(never from its credentials or query), so the forwarding position survives "
        "reordering.",
    )
    url: HttpUrl = Field(
        description="Remote-write endpoint, e.g. http://mimir:9009/api/v1/push. `user:pass@` "
        "in it is sent as basic authentication (unless `bearer_token` or an Authorization "
        "header is set); credentials and query values are masked wherever it is shown."
    )
    headers: dict[str, Secret] = Field(
        default_factory=dict,
        description="Extra HTTP headers sent with every request (values are treated as "
        "secrets: never shown).",
    )
    bearer_token: Secret = Field(
        default=SecretStr(""), description="Sent as `Authorization: Bearer <token>` when set."
    )
    timeout: Duration = Field(
        default=timedelta(seconds=30), description="Timeout of one send request."
    )
    tls_insecure_skip_verify: bool = Field(
        default=False, description="Accept any server certificate (testing only)."
    )

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("name") and isinstance(data.get("url"), str):
            return {**data, "name": derived_target_name(data["url"])}
        return data

    @model_validator(mode="after")
    def _check(self) -> ForwardTarget:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"name: {_quote(self.name)} may contain only letters, digits, _ . -")
        if self.timeout <= timedelta(0):
            raise ValueError("timeout: must be greater than 0")
        if self.bearer_token.get_secret_value() and any(
            k.lower() == "authorization" for k in self.headers
        ):
            raise ValueError("bearer_token: conflicts with an Authorization header in headers")
        for key in self.headers:
            if not _HEADER_NAME_RE.match(key):
                raise ValueError(f"headers: {_quote(key)} is not a valid HTTP header name")
        return self

    def header_values(self) -> dict[str, str]:
        """The extra headers with their values revealed, for the request itself."""
        return {k: v.get_secret_value() for k, v in self.headers.items()}


class ForwardConfig(_Section):
    targets: list[ForwardTarget] = Field(
        default_factory=list,
        description="Upstream remote-write receivers (COS Prometheus or Mimir). Empty: no "
        "forwarding. Each is a mapping with `url` and optional `name`, `headers`, "
        "`bearer_token`, `timeout`, `tls_insecure_skip_verify`.",
    )
    max_samples_per_send: Int = Field(
        default=2000, gt=0, description="Most samples in one remote-write request."
    )
    min_backoff: Duration = Field(
        default=timedelta(milliseconds=30), description="First retry delay after a failed send."
    )
    max_backoff: Duration = Field(
        default=timedelta(seconds=5), description="Cap of the exponentially growing retry delay."
    )

    @model_validator(mode="after")
    def _check(self) -> ForwardConfig:
        if self.min_backoff <= timedelta(0):
            raise ValueError("min_backoff: must be greater than 0")
        if self.max_backoff < self.min_backoff:
            raise ValueError("max_backoff: must not be less than min_backoff")
        seen: set[str] = set()
        for i, target in enumerate(self.targets):
            if target.name in seen:
                raise ValueError(
                    f"targets[{i}].name: duplicate target name {_quote(target.name)} (targets "
                    "differing only in credentials or query need explicit names)"
                )
            seen.add(target.name)
        return self


class TracingConfig(_Section):
    otlp_endpoint: Annotated[str, PlainSerializer(_dump_url, return_type=str)] = Field(
        default="",
        description="OTLP/HTTP receiver, `http(s)://host:port` (then `/v1/traces` is appended) "
        "or a full URL with a path. Empty: no tracing.",
    )
    service_name: str = Field(
        default="grafana-agent-bridge", min_length=1, description="`service.name` of the spans."
    )
    sample_ratio: Float = Field(
        default=1.0, ge=0.0, le=1.0, description="Fraction of traces kept (parent-based)."
    )

    @field_validator("otlp_endpoint")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_http_url(value) if value else value

    def traces_url(self) -> str:
        """The URL spans are POSTed to ("" when tracing is off)."""
        if not self.otlp_endpoint:
            return ""
        parts = urlsplit(self.otlp_endpoint)
        if parts.path in ("", "/"):
            return self.otlp_endpoint.rstrip("/") + "/v1/traces"
        return self.otlp_endpoint


class WebConfig(_Section):
    read_header_timeout: Duration = Field(
        default=timedelta(seconds=10),
        description="The request line and headers must arrive within this (from the "
        "connection's start, or from their first byte on a kept-alive connection); a slower "
        "client is disconnected.",
    )
    read_timeout: Duration = Field(
        default=timedelta(minutes=1),
        description="A request body must arrive within this; a slower one gets 408.",
    )
    idle_timeout: Duration = Field(
        default=timedelta(minutes=5),
        description="A kept-alive connection with no new request for this long is closed.",
    )
    max_connections: Int = Field(
        default=512,
        gt=0,
        description="Most client connections open at once; more are closed as soon as they "
        "are accepted. Lowered at start-up to fit the open-files limit (which the bridge "
        "raises to its hard limit).",
    )

    @model_validator(mode="after")
    def _positive(self) -> WebConfig:
        for key in ("read_header_timeout", "read_timeout", "idle_timeout"):
            if getattr(self, key) <= timedelta(0):
                raise ValueError(f"{key}: must be greater than 0")
        return self


class TLSConfig(_Section):
    cert_file: str = Field(
        default="", description="PEM certificate (chain); serve HTTPS when set."
    )
    key_file: str = Field(default="", description="PEM private key of `cert_file`.")

    @model_validator(mode="after")
    def _both(self) -> TLSConfig:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("cert_file and key_file: set both or neither")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)


class BridgeConfig(_Section):
    """The whole configuration file."""

    listen_address: str = Field(
        default=DEFAULT_LISTEN_ADDRESS,
        description="`HOST:PORT` of the HTTP server (write, query, `/metrics`); `[::]:PORT` or "
        "`:PORT` for all interfaces.",
    )
    data_dir: str = Field(
        default="./data",
        description="Directory of the WAL, blocks and forwarding positions, relative to the "
        "working directory. The snap uses `$SNAP_COMMON/data`.",
    )
    log: LogConfig = Field(default_factory=LogConfig, description="Logging.")
    storage: StorageConfig = Field(default_factory=StorageConfig, description="Local TSDB.")
    ingest: IngestConfig = Field(
        default_factory=IngestConfig,
        description="The remote-write and OTLP endpoints (limits apply to both).",
    )
    otlp: OTLPConfig = Field(default_factory=OTLPConfig, description="OTLP metrics translation.")
    query: QueryConfig = Field(default_factory=QueryConfig, description="The query API.")
    collect: CollectConfig = Field(
        default_factory=CollectConfig, description="Built-in collection."
    )
    forward: ForwardConfig = Field(
        default_factory=ForwardConfig, description="Upstream remote-write forwarding."
    )
    tracing: TracingConfig = Field(
        default_factory=TracingConfig, description="OpenTelemetry traces of the bridge."
    )
    tls: TLSConfig = Field(default_factory=TLSConfig, description="HTTPS for the server.")
    web: WebConfig = Field(
        default_factory=WebConfig,
        description="What a client connection may cost: deadlines and the connection cap.",
    )

    @field_validator("listen_address")
    @classmethod
    def _address(cls, value: str) -> str:
        parse_host_port(value)
        return value.strip()

    @field_validator("data_dir")
    @classmethod
    def _dir(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @property
    def listen(self) -> tuple[str, int]:
        """``(host, port)`` of ``listen_address``; host ``""`` means all interfaces."""
        return parse_host_port(self.listen_address)

    def to_yaml(self) -> str:
        """The configuration as YAML that ``parse_config`` reads back to an equal object.

        It holds the secrets: it is for the daemon's own config file, not for showing.
        """
        return yaml.safe_dump(self._dump(reveal=True), sort_keys=False)

    def redacted_yaml(self) -> str:
        """The configuration to show (``/api/v1/status/config``): every ``Secret`` masked,
        URL credentials and query values masked (see ``redact.redact_url``)."""
        return yaml.safe_dump(self._dump(reveal=False), sort_keys=False)

    def _dump(self, *, reveal: bool) -> dict[str, Any]:
        return self.model_dump(mode="json", context={_REVEAL: reveal})

    def with_overrides(self, overrides: Mapping[str, object]) -> BridgeConfig:
        """A copy with dotted keys replaced (``{"collect.host": False}``), validated again.

        Raises:
            ConfigError: an override names an unknown key or has an invalid value.
        """
        data = self._dump(reveal=True)
        for dotted, value in overrides.items():
            node = data
            *parents, leaf = dotted.split(".")
            for part in parents:
                child = node.get(part)
                if not isinstance(child, dict):
                    raise ConfigError([(dotted, "unknown key")])
                node = child
            node[leaf] = value
        return _validate(data)


# --- loading --------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects duplicate keys instead of silently keeping the last."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        try:
            duplicate = key in result
        except TypeError:  # a list or mapping used as a key
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {_quote(key)}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)  # type: ignore[no-untyped-call]
    return result


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


def parse_config(text: str) -> BridgeConfig:
    """Validate configuration YAML; empty text gives the embedded defaults.

    Raises:
        ConfigError: YAML syntax error or any invalid key; the message names the key path.
    """
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ConfigError([("", f"invalid YAML: {_yaml_problem(e)}")]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([("", f"the top level must be a mapping, got {_kind(data)}")])
    return _validate(_drop_nulls(data))


def _drop_nulls(value: Any) -> Any:
    """An empty value (``key:`` with everything under it commented out) means the default."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def load_config(path: str | Path | None) -> BridgeConfig:
    """Read and validate the configuration file; ``None`` gives the embedded defaults.

    Raises:
        ConfigError: the file is unreadable or invalid; the message names the key path.
    """
    if path is None:
        return BridgeConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ConfigError([("", f"cannot read config file {path}: {reason}")]) from None
    try:
        return parse_config(text)
    except ConfigError as e:
        raise ConfigError([(p, m) if p else ("", f"{path}: {m}") for p, m in e.errors]) from None


def _validate(data: dict[str, Any]) -> BridgeConfig:
    try:
        return BridgeConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(list(_describe(e))) from None


def _yaml_problem(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    if mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return problem


def _kind(value: object) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in ("lax-or-strict", "json-or-python"):
            continue  # pydantic's internal validator steps, not keys
        elif not re.fullmatch(r"[A-Za-z_][\w-]*", part):
            out += f"[{_quote(part)}]"  # a key that is not a name: keep the message on one line
        else:
            out += f".{part}" if out else part
    return out


_SIMPLE_MESSAGES = {
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "list_type": "expected a list",
}


def _describe(error: ValidationError) -> Iterator[tuple[str, str]]:
    """Turn pydantic's errors into ``(key path, message)``; never a raw pydantic dump, and
    never the value of a secret (nor of anything that may contain one)."""
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        path = _path(loc)
        kind = err["type"]
        value = _shown_input(loc, err.get("input"))
        if kind == "extra_forbidden":
            yield path, "unknown key"
        elif kind == "missing":
            yield path, "required key is missing"
        elif kind in _SIMPLE_MESSAGES:
            yield path, f"{_SIMPLE_MESSAGES[kind]}, got {_show(value)}"
        elif kind == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            yield path, f"must be one of {expected}, got {_show(value)}"
        elif kind == "value_error":
            msg = str(err.get("ctx", {}).get("error", err["msg"]))
            yield _split_nested(path, msg)
        else:  # greater_than, less_than_equal, string_too_short, ...: pydantic's own sentence
            yield path, f"{err['msg'][0].lower()}{err['msg'][1:]}, got {_show(value)}"


_NESTED_RE = re.compile(
    r"^(\[\d+\](?:\.[A-Za-z_][\w.\[\]]*)?|[A-Za-z_][\w.\[\]]*(?: and [\w.]+)?): (.*)$", re.S
)


def _split_nested(path: str, msg: str) -> tuple[str, str]:
    """Model validators report ``"sub.key: message"``; fold that prefix into the path."""
    m = _NESTED_RE.match(msg)
    if m is None:
        return path, msg
    sub, rest = m.groups()
    if " and " in sub:
        first, second = sub.split(" and ")
        sub = f"{first} and {path + '.' if path else ''}{second}"
    if sub.startswith("["):
        return f"{path}{sub}", rest
    return (f"{path}.{sub}" if path else sub), rest


class _Hidden:
    """Stands for a secret's input in an error message: only its kind is shown."""

    def __init__(self, value: object) -> None:
        self.kind = _kind(value)


def _shown_input(loc: tuple[int | str, ...], value: object) -> object:
    """The input as an error may show it: hidden if the key may hold a secret, a URL with
    its credentials masked."""
    annotation, is_url = _annotation_at(loc)
    if _holds_secret(annotation):
        return _Hidden(value)
    if is_url and isinstance(value, str):
        return redact_url(value)
    return value


def _annotation_at(loc: tuple[int | str, ...]) -> tuple[Any, bool]:
    """The declared type at an error's location (as deep as it can be followed: an outer type
    holds any secret an inner one does) and whether it is a URL."""
    annotation: Any = BridgeConfig
    is_url = False
    for part in loc:
        if isinstance(part, str) and (part.startswith("function-") or "-or-" in part):
            continue  # pydantic's validator steps, not keys
        while typing.get_origin(annotation) is Annotated:
            annotation = typing.get_args(annotation)[0]
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                break
            annotation = field.annotation
            is_url = _is_url_field(field)
        elif origin is list and isinstance(part, int):
            annotation = args[0]
        elif origin is dict and isinstance(part, str):
            annotation = args[1]
        else:
            break
    return annotation, is_url


def _holds_secret(annotation: Any) -> bool:
    """Whether a value of this type is, or may contain, a ``Secret``."""
    if annotation is SecretStr:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(_holds_secret(f.annotation) for f in annotation.model_fields.values())
    return any(_holds_secret(a) for a in typing.get_args(annotation))


def _show(value: object) -> str:
    if isinstance(value, _Hidden):
        return f"{value.kind} (not shown: it may be a secret)"
    if value is None:
        return "null"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, (dict, list)):
        return _kind(value)
    return repr(value) if not isinstance(value, bool) else str(value).lower()
