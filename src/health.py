"""The bridge's forwarding health, read from its own ``/metrics`` page, and how to say it.

The charm does not trust a forwarding target to be healthy because the daemon runs: a target
whose oldest undelivered sample is older than :data:`LAG_THRESHOLD_S` is reported in the unit
status. Parsing is deliberately minimal (only the few ``bridge_forward_*`` gauges the status
needs, plus the WAL size) and never raises: a page it cannot read is "unknown", not a crash in
a hook.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import humanize

LAG_THRESHOLD_S = 300.0
"""A target this far behind (5 minutes: many scrape intervals) is reported as degraded."""

_PENDING = "bridge_forward_samples_pending"
_LAG = "bridge_forward_lag_seconds"
_LAST_DELIVERY = "bridge_forward_last_delivery_timestamp_seconds"
_WAL_BYTES = "bridge_store_wal_bytes"
_PER_TARGET = {_PENDING: "pending", _LAG: "lag", _LAST_DELIVERY: "last_delivery"}
# name, optional {labels}, value (an optional timestamp after it is ignored).
_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{(?:[^\"}]|\"(?:[^\"\\]|\\.)*\")*\})?\s+(\S+)")
_TARGET_LABEL = re.compile(r"[{,]\s*target=\"((?:[^\"\\]|\\.)*)\"")


@dataclass(frozen=True)
class TargetHealth:
    """One forwarding target as the bridge reports it."""

    name: str
    """The bridge's target name (derived from its URL; may not be shown as such)."""
    pending_samples: float = 0.0
    lag_seconds: float = 0.0
    """Age of the oldest undelivered sample; 0 when caught up."""
    last_delivery: float = 0.0
    """Unix time of the last successful request; 0 when none yet."""

    def degraded(self) -> bool:
        return self.lag_seconds > LAG_THRESHOLD_S

    def unreachable(self, now: float) -> bool:
        """No successful send within the threshold: the target is down, not merely slow."""
        return self.last_delivery <= 0 or now - self.last_delivery > LAG_THRESHOLD_S


@dataclass(frozen=True)
class ForwardingHealth:
    targets: list[TargetHealth] = field(default_factory=list[TargetHealth])
    wal_bytes: float | None = None
    """Bytes the local WAL retains (it keeps what an upstream has not acknowledged)."""


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_forwarding(text: str) -> ForwardingHealth:
    """The per-target forwarding gauges of a Prometheus text exposition page.

    Lines it does not need or cannot read are skipped; a target is listed once any of its
    gauges is seen.
    """
    fields: dict[str, dict[str, float]] = {}
    wal_bytes: float | None = None
    for line in text.splitlines():
        if not line.startswith(("bridge_forward_", _WAL_BYTES)):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, raw = match.groups()
        value = _number(raw)
        if value is None:
            continue
        if name == _WAL_BYTES:
            wal_bytes = value
            continue
        attribute = _PER_TARGET.get(name)
        target = _TARGET_LABEL.search(labels or "")
        if attribute is None or target is None:
            continue
        fields.setdefault(_unescape(target.group(1)), {})[attribute] = value
    targets = [
        TargetHealth(
            name=name,
            pending_samples=values.get("pending", 0.0),
            lag_seconds=values.get("lag", 0.0),
            last_delivery=values.get("last_delivery", 0.0),
        )
        for name, values in sorted(fields.items())
    ]
    return ForwardingHealth(targets, wal_bytes)


def describe_problem(
    target: TargetHealth, shown_as: str, wal_bytes: float | None, now: float | None = None
) -> str:
    """``upstream mimir/0 unreachable, 2h13m behind, 1.2M samples queued (WAL 1.2 GiB)``."""
    now = time.time() if now is None else now
    state = "unreachable" if target.unreachable(now) else "slow"
    text = (
        f"upstream {shown_as} {state}, {humanize.duration(target.lag_seconds)} behind, "
        f"{humanize.count(target.pending_samples)} samples queued"
    )
    if wal_bytes is not None:
        text += f" (WAL {humanize.size(wal_bytes)})"
    return text


def describe_ok(health: ForwardingHealth) -> str:
    """``forwarding to 2 upstream(s), 12s behind at most``: the Active status's tail."""
    lag = max(t.lag_seconds for t in health.targets)
    behind = "caught up" if lag < 1 else f"{humanize.duration(lag)} behind at most"
    return f"forwarding to {len(health.targets)} upstream(s), {behind}"


def display_url(url: str) -> str:
    """A URL fit for a status: scheme, host, port and path; never credentials or a query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparsable URL)"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"
