"""Float arithmetic exactly as Prometheus does it, shared by the operators.

Go's float formatting (``count_values`` labels, warnings), Kahan-Neumaier summation, the
``quantile`` interpolation, and the classic-histogram bucket maths behind
``histogram_quantile`` and ``histogram_fraction``. Pure functions of numbers and arrays: no
query state, no labels.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

from .values import F64


def format_float(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)``: shortest round-trip, never an exponent."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    s = format(Decimal(repr(v)), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def kahan_sum(values: list[float]) -> float:
    """Prometheus's Kahan-Neumaier summation (``kahanSumInc``), for sums that cancel."""
    total = 0.0
    c = 0.0
    for x in values:
        t = total + x
        if math.isinf(t):
            c = 0.0
        elif abs(total) >= abs(x):
            c += (total - t) + x
        else:
            c += (x - t) + total
        total = t
    return total + c


def quantile_sorted(srt: F64, n: np.ndarray, q: F64) -> F64:
    """``quantile`` along axis 1 of ``srt`` (rows sorted ascending, the first ``n`` entries
    valid, no NaN): linear interpolation between closest ranks, +-Inf outside [0, 1]."""
    rows = np.arange(srt.shape[0])
    rank = np.where(np.isfinite(q), q, 0.0) * (n - 1)
    lower = np.clip(np.floor(rank), 0, np.maximum(n - 1, 0)).astype(np.int64)
    upper = np.minimum(n - 1, lower + 1)
    weight = rank - np.floor(rank)
    with np.errstate(all="ignore"):
        res = srt[rows, lower] * (1 - weight) + srt[rows, upper] * weight
    res = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, res))
    return np.where(np.isnan(q), np.nan, res)


def quantile(q: float, values: list[float]) -> float:
    """Prometheus's ``quantile`` with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    vs = sorted(values, key=lambda x: (not math.isnan(x), x))
    n = len(vs)
    rank = q * (n - 1)
    lower = max(0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return vs[lower] * (1 - weight) + vs[upper] * weight


def go_div(a: float, b: float) -> float:
    """Float division as Go does it: x/0 is +-Inf, 0/0 is NaN (Python raises)."""
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
    return a / b


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> tuple[float, bool]:
    """Prometheus's ``BucketQuantile`` over (upper bound, cumulative count) pairs."""
    if math.isnan(q):
        return math.nan, False
    if q < 0:
        return -math.inf, False
    if q > 1:
        return math.inf, False
    bs = sorted(buckets, key=lambda b: b[0])
    if not bs or not (math.isinf(bs[-1][0]) and bs[-1][0] > 0):
        return math.nan, False
    merged: list[list[float]] = []
    for ub, c in bs:
        if merged and merged[-1][0] == ub:
            merged[-1][1] += c
        else:
            merged.append([ub, c])
    forced = False
    prev = merged[0][1]
    for b in merged[1:]:
        cur = b[1]
        if cur == prev:
            continue
        if abs(cur - prev) <= 1e-12 * max(abs(cur), abs(prev)):
            b[1] = prev
            continue
        if cur < prev:
            b[1] = prev
            forced = True
            continue
        prev = cur
    if len(merged) < 2:
        return math.nan, forced
    total = merged[-1][1]
    if total == 0 or math.isnan(total):
        return math.nan, forced
    rank = q * total
    b = len(merged) - 1
    for i in range(len(merged) - 1):
        if merged[i][1] >= rank:
            b = i
            break
    if b == len(merged) - 1:
        return merged[-2][0], forced
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0], forced
    start = 0.0
    end = merged[b][0]
    count = merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return start + (end - start) * go_div(rank, count), forced


def bucket_fraction(lower: float, upper: float, buckets: list[tuple[float, float]]) -> float:
    """The fraction of observations in ``[lower, upper]`` from classic cumulative buckets.

    Like Prometheus: linear interpolation inside a bucket; the lowest bucket starts at 0 when
    its upper bound is positive (else at -Inf); a bound falling inside a bucket of infinite
    width takes none of it.
    """
    bs = sorted(buckets, key=lambda b: b[0])
    if not bs or not (math.isinf(bs[-1][0]) and bs[-1][0] > 0):
        return math.nan
    merged: list[list[float]] = []
    for ub, c in bs:
        if merged and merged[-1][0] == ub:
            merged[-1][1] += c
        else:
            merged.append([ub, c])
    prev = merged[0][1]
    for b in merged[1:]:
        b[1] = max(b[1], prev)
        prev = b[1]
    total = merged[-1][1]
    if total == 0 or math.isnan(total) or math.isnan(lower) or math.isnan(upper):
        return math.nan
    if lower >= upper:
        return 0.0
    rank = 0.0
    lower_rank = upper_rank = total
    lower_set = upper_set = False
    prev_ub = None
    prev_cum = 0.0
    for ub, cum in merged:
        count = cum - prev_cum
        lo_b = prev_ub if prev_ub is not None else (0.0 if ub > 0 else -math.inf)
        if not lower_set and lo_b >= lower:
            lower_rank, lower_set = rank, True
        if not upper_set and lo_b >= upper:
            upper_rank, upper_set = rank, True
        if lower_set and upper_set:
            break
        if not lower_set and lo_b < lower < ub:
            lower_rank = _position(rank, count, lo_b, ub, lower)
            lower_set = True
        if not upper_set and lo_b < upper < ub:
            upper_rank = _position(rank, count, lo_b, ub, upper)
            upper_set = True
        if lower_set and upper_set:
            break
        rank += count
        prev_ub, prev_cum = ub, cum
    lower_rank = min(lower_rank, total)
    upper_rank = min(upper_rank, total)
    return (upper_rank - lower_rank) / total


def _position(rank: float, count: float, lo_b: float, ub: float, x: float) -> float:
    """The rank of ``x`` inside a bucket: interpolated, or at the finite end of an infinite
    bucket (which thus contributes nothing)."""
    if math.isinf(lo_b):
        return rank + count
    if math.isinf(ub):
        return rank
    return rank + count * (x - lo_b) / (ub - lo_b)


def bucket_quantile_steps(
    q: F64, bounds: list[float], counts: F64, present: np.ndarray
) -> tuple[F64, np.ndarray, bool] | None:
    """``bucket_quantile`` for all steps of one histogram at once, for the regular steps: all
    buckets present, no NaN, distinct bounds ending in +Inf, 0 <= q <= 1.

    ``bounds[i]`` is the upper bound of the bucket whose cumulative counts per step are
    ``counts[i]`` (present where ``present[i]``), in any order. Returns (results, which steps
    were done, whether monotonicity had to be forced); irregular steps are left to the exact
    per-step path.
    """
    if len(bounds) < 2:
        return None
    order = sorted(range(len(bounds)), key=lambda i: bounds[i])
    ubs = np.array([bounds[i] for i in order])
    if not (math.isinf(ubs[-1]) and ubs[-1] > 0) or (np.diff(ubs) == 0).any():
        return None
    counts = counts[order]
    regular = present[order].all(axis=0) & ~np.isnan(counts).any(axis=0)
    regular &= (q >= 0) & (q <= 1)
    if not regular.any():
        return None
    fixed = np.maximum.accumulate(np.where(np.isnan(counts), -np.inf, counts), axis=0)
    diff = fixed - counts
    tolerance = 1e-12 * np.abs(fixed)
    forced = bool(((diff > tolerance) & regular[None, :]).any())
    total = fixed[-1]
    rank = q * total
    below = fixed[:-1] >= rank[None, :]
    b = np.where(below.any(axis=0), np.argmax(below, axis=0), len(ubs) - 1)
    cols = np.arange(len(q))
    prev_b = np.maximum(b - 1, 0)
    start = np.where(b > 0, ubs[prev_b], 0.0)
    end = ubs[np.minimum(b, len(ubs) - 1)]
    count = fixed[b, cols] - np.where(b > 0, fixed[prev_b, cols], 0.0)
    r = rank - np.where(b > 0, fixed[prev_b, cols], 0.0)
    with np.errstate(all="ignore"):  # 0/0 is NaN, as in Go
        res = start + (end - start) * (r / count)
    res = np.where(b == len(ubs) - 1, ubs[-2], res)
    res = np.where((b == 0) & (ubs[0] <= 0), ubs[0], res)
    res = np.where(total == 0, np.nan, res)
    return np.where(regular, res, 0.0), regular, forced
