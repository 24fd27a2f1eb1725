"""The ``histogram_*`` PromQL functions on one native histogram, as plain functions.

Semantics of Prometheus 3.x ``promql/quantile.go`` (``HistogramQuantile``,
``HistogramFraction``) and ``promql/functions.go`` (``histogram_count``/``sum``/``avg``,
``histogramVariance``). Functions that Prometheus may annotate return ``(value, notes)``;
``notes`` holds ``Note`` members, which the engine turns into Prometheus's info messages
(their text is ``Note.value``, to be followed by `` for metric name "..."`` when known).
"""

from __future__ import annotations

import math

from .model import Bucket, FloatHistogram
from .notes import Note
from .ops import divide


def histogram_count(h: FloatHistogram) -> float:
    return h.count


def histogram_sum(h: FloatHistogram) -> float:
    return h.sum


def histogram_avg(h: FloatHistogram) -> float:
    return divide(h.sum, h.count)


def _log2(v: float) -> float:
    if v == 0:
        return -math.inf
    if math.isinf(v):
        return math.inf
    return math.log2(v)


def _exp2(v: float) -> float:
    try:
        return 2.0**v
    except OverflowError:
        return math.inf


def histogram_quantile(q: float, h: FloatHistogram) -> tuple[float, frozenset[Note]]:
    """The ``q`` quantile of the observations in ``h``.

    Exponential buckets are interpolated on a log scale (Prometheus 3), custom buckets and
    the zero bucket linearly; a zero bucket next to buckets of one sign only is taken to
    start (or end) at 0. q < 0 gives -Inf, q > 1 +Inf, no observations or q NaN NaN.
    """
    if q < 0:
        return -math.inf, frozenset()
    if q > 1:
        return math.inf, frozenset()
    if h.count == 0 or math.isnan(q):
        return math.nan, frozenset()
    notes: set[Note] = set()
    forward = math.isnan(h.sum) or q < 0.5
    if forward:
        buckets = h.all_buckets()
        rank = q * h.count
    else:
        buckets = h.all_buckets_reversed()
        rank = (1 - q) * h.count
    count = 0.0
    bucket = Bucket(0.0, 0.0, False, False, 0.0, 0)
    pos = 0
    while pos < len(buckets):
        bucket = buckets[pos]
        pos += 1
        if bucket.count == 0:
            continue
        count += bucket.count
        if count >= rank:
            break
    custom = h.uses_custom_buckets
    lower, upper = bucket.lower, bucket.upper
    if not custom and lower < 0 and upper > 0:
        if not h.negative_buckets and h.positive_buckets:
            lower = 0.0
        elif not h.positive_buckets and h.negative_buckets:
            upper = 0.0
    elif custom:
        if lower == -math.inf:
            if upper <= 0:
                return upper, frozenset(notes)
            lower = 0.0
        elif upper == math.inf:
            return lower, frozenset(notes)
    count = min(count, h.count)
    if count < rank:
        if math.isnan(h.sum):
            return math.nan, frozenset({Note.QUANTILE_NAN_RESULT})
        return upper, frozenset(notes)
    if forward:
        rank -= count - bucket.count
    else:
        rank = count - rank
    if math.isnan(h.sum):
        total = count + sum(b.count for b in buckets[pos:])
        if total < h.count:
            notes.add(Note.QUANTILE_NAN_SKEW)
    fraction = divide(rank, bucket.count)
    if custom or (lower <= 0 and upper >= 0):
        return lower + (upper - lower) * fraction, frozenset(notes)
    log_lower = _log2(abs(lower))
    log_upper = _log2(abs(upper))
    if lower > 0:
        return _exp2(log_lower + (log_upper - log_lower) * fraction), frozenset(notes)
    return -_exp2(log_upper + (log_lower - log_upper) * (1 - fraction)), frozenset(notes)


def _rank_at(
    b: Bucket, lower: float, upper: float, v: float, *, rank: float, linear: bool
) -> float:
    """Observations at or below v: those below the bucket plus its interpolated share. A
    bucket reaching -Inf contributes all of its count (no share of an infinite width)."""
    if linear and lower == -math.inf:
        return b.count
    return rank + b.count * _fraction_below(lower, upper, v, linear)


def _fraction_below(lower: float, upper: float, v: float, linear: bool) -> float:
    """Share of the bucket (lower, upper) at or below v (``Bucket.FractionBelow``)."""
    if linear:
        return divide(v - lower, upper - lower)
    log_lower = _log2(abs(lower))
    log_upper = _log2(abs(upper))
    log_v = _log2(abs(v))
    if v > 0:
        return divide(log_v - log_lower, log_upper - log_lower)
    return 1 - divide(log_v - log_upper, log_lower - log_upper)


def histogram_fraction(
    lower: float, upper: float, h: FloatHistogram
) -> tuple[float, frozenset[Note]]:
    """Estimated share of observations between ``lower`` and ``upper`` (the inverse of
    ``histogram_quantile``, same interpolation). NaN observations count in no bucket, so
    with them the fraction of (-Inf, +Inf) is below 1 and a note says so."""
    if h.count == 0 or math.isnan(lower) or math.isnan(upper):
        return math.nan, frozenset()
    if lower >= upper:
        return 0.0, frozenset()
    notes: set[Note] = set()
    buckets = h.all_buckets()
    count = rank = lower_rank = upper_rank = 0.0
    lower_set = upper_set = False
    custom = h.uses_custom_buckets
    pos = 0
    while pos < len(buckets):
        b = buckets[pos]
        pos += 1
        count += b.count
        b_lower, b_upper = b.lower, b.upper
        zero_bucket = False
        if b_lower <= 0 and b_upper >= 0:
            zero_bucket = True
            if not h.negative_buckets and h.positive_buckets:
                b_lower = 0.0
            elif not h.positive_buckets and h.negative_buckets:
                b_upper = 0.0

        linear = custom or zero_bucket
        if not lower_set and b_lower >= lower:
            lower_rank, lower_set = rank, True
        if not upper_set and b_lower >= upper:
            upper_rank, upper_set = rank, True
        if lower_set and upper_set:
            break
        if not lower_set and b_lower < lower < b_upper:
            lower_rank, lower_set = (
                _rank_at(b, b_lower, b_upper, lower, rank=rank, linear=linear),
                True,
            )
        if not upper_set and b_lower < upper < b_upper:
            upper_rank, upper_set = (
                _rank_at(b, b_lower, b_upper, upper, rank=rank, linear=linear),
                True,
            )
        if lower_set and upper_set:
            break
        rank += b.count
    if math.isnan(h.sum):
        count += sum(b.count for b in buckets[pos:])
        if count < h.count:
            notes.add(Note.FRACTION_NANS)
    else:
        count = h.count
    if not lower_set or lower_rank > count:
        lower_rank = count
    if not upper_set or upper_rank > count:
        upper_rank = count
    return divide(upper_rank - lower_rank, h.count), frozenset(notes)


def histogram_stdvar(h: FloatHistogram) -> float:
    """Estimated variance of the observations: each bucket's observations are taken to sit
    at its geometric mean (exponential buckets), its midpoint (custom buckets) or 0 (the
    zero bucket); the mean is sum/count (``histogramVariance``, Kahan-summed)."""
    mean = divide(h.sum, h.count)
    variance = 0.0
    comp = 0.0
    for b in h.all_buckets():
        if b.count == 0:
            continue
        if h.uses_custom_buckets:
            val = (b.upper + b.lower) / 2.0
        elif b.lower <= 0 and b.upper >= 0:
            val = 0.0
        else:
            product = b.upper * b.lower
            val = math.sqrt(product) if product >= 0 else math.nan
            if b.upper < 0:
                val = -val
        delta = val - mean
        variance, comp = kahan_inc(b.count * delta * delta, variance, comp)
    variance += comp
    return divide(variance, h.count)


def histogram_stddev(h: FloatHistogram) -> float:
    v = histogram_stdvar(h)
    return math.sqrt(v) if v >= 0 else math.nan


def kahan_inc(inc: float, total: float, comp: float) -> tuple[float, float]:
    """One step of Neumaier's compensated sum (``util/kahansum.Inc``)."""
    t = total + inc
    if math.isinf(t):
        comp = 0.0
    elif abs(total) >= abs(inc):
        comp += (total - t) + inc
    else:
        comp += (inc - t) + total
    return t, comp
