"""The ``prometheus_remote_write`` interface, both roles, as pure functions over databags.

Wire format (what prometheus-k8s, mimir and grafana-agent charms read and write):

* provider (receiver) unit databag: ``remote_write`` = JSON ``{"url": "<write URL>"}``, one per
  unit, so a sender writes to every unit it is related to;
* requirer (sender) application databag: ``alert_rules`` = JSON ``{"groups": [...]}``, the
  Prometheus rule groups the receiver should evaluate.

We receive on ``receive-remote-write`` and forward on ``send-remote-write``. Rules are
evaluated upstream (COS), not by the bridge, so the leader passes the groups its senders
published on to the upstream unchanged.

Remote data is untrusted: every value goes through ``remote_data`` (size and nesting bounds
before parsing) and what is unusable is dropped, logged and returned as :class:`Ignored` for
the unit status; nothing here raises on remote data. What reaches the snap is valid for the
bridge by construction: URLs are checked as the bridge checks them, and two URLs the bridge
would give the same target name are not both passed on (that would fail the whole
``snap set``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from charms.grafana_agent_bridge.v0.remote_data import (
    Ignored,
    RemoteDataError,
    TooWideNetworkError,
    http_url,
    load_json,
    narrow_network,
)

logger = logging.getLogger(__name__)

RECEIVE_ENDPOINT = "receive-remote-write"
SEND_ENDPOINT = "send-remote-write"
UNIT_KEY = "remote_write"
ALERT_RULES_KEY = "alert_rules"
WRITE_PATH = "/api/v1/write"
# Senders on this machine are always trusted; an empty list would mean *anyone* to the bridge.
LOCAL_CLIENTS = ("127.0.0.1", "::1")
# Juju's address keys in every unit databag, where a sender's traffic comes from.
ADDRESS_KEYS = ("egress-subnets", "ingress-address", "private-address")
MAX_UNIT_URL_CHARS = 8 << 10
"""A ``remote_write`` value is one small JSON object."""
MAX_ADDRESSES_CHARS = 16 << 10
"""An address key is a short comma-separated list."""
MAX_ALERT_RULES_CHARS = 4 << 20
"""Rule groups of every charm behind a sender: generous, but bounded before parsing."""


def unit_databag(write_url: str) -> dict[str, str]:
    """What each of our units publishes on ``receive-remote-write``: its write URL.

    The URL comes from the relation's ingress address (``grafana_source.ingress_url`` with
    :data:`WRITE_PATH`), the same helper the datasource URL uses.
    """
    return {UNIT_KEY: json.dumps({"url": write_url})}


def upstream_url(databag: Mapping[str, str]) -> str | None:
    """The write URL an upstream unit published; None when it published none.

    Raises:
        RemoteDataError: what it published is not ``{"url": "<http(s) URL>"}``.
    """
    raw = databag.get(UNIT_KEY)
    if not raw:
        return None
    data = load_json(raw, max_chars=MAX_UNIT_URL_CHARS)
    if not isinstance(data, dict):
        raise RemoteDataError("is not a JSON object")
    return http_url(data.get("url"))  # pyright: ignore[reportUnknownMemberType]


def bridge_target_name(url: str) -> str:
    """The name the bridge derives for a forwarding target (its ``_derived_target_name``)."""
    parts = urlsplit(url)
    raw = f"{parts.netloc}{parts.path}".strip("/")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", raw) or "target"


def forward_urls(
    units: Iterable[tuple[str, Mapping[str, str]]],
) -> tuple[list[str], list[Ignored]]:
    """Every upstream unit's write URL, deduplicated and sorted so the settings are stable.

    ``units`` are (unit name, databag) pairs. Of URLs the bridge would name alike, the first
    in sorted order is kept and the others are ignored.
    """
    found: dict[str, str] = {}
    ignored: list[Ignored] = []
    for unit, bag in units:
        try:
            url = upstream_url(bag)
        except RemoteDataError as e:
            logger.warning("ignoring the %s of %s: it %s", UNIT_KEY, unit, e)
            ignored.append(Ignored(f"bad {UNIT_KEY}", unit))
            continue
        if url is not None and (url not in found or unit < found[url]):
            found[url] = unit
    urls: list[str] = []
    names: set[str] = set()
    for url in sorted(found):
        name = bridge_target_name(url)
        if name in names:
            logger.warning(
                "ignoring the %s of %s: the bridge names it like another", UNIT_KEY, found[url]
            )
            ignored.append(Ignored(f"bad {UNIT_KEY}", found[url]))
            continue
        names.add(name)
        urls.append(url)
    return urls, ignored


def sender_networks(unit: str, databag: Mapping[str, str]) -> tuple[list[str], list[Ignored]]:
    """The addresses a related sender's traffic comes from, as IPs or CIDRs.

    ``egress-subnets`` is where Juju says the unit's traffic comes from (it differs from the
    ingress address behind NAT and across models); the ingress and private addresses are
    added for senders that reach us directly. Hostnames are not usable by the bridge; a
    network wider than ``remote_data``'s sane prefixes is refused (a sender may not open the
    allow-list to the world), and every dropped item is returned as :class:`Ignored`.
    """
    networks: list[str] = []
    ignored: list[Ignored] = []
    for key in ADDRESS_KEYS:
        raw = databag.get(key, "")
        if len(raw) > MAX_ADDRESSES_CHARS:
            logger.warning("ignoring the %s of %s: %d characters", key, unit, len(raw))
            ignored.append(Ignored(f"bad {key}", unit))
            continue
        bad = False
        for item in (part.strip() for part in raw.split(",")):
            if not item:
                continue
            try:
                network = narrow_network(item)
            except TooWideNetworkError as e:
                logger.warning("refusing the network %s from %s: it %s", e.network, unit, e)
                ignored.append(Ignored(f"too-wide network {e.network}", unit))
                continue
            except RemoteDataError:
                bad = True
                continue
            single = network.num_addresses == 1
            networks.append(str(network.network_address) if single else str(network))
        if bad:
            logger.warning("ignoring items of the %s of %s: not IP addresses", key, unit)
            ignored.append(Ignored(f"bad {key}", unit))
    return networks, ignored


def allowed_clients(
    units: Iterable[tuple[str, Mapping[str, str]]],
) -> tuple[list[str], list[Ignored]]:
    """The bridge's write allow-list: this machine plus every related sender unit."""
    found: set[str] = set()
    ignored: list[Ignored] = []
    for unit, bag in units:
        networks, dropped = sender_networks(unit, bag)
        found.update(networks)
        ignored.extend(dropped)
    return [*LOCAL_CLIENTS, *sorted(found - set(LOCAL_CLIENTS))], ignored


def alert_groups(app_databag: Mapping[str, str]) -> list[dict[str, Any]]:
    """The rule groups a sender published, unchanged; [] when none.

    Raises:
        RemoteDataError: ``alert_rules`` is not ``{"groups": [{"rules": [...]}, ...]}``.
    """
    raw = app_databag.get(ALERT_RULES_KEY)
    if not raw:
        return []
    data = load_json(raw, max_chars=MAX_ALERT_RULES_CHARS)
    groups = data.get("groups") if isinstance(data, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if not isinstance(groups, list) or not all(
        isinstance(g, dict) and isinstance(g.get("rules"), list)  # pyright: ignore[reportUnknownMemberType]
        for g in groups  # pyright: ignore[reportUnknownVariableType]
    ):
        raise RemoteDataError("is not {'groups': [{'rules': [...]}, ...]}")
    return groups  # pyright: ignore[reportUnknownVariableType]


def upstream_alert_rules(
    senders: Iterable[tuple[str, Mapping[str, str]]],
    extra_groups: Iterable[dict[str, Any]] = (),
) -> tuple[str, list[Ignored]]:
    """The ``alert_rules`` value for the upstream: every sender's groups, in relation order.

    ``senders`` are (application name, app databag) pairs; ``extra_groups`` are groups from
    other receiving endpoints (the OTLP senders'), appended after them. An exact duplicate of
    a group already listed is left out: a collector related on both endpoints publishes the
    same rules twice, and a duplicate group name would make the upstream refuse the file.
    ``""`` (delete the key) when no sender has usable rules. A sender whose rules are
    unreadable is left out (and returned as :class:`Ignored`): keeping the whole value as it
    was instead would let one bad sender freeze every other sender's rules.
    """
    groups: list[dict[str, Any]] = []
    ignored: list[Ignored] = []
    for app, bag in senders:
        try:
            groups.extend(alert_groups(bag))
        except RemoteDataError as e:
            logger.warning("ignoring the %s of %s: it %s", ALERT_RULES_KEY, app, e)
            ignored.append(Ignored(f"bad {ALERT_RULES_KEY}", app))
    groups.extend(extra_groups)
    unique: list[dict[str, Any]] = []
    seen: set[str] = set()
    for group in groups:
        key = json.dumps(group, sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(group)
    if not unique:
        return "", ignored
    return json.dumps({"groups": unique}, sort_keys=True, separators=(",", ":")), ignored
