"""The increase of a run of histograms, the core of ``rate``/``increase``/``delta`` on native
histograms (``promql/functions.go`` ``histogramRate``, without start timestamps).

The engine scales the result exactly as it scales a float increase (extrapolation, division
by the range for ``rate``); ``mul``/``div`` of ``ops`` do that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .model import FloatHistogram, Hint, IncompatibleSchemaError, collapse
from .notes import Note
from .ops import add, compact, detect_reset, reduce_pairs, sub


def _to_schema(h: FloatHistogram, schema: int) -> FloatHistogram:
    """``CopyToSchema``: h at the coarser ``schema`` (h itself if already there)."""
    if schema == h.schema:
        return h
    pos_spans, pos = collapse(reduce_pairs(h.positive(), h.schema, schema))
    neg_spans, neg = collapse(reduce_pairs(h.negative(), h.schema, schema))
    return FloatHistogram(
        schema=schema,
        count=h.count,
        sum=h.sum,
        zero_threshold=h.zero_threshold,
        zero_count=h.zero_count,
        positive_spans=pos_spans,
        positive_buckets=pos,
        negative_spans=neg_spans,
        negative_buckets=neg,
    )


def histogram_increase(
    points: Sequence[FloatHistogram], is_counter: bool
) -> tuple[FloatHistogram | None, frozenset[Note]]:
    """Last minus first of at least two histograms; for counters, each counter reset adds
    the value before it back. None when the run mixes exponential and custom buckets.

    The result is a gauge histogram, compacted. Notes: a gauge histogram given to a counter
    function (NOT_COUNTER), a counter given to ``delta`` (NOT_GAUGE), mixed schemas, custom
    bounds reconciled.
    """
    if len(points) < 2:
        raise ValueError("an increase needs at least two histograms")
    notes: set[Note] = set()
    prev = points[0]
    last = points[-1]
    custom = prev.uses_custom_buckets
    if is_counter and Hint.GAUGE in (prev.hint, last.hint):
        notes.add(Note.NOT_COUNTER)
    if is_counter and detect_reset(points[1], prev):
        # Reset between the first two: the first sample's layout is irrelevant.
        second = points[1]
        prev = FloatHistogram(schema=second.schema, custom_values=second.custom_values)
        custom = second.uses_custom_buckets
    if last.uses_custom_buckets != custom:
        return None, frozenset({*notes, Note.MIXED_EXPONENTIAL_CUSTOM})
    min_schema = min(last.schema, prev.schema)
    for curr in points[1:-1]:
        if not is_counter:
            continue
        if curr.hint == Hint.GAUGE:
            notes.add(Note.NOT_COUNTER)
        min_schema = min(min_schema, curr.schema)
        if curr.uses_custom_buckets != custom:
            return None, frozenset({Note.MIXED_EXPONENTIAL_CUSTOM})
    h = _to_schema(last, min_schema) if not last.uses_custom_buckets else last
    try:
        h, _, reconciled = sub(h, prev)
    except IncompatibleSchemaError:
        return None, frozenset({Note.MIXED_EXPONENTIAL_CUSTOM})
    if reconciled:
        notes.add(Note.MISMATCHED_CUSTOM_BUCKETS_SUB)
    if is_counter:
        for curr in points[1:]:
            if detect_reset(curr, prev):
                try:
                    h, _, reconciled = add(h, prev)
                except IncompatibleSchemaError:
                    return None, frozenset({Note.MIXED_EXPONENTIAL_CUSTOM})
                if reconciled:
                    notes.add(Note.MISMATCHED_CUSTOM_BUCKETS_ADD)
            prev = curr
    elif points[0].hint != Hint.GAUGE or points[-1].hint != Hint.GAUGE:
        notes.add(Note.NOT_GAUGE)
    return compact(replace(h, hint=Hint.GAUGE), 0), frozenset(notes)


def histogram_instant_delta(
    previous: FloatHistogram, last: FloatHistogram, is_rate: bool
) -> tuple[FloatHistogram | None, frozenset[Note]]:
    """``irate``'s (``is_rate``) or ``idelta``'s difference of the last two histograms, not
    yet divided by the interval (``instantValue``): after a counter reset ``irate`` takes
    the last histogram itself. A gauge hint misused gives NOT_COUNTER (irate) or NOT_GAUGE
    (idelta); mixed schemas give no result."""
    notes: set[Note] = set()
    if is_rate and Hint.GAUGE in (previous.hint, last.hint):
        notes.add(Note.NOT_COUNTER)
    if not is_rate and (previous.hint != Hint.GAUGE or last.hint != Hint.GAUGE):
        notes.add(Note.NOT_GAUGE)
    h = last
    if not is_rate or not detect_reset(last, previous):
        try:
            h, _, reconciled = sub(last, previous)
        except IncompatibleSchemaError:
            return None, frozenset({*notes, Note.MIXED_EXPONENTIAL_CUSTOM})
        if reconciled:
            notes.add(Note.MISMATCHED_CUSTOM_BUCKETS_SUB)
    return compact(replace(h, hint=Hint.GAUGE), 0), frozenset(notes)
