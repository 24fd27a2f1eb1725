"""The trim operators ``h </ x`` (keep observations below x) and ``h >/ x`` (keep those
above x), as ``FloatHistogram.TrimBuckets`` (``model/histogram/float_histogram.go``) does it.

A bucket that straddles the trim point keeps the interpolated share of its count (linear for
custom buckets, logarithmic for exponential ones); a bucket reaching an infinite bound keeps
all or nothing, except the custom-bucket first bucket, taken to start at 0. When anything was
trimmed, count and sum are recomputed from the kept counts and their buckets' midpoints.
"""

from __future__ import annotations

import math
from dataclasses import replace

from .model import Bucket, FloatHistogram, collapse
from .ops import compact
from .stats import _fraction_below  # pyright: ignore[reportPrivateUsage]


def _zero_if_inf(x: float) -> float:
    return 0.0 if math.isinf(x) else x


def _infinity_bucket(upper_trim: bool, b: Bucket, rhs: float) -> tuple[float, float]:
    if b.lower == -math.inf:
        if upper_trim:
            if rhs >= b.upper:
                return b.count, 0.0
            if rhs > 0 and b.upper > 0 and not math.isinf(b.upper):
                return b.count * rhs / b.upper, rhs / 2
            if b.upper <= 0:
                return b.count, rhs
            return 0.0, _zero_if_inf(b.upper)
        if rhs <= b.lower:
            return b.count, 0.0
        if rhs >= 0 and b.upper > rhs and not math.isinf(b.upper):
            return b.count * (1 - rhs / b.upper), (rhs + b.upper) / 2
        return 0.0, _zero_if_inf(b.upper)
    # upper bound +Inf
    if upper_trim:
        return 0.0, _zero_if_inf(b.lower)
    if rhs >= b.lower:
        return b.count, rhs
    return 0.0, _zero_if_inf(b.lower)


def _midpoint(lower: float, upper: float, positive: bool, linear: bool) -> float:
    if math.isinf(lower):
        if math.isinf(upper):
            return 0.0
        return upper / 2 if upper > 0 else upper
    if math.isinf(upper):
        return lower
    if linear:
        return (lower + upper) / 2
    geo = math.sqrt(abs(lower * upper))
    return geo if positive else -geo


def _split(b: Bucket, rhs: float, linear: bool) -> float:
    if rhs <= b.lower:
        return 0.0
    if rhs >= b.upper:
        return b.count
    return b.count * _fraction_below(b.lower, b.upper, rhs, linear)


def _bucket_trim(
    b: Bucket, rhs: float, upper_trim: bool, positive: bool, custom: bool
) -> tuple[float, float]:
    if b.lower == -math.inf or b.upper == math.inf:
        return _infinity_bucket(upper_trim, b, rhs)
    under = _split(b, rhs, custom)
    if upper_trim:
        return under, _midpoint(b.lower, rhs, positive, custom)
    return b.count - under, _midpoint(rhs, b.upper, positive, custom)


def _zero_trim(
    h: FloatHistogram, rhs: float, has_neg: bool, has_pos: bool, upper_trim: bool
) -> tuple[float, float]:
    lower, upper = -h.zero_threshold, h.zero_threshold
    if has_neg and not has_pos:
        upper = 0.0
    if has_pos and not has_neg:
        lower = 0.0
    count = h.zero_count
    if upper_trim:
        if rhs <= lower:
            return 0.0, 0.0
        if rhs >= upper:
            return count, (lower + upper) / 2
        return count * (rhs - lower) / (upper - lower), (lower + rhs) / 2
    if rhs <= lower:
        return count, (lower + upper) / 2
    if rhs >= upper:
        return 0.0, 0.0
    return count * (upper - rhs) / (upper - lower), (rhs + upper) / 2


def trim_buckets(h: FloatHistogram, rhs: float, upper_trim: bool) -> FloatHistogram:
    """``h </ rhs`` (``upper_trim``) or ``h >/ rhs``."""
    custom = h.uses_custom_buckets
    count = total = 0.0
    trimmed = False
    sides: dict[bool, list[tuple[int, float]]] = {}
    seen = {True: False, False: False}
    for positive in (True, False):
        pairs = h.positive() if positive else h.negative()
        out: list[tuple[int, float]] = []
        for idx, c in pairs:
            if c == 0:
                out.append((idx, c))
                continue
            seen[positive] = True
            b = h.bucket(idx, c, positive)
            whole = b.upper <= rhs if upper_trim else b.lower >= rhs
            partial = b.lower < rhs if upper_trim else b.upper > rhs
            if whole:
                count += c
                total += _midpoint(b.lower, b.upper, positive, custom) * c
                out.append((idx, c))
            elif partial:
                keep, mid = _bucket_trim(b, rhs, upper_trim, positive, custom)
                count += keep
                total += mid * keep
                if keep != c:
                    trimmed = True
                out.append((idx, keep))
            else:
                trimmed = True
                out.append((idx, 0.0))
        sides[positive] = out
    zero_count = h.zero_count
    if zero_count > 0:
        keep, mid = _zero_trim(h, rhs, seen[False], seen[True], upper_trim)
        if keep != zero_count:
            trimmed = True
        zero_count = keep
        total += mid * keep
        count += keep
    if not trimmed:
        return h
    pos_spans, pos = collapse(sides[True])
    neg_spans, neg = collapse(sides[False])
    res = replace(
        h,
        count=count,
        sum=total,
        zero_count=zero_count,
        positive_spans=pos_spans,
        positive_buckets=pos,
        negative_spans=neg_spans,
        negative_buckets=neg,
    )
    return compact(res, 0)
