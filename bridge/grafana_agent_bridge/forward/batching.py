"""Batch building: a feed batch cut into shard parts, a shard part into requests.

Both cuts are deterministic for the same input, which is what makes the exact resume after a
crash possible (see ``sender.py``): the same records give the same shards and the same requests.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..histogram.model import FloatHistogram
from ..labels import Labels
from ..storage import Exemplar, FeedBatch, SeriesBatch, SeriesData

SHARD_CACHE_MAX = 200_000
"""Series whose shard is remembered; past this the cache starts over (hashing is cheap, the
cache only saves re-hashing the same label sets batch after batch)."""


def shard_of(labels: Labels, shards: int) -> int:
    """A series' shard, the same in every process (``hash()`` of a str is salted per process,
    and an exact resume needs the same requests as before the crash)."""
    h = 0
    for name, value in labels:
        h = zlib.crc32(value.encode(), zlib.crc32(name.encode(), h))
    return h % shards


def count_samples(series: Sequence[SeriesData | SeriesBatch]) -> int:
    return sum(len(s.timestamps) for s in series)


def count_exemplars(series: Sequence[SeriesBatch]) -> int:
    return sum(len(s.exemplars) for s in series)


@dataclass
class ShardPart:
    """A shard's share of a feed batch: sample pieces and exemplars, both in feed order."""

    series: list[SeriesData] = field(default_factory=list)
    exemplars: list[tuple[Labels, Exemplar]] = field(default_factory=list)


@dataclass
class Split:
    """A feed batch cut by shard, with what the progress mark and the lag gauge need."""

    parts: dict[int, ShardPart]
    samples: int
    exemplars: int
    min_t: int
    """The oldest timestamp in the batch (ms; 0 when it holds nothing to send)."""


class Sharder:
    """Hashes series to a fixed number of shards and cuts feed batches along them."""

    def __init__(self, shards: int) -> None:
        self.shards = shards
        self._cache: dict[Labels, int] = {}

    def shard(self, labels: Labels) -> int:
        shard = self._cache.get(labels)
        if shard is None:
            if len(self._cache) > SHARD_CACHE_MAX:
                self._cache.clear()
            shard = self._cache[labels] = shard_of(labels, self.shards)
        return shard

    def split(self, batch: FeedBatch) -> Split:
        """Each series' samples and each exemplar to its series' shard, in feed order."""
        parts: dict[int, ShardPart] = {}
        samples = 0
        min_t: int | None = None
        for s in batch.series:
            n = len(s.timestamps)
            if not n:
                continue
            parts.setdefault(self.shard(s.labels), ShardPart()).series.append(s)
            first = int(s.timestamps[0])
            min_t = first if min_t is None else min(min_t, first)
            samples += n
        for labels, ex in batch.exemplars:
            parts.setdefault(self.shard(labels), ShardPart()).exemplars.append((labels, ex))
            min_t = ex.timestamp if min_t is None else min(min_t, ex.timestamp)
        return Split(parts, samples, len(batch.exemplars), min_t or 0)


def plan_requests(
    series: Sequence[SeriesData],
    limit: int,
    exemplars: Sequence[tuple[Labels, Exemplar]] = (),
) -> list[list[SeriesBatch]]:
    """Cut a shard's part of a batch into requests of at most ``limit`` samples + exemplars.

    Deterministic for the same input (an exact resume rebuilds the same requests). Pieces of
    the same series are joined, so a request names each series once, and a series split
    across requests keeps its timestamp order because the requests go one after another.
    A series' exemplars follow its samples (Prometheus keeps an exemplar only for a series it
    already has); a series with exemplars only comes after those with samples.
    """
    merged: dict[Labels, list[SeriesData]] = {}
    for s in series:
        if len(s.timestamps):
            merged.setdefault(s.labels, []).append(s)
    exemplars_of: dict[Labels, list[Exemplar]] = {}
    for labels, ex in exemplars:
        merged.setdefault(labels, [])
        exemplars_of.setdefault(labels, []).append(ex)
    requests: list[list[SeriesBatch]] = []
    current: list[SeriesBatch] = []
    room = limit
    for labels, parts in merged.items():
        hs: list[FloatHistogram | None] | None = None
        if len(parts) == 1:
            ts, vs, hs = parts[0].timestamps, parts[0].values, parts[0].histograms
        elif parts:
            ts = np.concatenate([p.timestamps for p in parts])
            vs = np.concatenate([p.values for p in parts])
            if any(p.histograms is not None for p in parts):
                hs = []
                for p in parts:
                    hs.extend(p.histograms or [None] * len(p.timestamps))
        else:
            ts, vs = np.empty(0, np.int64), np.empty(0, np.float64)
        exs = exemplars_of.get(labels, [])
        n = len(ts)
        total = n + len(exs)
        lo = 0
        while lo < total:  # samples first, then exemplars, as one stream of items
            hi = lo + min(room, total - lo)
            current.append(
                SeriesBatch(
                    labels,
                    ts[lo : min(hi, n)],
                    vs[lo : min(hi, n)],
                    exs[max(lo, n) - n : max(hi, n) - n],
                    histograms=hs[lo : min(hi, n)] if hs is not None else None,
                )
            )
            room -= hi - lo
            lo = hi
            if room == 0:
                requests.append(current)
                current, room = [], limit
    if current:
        requests.append(current)
    return requests
