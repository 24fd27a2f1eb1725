"""One series in the in-memory head: its recent samples (Prometheus's ``memSeries``).

Each series keeps its samples in numpy arrays plus a short *tail* for the newest ones: the
common remote-write request carries one sample per series, and appending to a stdlib
``array`` is several times cheaper than a numpy element store. The tail is moved into the
arrays every ``TAIL`` samples and whenever the series is read, so readers (which hold the
store's lock) always see plain arrays. The tail is ``array('q')``/``array('d')`` rather than
lists: 16 bytes a sample instead of a list slot plus a Python int and float (~72 bytes),
about 450 bytes less per series at the average tail of 8 samples, and nothing for the
garbage collector to track.
"""

from __future__ import annotations

import enum
from array import array

import numpy as np
import numpy.typing as npt

from ..histogram.model import FloatHistogram
from ..labels import Labels

_MIN_CAPACITY = 8
_STEP = 128
TAIL = 16
NO_TIMESTAMP = int(np.iinfo(np.int64).min)
_NO_TS = np.empty(0, dtype=np.int64)
_NO_VALUES = np.empty(0, dtype=np.float64)
"""Shared by every new series (never written: the first sample makes arrays of its own),
which saves two numpy allocations per series created."""


class ValueKind(enum.IntEnum):
    """What a series' samples are. Native histograms do not need a kind of their own: they
    sit in the float columns as a marker with the histogram in ``HeadSeries.hists``
    (``histsamples``), so one series can hold both, sample by sample, as in Prometheus."""

    FLOAT = 0


class HeadSeries:
    __slots__ = (
        "first_t",
        "hists",
        "kind",
        "labels",
        "last_t",
        "last_v",
        "n",
        "sid",
        "tail_t",
        "tail_v",
        "ts",
        "values",
    )

    def __init__(self, sid: int, labels: Labels) -> None:
        self.sid = sid
        self.labels = labels
        self.kind = ValueKind.FLOAT
        self.ts: npt.NDArray[np.int64] = _NO_TS
        self.values: npt.NDArray[np.float64] = _NO_VALUES
        self.n = 0
        """Samples in the arrays (the tail comes on top)."""
        self.tail_t = array("q")
        self.tail_v = array("d")
        # Newest sample ever accepted (also after its data moved to a block): the ordering rule.
        self.last_t: int = NO_TIMESTAMP
        self.last_v: float = 0.0
        self.first_t: int = NO_TIMESTAMP
        """Oldest sample in the head, NO_TIMESTAMP when empty."""
        self.hists: dict[int, FloatHistogram] | None = None
        """The histogram of each histogram sample (marked in ``values``) by timestamp; None
        while the series never held one."""

    def __len__(self) -> int:
        return self.n + len(self.tail_t)

    def _reserve(self, need: int) -> None:
        if need <= len(self.ts):
            return
        # Double while small, then grow in steps of _STEP samples: a head series holds up to
        # 1.5 block durations (720 samples at 15 s), and doubling would leave up to half of
        # that capacity unused; the extra copies are a few per series per block.
        cap = max(_MIN_CAPACITY, len(self.ts))
        while cap < need and cap < _STEP:
            cap *= 2
        if cap < need:
            cap = -(-need // _STEP) * _STEP
        ts = np.empty(cap, dtype=np.int64)
        values = np.empty(cap, dtype=np.float64)
        ts[: self.n] = self.ts[: self.n]
        values[: self.n] = self.values[: self.n]
        self.ts, self.values = ts, values

    def flush(self) -> None:
        """Move the tail into the arrays."""
        k = len(self.tail_t)
        if not k:
            return
        n = self.n
        self._reserve(n + k)
        self.ts[n : n + k] = self.tail_t
        self.values[n : n + k] = self.tail_v  # the bits as stored: NaN payloads kept
        self.n = n + k
        self.tail_t = array("q")
        self.tail_v = array("d")

    def append_one(self, t: int, v: float) -> None:
        """The hot path; callers have checked ordering. (Inlined in ``Head.commit``.)"""
        if self.first_t == NO_TIMESTAMP:
            self.first_t = t
        self.tail_t.append(t)
        self.tail_v.append(v)
        self.last_t = t
        self.last_v = v
        if len(self.tail_t) >= TAIL:
            self.flush()

    def append_many(self, ts: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> None:
        k = len(ts)
        if not k:
            return
        self.flush()
        n = self.n
        self._reserve(n + k)
        self.ts[n : n + k] = ts
        self.values[n : n + k] = values
        self.n = n + k
        if self.first_t == NO_TIMESTAMP:
            self.first_t = int(ts[0])
        self.last_t = int(ts[-1])
        self.last_v = float(values[-1])

    def window(
        self, mint: int, maxt: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """A copy of the samples with ``mint <= t <= maxt``."""
        self.flush()
        n = self.n
        ts = self.ts[:n]
        lo = 0 if self.first_t >= mint else int(ts.searchsorted(mint, side="left"))
        hi = n if self.last_t <= maxt else int(ts.searchsorted(maxt, side="right"))
        return ts[lo:hi].copy(), self.values[lo:hi].copy()

    def window_views(
        self, mint: int, maxt: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Views of the samples with ``mint <= t <= maxt``, for a reader that copies them
        anyway (the query engine concatenates all series): a copy per series was a tenth of
        a 10 k series query. They stay valid after the lock is released because samples
        already in the arrays are never written again: appends go past ``n``, and growing
        or dropping old samples makes new arrays."""
        self.flush()
        n = self.n
        ts = self.ts
        lo = 0 if self.first_t >= mint else int(ts[:n].searchsorted(mint, side="left"))
        hi = n if self.last_t <= maxt else int(ts[:n].searchsorted(maxt, side="right"))
        return ts[lo:hi], self.values[lo:hi]

    def value_at(self, t: int) -> float | None:
        """The stored value at exactly ``t``, if any (for recognising a retried write)."""
        self.flush()
        ts = self.ts[: self.n]
        k = int(np.searchsorted(ts, t, side="left"))
        return float(self.values[k]) if k < self.n and int(ts[k]) == t else None

    def sample_before(self, t: int) -> tuple[int, float] | None:
        """The sample just before ``t`` in the head, if any."""
        self.flush()
        k = int(np.searchsorted(self.ts[: self.n], t, side="left"))
        return (int(self.ts[k - 1]), float(self.values[k - 1])) if k else None

    def drop_before(self, t: int) -> None:
        """Forget samples older than ``t`` (they are in a block now)."""
        self.flush()
        ts = self.ts[: self.n]
        k = int(np.searchsorted(ts, t, side="left"))
        if k:
            rest = self.n - k
            self.ts = ts[k:].copy()
            self.values = self.values[k : self.n].copy()
            self.n = rest
            if self.hists:
                self.hists = {ht: h for ht, h in self.hists.items() if ht >= t}
        self.first_t = int(self.ts[0]) if self.n else NO_TIMESTAMP

    def add_histogram(self, t: int, h: FloatHistogram) -> None:
        """The histogram of the sample at ``t`` (its marker goes in the columns as usual)."""
        if self.hists is None:
            self.hists = {}
        self.hists[t] = h

    def histogram_at(self, t: int) -> FloatHistogram | None:
        return self.hists.get(t) if self.hists else None

    def nbytes(self) -> int:
        hist = 200 * len(self.hists) if self.hists else 0  # a rough figure per histogram
        return self.ts.nbytes + self.values.nbytes + 16 * len(self.tail_t) + hist
