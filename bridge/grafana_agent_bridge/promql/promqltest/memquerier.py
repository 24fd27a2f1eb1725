"""A tiny in-memory ``Appender`` + ``Querier`` for engine unit tests and as the corpus runner's
fallback when the real store is unavailable. Not for production use: no persistence, no index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ...labels import Labels, Matcher, matches_all
from ...storage import (
    AppendResult,
    Exemplar,
    MetricMetadata,
    SeriesBatch,
    SeriesData,
)


class MemoryStore:
    def __init__(self) -> None:
        self._series: dict[Labels, tuple[list[int], list[float]]] = {}

    def append(
        self, series: Sequence[SeriesBatch], metadata: Sequence[MetricMetadata] = ()
    ) -> AppendResult:
        res = AppendResult()
        for b in series:
            ts, vs = self._series.setdefault(b.labels, ([], []))
            for t, v in zip(b.timestamps.tolist(), b.values.tolist()):
                if ts and t <= ts[-1]:
                    if t == ts[-1]:
                        vs[-1] = v
                        continue
                    # keep sorted (tests may load out of order)
                    import bisect

                    i = bisect.bisect_left(ts, t)
                    if i < len(ts) and ts[i] == t:
                        vs[i] = v
                    else:
                        ts.insert(i, t)
                        vs.insert(i, v)
                    continue
                ts.append(t)
                vs.append(v)
                res.accepted_samples += 1
        return res

    def select(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> Iterable[SeriesData]:
        out = []
        for lb, (ts, vs) in self._series.items():
            if not matches_all(lb, matchers):
                continue
            t = np.asarray(ts, dtype=np.int64)
            v = np.asarray(vs, dtype=np.float64)
            a, b = np.searchsorted(t, mint, "left"), np.searchsorted(t, maxt, "right")
            if b > a:
                out.append(SeriesData(lb, t[a:b], v[a:b]))
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
