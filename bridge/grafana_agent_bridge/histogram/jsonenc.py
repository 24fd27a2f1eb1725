"""Native histograms as Prometheus's HTTP API writes them (``util/jsonutil``
``MarshalHistogram``): ``{"count": "...", "sum": "...", "buckets": [[rule, "lower", "upper",
"count"], ...]}``, populated buckets only, lowest first, ``buckets`` left out when none is.

The boundary rule says which ends are inclusive: 0 upper only (left open), 1 lower only
(right open), 2 neither, 3 both. The zero bucket is closed, exponential buckets are
``(lower, upper]`` for positive values and ``[lower, upper)`` for negative ones, custom
buckets ``(lower, upper]`` except the first, which is closed.

Numbers are written by the caller's ``format_value`` (the API's Go-compatible formatter), so
this module stays free of the API package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .model import FloatHistogram


@dataclass(frozen=True, slots=True)
class JsonBucket:
    rule: int
    lower: float
    upper: float
    count: float


def boundary_rule(lower_inclusive: bool, upper_inclusive: bool) -> int:
    if lower_inclusive:
        return 3 if upper_inclusive else 1
    return 0 if upper_inclusive else 2


def json_buckets(h: FloatHistogram) -> list[JsonBucket]:
    """The buckets the API shows: every populated bucket from the lowest value up."""
    return [
        JsonBucket(boundary_rule(b.lower_inclusive, b.upper_inclusive), b.lower, b.upper, b.count)
        for b in h.all_buckets()
        if b.count != 0
    ]


def histogram_json(h: FloatHistogram, format_value: Callable[[float], str]) -> str:
    """The JSON object for ``h`` (the second element of a ``"histogram"`` pair)."""
    head = f'{{"count":"{format_value(h.count)}","sum":"{format_value(h.sum)}"'
    buckets = json_buckets(h)
    if not buckets:
        return head + "}"
    parts = [
        f'[{b.rule},"{format_value(b.lower)}","{format_value(b.upper)}","{format_value(b.count)}"]'
        for b in buckets
    ]
    return head + ',"buckets":[' + ",".join(parts) + "]}"
