"""A tiny in-memory ``Appender`` + ``Querier`` for engine unit tests and as the corpus runner's
fallback when the real store is unavailable (``--memory``). Not for
production use: no persistence, no index.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

import numpy as np

from ...histogram import readback
from ...histogram.model import FloatHistogram
from ...labels import Labels, Matcher, matches_all
from ...storage import (
    AppendResult,
    Exemplar,
    MetricMetadata,
    SeriesBatch,
    SeriesData,
)

TEST_CHUNK_RANGE_MS = 24 * 60 * 60 * 1000
"""Prometheus's test storage (``util/teststorage``) uses one-day blocks, so one-day chunk
ranges: the corpus's expected hints come from it."""


class _Series:
    __slots__ = ("hs", "ts", "vs")

    def __init__(self) -> None:
        self.ts: list[int] = []
        self.vs: list[float] = []
        self.hs: list[FloatHistogram | None] = []

    def put(self, t: int, v: float, h: FloatHistogram | None) -> bool:
        """Store one sample (a later one at the same time replaces it); True if new."""
        ts = self.ts
        if h is not None and (not ts or t > ts[-1]):
            # The hint it reads back with from Prometheus's TSDB (the store's rule too);
            # the corpus's expected hints are written against it.
            h = readback.stored(
                h, t, self.hs[-1] if ts else None, ts[-1] if ts else None, TEST_CHUNK_RANGE_MS
            )
        if not ts or t > ts[-1]:
            ts.append(t)
            self.vs.append(v)
            self.hs.append(h)
            return True
        i = bisect.bisect_left(ts, t)
        if i < len(ts) and ts[i] == t:
            self.vs[i], self.hs[i] = v, h
            return False
        ts.insert(i, t)  # keep sorted (tests may load out of order)
        self.vs.insert(i, v)
        self.hs.insert(i, h)
        return True


class MemoryStore:
    def __init__(self) -> None:
        self._series: dict[Labels, _Series] = {}

    def append(
        self, series: Sequence[SeriesBatch], metadata: Sequence[MetricMetadata] = ()
    ) -> AppendResult:
        res = AppendResult()
        for b in series:
            s = self._series.setdefault(b.labels, _Series())
            hs = b.histograms or [None] * len(b.timestamps)
            for t, v, h in zip(b.timestamps.tolist(), b.values.tolist(), hs):
                if s.put(t, v, h):
                    res.accepted_samples += 1
        return res

    def select(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> Iterable[SeriesData]:
        out = []
        for lb, s in self._series.items():
            if not matches_all(lb, matchers):
                continue
            t = np.asarray(s.ts, dtype=np.int64)
            v = np.asarray(s.vs, dtype=np.float64)
            a, b = int(np.searchsorted(t, mint, "left")), int(np.searchsorted(t, maxt, "right"))
            if b > a:
                hs = s.hs[a:b]
                hist = hs if any(h is not None for h in hs) else None
                out.append(SeriesData(lb, t[a:b], v[a:b], hist))
        out.sort(key=lambda s: s.labels)
        return out

    def label_names(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[str]:
        return sorted({n for s in self.select(matchers, mint, maxt) for n, _ in s.labels})

    def label_values(
        self, name: str, matchers: Sequence[Matcher], mint: int, maxt: int
    ) -> list[str]:
        return sorted(
            {v for s in self.select(matchers, mint, maxt) for n, v in s.labels if n == name}
        )

    def series(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[Labels]:
        return [s.labels for s in self.select(matchers, mint, maxt)]

    def exemplars(
        self, matchers: Sequence[Matcher], mint: int, maxt: int
    ) -> list[tuple[Labels, list[Exemplar]]]:
        return []

    def metadata(self) -> dict[str, list[MetricMetadata]]:
        return {}

    def close(self) -> None:
        self._series.clear()
