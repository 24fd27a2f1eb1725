"""The charm's configuration, parsed once per event into typed values.

Invalid values never reach the relation data or the workload: :func:`load` raises
:class:`ConfigError` naming the option, the charm goes Blocked with that message and keeps
what it published before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from bridge_units import parse_duration, parse_size

DEFAULT_PORT = 9099
UNIT_PLACEHOLDER = "{unit}"

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_CHANNEL = re.compile(r"^[a-z0-9][a-z0-9.+_-]*(?:/[a-z0-9][a-z0-9.+_-]*){0,2}$")


# Juju's secret rotation policies (ops.SecretRotate values).
ROTATION_POLICIES = ("never", "hourly", "daily", "weekly", "monthly", "quarterly", "yearly")


class ConfigError(ValueError):
    """A config option has an invalid value; the message names the option."""


@dataclass(frozen=True)
class CharmConfig:
    port: int
    datasource_url: str | None
    """Operator override of the URL Grafana uses for the units; None: the ingress address."""
    scrape_interval: str
    exemplar_trace_id_label: str
    snap_channel: str = "latest/stable"
    query_auth: bool = True
    query_auth_rotation: str = "never"
    retention_time: str = "15d"
    retention_size: str = "0"


def load(raw: Mapping[str, bool | int | float | str]) -> CharmConfig:
    """Validate the raw charm config (defaults already applied by Juju)."""
    port = raw.get("port", DEFAULT_PORT)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ConfigError(f"port: {port!r} is not a TCP port (1-65535)")

    url = str(raw.get("datasource-url", "")).strip()
    if url:
        if "{" in url.replace(UNIT_PLACEHOLDER, ""):
            raise ConfigError(
                f"datasource-url: {url!r}: the only placeholder is {UNIT_PLACEHOLDER}"
            )
        parsed = urlparse(url.replace(UNIT_PLACEHOLDER, "0"))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError(f"datasource-url: {url!r} is not an http(s) URL with a host")
        try:
            _ = parsed.port
        except ValueError:
            raise ConfigError(f"datasource-url: {url!r} has an invalid port") from None

    interval = str(raw.get("scrape-interval", "1m")).strip()
    if not _is_duration(interval) or not parse_duration(interval):
        raise ConfigError(f"scrape-interval: {interval!r} is not a positive duration like 30s")

    label = str(raw.get("exemplar-trace-id-label", "trace_id")).strip()
    if not _LABEL_NAME.match(label):
        raise ConfigError(f"exemplar-trace-id-label: {label!r} is not a Prometheus label name")

    channel = str(raw.get("snap-channel", "latest/stable")).strip()
    if not _CHANNEL.match(channel):
        raise ConfigError(f"snap-channel: {channel!r} is not a channel like latest/stable")

    query_auth = raw.get("query-auth", True)
    if not isinstance(query_auth, bool):
        raise ConfigError(f"query-auth: {query_auth!r} is not true or false")

    rotation = str(raw.get("query-auth-rotation", "never")).strip()
    if rotation not in ROTATION_POLICIES:
        raise ConfigError(
            f"query-auth-rotation: {rotation!r} is not one of {', '.join(ROTATION_POLICIES)}"
        )

    retention_time = str(raw.get("retention-time", "15d")).strip()
    if not _is_duration(retention_time):
        raise ConfigError(f"retention-time: {retention_time!r} is not a duration like 15d")

    retention_size = str(raw.get("retention-size", "0")).strip()
    if not _is_size(retention_size):
        raise ConfigError(f"retention-size: {retention_size!r} is not a size like 10GB or 0")

    return CharmConfig(
        port=port,
        datasource_url=url.rstrip("/") or None,
        scrape_interval=interval,
        exemplar_trace_id_label=label,
        snap_channel=channel,
        query_auth=query_auth,
        query_auth_rotation=rotation,
        retention_time=retention_time,
        retention_size=retention_size,
    )


def _is_duration(text: str) -> bool:
    """Whether the bridge reads ``text`` as a duration (the same grammar, ``bridge_units``)."""
    try:
        parse_duration(text)
    except ValueError:
        return False
    return True


def _is_size(text: str) -> bool:
    """Whether the bridge reads ``text`` as a byte size (``bridge_units``)."""
    try:
        parse_size(text)
    except ValueError:
        return False
    return True


def unit_datasource_url(template: str, unit_number: int) -> str:
    """The override URL for one unit: ``{unit}`` becomes its number, so units stay distinct."""
    return template.replace(UNIT_PLACEHOLDER, str(unit_number))
