"""Shorthand for building histograms in the histogram tests."""

from __future__ import annotations

from collections.abc import Sequence

from grafana_agent_bridge.histogram.model import FloatHistogram, Hint, Span


def fh(
    *,
    schema: int = 0,
    zt: float = 0.0,
    zc: float = 0.0,
    count: float = 0.0,
    total: float = 0.0,
    pos: Sequence[tuple[int, int]] = (),
    pb: Sequence[float] = (),
    neg: Sequence[tuple[int, int]] = (),
    nb: Sequence[float] = (),
    cv: Sequence[float] = (),
    hint: Hint = Hint.UNKNOWN,
) -> FloatHistogram:
    """A histogram written as Prometheus's Go tests write ``FloatHistogram`` literals."""
    return FloatHistogram(
        schema=schema,
        count=count,
        sum=total,
        zero_threshold=zt,
        zero_count=zc,
        positive_spans=tuple(Span(o, n) for o, n in pos),
        positive_buckets=tuple(float(v) for v in pb),
        negative_spans=tuple(Span(o, n) for o, n in neg),
        negative_buckets=tuple(float(v) for v in nb),
        custom_values=tuple(float(v) for v in cv),
        hint=hint,
    )
