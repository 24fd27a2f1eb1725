"""Retry timing: capped exponential backoff and the ``Retry-After`` header.

Prometheus's sender starts at ``min_backoff`` (30 ms), doubles to ``max_backoff`` (5 s) and lets
an upstream's ``Retry-After`` override the computed delay; we do the same so a COS that is
shedding load is given the pause it asks for, while a brief blip costs only milliseconds.
"""

from __future__ import annotations

import email.utils
import time

MAX_RETRY_AFTER_S = 600.0
"""A ``Retry-After`` beyond this is treated as this: a misconfigured upstream asking for a day's
pause must not silently stop forwarding until then."""


class Backoff:
    """Delays for consecutive failures of one send: min, 2·min, 4·min, ... capped at max."""

    def __init__(self, min_s: float, max_s: float) -> None:
        self.min_s = min_s
        self.max_s = max_s
        self._next = min_s

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self._next = self.min_s


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date), or None
    when absent or unparseable (then the exponential backoff applies)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive parse means "assume UTC"
        return None
    delay = when.timestamp() - (time.time() if now is None else now)
    return min(max(delay, 0.0), MAX_RETRY_AFTER_S)
