"""The words the bridge shares with Prometheus, and with the charm: durations, sizes, version.

One grammar of durations (Prometheus's ``model.ParseDuration``: ``1h30m``, ``15d``, ``0``),
one of byte sizes (Prometheus's ``--storage.tsdb.retention.size``: ``512MB``, ``1.5GiB``) and
the Prometheus version the API advertises. The configuration file, the HTTP API's parameters,
the promqltest harness and the charm all read them here, so a value one accepts is a value
the others accept.

Standard library only, and no imports from the bridge: the charm cannot import the bridge
(it ships in the snap), so ``src/bridge_units.py`` is a byte-for-byte copy of this file and
``tests/unit/test_bridge_vocabulary.py`` fails when the two differ.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from datetime import timedelta

__all__ = [
    "DURATION_UNITS_MS",
    "MAX_CONFIG_DURATION_MS",
    "MAX_SIZE",
    "PROMETHEUS_COMPAT_VERSION",
    "PROMETHEUS_MAX_DURATION_MS",
    "duration_ms",
    "format_duration",
    "format_size",
    "match_duration_ms",
    "parse_duration",
    "parse_size",
]

PROMETHEUS_COMPAT_VERSION = "2.53.0"
"""What ``status/buildinfo`` reports and the charm puts in Grafana's ``prometheusVersion``: a
semver Grafana maps to a known Prometheus feature set (labels-match API, exemplars)."""

# --- durations ------------------------------------------------------------------------------

DURATION_UNITS_MS = (
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
)
"""Prometheus's units, largest first: a year is always 365 days, a day always 24 hours."""

# Units in decreasing order, each at most once, whole numbers only.
_DURATION_RE = re.compile("".join(f"(?:([0-9]+){u})?" for u, _ in DURATION_UNITS_MS))

PROMETHEUS_MAX_DURATION_MS = (2**63 - 1) // 1_000_000
"""Prometheus holds a duration in int64 nanoseconds (~292 years); longer is out of range."""
MAX_CONFIG_DURATION_MS = 1000 * 365 * 86_400_000
"""The configuration file's own bound (1000y): "keep forever" without overflowing anything."""


def match_duration_ms(text: str) -> int | None:
    """Milliseconds of ``text`` if it is a Prometheus duration, else ``None``.

    Exactly the grammar, nothing around it: no whitespace, no sign, no fraction; ``0`` is the
    one number allowed without a unit, and the empty string is not a duration. The value is
    not bounded: callers bound it (``PROMETHEUS_MAX_DURATION_MS``, ``MAX_CONFIG_DURATION_MS``).
    """
    if text == "0":
        return 0
    m = _DURATION_RE.fullmatch(text)
    if not text or m is None:
        return None
    return sum(int(g) * ms for g, (_, ms) in zip(m.groups(), DURATION_UNITS_MS) if g)


def parse_duration(text: str) -> timedelta:
    """A configuration duration (``30s``, ``1h30m``, ``15d``, ``0``; surrounding blanks
    ignored) as a timedelta.

    Raises:
        ValueError: not a duration, or longer than 1000y; the message quotes ``text``.
    """
    ms = match_duration_ms(text.strip())
    if ms is None:
        raise ValueError(f'invalid duration {_quote(text)} (use e.g. "30s", "1h30m", "15d")')
    if ms > MAX_CONFIG_DURATION_MS:
        raise ValueError(f"duration {_quote(text)} is too long (at most 1000y)")
    return timedelta(milliseconds=ms)


def format_duration(value: timedelta) -> str:
    """Render a timedelta the way Prometheus prints durations (``1h30m``; ``0s`` for zero)."""
    ms = duration_ms(value)
    if ms == 0:
        return "0s"
    out: list[str] = []
    for unit, size in DURATION_UNITS_MS[2:]:  # days at most: "15d" reads better than "2w1d"
        n, ms = divmod(ms, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def duration_ms(value: timedelta) -> int:
    """Whole milliseconds of a duration: the bridge's internal time unit."""
    return value // timedelta(milliseconds=1)


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
MAX_SIZE = 1 << 60
"""Sizes are below 1024PiB: far above any disk, far below where arithmetic gets awkward."""
_SIZE_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)")


def parse_size(text: str) -> int:
    """Parse a byte size (``512MB``, ``1.5GiB``, ``1024``) into bytes; units are powers of 1024.

    Raises:
        ValueError: not a size, an unknown unit, or 1024PiB or more; the message quotes ``text``.
    """
    m = _SIZE_RE.fullmatch(text.strip())
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
    if not size < MAX_SIZE:
        raise ValueError(f"size {_quote(text)} is too large (at most 1024PiB)")
    return math.floor(size)


def format_size(value: int) -> str:
    """Render bytes with the largest binary unit that divides them exactly (``32MiB``)."""
    for unit in ("PiB", "TiB", "GiB", "MiB", "KiB"):
        factor = _SIZE_UNITS[unit.upper()]
        if value and value % factor == 0:
            return f"{value // factor}{unit}"
    return f"{value}B"


# --- messages -------------------------------------------------------------------------------

_UNSAFE = ("Cc", "Cf", "Zl", "Zp")


def _quote(value: object) -> str:
    """A value quoted for an error message, every line-breaking or invisible character
    escaped, so the message stays one honest line (the same rule as ``redact.one_line``)."""
    text = json.dumps(str(value), ensure_ascii=False)
    return "".join(repr(ch)[1:-1] if unicodedata.category(ch) in _UNSAFE else ch for ch in text)
