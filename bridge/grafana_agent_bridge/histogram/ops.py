"""Arithmetic on native histograms with Prometheus 3.x semantics.

Each function follows the method of ``model/histogram/float_histogram.go`` it is named after
(``Add``, ``Sub``, ``Mul``, ``Div``, ``Compact``, ``ReduceResolution``, ``DetectReset``,
``Equals``) and returns a new histogram instead of changing its receiver. Buckets are worked
on as (absolute index, count) pairs and laid out again as spans of consecutive indices: the
same buckets as Prometheus's span surgery gives, possibly split into spans differently, which
no comparison Prometheus makes can tell apart once compacted.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import NamedTuple

from .bounds import exponential_bound, is_exponential, target_index
from .model import (
    STALE_NAN,
    FloatHistogram,
    Hint,
    IncompatibleSchemaError,
    Span,
    collapse,
    same_bits,
)

Pairs = list[tuple[int, float]]


class OpResult(NamedTuple):
    """The outcome of ``add``/``sub``: the histogram, and what PromQL turns into annotations:
    ``counter_reset_collision`` (one operand said reset, the other not reset: Prometheus warns
    "conflicting counter resets during histogram ...") and ``nhcb_bounds_reconciled`` (custom
    bounds differed and were reduced to the common ones: info "mismatched custom buckets were
    reconciled during ...")."""

    histogram: FloatHistogram
    counter_reset_collision: bool
    nhcb_bounds_reconciled: bool


def divide(a: float, b: float) -> float:
    """IEEE division as Go does it (Python raises on division by zero)."""
    if b != 0 or math.isnan(b):
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def mul(h: FloatHistogram, factor: float) -> FloatHistogram:
    """Scale every count and the sum; a negative factor makes the result a gauge."""
    return replace(
        h,
        zero_count=h.zero_count * factor,
        count=h.count * factor,
        sum=h.sum * factor,
        positive_buckets=tuple(c * factor for c in h.positive_buckets),
        negative_buckets=tuple(c * factor for c in h.negative_buckets),
        hint=Hint.GAUGE if factor < 0 else h.hint,
    )


def div(h: FloatHistogram, scalar: float) -> FloatHistogram:
    """Divide every count and the sum; dividing by zero drops all buckets (Prometheus)."""
    if scalar == 0:
        return replace(
            h,
            zero_count=divide(h.zero_count, scalar),
            count=divide(h.count, scalar),
            sum=divide(h.sum, scalar),
            positive_spans=(),
            positive_buckets=(),
            negative_spans=(),
            negative_buckets=(),
        )
    return replace(
        h,
        zero_count=h.zero_count / scalar,
        count=h.count / scalar,
        sum=h.sum / scalar,
        positive_buckets=tuple(c / scalar for c in h.positive_buckets),
        negative_buckets=tuple(c / scalar for c in h.negative_buckets),
        hint=Hint.GAUGE if scalar < 0 else h.hint,
    )


def add(a: FloatHistogram, b: FloatHistogram) -> OpResult:
    """``a + b`` (``FloatHistogram.Add``). Raises ``IncompatibleSchemaError`` when one is
    exponential and the other has custom buckets."""
    return _combine(a, b, negate=False)


def sub(a: FloatHistogram, b: FloatHistogram) -> OpResult:
    """``a - b`` (``FloatHistogram.Sub``); the hint is combined as for ``add`` (the PromQL
    ``-`` operator then marks the result a gauge itself)."""
    return _combine(a, b, negate=True)


def _combine(a: FloatHistogram, b: FloatHistogram, negate: bool) -> OpResult:
    if a.uses_custom_buckets != b.uses_custom_buckets:
        raise IncompatibleSchemaError
    hint, collision = combined_hint(a.hint, b.hint)
    sign = -1.0 if negate else 1.0
    if a.uses_custom_buckets:
        count = a.count - b.count if negate else a.count + b.count
        total = a.sum - b.sum if negate else a.sum + b.sum
        if a.custom_values == b.custom_values:
            pairs = _add_pairs(a.positive(), b.positive(), sign, None)
            spans, buckets = collapse(pairs)
            res = replace(
                a,
                count=count,
                sum=total,
                positive_spans=spans,
                positive_buckets=buckets,
                hint=hint,
            )
            return OpResult(res, collision, False)
        common = intersect_bounds(a.custom_values, b.custom_values)
        spans, buckets = _map_to_bounds(a, b, common, sign)
        res = replace(
            a,
            count=count,
            sum=total,
            positive_spans=spans,
            positive_buckets=buckets,
            custom_values=common,
            hint=hint,
        )
        return OpResult(res, collision, True)

    a, other_zero = _reconcile_zero_buckets(a, b)
    zero_count = a.zero_count - other_zero if negate else a.zero_count + other_zero
    count = a.count - b.count if negate else a.count + b.count
    total = a.sum - b.sum if negate else a.sum + b.sum
    schema = min(a.schema, b.schema)
    a_pos = reduce_pairs(a.positive(), a.schema, schema)
    a_neg = reduce_pairs(a.negative(), a.schema, schema)
    b_pos = reduce_pairs(b.positive(), b.schema, schema)
    b_neg = reduce_pairs(b.negative(), b.schema, schema)
    threshold = (schema, a.zero_threshold)
    pos_spans, pos = collapse(_add_pairs(a_pos, b_pos, sign, threshold))
    neg_spans, neg = collapse(_add_pairs(a_neg, b_neg, sign, threshold))
    res = replace(
        a,
        schema=schema,
        zero_count=zero_count,
        count=count,
        sum=total,
        positive_spans=pos_spans,
        positive_buckets=pos,
        negative_spans=neg_spans,
        negative_buckets=neg,
        hint=hint,
    )
    return OpResult(res, collision, False)


def combined_hint(mine: Hint, other: Hint) -> tuple[Hint, bool]:
    """``adjustCounterReset``: gauge wins, then unknown; reset vs not-reset collides."""
    if mine == other:
        return mine, False
    if Hint.GAUGE in (mine, other):
        return Hint.GAUGE, False
    if Hint.UNKNOWN in (mine, other):
        return Hint.UNKNOWN, False
    return Hint.UNKNOWN, True


def _add_pairs(a: Pairs, b: Pairs, sign: float, threshold: tuple[int, float] | None) -> Pairs:
    """The buckets of a plus (or minus) those of b; for exponential schemas, b's leading
    buckets whose upper bound is at or below the zero threshold are already counted in the
    zero bucket."""
    out = dict(a)
    leading = threshold is not None and is_exponential(threshold[0])
    for idx, c in b:
        if leading and threshold is not None:
            if exponential_bound(idx, threshold[0]) <= threshold[1]:
                continue
            leading = False
        v = c * sign
        out[idx] = out[idx] + v if idx in out else v
    return sorted(out.items())


def intersect_bounds(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
    """The custom bounds both histograms have (``intersectCustomBucketBounds``)."""
    common = set(b)
    return tuple(v for v in a if v in common)


def _map_to_bounds(
    a: FloatHistogram, b: FloatHistogram, bounds: tuple[float, ...], sign: float
) -> tuple[tuple[Span, ...], tuple[float, ...]]:
    """Both histograms' buckets summed into the buckets of ``bounds`` (each bucket goes to the
    first common bound at or above its own upper bound); empty results are left out
    (``addCustomBucketsWithMismatches``)."""
    target = [0.0] * (len(bounds) + 1)
    for h, s in ((a, 1.0), (b, sign)):
        for idx, c in h.positive():
            t = target_bucket(bounds, h.custom_values, idx)
            target[t] += c * s
    return collapse([(i, c) for i, c in enumerate(target) if c != 0])


def target_bucket(bounds: tuple[float, ...], own: tuple[float, ...], idx: int) -> int:
    if idx >= len(own):
        return len(bounds)
    upper = own[idx]
    for i, v in enumerate(bounds):
        if v >= upper:
            return i
    return len(bounds)


def reduce_pairs(pairs: Pairs, origin: int, target: int) -> Pairs:
    """Merge buckets of schema ``origin`` into the coarser ``target`` schema."""
    if origin == target:
        return pairs
    out: Pairs = []
    for idx, c in pairs:
        t = target_index(idx, origin, target)
        if out and out[-1][0] == t:
            out[-1] = (t, out[-1][1] + c)
        else:
            out.append((t, c))
    return out


def reduce_resolution(h: FloatHistogram, target_schema: int) -> FloatHistogram:
    """The same histogram in the coarser exponential ``target_schema``."""
    if h.uses_custom_buckets:
        raise ValueError("cannot reduce resolution when there are custom buckets")
    if not is_exponential(target_schema):
        raise ValueError(f"cannot reduce resolution to schema {target_schema}")
    if target_schema >= h.schema:
        raise ValueError(f"cannot reduce resolution from schema {h.schema} to {target_schema}")
    pos_spans, pos = collapse(reduce_pairs(h.positive(), h.schema, target_schema))
    neg_spans, neg = collapse(reduce_pairs(h.negative(), h.schema, target_schema))
    return replace(
        h,
        schema=target_schema,
        positive_spans=pos_spans,
        positive_buckets=pos,
        negative_spans=neg_spans,
        negative_buckets=neg,
    )


def compact(h: FloatHistogram, max_empty_buckets: int = 0) -> FloatHistogram:
    """Drop empty buckets at the edges of spans and runs of more than ``max_empty_buckets``
    empty ones inside, then join spans at most that far apart (``Compact``)."""
    pos_spans, pos = _compact_side(h.positive(), max_empty_buckets)
    neg_spans, neg = _compact_side(h.negative(), max_empty_buckets)
    return replace(
        h,
        positive_spans=pos_spans,
        positive_buckets=pos,
        negative_spans=neg_spans,
        negative_buckets=neg,
    )


def _compact_side(pairs: Pairs, max_empty: int) -> tuple[tuple[Span, ...], tuple[float, ...]]:
    # Runs of consecutive indices are the spans; within each keep the part from the first to
    # the last populated bucket, minus inner runs of empties longer than max_empty.
    kept: Pairs = []
    run: Pairs = []

    def flush() -> None:
        live = [k for k, (_, c) in enumerate(run) if c != 0]
        if not live:
            return
        body = run[live[0] : live[-1] + 1]
        empties: Pairs = []
        for idx, c in body:
            if c == 0:
                empties.append((idx, c))
                continue
            if len(empties) <= max_empty:
                kept.extend(empties)
            empties = []
            kept.append((idx, c))

    for idx, c in pairs:
        if run and idx != run[-1][0] + 1:
            flush()
            run = []
        run.append((idx, c))
    flush()
    if max_empty > 0:
        filled: Pairs = []
        for idx, c in kept:
            if filled and 1 < idx - filled[-1][0] <= max_empty + 1:
                filled.extend((j, 0.0) for j in range(filled[-1][0] + 1, idx))
            filled.append((idx, c))
        kept = filled
    return collapse(kept)


def _zero_count_for_larger_threshold(h: FloatHistogram, larger: float) -> tuple[float, float]:
    """What h's zero count would be with a zero threshold of ``larger``, and the threshold
    actually needed: moved up to the edge of a populated bucket it would cut in two."""
    if larger == h.zero_threshold:
        return h.zero_count, larger
    if larger < h.zero_threshold:
        raise ValueError(
            f"new threshold {larger:f} is less than old threshold {h.zero_threshold:f}"
        )
    while True:
        zero = h.zero_count
        for idx, c in h.positive():
            b = h.bucket(idx, c, True)
            if b.lower >= larger:
                break
            zero += c
            if b.upper > larger:
                if c != 0:
                    larger = b.upper
                break
        again = False
        for idx, c in h.negative():
            b = h.bucket(idx, c, False)
            if b.upper <= -larger:
                break
            zero += c
            if b.lower < -larger:
                if c != 0:
                    larger = -b.lower
                    again = True
                break
        if not again:
            return zero, larger


def _trim_buckets_in_zero_bucket(h: FloatHistogram) -> FloatHistogram:
    z = h.zero_threshold
    pos = h.positive()
    for k, (idx, c) in enumerate(pos):
        if h.bucket(idx, c, True).lower >= z:
            break
        pos[k] = (idx, 0.0)
    neg = h.negative()
    for k, (idx, c) in enumerate(neg):
        if h.bucket(idx, c, False).upper <= -z:
            break
        neg[k] = (idx, 0.0)
    pos_spans, pos_b = collapse(pos)
    neg_spans, neg_b = collapse(neg)
    trimmed = replace(
        h,
        positive_spans=pos_spans,
        positive_buckets=pos_b,
        negative_spans=neg_spans,
        negative_buckets=neg_b,
    )
    return compact(trimmed, 0)


def _reconcile_zero_buckets(
    h: FloatHistogram, other: FloatHistogram
) -> tuple[FloatHistogram, float]:
    """Widen h's zero bucket (and, virtually, other's) until both share one threshold that
    cuts no populated bucket; returns the widened h and other's zero count at it."""
    other_zero, other_threshold = other.zero_count, other.zero_threshold
    while other_threshold != h.zero_threshold:
        if h.zero_threshold > other_threshold:
            other_zero, other_threshold = _zero_count_for_larger_threshold(other, h.zero_threshold)
        if other_threshold > h.zero_threshold:
            zero, threshold = _zero_count_for_larger_threshold(h, other_threshold)
            h = _trim_buckets_in_zero_bucket(replace(h, zero_count=zero, zero_threshold=threshold))
    return h, other_zero


def detect_reset(current: FloatHistogram, previous: FloatHistogram) -> bool:
    """Whether ``current`` follows a counter reset after ``previous`` (``DetectReset``): the
    hint decides if it says reset or not-reset; otherwise any count that went down, a bucket
    that vanished while populated, a finer schema or a narrower zero bucket is a reset."""
    if current.hint == Hint.RESET:
        return True
    if current.hint == Hint.NOT_RESET:
        return False
    if current.count < previous.count:
        return True
    if current.uses_custom_buckets:
        if not previous.uses_custom_buckets:
            return True
        if current.custom_values != previous.custom_values:
            return _reset_with_mismatched_bounds(current, previous)
    if current.schema > previous.schema:
        return True
    if current.zero_threshold < previous.zero_threshold:
        return True
    prev_zero, threshold = _zero_count_for_larger_threshold(previous, current.zero_threshold)
    if threshold != current.zero_threshold:
        return True
    if current.zero_count < prev_zero:
        return True
    for positive in (True, False):
        start = current.zero_threshold
        curr_pairs = _buckets_from(current, positive, current.schema, start)
        prev_pairs = _buckets_from(previous, positive, current.schema, start)
        curr = dict(curr_pairs)
        for idx, c in prev_pairs:
            if idx not in curr:
                if c != 0:
                    return True
            elif curr[idx] < c:
                return True
    return False


def _buckets_from(h: FloatHistogram, positive: bool, schema: int, start: float) -> Pairs:
    """The buckets of one sign of h merged into ``schema``, without the leading ones whose
    upper bound is at or below ``start`` (``floatBucketIterator`` with ``absoluteStartValue``)."""
    pairs = reduce_pairs(h.positive() if positive else h.negative(), h.schema, schema)
    if start == 0 or not is_exponential(schema):
        return pairs
    k = 0
    while k < len(pairs) and exponential_bound(pairs[k][0], schema) <= start:
        k += 1
    return pairs[k:]


def _reset_with_mismatched_bounds(current: FloatHistogram, previous: FloatHistogram) -> bool:
    """Custom bounds differ: compare the counts summed up to each bound both share."""
    common = intersect_bounds(current.custom_values, previous.custom_values)
    sums: list[list[float]] = []
    for h in (current, previous):
        groups = [0.0] * (len(common) + 1)
        for idx, c in h.positive():
            groups[target_bucket(common, h.custom_values, idx)] += c
        sums.append(groups)
    return any(c < p for c, p in zip(sums[0], sums[1]))


def _spans_normalized(spans: tuple[Span, ...]) -> list[Span]:
    """Zero-length spans folded into the next span's offset (``spansMatch``)."""
    out: list[Span] = []
    carry = 0
    for s in spans:
        if s.length == 0:
            carry += s.offset
            continue
        out.append(Span(s.offset + carry, s.length))
        carry = 0
    return out


def equals(a: FloatHistogram, b: FloatHistogram) -> bool:
    """Exact equality (``FloatHistogram.Equals``): same layout, counts and sum bit for bit;
    the hint is not compared."""
    if a.schema != b.schema or not same_bits(a.count, b.count) or not same_bits(a.sum, b.sum):
        return False
    if a.uses_custom_buckets and a.custom_values != b.custom_values:
        return False
    if a.zero_threshold != b.zero_threshold or not same_bits(a.zero_count, b.zero_count):
        return False
    for sa, ba, sb, bb in (
        (a.negative_spans, a.negative_buckets, b.negative_spans, b.negative_buckets),
        (a.positive_spans, a.positive_buckets, b.positive_spans, b.positive_buckets),
    ):
        if _spans_normalized(sa) != _spans_normalized(sb):
            return False
        if len(ba) != len(bb) or not all(same_bits(x, y) for x, y in zip(ba, bb)):
            return False
    return True


def almost_equal(a: float, b: float, epsilon: float = 1e-6) -> bool:
    """``util/almost.Equal``: relative tolerance; StaleNaN equals only StaleNaN, NaN NaN."""
    a_stale, b_stale = same_bits(a, STALE_NAN), same_bits(b, STALE_NAN)
    if a_stale or b_stale:
        return a_stale and b_stale
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    min_normal = 2.2250738585072014e-308
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or abs_sum < min_normal:
        return diff < epsilon * min_normal
    return diff / min(abs_sum, 1.7976931348623157e308) < epsilon


def promqltest_equal(expected: FloatHistogram, actual: FloatHistogram, hint_set: bool) -> bool:
    """How promqltest compares an expected histogram with a result
    (``promqltest/test.go`` ``compareNativeHistogram``): both compacted, counts within a
    relative 1e-6, layout and custom bounds exact, the hint only if the test spelled it out."""
    exp, cur = compact(expected, 0), compact(actual, 0)
    if exp.schema != cur.schema:
        return False
    if not almost_equal(exp.count, cur.count) or not almost_equal(exp.sum, cur.sum):
        return False
    if exp.uses_custom_buckets and exp.custom_values != cur.custom_values:
        return False
    if exp.zero_threshold != cur.zero_threshold or not almost_equal(
        exp.zero_count, cur.zero_count
    ):
        return False
    for se, be, sc, bc in (
        (exp.negative_spans, exp.negative_buckets, cur.negative_spans, cur.negative_buckets),
        (exp.positive_spans, exp.positive_buckets, cur.positive_spans, cur.positive_buckets),
    ):
        if _spans_normalized(se) != _spans_normalized(sc):
            return False
        if len(be) != len(bc) or not all(almost_equal(x, y) for x, y in zip(be, bc)):
            return False
    return not hint_set or exp.hint == cur.hint
