"""Short, human figures for the unit status: ``2h13m``, ``1.2 GiB``, ``3.4M``.

A status line is read at a glance in ``juju status``; exact numbers live in the bridge's
``/metrics``. So durations keep their two largest units and sizes one decimal.
"""

from __future__ import annotations

import math

_DURATION_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_COUNT_UNITS = ("", "k", "M", "G", "T")


def duration(seconds: float) -> str:
    """``2h13m``, ``5m0s``, ``42s``, ``3d4h``: the two largest units, rounded down."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    parts: list[str] = []
    for suffix, size in _DURATION_UNITS:
        if parts or whole >= size:
            parts.append(f"{whole // size}{suffix}")
            whole %= size
        if len(parts) == 2:
            break
    return "".join(parts)


def size(nbytes: float) -> str:
    """``512 B``, ``1.2 GiB``: binary units, one decimal above bytes."""
    return _scaled(nbytes, 1024, _SIZE_UNITS, " ")


def count(n: float) -> str:
    """``950``, ``12.3k``, ``1.2M``: decimal units, one decimal above a thousand."""
    return _scaled(n, 1000, _COUNT_UNITS, "")


def _scaled(n: float, base: int, units: tuple[str, ...], sep: str) -> str:
    """``n`` in the largest of ``units`` (each ``base`` times the one before) that keeps it
    at least 1: a whole number in the first unit, one decimal in the others."""
    if not math.isfinite(n) or n < 0:
        return "?"
    value = float(n)
    for i, unit in enumerate(units):
        if value < base or i == len(units) - 1:
            return f"{int(value)}{sep}{unit}" if i == 0 else f"{value:.1f}{sep}{unit}"
        value /= base
    raise AssertionError("unreachable")  # pragma: no cover
