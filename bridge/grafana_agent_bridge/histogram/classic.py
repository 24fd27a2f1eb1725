"""Classic histograms (``_bucket{le=...}``, ``_count``, ``_sum`` series) converted to native
histograms with custom buckets, as promqltest's ``load_with_nhcb`` does
(``util/convertnhcb``, ``promqltest/test.go`` ``appendCustomHistogram``).

Per base series and timestamp the cumulative ``le`` counts become bucket counts, the ``le``
values the custom bounds (+Inf implied), ``_count`` the count (else the +Inf bucket's), and
``_sum`` the sum. Whole-number data becomes an integer histogram (kept compacted with up to
two empty buckets inside a span, as Prometheus does), anything else a float histogram.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence

from .model import CUSTOM_BUCKETS_SCHEMA, FloatHistogram, HistogramError, Span
from .ops import compact

METRIC_NAME = "__name__"
BUCKET_LABEL = "le"


class ClassicConversionError(ValueError):
    """Classic histogram data that cannot form a native histogram (the reason says why)."""


class ClassicHistogram:
    """The pieces of one classic histogram at one timestamp, collected in any order."""

    def __init__(self) -> None:
        self._les: list[float] = []
        self._counts: list[float] = []
        self.count: float | None = None
        self.sum = 0.0
        self.error: str | None = None

    def set_bucket_count(self, le: float, count: float) -> None:
        """Record cumulative ``count`` for upper bound ``le``; the first value for a bound
        wins, and counts must not decrease with the bound."""
        if self.error is not None:
            return
        if math.isnan(le):
            self.error = "bucket boundary must not be NaN"
            return
        if count < 0:
            self.error = f"bucket count must be non-negative: le={le:g}, count={count:g}"
            return
        i = bisect.bisect_left(self._les, le)
        if i < len(self._les) and self._les[i] == le:
            return
        if i > 0 and count < self._counts[i - 1]:
            self.error = f"count is not cumulative: {count:g} < {self._counts[i - 1]:g}"
            return
        if i < len(self._les) and count > self._counts[i]:
            self.error = f"count is not cumulative: {count:g} > {self._counts[i]:g}"
            return
        self._les.insert(i, le)
        self._counts.insert(i, count)

    def set_count(self, count: float) -> None:
        if self.error is None and count < 0:
            self.error = f"count must be non-negative: count={count:g}"
        elif self.error is None:
            self.count = count

    def set_sum(self, value: float) -> None:
        if self.error is None:
            self.sum = value

    def convert(self) -> tuple[FloatHistogram, bool]:
        """The native histogram, and whether Prometheus would store it as an integer one."""
        if self.error is not None:
            raise ClassicConversionError(self.error)
        les, counts = list(self._les), list(self._counts)
        count = self.count if self.count is not None else (counts[-1] if counts else 0.0)
        if not les or les[-1] != math.inf:
            les.append(math.inf)
            counts.append(count)
        integer = all(_whole(c) for c in counts) and _whole(count)
        buckets = tuple(c - p for c, p in zip(counts, [0.0, *counts[:-1]]))
        if count != counts[-1]:
            raise ClassicConversionError(
                f"count mismatch: count={count:g} != le={les[-1]:g} count={counts[-1]:g}"
            )
        h = FloatHistogram(
            schema=CUSTOM_BUCKETS_SCHEMA,
            count=count,
            sum=self.sum,
            positive_spans=(Span(0, len(buckets)),),
            positive_buckets=buckets,
            custom_values=tuple(les[:-1]),
        )
        h = compact(h, 2 if integer else 0)
        try:
            h.validate()
        except HistogramError as e:
            raise ClassicConversionError(str(e)) from None
        return h, integer


def _whole(v: float) -> bool:
    return math.isfinite(v) and v == round(v)


def base_name(name: str) -> tuple[str, str]:
    """(suffix, base) of a metric name: ``bucket``, ``sum``, ``count`` or ``""``."""
    for suffix in ("bucket", "sum", "count"):
        if name.endswith("_" + suffix):
            return suffix, name[: -len(suffix) - 1]
    return "", name


def _parse_le(text: str) -> float | None:
    t = text.strip()
    low = t.lower()
    if low in ("+inf", "inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    try:
        v = float(t)
    except ValueError:
        return None
    return None if math.isnan(v) else v


def nhcb_series(
    series: Iterable[tuple[Mapping[str, str], Sequence[tuple[int, float]]]],
) -> list[tuple[dict[str, str], list[tuple[int, FloatHistogram]]]]:
    """The custom-bucket histogram series that ``load_with_nhcb`` adds for the classic
    histograms among ``series`` (labels with ``__name__``, float samples by timestamp):
    labels are the base name's without ``le``, samples ascending by time. Raises
    ``ClassicConversionError`` as the load would fail."""
    groups: dict[tuple[tuple[str, str], ...], dict[int, ClassicHistogram]] = {}
    for labels, samples in series:
        suffix, base = base_name(labels.get(METRIC_NAME, ""))
        if not suffix:
            continue
        le = None
        if suffix == "bucket":
            if BUCKET_LABEL not in labels:
                raise ClassicConversionError(f"expected bucket label in metric {dict(labels)}")
            le = _parse_le(labels[BUCKET_LABEL])
            if le is None:
                continue
        key_labels = {k: v for k, v in labels.items() if k != BUCKET_LABEL}
        key_labels[METRIC_NAME] = base
        by_time = groups.setdefault(tuple(sorted(key_labels.items())), {})
        for t, v in samples:
            h = by_time.setdefault(t, ClassicHistogram())
            if suffix == "bucket" and le is not None:
                h.set_bucket_count(le, v)
            elif suffix == "count":
                h.set_count(v)
            else:
                h.set_sum(v)
    out: list[tuple[dict[str, str], list[tuple[int, FloatHistogram]]]] = []
    for key, by_time in groups.items():
        points = [(t, by_time[t].convert()[0]) for t in sorted(by_time)]
        out.append((dict(key), points))
    return out
