"""Reading series from the store and locating each step's window in them, for all steps at once.

All series of a selector are concatenated into flat arrays. Every sample is then placed at the
first step whose window end it does not exceed, and counting samples per (series, step) and
summing the counts along the steps gives, for every series and every step together, the flat
index just past the samples at or before that end: the ``[lo, hi)`` of each window in a few
linear numpy passes, which is what keeps a 10 k series, 151 step range query in numpy instead
of Python loops.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ..labels import Labels
from ..storage import STALE_NAN, SeriesData, stale_mask
from .values import I64, ObjArr

FEW_SERIES = 4
"""Up to this many series, ``Flat.windows`` searches each series' timestamps (two numpy calls
a series) instead of counting all samples against the steps (a dozen calls, whatever the
number of series): the fixed cost that dominated a single-series query."""


class Flat:
    """Samples of many series, back to back, sorted by labels."""

    def __init__(
        self, series: Iterable[SeriesData], *, drop_stale: bool = False, ordered: bool = False
    ) -> None:
        """``ordered``: the caller vouches that ``series`` are in label order, each label set
        once (what ``Querier.select`` returns), which spares comparing neighbouring label
        sets: their long common prefixes made that ~1 us a series."""
        items = list(series)
        labels = [s.labels for s in items]
        if not ordered and any(labels[i] >= labels[i + 1] for i in range(len(labels) - 1)):
            items = _dedupe(sorted(items, key=lambda s: s.labels))
            labels = [s.labels for s in items]
        self.labels: list[Labels] = labels
        counts = np.fromiter((len(s.timestamps) for s in items), dtype=np.int64, count=len(items))
        self.offsets: I64 = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.offsets[1:])
        self.hvals: ObjArr | None = None
        if items:
            self.ts: I64 = np.concatenate([s.timestamps for s in items]).astype(
                np.int64, copy=False
            )
            self.vals = np.concatenate([s.values for s in items]).astype(np.float64, copy=False)
            if any(s.histograms is not None for s in items):
                self.vals = self.vals.copy()  # (one series alone may be the store's own array)
                self.hvals = _hist_column(items, len(self.vals))
                # A histogram stale marker becomes the float one: staleness is one mask.
                stale_h = [i for i, h in enumerate(self.hvals) if h is not None and h.is_stale]
                if stale_h:
                    self.vals[stale_h] = STALE_NAN
                    self.hvals[stale_h] = None
        else:
            self.ts = np.zeros(0, dtype=np.int64)
            self.vals = np.zeros(0, dtype=np.float64)
        if drop_stale and len(self.vals):
            stale = stale_mask(self.vals)
            if stale.any():
                keep = ~stale
                self.ts, self.vals = self.ts[keep], self.vals[keep]
                if self.hvals is not None:
                    self.hvals = self.hvals[keep]
                kept = np.r_[0, np.cumsum(keep)]
                self.offsets = kept[self.offsets].astype(np.int64)

    @classmethod
    def from_arrays(
        cls,
        labels: list[Labels],
        ts: Sequence[np.ndarray],
        vals: Sequence[np.ndarray],
        hvals: Sequence[np.ndarray] | None = None,
    ) -> Flat:
        self = cls(())
        self.labels = list(labels)
        self.ts = np.concatenate(list(ts)) if ts else np.zeros(0, dtype=np.int64)
        self.vals = np.concatenate(list(vals)) if vals else np.zeros(0, dtype=np.float64)
        if hvals is not None and hvals:
            self.hvals = np.concatenate(list(hvals))
        self.offsets = np.zeros(len(labels) + 1, dtype=np.int64)
        if labels:
            np.cumsum([len(t) for t in ts], out=self.offsets[1:])
        return self

    def __len__(self) -> int:
        return len(self.labels)

    def windows(self, ends: I64, width_ms: int) -> tuple[I64, I64]:
        """Per series and step: flat indices ``[lo, hi)`` of samples in ``(end-width, end]``."""
        nser, nsteps = len(self.labels), len(ends)
        if nser == 0 or nsteps == 0:
            z = np.zeros((nser, nsteps), dtype=np.int64)
            return z, z.copy()
        starts = ends - width_ms
        if nser <= FEW_SERIES:
            # Two searches per series beat the counting passes' dozen numpy calls when there
            # are only a few series (a single-series panel), whatever the number of steps.
            return self._windows_searched(ends, starts)
        if nsteps > 1 and not bool((ends[1:] >= ends[:-1]).all()):
            return self._windows_searched(ends, starts)
        step = _even_step(ends)
        shift = width_ms // step if step and width_ms % step == 0 else 0
        if 0 < shift <= nsteps:
            # The width a multiple of the step (5m lookback or rate window at 15s steps): the
            # window starts are the step grid continued ``shift`` steps back, so one count
            # over the extended grid gives both ends of every window.
            grid = np.arange(nsteps + shift, dtype=np.int64) * step + int(starts[0])
            counts = self._upto(grid, step)
            return counts[:, :nsteps], counts[:, shift:]
        return self._upto(starts, step), self._upto(ends, step)

    def _upto(self, bounds: I64, step: int) -> I64:
        """Per series and bound: the flat index just past its last sample with ``t <= bound``
        (``bounds`` ascending; ``step`` their spacing, or 0 if uneven).

        Each sample is placed at the first bound it does not exceed (arithmetic for even
        bounds, else a search of the few bounds), counted per (series, bound), and the counts
        summed along the bounds: linear in samples, where searching the samples once per
        (series, bound) was the dearest part of selecting 10 k series over 150 steps."""
        nser, nb = len(self.labels), len(bounds)
        if step and nb > 1:
            first = -((int(bounds[0]) - self.ts) // step)
            np.clip(first, 0, nb, out=first)
        else:
            first = np.searchsorted(bounds, self.ts, side="left")
        sid = np.repeat(np.arange(nser, dtype=np.int64), np.diff(self.offsets))
        cell = sid * (nb + 1) + first
        counts = np.bincount(cell, minlength=nser * (nb + 1)).reshape(nser, nb + 1)
        out = np.cumsum(counts[:, :nb], axis=1, dtype=np.int64)
        out += self.offsets[:-1, None]
        return out

    def _windows_searched(self, ends: I64, starts: I64) -> tuple[I64, I64]:
        """``windows`` by searching each series' timestamps for the steps' bounds: for
        unordered ends, and for few series (``FEW_SERIES``)."""
        nser, nsteps = len(self.labels), len(ends)
        lo = np.empty((nser, nsteps), dtype=np.int64)
        hi = np.empty((nser, nsteps), dtype=np.int64)
        for i in range(nser):
            a, b = int(self.offsets[i]), int(self.offsets[i + 1])
            ts = self.ts[a:b]
            hi[i] = a + np.searchsorted(ts, ends, side="right")
            lo[i] = a + np.searchsorted(ts, starts, side="right")
        return lo, hi


def _hist_column(items: list[SeriesData], total: int) -> ObjArr:
    out = np.full(total, None, dtype=object)
    pos = 0
    for s in items:
        n = len(s.timestamps)
        if s.histograms is not None:
            out[pos : pos + n] = s.histograms
        pos += n
    return out


def _even_step(ends: I64) -> int:
    """The spacing of ``ends`` when they are evenly spaced by a positive step, else 0."""
    if len(ends) < 2:
        return 0
    step = int(ends[1] - ends[0])
    if step <= 0 or not bool((np.diff(ends) == step).all()):
        return 0
    return step


def _dedupe(items: list[SeriesData]) -> list[SeriesData]:
    """Merge a series the querier returned twice (it should not): one entry per label set."""
    out: list[SeriesData] = []
    for s in items:
        if out and out[-1].labels == s.labels:
            prev = out[-1]
            ts = np.concatenate([prev.timestamps, s.timestamps])
            vals = np.concatenate([prev.values, s.values])
            order = np.argsort(ts, kind="stable")
            hs = None
            if prev.histograms is not None or s.histograms is not None:
                both = (prev.histograms or [None] * len(prev.timestamps)) + (
                    s.histograms or [None] * len(s.timestamps)
                )
                hs = [both[int(i)] for i in order]
            out[-1] = SeriesData(s.labels, ts[order], vals[order], hs)
        else:
            out.append(s)
    return out


def window_reduce(ufunc: np.ufunc, vals: np.ndarray, lo: I64, hi: I64, empty: float) -> np.ndarray:
    """``ufunc.reduce(vals[lo:hi])`` for every window (``empty`` where the window is empty)."""
    shape = lo.shape
    lo_f, hi_f = lo.ravel(), hi.ravel()
    out = np.full(lo_f.shape, empty, dtype=np.float64)
    nonempty = hi_f > lo_f
    if not nonempty.any():
        return out.reshape(shape)
    ext = np.concatenate([vals, np.zeros(1, dtype=vals.dtype)])
    idx = np.empty(2 * int(nonempty.sum()), dtype=np.int64)
    idx[0::2] = lo_f[nonempty]
    idx[1::2] = hi_f[nonempty]
    out[nonempty] = ufunc.reduceat(ext, idx)[0::2]
    return out.reshape(shape)
