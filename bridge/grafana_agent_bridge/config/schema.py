"""The configuration's schema: one typed, frozen model per section of ``config.yaml``.

Every key has a default, so an empty file (or no file) means "the embedded defaults": listen on
0.0.0.0:9099, collect this host's and the bridge's own metrics every 15 s, forward nowhere.
Each field's description is the reference documentation (``config.docs`` renders it), and its
type says how it is read and shown (``config.types``): a ``Secret`` is masked wherever the
configuration is shown, because of its type.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    field_validator,
    model_validator,
)

from ..redact import first_unsafe_char, redact_url
from .errors import ConfigError, validate
from .types import (
    HEADER_NAME_RE,
    NAME_RE,
    REVEAL,
    ByteSize,
    Duration,
    Float,
    HttpUrl,
    Int,
    Secret,
    check_http_url,
    derived_target_name,
    dump_url,
    is_url_field,
    parse_host_port,
    quote,
)

DEFAULT_LISTEN_ADDRESS = "0.0.0.0:9099"


# --- the sections -----------------------------------------------------------------------------


class _Section(BaseModel):
    """Common settings: unknown keys are errors, defaults are validated too."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """``repr`` (what a stray log line would show) masks URL credentials as dumps do."""
        for name, value in super().__repr_args__():
            field = type(self).model_fields.get(name or "")
            if field is not None and isinstance(value, str) and is_url_field(field):
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
                    f"[{i}]: {quote(item)} is not an IP address or CIDR network"
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
            raise ValueError(f"rootfs: must be an absolute path, not {quote(self.rootfs)}")
        seen: set[str] = set()
        for i, target in enumerate(self.scrape):
            if target.job_name in seen:
                raise ValueError(
                    f"scrape[{i}].job_name: duplicate job name {quote(target.job_name)}"
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
    protobuf_message: Literal["prometheus.WriteRequest", "io.prometheus.write.v2.Request"] = Field(
        default="prometheus.WriteRequest",
        description="Remote-write version sent (Prometheus's key): 1.0 "
        "(`prometheus.WriteRequest`), or 2.0 (`io.prometheus.write.v2.Request`), which "
        "falls back to 1.0 for good once the target answers 415.",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("name") and isinstance(data.get("url"), str):
            return {**data, "name": derived_target_name(data["url"])}
        return data

    @model_validator(mode="after")
    def _check(self) -> ForwardTarget:
        if not NAME_RE.match(self.name):
            raise ValueError(f"name: {quote(self.name)} may contain only letters, digits, _ . -")
        if self.timeout <= timedelta(0):
            raise ValueError("timeout: must be greater than 0")
        if self.bearer_token.get_secret_value() and any(
            k.lower() == "authorization" for k in self.headers
        ):
            raise ValueError("bearer_token: conflicts with an Authorization header in headers")
        for key in self.headers:
            if not HEADER_NAME_RE.match(key):
                raise ValueError(f"headers: {quote(key)} is not a valid HTTP header name")
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
                    f"targets[{i}].name: duplicate target name {quote(target.name)} (targets "
                    "differing only in credentials or query need explicit names)"
                )
            seen.add(target.name)
        return self


class TracingConfig(_Section):
    otlp_endpoint: Annotated[str, PlainSerializer(dump_url, return_type=str)] = Field(
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
        return check_http_url(value) if value else value

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
        return self.model_dump(mode="json", context={REVEAL: reveal})

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
        return validate(BridgeConfig, data)
