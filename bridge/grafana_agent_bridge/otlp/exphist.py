"""OTLP exponential histogram points → native histograms (``histogram.FloatHistogram``).

Follows Prometheus 3.x's ``storage/remote/otlptranslator/prometheusremotewrite/histograms.go``
(``exponentialToNativeHistogram`` and ``convertBucketsLayout``):

- the OTLP ``scale`` is the native ``schema``; a scale below -4 cannot be represented (error);
  a scale above 8 is reduced to schema 8 by merging ``2^(scale-8)`` adjacent buckets;
- OTLP bucket ``i`` covers ``(base^i, base^(i+1)]`` and a native bucket ``k`` covers
  ``(base^(k-1), base^k]``, so index ``i`` (after ``>> scaleDown``) becomes ``i + 1``;
- dense OTLP counts become spans: a run of more than two empty buckets starts a new span,
  shorter runs are kept as empty buckets (client_golang's ``makeBuckets`` rule);
- the zero bucket keeps the point's ``zero_count`` with Prometheus's fixed threshold ``1e-128``
  (Prometheus does not read OTLP's ``zero_threshold``);
- the reset hint is "unknown" for cumulative points (always safe) and "gauge" for delta ones;
- ``sum`` only when the point has one; a point flagged ``NoRecordedValue`` is the stale marker.

``translate`` stores these as native histogram samples; a point with no native form is
refused for its real reason.
"""

from __future__ import annotations

from typing import Any

from ..histogram.model import FloatHistogram, Hint, Span, stale_histogram

DEFAULT_ZERO_THRESHOLD = 1e-128
MIN_SCALE = -4
MAX_SCHEMA = 8
NO_RECORDED_VALUE = 1
TEMPORALITY_DELTA = 1


class ConversionError(ValueError):
    """An exponential histogram point that has no native histogram form."""


def buckets_layout(
    counts: list[int], offset: int, scale_down: int
) -> tuple[tuple[Span, ...], tuple[float, ...]]:
    """Dense OTLP counts from ``offset`` → native spans and absolute counts, ``2^scale_down``
    OTLP buckets merged into one (``convertBucketsLayout`` with ``adjustOffset``).

    Each count goes to native bucket ``((offset + i) >> scale_down) + 1``. Between non-empty
    buckets, gaps of up to two empty buckets are written as zeros and longer ones start a new
    span, as Prometheus does; empty buckets before the first and after the last non-empty one
    are left out (the same histogram). Prometheus's loop places a count one bucket too low when
    empty buckets precede it and it is merged with the next one (scale > 8); here every count
    is placed by its own index.
    """
    merged: dict[int, int] = {}
    for i, n in enumerate(counts):
        if n:
            k = ((offset + i) >> scale_down) + 1
            merged[k] = merged.get(k, 0) + n
    if not merged:
        return (), ()
    spans: list[list[int]] = []
    out: list[float] = []
    last = 0
    for k in sorted(merged):
        gap = k - last - 1
        if not spans:
            spans.append([k, 0])
        elif gap > 2:
            spans.append([gap, 0])
        else:
            spans[-1][1] += gap
            out.extend([0.0] * gap)
        spans[-1][1] += 1
        out.append(float(merged[k]))
        last = k
    return tuple(Span(o, n) for o, n in spans), tuple(out)


def to_native(point: Any, temporality: int) -> FloatHistogram:
    """The native histogram of an OTLP ``ExponentialHistogramDataPoint``."""
    scale = int(point.scale)
    if scale < MIN_SCALE:
        raise ConversionError(
            f"cannot convert exponential to native histogram: scale must be >= {MIN_SCALE}, "
            f"was {scale}"
        )
    if point.flags & NO_RECORDED_VALUE:
        return stale_histogram()
    scale_down = max(scale - MAX_SCHEMA, 0)
    pos_spans, pos = buckets_layout(
        list(point.positive.bucket_counts), int(point.positive.offset), scale_down
    )
    neg_spans, neg = buckets_layout(
        list(point.negative.bucket_counts), int(point.negative.offset), scale_down
    )
    return FloatHistogram(
        schema=min(scale, MAX_SCHEMA),
        count=float(point.count),
        sum=point.sum if point.HasField("sum") else 0.0,
        zero_threshold=DEFAULT_ZERO_THRESHOLD,
        zero_count=float(point.zero_count),
        positive_spans=pos_spans,
        positive_buckets=pos,
        negative_spans=neg_spans,
        negative_buckets=neg,
        hint=Hint.GAUGE if temporality == TEMPORALITY_DELTA else Hint.UNKNOWN,
    )
