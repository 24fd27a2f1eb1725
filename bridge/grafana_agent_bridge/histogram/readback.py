"""The counter-reset hint a stored histogram sample reads back with, as from Prometheus's TSDB.

Prometheus does not keep each sample's hint. It keeps histograms in chunks whose header holds
one hint, and its chunk iterator (``tsdb/chunkenc``: ``counterResetHint``, Prometheus 3.x)
answers: every sample of a gauge chunk is a gauge; the first sample of any other chunk is
``unknown`` (the previous chunk may have been replaced by backfill or out-of-order data, so
even a ``reset`` header is not trusted); every later sample is ``not_reset``, because the
appender cuts a new chunk wherever a counter reset may lie. So what a sample reads back with
depends only on whether it opened a chunk, and the appender opens one when (``head_append.go``
``histogramsAppendPreprocessor``, ``HistogramAppender.appendable``/``appendableGauge``):

- the series has no previous sample, or it was a float (another chunk encoding);
- the previous histogram was a stale marker (only stale markers follow one in a chunk);
- a counter histogram follows a gauge one or a gauge one a counter one;
- the sample is written with the ``reset`` hint, or a reset is detected against the previous
  histogram (a count, the zero bucket or a bucket went down, a populated bucket vanished,
  other custom bucket bounds);
- the schema or the zero threshold changed (Prometheus does not look for a reset then);
- the sample lies in another chunk range (``rangeForTimestamp``: head chunks never straddle a
  multiple of the chunk range, which is the block duration).

Prometheus also cuts a chunk when it has grown past its byte target (about 1 KiB, predicted
from its first quarter); those cuts depend on its chunk encoding's exact sizes and are not
imitated, so a long histogram series here reads ``not_reset`` at a few samples where
Prometheus reads ``unknown``. Both mean the same to PromQL, which looks for resets itself
when the hint is ``unknown``. A stale marker's hint does not matter and is left as written.

The store (head commit and WAL replay, so blocks inherit it) and the in-memory test querier
apply this one rule.
"""

from __future__ import annotations

from operator import lt

from .model import FloatHistogram, Hint
from .ops import detect_reset

DEFAULT_CHUNK_RANGE_MS = 2 * 60 * 60 * 1000
"""Prometheus's default block duration, which is also its head chunk range."""


def opens_chunk(
    h: FloatHistogram,
    t: int,
    prev: FloatHistogram | None,
    prev_t: int | None,
    chunk_range_ms: int,
) -> bool:
    """Whether Prometheus's head appender would start a new chunk for ``h`` at ``t``, after
    the series' previous sample (``prev`` None when it was a float or there was none)."""
    if prev is None or prev_t is None or prev.is_stale:
        return True
    if chunk_range_ms > 0 and t // chunk_range_ms != prev_t // chunk_range_ms:
        return True
    gauge = h.hint == Hint.GAUGE
    if gauge != (prev.hint == Hint.GAUGE):
        return True
    if h.schema != prev.schema or h.zero_threshold != prev.zero_threshold:
        return True
    if h.custom_values != prev.custom_values:
        return True
    if gauge:
        return False
    if h.hint == Hint.RESET:
        return True
    if (
        h.positive_spans == prev.positive_spans
        and h.negative_spans == prev.negative_spans
        and not h.count < prev.count
        and not h.zero_count < prev.zero_count
        and not any(map(lt, h.positive_buckets, prev.positive_buckets))
        and not any(map(lt, h.negative_buckets, prev.negative_buckets))
    ):
        # The usual scrape: the same layout (schema, zero threshold and bounds are equal
        # here), nothing went down. ``detect_reset`` would pair the same bucket indices and
        # find no reset either; anything else takes the full comparison below.
        return False
    # The chunk compares contents only: a written not_reset hint does not hide a reset.
    return detect_reset(with_hint(h, Hint.UNKNOWN), prev)


def with_hint(h: FloatHistogram, hint: Hint) -> FloatHistogram:
    """``h`` with another hint; built field by field because ``dataclasses.replace`` costs
    several times more, and this runs for most histogram samples the store commits."""
    return FloatHistogram(
        h.schema,
        h.count,
        h.sum,
        h.zero_threshold,
        h.zero_count,
        h.positive_spans,
        h.positive_buckets,
        h.negative_spans,
        h.negative_buckets,
        h.custom_values,
        hint,
    )


def stored(
    h: FloatHistogram,
    t: int,
    prev: FloatHistogram | None,
    prev_t: int | None,
    chunk_range_ms: int = DEFAULT_CHUNK_RANGE_MS,
) -> FloatHistogram:
    """``h`` with the hint it reads back with, given the series' previous sample as stored
    (``prev`` None when that was a float or there was none)."""
    if h.is_stale:
        return h
    if h.hint == Hint.GAUGE:
        return h
    hint = Hint.UNKNOWN if opens_chunk(h, t, prev, prev_t, chunk_range_ms) else Hint.NOT_RESET
    return h if hint == h.hint else with_hint(h, hint)
