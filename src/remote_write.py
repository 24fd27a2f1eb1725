"""The ``prometheus_remote_write`` interface, both roles, as pure functions over databags.

Wire format (what prometheus-k8s, mimir and grafana-agent charms read and write):

* provider (receiver) unit databag: ``remote_write`` = JSON ``{"url": "<write URL>"}``, one per
  unit, so a sender writes to every unit it is related to;
* requirer (sender) application databag: ``alert_rules`` = JSON ``{"groups": [...]}``, the
  Prometheus rule groups the receiver should evaluate.

We receive on ``receive-remote-write`` and forward on ``send-remote-write``. Rules are
evaluated upstream (COS), not by the bridge, so the leader passes the groups its senders
published on to the upstream unchanged. Remote data that does not parse is skipped with a
warning and never raises.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

RECEIVE_ENDPOINT = "receive-remote-write"
SEND_ENDPOINT = "send-remote-write"
UNIT_KEY = "remote_write"
ALERT_RULES_KEY = "alert_rules"
WRITE_PATH = "/api/v1/write"
# Senders on this machine are always trusted; an empty list would mean *anyone* to the bridge.
LOCAL_CLIENTS = ("127.0.0.1", "::1")


def unit_databag(host: str, port: int) -> dict[str, str]:
    """What each of our units publishes on ``receive-remote-write``."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return {UNIT_KEY: json.dumps({"url": f"http://{host}:{port}{WRITE_PATH}"})}


def _http_url(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    parsed = urlparse(value)
    try:
        _ = parsed.port
    except ValueError:
        return None
    if parsed.scheme not in ("http", "https") or not parsed.hostname or "," in value:
        return None
    return value


def upstream_url(databag: Mapping[str, str]) -> str | None:
    """The write URL an upstream unit published; None when absent or invalid."""
    raw = databag.get(UNIT_KEY)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        logger.warning("ignoring an unparsable %s: %.100r", UNIT_KEY, raw)
        return None
    url = _http_url(data.get("url")) if isinstance(data, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    if url is None:
        logger.warning("ignoring a %s without an http(s) url: %.100r", UNIT_KEY, raw)
    return url


def forward_urls(unit_databags: Iterable[Mapping[str, str]]) -> list[str]:
    """Every upstream unit's write URL, deduplicated and sorted so the settings are stable."""
    return sorted({url for bag in unit_databags if (url := upstream_url(bag))})


def sender_networks(databag: Mapping[str, str]) -> list[str]:
    """The addresses a related sender's traffic comes from, as IPs or CIDRs.

    ``egress-subnets`` is where Juju says the unit's traffic comes from (it differs from the
    ingress address behind NAT and across models); the ingress and private addresses are
    added for senders that reach us directly. Hostnames are not usable by the bridge.
    """
    items: list[str] = []
    for key in ("egress-subnets", "ingress-address", "private-address"):
        items.extend(part.strip() for part in databag.get(key, "").split(",") if part.strip())
    networks: list[str] = []
    for item in items:
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            continue
        single = network.num_addresses == 1
        networks.append(str(network.network_address) if single else str(network))
    return networks


def allowed_clients(unit_databags: Iterable[Mapping[str, str]]) -> list[str]:
    """The bridge's write allow-list: this machine plus every related sender unit."""
    found = {net for bag in unit_databags for net in sender_networks(bag)}
    return [*LOCAL_CLIENTS, *sorted(found - set(LOCAL_CLIENTS))]


def alert_groups(app_databag: Mapping[str, str]) -> list[dict[str, Any]]:
    """The rule groups a sender published, unchanged; [] when none or invalid."""
    raw = app_databag.get(ALERT_RULES_KEY)
    if not raw:
        return []
    try:
        data = json.loads(raw)
    except ValueError:
        logger.warning("ignoring unparsable %s", ALERT_RULES_KEY)
        return []
    groups = data.get("groups") if isinstance(data, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if not isinstance(groups, list) or not all(
        isinstance(g, dict) and isinstance(g.get("rules"), list)  # pyright: ignore[reportUnknownMemberType]
        for g in groups  # pyright: ignore[reportUnknownVariableType]
    ):
        logger.warning(
            "ignoring %s that is not {'groups': [{'rules': [...]}, ...]}", ALERT_RULES_KEY
        )
        return []
    return groups  # pyright: ignore[reportUnknownVariableType]


def upstream_alert_rules(sender_app_databags: Iterable[Mapping[str, str]]) -> str:
    """The ``alert_rules`` value for the upstream: every sender's groups, in relation order.

    ``""`` (delete the key) when no sender has rules.
    """
    groups = [g for bag in sender_app_databags for g in alert_groups(bag)]
    if not groups:
        return ""
    return json.dumps({"groups": groups}, sort_keys=True, separators=(",", ":"))
