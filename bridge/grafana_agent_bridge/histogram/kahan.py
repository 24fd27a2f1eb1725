"""Compensated (Kahan-Neumaier) histogram addition, as ``sum``/``avg`` aggregate histograms
(``FloatHistogram.KahanAdd``; the engine keeps a compensation histogram per group).

The compensation histogram has the receiver's layout; every count of the sum is accumulated
with ``kahan_inc``, and the compensation is added to the sum once at the end
(``finish``). Without it, sums of histograms with large and small counts lose the small ones
(the corpus tests this, e.g. ``histogram_avg_incremental``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

from .bounds import exponential_bound, is_exponential, target_index
from .model import FloatHistogram, Hint, IncompatibleSchemaError, collapse
from .notes import Note
from .ops import add, combined_hint, div, intersect_bounds, mul, target_bucket
from .stats import kahan_inc

# One side of a histogram with its compensation: index → (count, compensation).
_Side = dict[int, tuple[float, float]]


class KahanResult(NamedTuple):
    histogram: FloatHistogram
    compensation: FloatHistogram
    counter_reset_collision: bool
    nhcb_bounds_reconciled: bool


def _side(h: FloatHistogram, c: FloatHistogram | None, positive: bool) -> _Side:
    pairs = h.positive() if positive else h.negative()
    comp = dict((c.positive() if positive else c.negative()) if c is not None else ())
    return {i: (v, comp.get(i, 0.0)) for i, v in pairs}


def _inc2(value: float, comp_in: float, target: tuple[float, float]) -> tuple[float, float]:
    """Add a count and its compensation to a (count, compensation) pair."""
    t, c = kahan_inc(value, target[0], target[1])
    return kahan_inc(comp_in, t, c)


def _reduce(side: _Side, origin: int, target: int) -> _Side:
    if origin == target:
        return side
    out: _Side = {}
    for idx in sorted(side):
        t = target_index(idx, origin, target)
        v, c = side[idx]
        out[t] = _inc2(v, c, out[t]) if t in out else (v, c)
    return out


def _zero_for_threshold(
    h: FloatHistogram, pos: _Side, neg: _Side, zero: tuple[float, float], larger: float
) -> tuple[float, float, float]:
    """``zeroCountForLargerThreshold`` with compensation: (count, compensation, threshold)."""
    if larger == h.zero_threshold:
        return zero[0], zero[1], larger
    while True:
        acc = zero
        for idx in sorted(pos):
            b = h.bucket(idx, pos[idx][0], True)
            if b.lower >= larger:
                break
            acc = _inc2(pos[idx][0], pos[idx][1], acc)
            if b.upper > larger:
                if b.count != 0:
                    larger = b.upper
                break
        again = False
        for idx in sorted(neg):
            b = h.bucket(idx, neg[idx][0], False)
            if b.upper <= -larger:
                break
            acc = _inc2(neg[idx][0], neg[idx][1], acc)
            if b.lower < -larger:
                if b.count != 0:
                    larger = -b.lower
                    again = True
                break
        if not again:
            return acc[0], acc[1], larger


def _trim(h: FloatHistogram, side: _Side, positive: bool, threshold: float) -> _Side:
    """Drop the buckets now inside the zero bucket, and any bucket left empty with no
    compensation (``trimBucketsInZeroBucket`` then ``kahanCompact(0)``)."""
    out: _Side = {}
    inside = True
    for idx in sorted(side):
        v, c = side[idx]
        b = h.bucket(idx, v, positive)
        if inside and (b.lower < threshold if positive else b.upper > -threshold):
            continue
        inside = False
        if v != 0 or c != 0:
            out[idx] = (v, c)
    return out


def kahan_add(h: FloatHistogram, other: FloatHistogram, c: FloatHistogram | None) -> KahanResult:
    """``h + other`` accumulating rounding errors in ``c`` (None to start a compensation)."""
    if h.uses_custom_buckets != other.uses_custom_buckets:
        raise IncompatibleSchemaError
    hint, collision = combined_hint(h.hint, other.hint)
    count = kahan_inc(other.count, h.count, c.count if c else 0.0)
    total = kahan_inc(other.sum, h.sum, c.sum if c else 0.0)
    pos, neg = _side(h, c, True), _side(h, c, False)
    o_pos, o_neg = _side(other, None, True), _side(other, None, False)
    reconciled = False
    bounds = h.custom_values
    zero = (h.zero_count, c.zero_count if c else 0.0)
    threshold = h.zero_threshold
    schema = h.schema
    if h.uses_custom_buckets:
        if h.custom_values == other.custom_values:
            pos = _add_sides(pos, o_pos, None)
        else:
            reconciled = True
            bounds = intersect_bounds(h.custom_values, other.custom_values)
            target: dict[int, tuple[float, float]] = {}
            for src, own in ((pos, h.custom_values), (o_pos, other.custom_values)):
                for idx in sorted(src):
                    t = target_bucket(bounds, own, idx)
                    v, cc = src[idx]
                    target[t] = _inc2(v, cc, target.get(t, (0.0, 0.0)))
            pos = {i: vc for i, vc in target.items() if vc != (0.0, 0.0)}
    else:
        # Zero buckets first (at the original schemas), then resolution, then buckets.
        o_zero, o_threshold = other.zero_count, other.zero_threshold
        o_zero_c = 0.0
        while o_threshold != threshold:
            if threshold > o_threshold:
                o_zero, o_zero_c, o_threshold = _zero_for_threshold(
                    other, o_pos, o_neg, (other.zero_count, 0.0), threshold
                )
            if o_threshold > threshold:
                hz, hc, new_threshold = _zero_for_threshold(h, pos, neg, zero, o_threshold)
                zero = (hz, hc)
                pos = _trim(h, pos, True, new_threshold)
                neg = _trim(h, neg, False, new_threshold)
                threshold = new_threshold
        zero = _inc2(o_zero, o_zero_c, zero)
        schema = min(h.schema, other.schema)
        pos, neg = _reduce(pos, h.schema, schema), _reduce(neg, h.schema, schema)
        o_pos, o_neg = _reduce(o_pos, other.schema, schema), _reduce(o_neg, other.schema, schema)
        pos = _add_sides(pos, o_pos, (schema, threshold))
        neg = _add_sides(neg, o_neg, (schema, threshold))
    pos_spans, pos_b = collapse([(i, pos[i][0]) for i in sorted(pos)])
    neg_spans, neg_b = collapse([(i, neg[i][0]) for i in sorted(neg)])
    _, pos_c = collapse([(i, pos[i][1]) for i in sorted(pos)])
    _, neg_c = collapse([(i, neg[i][1]) for i in sorted(neg)])
    result = replace(
        h,
        schema=schema,
        count=count[0],
        sum=total[0],
        zero_threshold=threshold,
        zero_count=zero[0],
        positive_spans=pos_spans,
        positive_buckets=pos_b,
        negative_spans=neg_spans,
        negative_buckets=neg_b,
        custom_values=bounds,
        hint=hint,
    )
    comp = replace(
        result,
        count=count[1],
        sum=total[1],
        zero_count=zero[1],
        positive_buckets=pos_c,
        negative_buckets=neg_c,
    )
    return KahanResult(result, comp, collision, reconciled)


def _add_sides(a: _Side, b: _Side, threshold: tuple[int, float] | None) -> _Side:
    out = dict(a)
    leading = threshold is not None and is_exponential(threshold[0])
    for idx in sorted(b):
        if leading and threshold is not None:
            if exponential_bound(idx, threshold[0]) <= threshold[1]:
                continue
            leading = False
        v, c = b[idx]
        out[idx] = _inc2(v, c, out[idx]) if idx in out else (v, c)
    return out


def finish(h: FloatHistogram, c: FloatHistogram | None) -> FloatHistogram:
    """The compensated sum: ``h`` plus its compensation (what the engine returns)."""
    if c is None:
        return h
    return add(h, c).histogram


def has_overflow(h: FloatHistogram) -> bool:
    """Whether any count, the sum or a bound is infinite (``HasOverflow``)."""
    values = (h.zero_count, h.count, h.sum, *h.positive_buckets, *h.negative_buckets)
    return any(math.isinf(v) for v in (*values, *h.custom_values))


def _aggregation_notes(hs: Sequence[FloatHistogram], reconciled: bool) -> set[Note]:
    hints = {h.hint for h in hs}
    notes: set[Note] = set()
    if Hint.RESET in hints and Hint.NOT_RESET in hints:
        notes.add(Note.COUNTER_RESET_COLLISION_AGG)
    if reconciled:
        notes.add(Note.MISMATCHED_CUSTOM_BUCKETS_AGG)
    return notes


def sum_histograms(hs: Sequence[FloatHistogram]) -> tuple[FloatHistogram | None, frozenset[Note]]:
    """The compensated sum of ``hs`` in order (``sum_over_time``); None if exponential and
    custom buckets are mixed."""
    total, comp, reconciled = hs[0], None, False
    try:
        for h in hs[1:]:
            total, comp, _, r = kahan_add(total, h, comp)
            reconciled |= r
        if comp is not None:
            total, _, r = add(total, comp)
            reconciled |= r
    except IncompatibleSchemaError:
        return None, frozenset({Note.MIXED_EXPONENTIAL_CUSTOM})
    return total, frozenset(_aggregation_notes(hs, reconciled))


def mean_histograms(hs: Sequence[FloatHistogram]) -> tuple[FloatHistogram | None, frozenset[Note]]:
    """The mean of ``hs`` as ``avg_over_time`` computes it: a compensated sum divided by
    the count while the sum stays finite, an incremental mean from the first overflow on."""
    total, comp = hs[0], None
    mean: FloatHistogram | None = None
    reconciled = False
    count = 1.0
    try:
        for i, h in enumerate(hs[1:]):
            count = float(i + 2)
            if mean is None:
                r = kahan_add(total, h, comp)
                reconciled |= r.nhcb_bounds_reconciled
                if not has_overflow(r.histogram):
                    total, comp = r.histogram, r.compensation
                    continue
                mean = div(total, count - 1)
                comp = div(comp, count - 1) if comp is not None else None
            q = (count - 1) / count
            comp = mul(comp, q) if comp is not None else None
            r = kahan_add(mul(mean, q), div(h, count), comp)
            mean, comp = r.histogram, r.compensation
            reconciled |= r.nhcb_bounds_reconciled
        if mean is not None:
            result = add(mean, comp).histogram if comp is not None else mean
        elif comp is not None:
            result = add(div(total, count), div(comp, count)).histogram
        else:
            result = div(total, count)
    except IncompatibleSchemaError:
        return None, frozenset({Note.MIXED_EXPONENTIAL_CUSTOM})
    return result, frozenset(_aggregation_notes(hs, reconciled))
