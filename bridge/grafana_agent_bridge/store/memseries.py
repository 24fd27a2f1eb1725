"""One series in the in-memory head: its recent samples (Prometheus's ``memSeries``).

Each series keeps its samples in two columns plus a short *tail* for the newest ones: the
common remote-write request carries one sample per series, and appending to a stdlib
``array`` is several times cheaper than a numpy element store. The tail is moved into the
columns every ``TAIL`` samples and whenever the series is read, so readers (which hold the
store's lock) always see the columns. The tail is ``array('q')``/``array('d')`` rather than
lists: 16 bytes a sample instead of a list slot plus a Python int and float (~72 bytes), and
nothing for the garbage collector to track.

The columns cost nothing per sample in the common case and at most 12 bytes otherwise
(docs/store.md, "What a head series costs in memory"):

- timestamps: a scraped target's samples come at a fixed interval (Prometheus aligns its scrape
  timestamps), so while a series' timestamps are ``first_t + i * step`` they are that formula
  and no array; the first sample off it makes an array of offsets from ``first_t`` (int32: a
  head spans hours, not the 24 days that would overflow it, else int64).
- values: two thirds of node_exporter's series hold one value for hours (sizes, info metrics,
  idle counters), so while every value has the same bits as the first they are that one value
  (a one-element array: ``repeat`` makes a reader's column from it in a third of a
  microsecond); the first other value makes a float64 array.

Readers get fresh int64/float64 arrays built from the formula (one numpy call each) or views of
the arrays, which are never written below ``n`` once filled: appends go past it, and widening,
leaving the formula or dropping old samples makes new arrays.
"""

from __future__ import annotations

import enum
import math
from array import array
from bisect import bisect_left

import numpy as np
import numpy.typing as npt

from ..histogram.model import FloatHistogram
from ..labels import Labels

_MIN_CAPACITY = 8
_STEP = 128
TAIL = 16
NO_TIMESTAMP = int(np.iinfo(np.int64).min)
_I32_MAX = 2**31 - 1
_I64 = npt.NDArray[np.int64]
_F64 = npt.NDArray[np.float64]
_Offsets = npt.NDArray[np.int32] | npt.NDArray[np.int64]


class ValueKind(enum.IntEnum):
    """What a series' samples are. Native histograms do not need a kind of their own: they
    sit in the float columns as a marker with the histogram in ``HeadSeries.hists``
    (``histsamples``), so one series can hold both, sample by sample, as in Prometheus."""

    FLOAT = 0


def _capacity(have: int, need: int) -> int:
    """Double while small, then grow in steps of _STEP samples: a head series holds up to 1.5
    block durations (720 samples at 15 s), and doubling would leave up to half of that
    capacity unused; the extra copies are a few per series per block."""
    cap = max(_MIN_CAPACITY, have)
    while cap < need and cap < _STEP:
        cap *= 2
    if cap < need:
        cap = -(-need // _STEP) * _STEP
    return cap


_NO_TIMES = array("q")
_NO_VALUES = array("d")
"""Never changed: a new series' tail starts as a copy of these (cheaper than ``array()``)."""


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
        "step",
        "tail_t",
        "tail_v",
        "toff",
        "vcol",
        "vone",
    )

    def __init__(self, sid: int, labels: Labels) -> None:
        self.sid = sid
        self.labels = labels
        self.kind = ValueKind.FLOAT
        self.n = 0
        """Samples in the columns (the tail comes on top)."""
        self.step = 0
        """While ``toff`` is None, the column's timestamps are ``first_t + i * step``."""
        self.toff: _Offsets | None = None
        """Timestamps as offsets from ``first_t`` (capacity >= n), once off the formula."""
        self.vone: _F64 | None = None
        """While ``vcol`` is None (and n > 0), the value every sample in the column has."""
        self.vcol: _F64 | None = None
        """The values (capacity >= n), once they differ."""
        self.tail_t = _NO_TIMES.__copy__()
        self.tail_v = _NO_VALUES.__copy__()
        # Newest sample ever accepted (also after its data moved to a block): the ordering rule.
        self.last_t: int = NO_TIMESTAMP
        self.last_v: float = 0.0
        self.first_t: int = NO_TIMESTAMP
        """Oldest sample in the head (the columns' first, or the tail's while they are empty),
        NO_TIMESTAMP when empty."""
        self.hists: dict[int, FloatHistogram] | None = None
        """The histogram of each histogram sample (marked in the values) by timestamp; None
        while the series never held one."""

    def __len__(self) -> int:
        return self.n + len(self.tail_t)

    # -- appends -----------------------------------------------------------------------------

    def flush(self) -> None:
        """Move the tail into the columns."""
        tt = self.tail_t
        k = len(tt)
        if not k:
            return
        tv = self.tail_v
        n = self.n
        first = self.first_t if n else tt[0]
        # Both checks in pure-Python array compares (about 1 us for 16 samples): in the common
        # case the tail continues the formula and repeats the value, and nothing is written.
        step = -1
        if self.toff is None:
            s = self.step if n > 1 else (tt[0] - first if n else tt[1] - tt[0] if k > 1 else 0)
            start = first + n * s
            if n + k == 1 or (
                s > 0 and tt[0] == start and tt == array("q", range(start, start + k * s, s))
            ):
                step = s
        vone = self.vone
        same = False
        if self.vcol is None:
            if vone is None:  # (exactly when the column is empty)
                vone = np.array(tv[:1], dtype=np.float64)
            same = tv.tobytes() == vone.tobytes() * k  # bits: NaN payloads, -0.0
        if step >= 0 and same:
            self.step, self.vone, self.first_t, self.n = step, vone, first, n + k
        else:
            tsa = np.frombuffer(tt, dtype=np.int64)
            self._put(
                tsa, np.frombuffer(tv, dtype=np.float64), first, step, vone if same else None
            )
        self.tail_t = array("q")
        self.tail_v = array("d")

    def _extend(self, ts: _I64, values: _F64) -> None:
        """Append samples (ascending, after the column's) to the columns."""
        k = len(ts)
        n = self.n
        first = self.first_t if n else int(ts[0])
        step = -1
        if self.toff is None:
            s = (
                self.step
                if n > 1
                else (int(ts[0]) - first if n else int(ts[1] - ts[0]) if k > 1 else 0)
            )
            start = first + n * s
            if n + k == 1 or (
                s > 0 and np.array_equal(ts, np.arange(start, start + k * s, s, dtype=np.int64))
            ):
                step = s
        vone = self.vone
        same = False
        if self.vcol is None:
            if vone is None:
                vone = values[:1].copy()
            same = bool((values.view(np.uint64) == vone.view(np.uint64)).all())
        self._put(ts, values, first, step, vone if same else None)

    def _put(self, ts: _I64, values: _F64, first: int, step: int, vone: _F64 | None) -> None:
        """Write ``ts``/``values`` after the columns' ``n`` samples. ``step`` >= 0: they follow
        the timestamp formula with it (else an offsets array is made or extended); ``vone``:
        they all have that value (else a values array)."""
        n = self.n
        end = n + len(ts)
        toff = self.toff
        if step >= 0:
            self.step = step
        else:
            span = int(ts[-1]) - first
            if toff is None:
                toff = self._offsets(0, end, span)
                s = self.step
                toff[:n] = np.arange(0, n * s, s, dtype=np.int64) if s and n else 0
            elif end > len(toff) or (toff.itemsize == 4 and span > _I32_MAX):
                old = toff
                toff = self._offsets(len(old), end, span)
                toff[:n] = old[:n]
            np.subtract(ts, first, out=toff[n:end], casting="unsafe")
            self.toff = toff
        if vone is not None:
            self.vone = vone
        else:
            vcol = self.vcol
            if vcol is None:
                vcol = np.empty(_capacity(0, end), dtype=np.float64)
                if n and self.vone is not None:
                    vcol.view(np.uint64)[:n] = self.vone.view(np.uint64)  # bits, not arithmetic
                self.vone = None
            elif end > len(vcol):
                old_v = vcol
                vcol = np.empty(_capacity(len(old_v), end), dtype=np.float64)
                vcol[:n] = old_v[:n]
            vcol[n:end] = values  # the bits as stored: NaN payloads kept
            self.vcol = vcol
        self.first_t = first
        self.n = end

    @staticmethod
    def _offsets(have: int, need: int, span: int) -> _Offsets:
        cap = _capacity(have, need)
        return np.empty(cap, dtype=np.int32) if span <= _I32_MAX else np.empty(cap, np.int64)

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

    def append_many(self, ts: _I64, values: _F64) -> None:
        if not len(ts):
            return
        self.flush()
        self._extend(ts, values)
        self.last_t = int(ts[-1])
        self.last_v = float(values[-1])

    # -- reads -------------------------------------------------------------------------------

    def _index(self, t: int, *, right: bool) -> int:
        """Position in the columns of the first sample after ``t`` (``right``) or at or after
        it: ``searchsorted``."""
        n = self.n
        off = t - self.first_t
        if off < 0:
            return 0
        toff = self.toff
        if toff is None:
            step = self.step
            if not step:
                return n if off > 0 or right else 0
            return min(off // step + 1 if right else -(-off // step), n)
        if off > _I32_MAX and toff.itemsize == 4:
            return n
        return int(toff[:n].searchsorted(off, side="right" if right else "left"))

    def _times(self, lo: int, hi: int) -> _I64:
        toff = self.toff
        if toff is None:
            step = self.step
            t0 = self.first_t
            if not step:
                return np.full(hi - lo, t0, dtype=np.int64)
            return np.arange(t0 + lo * step, t0 + hi * step, step, dtype=np.int64)
        return np.add(toff[lo:hi], self.first_t, dtype=np.int64)

    def _values(self, lo: int, hi: int) -> _F64:
        vcol = self.vcol
        if vcol is not None:
            return vcol[lo:hi]
        vone = self.vone
        return vone.repeat(hi - lo) if vone is not None else np.empty(0, dtype=np.float64)

    def columns(self) -> tuple[_I64, _F64]:
        """All samples, as views or fresh arrays (do not write into them)."""
        self.flush()
        return self._times(0, self.n), self._values(0, self.n)

    def window(self, mint: int, maxt: int) -> tuple[_I64, _F64]:
        """A copy of the samples with ``mint <= t <= maxt``."""
        t, v = self.window_views(mint, maxt)
        return t, v.copy() if self.vcol is not None else v

    def window_views(
        self, mint: int, maxt: int, shared: dict[tuple[int, int, int], _I64] | None = None
    ) -> tuple[_I64, _F64]:
        """The samples with ``mint <= t <= maxt``, for a reader that copies them anyway (the
        query engine concatenates all series): views of the columns where they are arrays (a
        copy per series was a tenth of a 10 k series query), fresh arrays where they are a
        formula. The views stay valid after the lock is released (see the module doc). Runs
        once per series of every query, so the formula case is written out here.

        ``shared``: a cache, one per query, of formula timestamps by (start, count, step):
        the series of one target are scraped together, so they share one read-only array
        instead of an ``arange`` each (~0.75 us a series)."""
        if self.tail_t:
            self.flush()
        step = self.step
        if step and self.toff is None:
            n = self.n
            first = self.first_t
            lo = 0 if first >= mint else min(-(-(mint - first) // step), n)
            hi = n if self.last_t <= maxt else max(lo, min((maxt - first) // step + 1, n))
            start = first + lo * step
            if shared is None:
                t = np.arange(start, first + hi * step, step, dtype=np.int64)
            else:
                key = (start, hi - lo, step)
                t = shared.get(key)  # type: ignore[assignment]
                if t is None:
                    t = np.arange(start, first + hi * step, step, dtype=np.int64)
                    t.flags.writeable = False
                    shared[key] = t
            return t, self._values(lo, hi)
        toff = self.toff
        first = self.first_t
        if toff is not None and (toff.itemsize == 8 or maxt - first <= _I32_MAX):
            # Offsets, written out: one slice and one search at most (no call to _index).
            n = self.n
            w = toff[:n]
            lo = 0 if first >= mint else int(w.searchsorted(mint - first))
            hi = n if self.last_t <= maxt else max(lo, int(w.searchsorted(maxt - first, "right")))
            return np.add(w[lo:hi], first, dtype=np.int64), self._values(lo, hi)
        lo = 0 if self.first_t >= mint else self._index(mint, right=False)
        hi = self.n if self.last_t <= maxt else max(lo, self._index(maxt, right=True))
        return self._times(lo, hi), self._values(lo, hi)

    def _sample(self, i: int) -> tuple[int, float]:
        toff = self.toff
        t = self.first_t + (int(toff[i]) if toff is not None else i * self.step)
        vcol, vone = self.vcol, self.vone
        if vcol is not None:
            return t, float(vcol[i])
        return t, float(vone[0]) if vone is not None else math.nan

    def value_at(self, t: int) -> float | None:
        """The stored value at exactly ``t``, if any (for recognising a retried write)."""
        self.flush()
        k = self._index(t, right=False)
        if k < self.n:
            st, v = self._sample(k)
            if st == t:
                return v
        return None

    def sample_before(self, t: int) -> tuple[int, float] | None:
        """The sample just before ``t`` in the head, if any.

        Without a flush: every histogram commit asks this of the sample it just put in the
        tail, and flushing for it moved each sample into the columns on its own."""
        tail = self.tail_t
        if tail:
            k = bisect_left(tail, t)
            if k:
                return tail[k - 1], self.tail_v[k - 1]
        # Everything in the columns is older than the tail: the answer is there, if anywhere.
        k = self._index(t, right=False)
        return self._sample(k - 1) if k else None

    # -- truncation --------------------------------------------------------------------------

    def drop_before(self, t: int) -> None:
        """Forget samples older than ``t`` (they are in a block now). What is left is encoded
        afresh, so a series back on its interval or its value sheds its arrays, and the
        arrays lose their growth slack."""
        self.flush()
        k = self._index(t, right=False)
        if k:
            n = self.n
            if self.toff is None and self.vcol is None:
                self.first_t += k * self.step  # formulas only: nothing to copy
                self.n = n - k
            else:
                ts, values = self._times(k, n), self._values(k, n)
                self.n, self.step, self.toff, self.vcol, self.vone = 0, 0, None, None, None
                if len(ts):
                    self._extend(ts, values)
            if self.hists:
                self.hists = {ht: h for ht, h in self.hists.items() if ht >= t}
        if not self.n:
            self.first_t = NO_TIMESTAMP
            self.vone = None

    # -- histograms --------------------------------------------------------------------------

    def add_histogram(self, t: int, h: FloatHistogram) -> None:
        """The histogram of the sample at ``t`` (its marker goes in the columns as usual)."""
        if self.hists is None:
            self.hists = {}
        self.hists[t] = h

    def histogram_at(self, t: int) -> FloatHistogram | None:
        return self.hists.get(t) if self.hists else None

    def nbytes(self) -> int:
        hist = 200 * len(self.hists) if self.hists else 0  # a rough figure per histogram
        cols = (self.toff.nbytes if self.toff is not None else 0) + (
            self.vcol.nbytes if self.vcol is not None else 8
        )
        return cols + 16 * len(self.tail_t) + hist
