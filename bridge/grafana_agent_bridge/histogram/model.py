"""The native histogram as PromQL sees it: Prometheus's ``FloatHistogram``, immutable.

Same meaning field by field as ``model/histogram/float_histogram.go``: a schema (exponential
-4..8, or -53 for custom bucket bounds), a zero bucket (threshold and count), the count and sum
of observations, positive and negative buckets as spans (offset, length) plus absolute counts,
custom bounds, and the counter-reset hint. Integer histograms of the wire are converted to
this on decode (``codec``), as PromQL does.

Instances are frozen, so a histogram can be shared between a store, a query and a cache
without copies; every operation (``histogram.ops``) returns a new one.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import NamedTuple

from .bounds import CUSTOM_BUCKETS_SCHEMA, bucket_bound, is_custom_buckets, is_exponential

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
"""Prometheus's stale marker; a histogram whose sum has these bits marks staleness."""


class Hint(IntEnum):
    """Counter-reset hint, numbered as Prometheus's ``CounterResetHint`` and the
    remote-write ``ResetHint`` enum (UNKNOWN, YES, NO, GAUGE)."""

    UNKNOWN = 0
    RESET = 1
    NOT_RESET = 2
    GAUGE = 3


class Span(NamedTuple):
    """``offset`` is the gap to the previous span (absolute index for the first span)."""

    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket with its bounds; ``index`` is its index within the schema and sign."""

    lower: float
    upper: float
    lower_inclusive: bool
    upper_inclusive: bool
    count: float
    index: int


class HistogramError(ValueError):
    """A histogram that breaks Prometheus's validity rules (``FloatHistogram.Validate``)."""


class IncompatibleSchemaError(HistogramError):
    """Operation between an exponential and a custom-buckets histogram."""

    def __init__(self) -> None:
        super().__init__(
            "cannot apply this operation on histograms with a mix of exponential and custom "
            "bucket schemas"
        )


@dataclass(frozen=True, slots=True)
class FloatHistogram:
    schema: int = 0
    count: float = 0.0
    sum: float = 0.0
    zero_threshold: float = 0.0
    zero_count: float = 0.0
    positive_spans: tuple[Span, ...] = ()
    positive_buckets: tuple[float, ...] = ()
    negative_spans: tuple[Span, ...] = ()
    negative_buckets: tuple[float, ...] = ()
    custom_values: tuple[float, ...] = ()
    hint: Hint = Hint.UNKNOWN

    @property
    def uses_custom_buckets(self) -> bool:
        return is_custom_buckets(self.schema)

    @property
    def is_stale(self) -> bool:
        return same_bits(self.sum, STALE_NAN)

    def validate(self) -> None:
        """Raise ``HistogramError`` unless the histogram is valid as Prometheus defines it:
        spans cover exactly the buckets, no negative counts or (after the first) offsets,
        custom bounds strictly increasing and finite and enough for the spans, custom-bucket
        histograms with no zero bucket or negative side, exponential ones without bounds."""
        if is_custom_buckets(self.schema):
            _check_custom_bounds(self.custom_values, self.positive_spans, self.positive_buckets)
            if self.zero_count != 0:
                raise HistogramError("custom buckets: must have zero count of 0")
            if self.zero_threshold != 0:
                raise HistogramError("custom buckets: must have zero threshold of 0")
            if self.negative_spans:
                raise HistogramError("custom buckets: must not have negative spans")
            if self.negative_buckets:
                raise HistogramError("custom buckets: must not have negative buckets")
        elif is_exponential(self.schema):
            _check_spans("positive side", self.positive_spans, len(self.positive_buckets))
            _check_spans("negative side", self.negative_spans, len(self.negative_buckets))
            _check_counts("negative side", self.negative_buckets)
            if self.zero_count < 0:
                raise HistogramError(
                    f"zero bucket has observation count of {self.zero_count:g}: histogram "
                    "has a bucket whose observation count is negative"
                )
            if self.custom_values:
                raise HistogramError(
                    "histogram with exponential schema must not have custom bounds"
                )
        else:
            raise HistogramError(
                "histogram has an invalid schema, which must be between -4 and 8 for "
                f"exponential buckets, or -53 for custom buckets, got schema {self.schema}"
            )
        if self.count < 0:
            raise HistogramError(f"histogram's observation count is negative: {self.count:g}")
        _check_counts("positive side", self.positive_buckets)

    # Buckets, as Prometheus's iterators yield them.

    def positive(self) -> list[tuple[int, float]]:
        """(absolute index, count) of the positive buckets, ascending."""
        return expand(self.positive_spans, self.positive_buckets)

    def negative(self) -> list[tuple[int, float]]:
        """(absolute index, count) of the negative buckets, ascending by index (so
        descending by value)."""
        return expand(self.negative_spans, self.negative_buckets)

    def bucket(self, index: int, count: float, positive: bool) -> Bucket:
        """Bucket ``index`` with its bounds and inclusiveness as Prometheus reports them."""
        cv = self.custom_values
        if positive:
            upper = bucket_bound(index, self.schema, cv)
            lower = bucket_bound(index - 1, self.schema, cv)
        else:
            lower = -bucket_bound(index, self.schema, cv)
            upper = -bucket_bound(index - 1, self.schema, cv)
        if is_custom_buckets(self.schema):
            return Bucket(lower, upper, index == 0, True, count, index)
        return Bucket(lower, upper, lower < 0, upper > 0, count, index)

    def zero_bucket(self) -> Bucket:
        z = self.zero_threshold
        return Bucket(-z, z, True, True, self.zero_count, 0)

    def all_buckets(self) -> list[Bucket]:
        """Every bucket from the lowest value up (``AllBucketIterator``): negative, the zero
        bucket if populated, positive; bounds overlapping the zero bucket are cut at its
        threshold."""
        out = [self._clip(self.bucket(i, c, False)) for i, c in reversed(self.negative())]
        if self.zero_count > 0:
            out.append(self.zero_bucket())
        out.extend(self._clip(self.bucket(i, c, True)) for i, c in self.positive())
        return out

    def all_buckets_reversed(self) -> list[Bucket]:
        """Every bucket from the highest value down (``AllReverseBucketIterator``)."""
        out = [self._clip(self.bucket(i, c, True)) for i, c in reversed(self.positive())]
        if self.zero_count > 0:
            out.append(self.zero_bucket())
        out.extend(self._clip(self.bucket(i, c, False)) for i, c in self.negative())
        return out

    def _clip(self, b: Bucket) -> Bucket:
        z = self.zero_threshold
        if b.upper < 0 and b.upper > -z:
            return replace(b, upper=-z)
        if b.lower > 0 and b.lower < z:
            return replace(b, lower=z)
        return b

    def test_expression(self) -> str:
        """The promqltest notation of this histogram (``FloatHistogram.TestExpression``),
        for messages."""
        parts: list[str] = []
        if self.schema != 0:
            parts.append(f"schema:{self.schema}")
        if self.count != 0:
            parts.append(f"count:{_g(self.count)}")
        if self.sum != 0:
            parts.append(f"sum:{_g(self.sum)}")
        if self.zero_count != 0:
            parts.append(f"z_bucket:{_g(self.zero_count)}")
        if self.zero_threshold != 0:
            parts.append(f"z_bucket_w:{_g(self.zero_threshold)}")
        if self.custom_values:
            parts.append("custom_values:[" + " ".join(_g(v) for v in self.custom_values) + "]")
        if self.hint != Hint.UNKNOWN:
            names = {Hint.RESET: "reset", Hint.NOT_RESET: "not_reset", Hint.GAUGE: "gauge"}
            parts.append(f"counter_reset_hint:{names[self.hint]}")
        for key, off, pairs in (
            ("buckets", "offset", self.positive()),
            ("n_buckets", "n_offset", self.negative()),
        ):
            if not pairs:
                continue
            first = pairs[0][0]
            if first != 0:
                parts.append(f"{off}:{first}")
            dense = [0.0] * (pairs[-1][0] - first + 1)
            for i, c in pairs:
                dense[i - first] = c
            parts.append(f"{key}:[" + " ".join(_g(v) for v in dense) + "]")
        return "{{" + " ".join(parts) + "}}"


def go_g(v: float) -> str:
    """Go's ``%g`` of a float64 (shortest digits; ``+Inf``, ``NaN``; exponent from 1e21)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e21:
        return str(int(v)) if v != 0 or math.copysign(1.0, v) > 0 else "-0"
    return repr(v)


def _bucket_string(b: Bucket) -> str:
    left = "[" if b.lower_inclusive else "("
    right = "]" if b.upper_inclusive else ")"
    return f"{left}{go_g(b.lower)},{go_g(b.upper)}{right}:{go_g(b.count)}"


def go_string(h: FloatHistogram) -> str:
    """``FloatHistogram.String()``: count, sum and the populated buckets from the lowest
    value up, e.g. ``{count:20, sum:10, [-2,-1):2, [-0.001,0.001]:2, (1,2]:2}`` (what
    ``count_values`` puts in its label)."""
    parts = [f"{{count:{go_g(h.count)}, sum:{go_g(h.sum)}"]
    for i, c in reversed(h.negative()):
        if c != 0:
            parts.append(_bucket_string(h.bucket(i, c, False)))
    if h.zero_count != 0:
        parts.append(_bucket_string(h.zero_bucket()))
    for i, c in h.positive():
        if c != 0:
            parts.append(_bucket_string(h.bucket(i, c, True)))
    return ", ".join(parts) + "}"


def _g(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v) if v != int(v) or abs(v) >= 1e16 else str(int(v))


def same_bits(a: float, b: float) -> bool:
    return struct.pack("<d", a) == struct.pack("<d", b)


def stale_histogram() -> FloatHistogram:
    """The histogram stale marker: an empty histogram whose sum is StaleNaN."""
    return FloatHistogram(sum=STALE_NAN)


def expand(spans: tuple[Span, ...], buckets: tuple[float, ...]) -> list[tuple[int, float]]:
    """Spans and counts → (absolute index, count) pairs."""
    out: list[tuple[int, float]] = []
    idx = 0
    pos = 0
    for span in spans:
        idx += span.offset
        for _ in range(span.length):
            if pos >= len(buckets):
                return out
            out.append((idx, buckets[pos]))
            idx += 1
            pos += 1
    return out


def collapse(pairs: list[tuple[int, float]]) -> tuple[tuple[Span, ...], tuple[float, ...]]:
    """(absolute index, count) pairs, ascending → spans of consecutive indices and counts."""
    spans: list[Span] = []
    counts: list[float] = []
    prev = 0
    for idx, c in pairs:
        if spans and idx == prev + 1:
            last = spans[-1]
            spans[-1] = Span(last.offset, last.length + 1)
        else:
            spans.append(Span(idx if not spans else idx - prev - 1, 1))
        counts.append(c)
        prev = idx
    return tuple(spans), tuple(counts)


def _check_spans(side: str, spans: tuple[Span, ...], n_buckets: int) -> None:
    if len(spans) <= 1 and (spans[0].length if spans else 0) == n_buckets:
        return  # the usual layouts, valid (a first span's offset may be negative)
    total = 0
    for n, span in enumerate(spans):
        if n > 0 and span.offset < 0:
            raise HistogramError(
                f"{side}: span number {n + 1} with offset {span.offset}: histogram has a span "
                "whose offset is negative"
            )
        if span.length < 0:
            raise HistogramError(f"{side}: span number {n + 1} has a negative length")
        total += span.length
    if total != n_buckets:
        raise HistogramError(
            f"{side}: spans need {total} buckets, have {n_buckets} buckets: histogram spans "
            "specify different number of buckets than provided"
        )


def _check_counts(side: str, buckets: tuple[float, ...]) -> None:
    if not buckets or min(buckets) >= 0:
        # min is never NaN or a non-negative count when a negative one is present.
        return
    for i, c in enumerate(buckets):
        if c < 0:
            raise HistogramError(
                f"{side}: bucket number {i + 1} has observation count of {c:g}: histogram has "
                "a bucket whose observation count is negative"
            )


def _check_custom_bounds(
    bounds: tuple[float, ...], spans: tuple[Span, ...], buckets: tuple[float, ...]
) -> None:
    prev = -math.inf
    for i, b in enumerate(bounds):
        if math.isnan(b):
            raise HistogramError("custom buckets: histogram custom bounds must not be NaN")
        if i > 0 and b <= prev:
            raise HistogramError(
                f"custom buckets: previous bound is {prev:f} and current is {b:f}: histogram "
                "custom bounds must be in strictly increasing order"
            )
        prev = b
    if prev == math.inf:
        raise HistogramError(
            "custom buckets: last +Inf bound must not be explicitly defined: histogram custom "
            "bounds must be finite"
        )
    total = 0
    reach = 0
    for n, span in enumerate(spans):
        if span.offset < 0:
            raise HistogramError(
                f"custom buckets: span number {n + 1} with offset {span.offset}: histogram has "
                "a span whose offset is negative"
            )
        if span.length < 0:
            raise HistogramError(f"custom buckets: span number {n + 1} has a negative length")
        total += span.length
        reach += span.length + span.offset
    if total != len(buckets):
        raise HistogramError(
            f"custom buckets: spans need {total} buckets, have {len(buckets)} buckets: "
            "histogram spans specify different number of buckets than provided"
        )
    if len(bounds) + 1 < reach:
        raise HistogramError(
            f"custom buckets: only {len(bounds)} custom bounds defined which is insufficient "
            f"to cover total span length of {reach}: histogram custom bounds are too few"
        )


__all__ = [
    "CUSTOM_BUCKETS_SCHEMA",
    "STALE_NAN",
    "Bucket",
    "FloatHistogram",
    "Hint",
    "HistogramError",
    "IncompatibleSchemaError",
    "Span",
    "collapse",
    "expand",
    "same_bits",
    "stale_histogram",
]
