"""Request parameters the way Prometheus reads them (``web/api/v1/api.go``).

Go's ``FormValue`` merges the URL query and a form-encoded body, the body first; ``match[]``
repeats. Times are float seconds (the fraction rounded to milliseconds) or RFC 3339; durations
are float seconds or a Prometheus duration (``1h30m``). Each failure is an ``ApiError`` with
Prometheus's wording, so Grafana shows the same message it would for Prometheus.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import unquote

from ..config.units import PROMETHEUS_MAX_DURATION_MS, match_duration_ms

MIN_TIME_MS = -(2**62)
"""Default ``start`` of metadata queries: before any sample (int64 ms, with headroom)."""
MAX_TIME_MS = 2**62
"""Default ``end``; ms-valued times such as Grafana's exemplar probe still fit below it."""
_INT64 = 2**63 - 1


class ApiError(Exception):
    """A request-level failure answered with the error envelope."""

    def __init__(self, error_type: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status


def bad_data(message: str) -> ApiError:
    return ApiError("bad_data", message)


def _unquoted(text: str) -> str:
    """A name or value of a form, as ``parse_qs`` decodes it ("+" is a space, %XX in UTF-8,
    bad escapes left as they are, bad UTF-8 replaced); plain text is returned as is."""
    if "%" in text or "+" in text:
        return unquote(text.replace("+", " "), errors="replace")
    return text


def _pairs(source: str) -> list[tuple[str, str]]:
    """The ``name=value`` pairs of a query string or form body in order, blank values kept,
    empty pieces skipped: what ``parse_qs(keep_blank_values=True)`` reads, without its
    per-parameter overhead (a few parameters per request, on every query)."""
    out = []
    for piece in source.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            out.append((_unquoted(name), _unquoted(value)))
    return out


class Params:
    """Merged form-body and URL-query parameters; body values come first, like Go."""

    def __init__(self, query: str, body: str = "", cancel: threading.Event | None = None) -> None:
        self.cancel = cancel
        """Set when the client has gone away: a running query stops (``canceled``, 499)."""
        self._values: dict[str, list[str]] = {}
        for source in (body, query):
            if source:
                for k, v in _pairs(source):
                    self._values.setdefault(k, []).append(v)

    def get(self, name: str, default: str = "") -> str:
        vs = self._values.get(name)
        return vs[0] if vs else default

    def has(self, name: str) -> bool:
        return bool(self._values.get(name)) and self._values[name][0] != ""

    def getall(self, name: str) -> list[str]:
        return list(self._values.get(name, ()))


_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_time(text: str) -> int:
    """Unix seconds (``1700000000.123``) or RFC 3339 → milliseconds.

    Raises:
        ValueError: with Prometheus's message (``cannot parse "x" to a valid timestamp``).
    """
    try:
        t = float(text)
    except ValueError:
        t = None
    if t is not None and math.isfinite(t):
        whole = math.trunc(t)
        frac = round((t - whole) * 1000)
        ms = whole * 1000 + frac
        if -_INT64 <= ms <= _INT64:
            return int(ms)
    m = _RFC3339.match(text)
    if m is not None:
        year, month, day, hour, minute, second, frac_s, zone = m.groups()
        try:
            tz = timezone.utc
            if zone not in ("Z", "z"):
                sign = 1 if zone[0] == "+" else -1
                from datetime import timedelta

                tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
            dt = datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz
            )
        except ValueError:
            pass
        else:
            ms = int(dt.timestamp()) * 1000
            if frac_s:
                ms += int(frac_s[1:4].ljust(3, "0"))
            return ms
    raise ValueError(f'cannot parse "{text}" to a valid timestamp')


def parse_duration_ms(text: str) -> float:
    """Float seconds or a Prometheus duration → milliseconds (fractional ms kept for steps).

    Raises:
        ValueError: with Prometheus's message.
    """
    try:
        d = float(text)
    except ValueError:
        d = None
    if d is not None:
        if not math.isfinite(d) or abs(d * 1e9) > 2**63 - 1:
            raise ValueError(f'cannot parse "{text}" to a valid duration. It overflows int64')
        return d * 1000.0
    ms = match_duration_ms(text)
    if ms is None or ms > PROMETHEUS_MAX_DURATION_MS:  # Prometheus: "duration out of range"
        raise ValueError(f'cannot parse "{text}" to a valid duration')
    return float(ms)


def time_param(params: Params, name: str, default: int) -> int:
    if not params.has(name):
        return default
    try:
        return parse_time(params.get(name))
    except ValueError as e:
        raise bad_data(f'invalid parameter "{name}": {e}') from None


def duration_param(params: Params, name: str) -> float | None:
    """Milliseconds, or ``None`` when absent."""
    if not params.has(name):
        return None
    try:
        return parse_duration_ms(params.get(name))
    except ValueError as e:
        raise bad_data(f'invalid parameter "{name}": {e}') from None


def required_time_param(params: Params, name: str) -> int:
    """A time the request must give (``start``/``end`` of a range query)."""
    if not params.has(name):
        raise bad_data(f'invalid parameter "{name}": cannot parse "" to a valid timestamp')
    return time_param(params, name, 0)


@dataclass(frozen=True)
class QueryRange:
    """A range query's evaluation times: ``start`` to ``end`` every ``step_ms``."""

    start_ms: int
    end_ms: int
    step_ms: int


def range_params(params: Params, max_points: int) -> QueryRange:
    """``start``, ``end`` and ``step`` of a range query, checked as Prometheus checks them,
    plus the bridge's bound on the points one series may have (``query.max_points_per_series``),
    so that no evaluation starts that would exceed it."""
    start = required_time_param(params, "start")
    end = required_time_param(params, "end")
    if end < start:
        raise bad_data("end timestamp must not be before start time")
    step = duration_param(params, "step")
    if step is None:
        raise bad_data('invalid parameter "step": cannot parse "" to a valid duration')
    if step <= 0:
        raise bad_data(
            "zero or negative query resolution step widths are not accepted. "
            "Try a positive integer"
        )
    if (end - start) // step > max_points:
        raise bad_data(
            f"exceeded maximum resolution of {max_points:,} points per timeseries. "
            "Try decreasing the query resolution (?step=XX)"
        )
    return QueryRange(start, end, max(1, round(step)))


def window_params(params: Params) -> tuple[int, int]:
    """``start`` and ``end`` of a metadata request (series, labels, exemplars), both optional:
    absent, they reach before and after every sample."""
    start = time_param(params, "start", MIN_TIME_MS)
    end = time_param(params, "end", MAX_TIME_MS)
    if end < start:
        raise bad_data("end timestamp must not be before start time")
    return start, end


def limit_param(params: Params) -> int:
    """``limit``: 0 (absent) means no limit; negative is an error."""
    if not params.has("limit"):
        return 0
    text = params.get("limit")
    try:
        limit = int(text)
    except ValueError:
        raise bad_data(
            f'invalid parameter "limit": cannot parse "{text}" to a valid int'
        ) from None
    if limit < 0:
        raise bad_data('invalid parameter "limit": limit must be non-negative')
    return limit


def unescape_label_name(name: str) -> str:
    """Undo Prometheus's ``U__`` value-encoding escaping of UTF-8 label names.

    ``U__`` + text where ``__`` is ``_`` and ``_<hex>_`` is a code point; anything malformed
    is left as given (as ``model.UnescapeName`` does).
    """
    if not name.startswith("U__"):
        return name
    s = name[3:]
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c != "_":
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= len(s):
            return name
        if s[i] == "_":
            out.append("_")
            i += 1
            continue
        j = s.find("_", i)
        if j < 0 or j - i > 6 or j == i:
            return name
        try:
            cp = int(s[i:j], 16)
        except ValueError:
            return name
        if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
            return name
        out.append(chr(cp))
        i = j + 1
    return "".join(out)
