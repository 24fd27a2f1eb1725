"""Turn one Grafana query into the Prometheus API calls Grafana's own datasource would make.

Grafana's built-in ``prometheus`` datasource computes the step, aligns the range and substitutes
``$__interval``-style variables on its backend, so a plugin standing in for it must do the same:
the server only ever sees plain PromQL with step-aligned ``start``/``end``. Keeping the arithmetic
identical means a panel or alert rule gives the same numbers through the plugin as through the
built-in datasource. All times here are integer milliseconds since the epoch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

DEFAULT_MIN_INTERVAL_MS = 15 * SECOND_MS
DEFAULT_RESOLUTION = 1500  # Grafana's data points when a query gives no maxDataPoints
SAFE_RESOLUTION = 11000  # Prometheus's points-per-series limit

# (upper bound inclusive, rounded interval): Grafana's table of "round" intervals.
_ROUNDING: tuple[tuple[int, int], ...] = (
    (10, 1),
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1500, 1000),
    (3500, 2000),
    (7500, 5000),
    (12500, 10000),
    (17500, 15000),
    (25000, 20000),
    (45000, 30000),
    (90000, 60000),
    (210000, 120000),
    (450000, 300000),
    (750000, 600000),
    (1050000, 900000),
    (1500000, 1200000),
    (2700000, 1800000),
    (5400000, 3600000),
    (9000000, 7200000),
    (16200000, 10800000),
    (32400000, 21600000),
    (86400000, 43200000),
    (172800000, 86400000),
    (604800000, 86400000),
    (1814400000, 604800000),
)
_MONTH_ROUNDING_LIMIT_MS = 3628800000
_THIRTY_DAYS_MS = 2592000000
_YEAR_MS = 31536000000

_RATE_INTERVAL_VARS = ("$__rate_interval", "${__rate_interval}")
_VARIABLE_INTERVALS = frozenset(
    {
        "$__interval",
        "$__interval_ms",
        "$__rate_interval",
        "$__rate_interval_ms",
        "${__interval}",
        "${__interval_ms}",
        "${__rate_interval}",
        "${__rate_interval_ms}",
    }
)

_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GRAFANA_DATE_UNIT = re.compile(r"^(\d+)([dwMy])$")
_GO_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}
_AVERAGE_YEAR_MS = int(365.25 * DAY_MS)
_GRAFANA_DATE_UNIT_MS = {
    "d": DAY_MS,
    "w": 7 * DAY_MS,
    "M": _AVERAGE_YEAR_MS // 12,
    "y": _AVERAGE_YEAR_MS,
}


class QueryModelError(ValueError):
    """The query JSON or one of its intervals cannot be used; the message says which part."""


def round_interval(interval_ms: int) -> int:
    """Grafana's rounding of a computed interval down to a "round" value (1s, 2s, 5s, ...)."""
    for bound, rounded in _ROUNDING:
        if interval_ms <= bound:
            return rounded
    return _THIRTY_DAYS_MS if interval_ms < _MONTH_ROUNDING_LIMIT_MS else _YEAR_MS


def parse_interval_ms(text: str) -> int:
    """Parse a Grafana interval (``30s``, ``1m30s``, ``2d``, bare ``15`` = seconds, ``>10s``)."""
    value = text.replace("<", "", 1).replace(">", "", 1).strip()
    if value.isdigit():
        value += "s"
    date_unit = _GRAFANA_DATE_UNIT.match(value)
    if date_unit:
        return int(date_unit.group(1)) * _GRAFANA_DATE_UNIT_MS[date_unit.group(2)]
    total = 0.0
    position = 0
    for part in _GO_DURATION_PART.finditer(value):
        if part.start() != position:
            break
        total += float(part.group(1)) * _GO_UNIT_MS[part.group(2)]
        position = part.end()
    if not value or position != len(value):
        raise QueryModelError(f"invalid interval {text!r}")
    return int(total)


def format_interval(interval_ms: int) -> str:
    """Grafana's short form of an interval (``1m``, ``15s``, ``500ms``), as in ``$__interval``."""
    for unit_ms, suffix in (
        (365 * DAY_MS, "y"),
        (DAY_MS, "d"),
        (HOUR_MS, "h"),
        (MINUTE_MS, "m"),
        (SECOND_MS, "s"),
        (1, "ms"),
    ):
        if interval_ms >= unit_ms:
            return f"{interval_ms // unit_ms}{suffix}"
    return "1ms"


def go_duration(interval_ms: int) -> str:
    """A duration as Go's ``Duration.String`` prints it (``1m0s``), which Grafana sends as-is."""
    if interval_ms == 0:
        return "0s"
    hours, rest = divmod(interval_ms, HOUR_MS)
    minutes, rest = divmod(rest, MINUTE_MS)
    if hours == 0 and minutes == 0 and rest < SECOND_MS:
        return f"{rest}ms"
    seconds = format_seconds(rest / 1000)
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def format_seconds(seconds: float) -> str:
    """Shortest decimal form without exponent, as Go's ``FormatFloat(x, 'f', -1, 64)``."""
    text = format(Decimal(repr(float(seconds))).normalize(), "f")
    return text


def format_time_ms(time_ms: int) -> str:
    """A Prometheus API time parameter: unix seconds, fractional only when needed."""
    whole, fraction = divmod(time_ms, SECOND_MS)
    return str(whole) if fraction == 0 else f"{whole}.{fraction:03d}".rstrip("0")


@dataclass(frozen=True)
class PromRequest:
    """One call to the Prometheus API: the endpoint and its form parameters."""

    endpoint: str  # "api/v1/query" or "api/v1/query_range"
    params: dict[str, str]


@dataclass(frozen=True)
class ParsedQuery:
    """A Grafana query with Grafana's defaults applied and variables substituted."""

    ref_id: str
    expr: str
    instant: bool
    range: bool
    step_ms: int
    start_ms: int
    end_ms: int
    legend_format: str
    utc_offset_sec: int
    exemplar: bool = False

    def aligned_range(self) -> tuple[int, int]:
        """Start and end floored to a multiple of the step (shifted by the UTC offset)."""
        return (
            align_time(self.start_ms, self.step_ms, self.utc_offset_sec),
            align_time(self.end_ms, self.step_ms, self.utc_offset_sec),
        )

    def requests(self, timeout: str | None = None) -> list[PromRequest]:
        """The API calls for this query: range first, then instant, as Grafana runs them."""
        calls: list[PromRequest] = []
        extra = {"timeout": timeout} if timeout else {}
        if self.range:
            start, end = self.aligned_range()
            calls.append(
                PromRequest(
                    "api/v1/query_range",
                    {
                        "query": self.expr,
                        "start": format_time_ms(start),
                        "end": format_time_ms(end),
                        "step": format_seconds(self.step_ms / 1000),
                        **extra,
                    },
                )
            )
        if self.instant:
            calls.append(
                PromRequest(
                    "api/v1/query",
                    {"query": self.expr, "time": format_time_ms(self.end_ms), **extra},
                )
            )
        return calls

    def exemplar_request(self) -> PromRequest:
        """The ``query_exemplars`` call Grafana adds for a query with exemplars turned on."""
        start, end = self.aligned_range()
        params = {"query": self.expr, "start": format_time_ms(start), "end": format_time_ms(end)}
        return PromRequest("api/v1/query_exemplars", params)


def align_time(time_ms: int, step_ms: int, utc_offset_sec: int = 0) -> int:
    """Floor a time to a multiple of step, as Grafana does so that results cache well."""
    offset_ms = utc_offset_sec * SECOND_MS
    return ((time_ms + offset_ms) // step_ms) * step_ms - offset_ms


def min_interval_ms(query_interval: str, interval_ms: int, scrape_interval: str) -> int:
    """The lower bound of the step: query ``interval``, else ``intervalMs``, else the scrape."""
    interval = "" if query_interval == "0s" else query_interval
    if not interval and interval_ms:
        return interval_ms
    if not interval:
        interval = scrape_interval
    if not interval:
        return DEFAULT_MIN_INTERVAL_MS
    return parse_interval_ms(interval)


def rate_interval_ms(interval_ms: int, scrape_interval: str) -> int:
    """``$__rate_interval``: max(interval + scrape, 4 x scrape); the scrape defaults to 15s."""
    scrape_ms = parse_interval_ms(scrape_interval or "15s")
    return max(interval_ms + scrape_ms, 4 * scrape_ms)


def calculate_step_ms(
    *,
    range_ms: int,
    max_data_points: int,
    query_interval: str,
    interval_ms: int,
    interval_factor: int,
    scrape_interval: str,
) -> int:
    """Grafana's step: the rounded interval for the requested resolution, bounded below by the
    minimum interval and by what keeps the series under 11,000 points."""
    min_ms = min_interval_ms(
        "" if query_interval in _VARIABLE_INTERVALS else query_interval,
        interval_ms,
        scrape_interval,
    )
    resolution = max_data_points or DEFAULT_RESOLUTION
    calculated = range_ms // resolution
    calculated = min_ms if calculated < min_ms else round_interval(calculated)
    safe = round_interval(range_ms // SAFE_RESOLUTION)
    adjusted = max(calculated, safe)
    if query_interval in _RATE_INTERVAL_VARS:
        return rate_interval_ms(adjusted, scrape_interval)
    return adjusted * (interval_factor or 1)


def interpolate(
    expr: str,
    *,
    step_ms: int,
    query_interval_ms: int,
    requested_min_step: str,
    scrape_interval: str,
    range_ms: int,
) -> str:
    """Substitute Grafana's built-in time variables, which the server must never see."""
    range_s = round(range_ms / 1000)
    if requested_min_step in _RATE_INTERVAL_VARS:
        rate_ms = step_ms
    else:
        min_step = requested_min_step
        if min_step in ("$__interval", "${__interval}"):
            min_step = go_duration(step_ms)
        rate_ms = rate_interval_ms(query_interval_ms, min_step or scrape_interval)
    replacements = (
        ("__interval_ms", str(step_ms)),
        ("__interval", format_interval(step_ms)),
        ("__range_ms", str(range_ms)),
        ("__range_s", str(range_s)),
        ("__range", f"{range_s}s"),
        ("__rate_interval_ms", str(rate_ms)),
        ("__rate_interval", go_duration(rate_ms)),
    )
    for name, value in replacements:
        expr = expr.replace("$" + name, value).replace("${" + name + "}", value)
    return expr


def parse_query(
    *,
    ref_id: str,
    query_json: bytes,
    from_ms: int,
    to_ms: int,
    max_data_points: int,
    interval_ms: int,
    scrape_interval: str,
) -> ParsedQuery:
    """Read the query model Grafana sends (``expr``, ``instant``, ``range``, ``interval``...)."""
    try:
        model = json.loads(query_json or b"{}")
    except ValueError as exc:
        raise QueryModelError(f"query JSON is not valid: {exc}") from exc
    if not isinstance(model, dict):
        raise QueryModelError("query JSON must be an object")
    expr = model.get("expr")
    if not isinstance(expr, str) or not expr.strip():
        raise QueryModelError("query has no expr")
    query_interval = _string_field(model, "interval")
    legend = _string_field(model, "legendFormat")
    model_interval_ms = _number_field(model, "intervalMs") or interval_ms
    interval_factor = _number_field(model, "intervalFactor")
    # Current Grafana ignores the browser's utcOffsetSec (aligning by it dropped data near the
    # end of the range); only the renamed "utcOffsetSecDoNotUse" still shifts the alignment.
    utc_offset = _number_field(model, "utcOffsetSecDoNotUse")
    range_ms = to_ms - from_ms
    if range_ms < 0:
        raise QueryModelError("time range ends before it starts")
    step_ms = calculate_step_ms(
        range_ms=range_ms,
        max_data_points=max_data_points,
        query_interval=query_interval,
        interval_ms=model_interval_ms,
        interval_factor=interval_factor,
        scrape_interval=scrape_interval,
    )
    if step_ms <= 0:
        raise QueryModelError("computed step is not positive")
    expr = interpolate(
        expr,
        step_ms=step_ms,
        query_interval_ms=interval_ms,
        requested_min_step=query_interval,
        scrape_interval=scrape_interval,
        range_ms=range_ms,
    )
    instant = model.get("instant") is True
    ranged = model.get("range") is True or not instant
    return ParsedQuery(
        ref_id=ref_id,
        expr=expr,
        instant=instant,
        range=ranged,
        step_ms=step_ms,
        start_ms=from_ms,
        end_ms=to_ms,
        legend_format=legend,
        utc_offset_sec=utc_offset,
        exemplar=model.get("exemplar") is True,
    )


def _string_field(model: dict[str, object], key: str) -> str:
    value = model.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise QueryModelError(f"query field {key!r} must be a string")
    return value


def _number_field(model: dict[str, object], key: str) -> int:
    value = model.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise QueryModelError(f"query field {key!r} must be a number")
    return int(value)
