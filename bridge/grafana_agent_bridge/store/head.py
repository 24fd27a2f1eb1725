"""The in-memory head: the recent samples of each series, in growable numpy arrays.

Appends write into preallocated capacity (doubling when full), so the per-sample cost of the
common one-sample-per-series remote-write request is two array stores. Readers copy the slice
they need while holding the store's lock, so they never see a half-applied append.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..labels import Labels

_MIN_CAPACITY = 8
NO_TIMESTAMP = np.iinfo(np.int64).min


class HeadSeries:
    __slots__ = ("labels", "last_t", "last_v", "n", "sid", "ts", "values")

    def __init__(self, sid: int, labels: Labels) -> None:
        self.sid = sid
        self.labels = labels
        self.ts: npt.NDArray[np.int64] = np.empty(_MIN_CAPACITY, dtype=np.int64)
        self.values: npt.NDArray[np.float64] = np.empty(_MIN_CAPACITY, dtype=np.float64)
        self.n = 0
        # Newest sample ever accepted (also after its data moved to a block): the ordering rule.
        self.last_t: int = int(NO_TIMESTAMP)
        self.last_v: float = 0.0

    @property
    def min_t(self) -> int:
        return int(self.ts[0]) if self.n else int(NO_TIMESTAMP)

    def _grow(self, need: int) -> None:
        cap = max(_MIN_CAPACITY, len(self.ts))
        while cap < need:
            cap *= 2
        ts = np.empty(cap, dtype=np.int64)
        values = np.empty(cap, dtype=np.float64)
        ts[: self.n] = self.ts[: self.n]
        values[: self.n] = self.values[: self.n]
        self.ts, self.values = ts, values

    def append_one(self, t: int, v: float) -> None:
        n = self.n
        if n == len(self.ts):
            self._grow(n + 1)
        self.ts[n] = t
        self.values[n] = v
        self.n = n + 1
        self.last_t = t
        self.last_v = v

    def append_many(self, ts: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> None:
        k = len(ts)
        if not k:
            return
        n = self.n
        if n + k > len(self.ts):
            self._grow(n + k)
        self.ts[n : n + k] = ts
        self.values[n : n + k] = values
        self.n = n + k
        self.last_t = int(ts[-1])
        self.last_v = float(values[-1])

    def window(
        self, mint: int, maxt: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """A copy of the samples with ``mint <= t <= maxt``."""
        ts = self.ts[: self.n]
        lo = int(np.searchsorted(ts, mint, side="left"))
        hi = int(np.searchsorted(ts, maxt, side="right"))
        return ts[lo:hi].copy(), self.values[lo:hi].copy()

    def value_at(self, t: int) -> float | None:
        """The stored value at exactly ``t``, if any (for recognising a retried write)."""
        ts = self.ts[: self.n]
        k = int(np.searchsorted(ts, t, side="left"))
        return float(self.values[k]) if k < self.n and int(ts[k]) == t else None

    def drop_before(self, t: int) -> None:
        """Forget samples older than ``t`` (they are in a block now)."""
        ts = self.ts[: self.n]
        k = int(np.searchsorted(ts, t, side="left"))
        if not k:
            return
        rest = self.n - k
        new_ts = np.empty(max(_MIN_CAPACITY, rest), dtype=np.int64)
        new_values = np.empty(max(_MIN_CAPACITY, rest), dtype=np.float64)
        new_ts[:rest] = ts[k:]
        new_values[:rest] = self.values[k : self.n]
        self.ts, self.values, self.n = new_ts, new_values, rest

    def nbytes(self) -> int:
        return self.ts.nbytes + self.values.nbytes
