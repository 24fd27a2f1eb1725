"""What ``histogram_count``/``histogram_sum``/``histogram_avg`` see of a selected series
(``promql/histogram_stats_iterator.go``): Prometheus reads such series through a stats
iterator that drops the buckets and, where a sample's counter-reset hint is unknown, sets it
from reset detection against the previous sample of the same read. That is why e.g.
``histogram_count(sum_over_time(x[5m]))`` can warn about conflicting counter resets that the
stored hints do not show.
"""

from __future__ import annotations

from collections.abc import Iterable

from .model import FloatHistogram, Hint
from .ops import detect_reset


def stats_view(points: Iterable[FloatHistogram]) -> list[FloatHistogram]:
    """The samples of one read (the engine starts a new read where Prometheus seeks
    forward, e.g. for each step of an instant selector), stripped to schema, count, sum and
    hint; stale markers pass unchanged and do not count as the previous sample."""
    out: list[FloatHistogram] = []
    last: FloatHistogram | None = None
    for h in points:
        stripped = FloatHistogram(schema=h.schema, count=h.count, sum=h.sum, hint=h.hint)
        if h.is_stale:
            out.append(stripped)
            continue
        hint = h.hint
        if hint == Hint.UNKNOWN and last is not None:
            hint = Hint.RESET if detect_reset(h, last) else Hint.NOT_RESET
        out.append(FloatHistogram(schema=h.schema, count=h.count, sum=h.sum, hint=hint))
        last = FloatHistogram(
            schema=h.schema,
            count=h.count,
            sum=h.sum,
            zero_threshold=h.zero_threshold,
            zero_count=h.zero_count,
            positive_spans=h.positive_spans,
            positive_buckets=h.positive_buckets,
            negative_spans=h.negative_spans,
            negative_buckets=h.negative_buckets,
            custom_values=h.custom_values,
            hint=hint,
        )
    return out
