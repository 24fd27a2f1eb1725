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
    if not math.isfinite(nbytes) or nbytes < 0:
        return "?"
    value = float(nbytes)
    for unit in _SIZE_UNITS:
        if value < 1024 or unit == _SIZE_UNITS[-1]:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def count(n: float) -> str:
    """``950``, ``12.3k``, ``1.2M``: decimal units, one decimal above a thousand."""
    if not math.isfinite(n) or n < 0:
        return "?"
    value = float(n)
    for unit in _COUNT_UNITS:
        if value < 1000 or unit == _COUNT_UNITS[-1]:
            return f"{int(value)}" if unit == "" else f"{value:.1f}{unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover
