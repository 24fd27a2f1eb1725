"""The append rules: which samples, series and exemplars of a write the head accepts, decided
before anything is logged (Prometheus's ``headAppender``). See the package docstring for the
rules themselves; ``prepare`` only adds new series to the index (taken out again if the write
fails or leaves them unused) and otherwise changes nothing until ``Head.commit``.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence

import numpy as np

from ..histogram.model import FloatHistogram
from ..histogram.ops import equals
from ..labels import Labels
from ..storage import Exemplar, MetricMetadata, Rejection, SeriesBatch
from .head import NO_MIN, Head, PendingAppend
from .histsamples import HIST_MARK, NORMAL_NAN, is_mark
from .memseries import NO_TIMESTAMP, HeadSeries
from .options import StoreOptions

REASON_OUT_OF_ORDER = "out of order sample"
REASON_DUPLICATE = "duplicate sample for timestamp"
REASON_OUT_OF_BOUNDS = "out of bounds"
REASON_TOO_NEW = "too far in the future"
DETAILED_REJECTIONS = 100
"""Rejections of one append kept one by one; the rest are counted by kind, so a write of a
million out-of-order samples does not build a million-entry list."""


def _same_bits(a: float, b: float) -> bool:
    return struct.pack("<d", a) == struct.pack("<d", b)


class RejectionLog(list[Rejection]):
    """The rejections of one append: the first ``DETAILED_REJECTIONS`` as they come, then
    one summary entry per kind (``close`` adds them) carrying how many it stands for."""

    def __init__(self) -> None:
        super().__init__()
        self._more: dict[str, int] = {}

    def append(self, rejection: Rejection) -> None:
        if len(self) < DETAILED_REJECTIONS:
            super().append(rejection)
        else:
            self._more[rejection.kind] = self._more.get(rejection.kind, 0) + rejection.count

    def close(self) -> None:
        for kind, n in self._more.items():
            super().append(Rejection((), None, f"{n} more rejected ({kind})", kind, n))
        self._more.clear()

    def total(self) -> int:
        """Samples and exemplars refused, summaries included."""
        return sum(r.count for r in self) + sum(self._more.values())


class SeriesAppend:
    """One series' state while a write is checked: the newest sample accepted so far (the
    ordering rule compares against it) and the head series, if it existed before the write."""

    __slots__ = ("last_t", "last_v", "series", "sid")

    def __init__(self, sid: int, last_t: int, last_v: float, series: HeadSeries | None) -> None:
        self.sid = sid
        self.last_t = last_t
        self.last_v = last_v
        self.series = series


class HeadAppender:
    def __init__(self, head: Head, options: StoreOptions) -> None:
        self._head = head
        self._options = options

    def prepare(
        self,
        series: Sequence[SeriesBatch],
        metadata: Sequence[MetricMetadata],
        rejections: RejectionLog,
    ) -> PendingAppend:
        """Check a write against the rules; the result is ready for the WAL (``seal``)."""
        head = self._head
        min_valid = head.min_valid_t
        future = self._options.max_future_ms
        max_t = int(time.time() * 1000) + future if future > 0 else NO_MIN
        bounds = (min_valid, max_t)
        p = PendingAppend()
        one_refs, one_ts, one_vals, one_hs = p.one_refs, p.one_ts, p.one_vals, p.one_series
        # Per series touched by this write. An int is the fast path's mark: the position of
        # the series' one sample so far in the one-sample columns (no object per sample).
        touched: dict[int, SeriesAppend | int] = {}
        by_labels = head.index.by_labels
        head_get = head.series.get
        check = self._options.label_limits.check
        add_new = head.index.add_new
        max_head = self._options.max_head_series or NO_MIN
        head_series, new_series, added_ids = head.series, p.new_series, p.added_ids
        for batch in series:
            ts = batch.timestamps
            if len(ts) == 1 and len(batch.values) == 1 and batch.histograms is None:
                # Fast path, nearly every sample: a known series, its next sample.
                labels = batch.labels
                sid = by_labels.get(labels)
                t = ts.item(0)
                v = batch.values.item(0)
                hs: HeadSeries | None = None
                h: FloatHistogram | None = None
                if sid is None:
                    # A new series and its first sample (a sender's first requests): as
                    # ``_series_state`` creates one, with the limits checked first.
                    fast = (
                        NO_TIMESTAMP < t <= max_t
                        and t >= min_valid
                        and bool(labels)
                        and len(head_series) + len(new_series) < max_head
                        and check(labels) is None
                    )
                    if fast:
                        sid = add_new(labels)
                        added_ids.append(sid)
                        new_series.append((sid, labels))
                elif sid not in touched:
                    hs = head_get(sid)
                    fast = hs is not None and hs.last_t < t <= max_t and t >= min_valid
                else:
                    fast = False
            elif len(ts) == 1 and batch.histograms is not None and len(batch.histograms) == 1:
                # A known series' next histogram (a scrape of a native histogram): its marker
                # goes in the one-sample columns, the histogram beside it.
                h = batch.histograms[0]
                sid = by_labels.get(batch.labels)
                hs = head_get(sid) if sid is not None and sid not in touched else None
                t = ts.item(0)
                v = HIST_MARK
                fast = (
                    h is not None and hs is not None and hs.last_t < t <= max_t and t >= min_valid
                )
            else:
                self._take(batch, p, touched, bounds=bounds, rejections=rejections)
                continue
            if fast and sid is not None:
                touched[sid] = len(one_refs)
                one_refs.append(sid)
                one_ts.append(t)
                one_vals.append(v)
                one_hs.append(hs)
                if h is not None:
                    wire = batch.histogram_wire
                    p.keep_histogram(sid, t, h, wire[0] if wire is not None else None)
                if batch.exemplars:
                    self._take_exemplars(sid, batch, p.exemplars, rejections)
                continue
            self._take(batch, p, touched, bounds=bounds, rejections=rejections)
        rejections.close()
        known = head.metadata
        p.metadata = [m for m in metadata if known.get(m.metric_family_name) != m]
        return p

    def _take(
        self,
        batch: SeriesBatch,
        p: PendingAppend,
        touched: dict[int, SeriesAppend | int],
        *,
        bounds: tuple[int, int],
        rejections: RejectionLog,
    ) -> None:
        """One entry of a write that the fast path did not take: invalid, a new series, a
        series seen before in this write, several samples, or a sample to refuse."""
        labels, ts, vals = batch.labels, batch.timestamps, batch.values
        n = len(ts)
        if not labels or len(vals) != n:
            rejections.append(
                Rejection(labels, None, "invalid series", "invalid_series", max(n, 1))
            )
            return
        if batch.histograms is not None and len(batch.histograms) != n:
            rejections.append(
                Rejection(labels, None, "invalid series", "invalid_series", max(n, 1))
            )
            return
        st = self._series_state(batch, p, touched, bounds=bounds, rejections=rejections)
        if st is None:
            return
        min_valid, max_t = bounds
        if batch.histograms is not None:
            self._take_mixed(batch, st, p, bounds=bounds, rejections=rejections)
        elif n == 1:
            t = ts.item(0)
            v = vals.item(0)
            if st.last_t < t <= max_t and t >= min_valid:
                st.last_t, st.last_v = t, v
                p.one_refs.append(st.sid)
                p.one_ts.append(t)
                p.one_vals.append(v)
                p.one_series.append(None)
            else:
                p.duplicates += self._reject(
                    labels, t, v, st, bounds=bounds, rejections=rejections
                )
        elif n:
            t0 = ts.item(0)
            if (
                t0 > st.last_t
                and t0 >= min_valid
                and ts.item(n - 1) <= max_t
                and bool(np.all(ts[1:] > ts[:-1]))
            ):
                st.last_t, st.last_v = ts.item(n - 1), vals.item(n - 1)
                p.many.append((st.sid, ts, vals))
            else:
                keep_t: list[int] = []
                keep_v: list[float] = []
                for t, v in zip(ts.tolist(), vals.tolist()):
                    if st.last_t < t <= max_t and t >= min_valid:
                        st.last_t, st.last_v = t, v
                        keep_t.append(t)
                        keep_v.append(v)
                    else:
                        p.duplicates += self._reject(
                            labels, t, v, st, bounds=bounds, rejections=rejections
                        )
                if keep_t:
                    p.many.append(
                        (st.sid, np.array(keep_t, np.int64), np.array(keep_v, np.float64))
                    )
        if batch.exemplars:
            self._take_exemplars(st.sid, batch, p.exemplars, rejections)

    def _take_mixed(
        self,
        batch: SeriesBatch,
        st: SeriesAppend,
        p: PendingAppend,
        *,
        bounds: tuple[int, int],
        rejections: RejectionLog,
    ) -> None:
        """A series entry with histogram samples: the float rules sample by sample, the
        histogram as the value (its marker in the columns, itself in ``p.hists``)."""
        assert batch.histograms is not None
        min_valid, max_t = bounds
        keep_t: list[int] = []
        keep_v: list[float] = []
        wires = batch.histogram_wire
        for i, (t, given, h) in enumerate(
            zip(batch.timestamps.tolist(), batch.values.tolist(), batch.histograms)
        ):
            v = HIST_MARK if h is not None else NORMAL_NAN if is_mark(given) else given
            if st.last_t < t <= max_t and t >= min_valid:
                st.last_t, st.last_v = t, v
                keep_t.append(t)
                keep_v.append(v)
                if h is not None:
                    p.keep_histogram(st.sid, t, h, wires[i] if wires is not None else None)
                continue
            stored_h = None
            if h is not None:
                stored_h = p.hists.get((st.sid, t))
                if stored_h is None and st.series is not None:
                    stored_h = st.series.histogram_at(t)
            if h is not None and stored_h is not None:
                # Both histograms: the same one (a retried send) is accepted, not stored.
                # The hint is not compared (Prometheus's ``Equals``): the stored one is the
                # hint it reads back with, not the one written.
                if equals(h, stored_h):
                    p.duplicates += 1
                    p.histogram_duplicates += 1
                else:
                    rejections.append(Rejection(batch.labels, t, REASON_DUPLICATE, "duplicate"))
                continue
            if h is not None and t == st.last_t and is_mark(st.last_v):
                rejections.append(Rejection(batch.labels, t, REASON_DUPLICATE, "duplicate"))
                continue
            p.duplicates += self._reject(
                batch.labels, t, v, st, bounds=bounds, rejections=rejections
            )
        if keep_t:
            p.many.append((st.sid, np.array(keep_t, np.int64), np.array(keep_v, np.float64)))

    def _series_state(
        self,
        batch: SeriesBatch,
        p: PendingAppend,
        touched: dict[int, SeriesAppend | int],
        *,
        bounds: tuple[int, int],
        rejections: RejectionLog,
    ) -> SeriesAppend | None:
        """The state to check ``batch``'s samples against, creating the series if it is new;
        None when the entry is settled already (refused, or a new series' one good sample)."""
        labels, ts, n = batch.labels, batch.timestamps, len(batch.timestamps)
        head = self._head
        max_head = self._options.max_head_series or NO_MIN
        sid = head.index.by_labels.get(labels)
        if sid is None:
            # Limits before cost: nothing is indexed for a series that breaks one.
            problem = self._options.label_limits.check(labels)
            if problem is not None:
                rejections.append(Rejection(labels, None, problem.reason, problem.kind, max(n, 1)))
                return None
            if len(head.series) + len(p.new_series) >= max_head:
                rejections.append(self._head_full(labels, n))
                return None
            sid = head.index.add_new(labels)
            p.added_ids.append(sid)
            # New to the index, so new to the head too (the limit was checked above).
            p.new_series.append((sid, labels))
            min_valid, max_t = bounds
            if (
                n == 1
                and batch.histograms is None
                and NO_TIMESTAMP < (t := ts.item(0)) <= max_t
                and t >= min_valid
            ):
                # Its first sample, marked like the fast path's (no object per series).
                touched[sid] = len(p.one_refs)
                p.one_refs.append(sid)
                p.one_ts.append(t)
                p.one_vals.append(batch.values.item(0))
                p.one_series.append(None)
                if batch.exemplars:
                    self._take_exemplars(sid, batch, p.exemplars, rejections)
                return None
            st = touched[sid] = SeriesAppend(sid, NO_TIMESTAMP, 0.0, None)
            p.maybe_unused = True
            return st
        st = touched.get(sid)
        if isinstance(st, int):
            k = st
            st = touched[sid] = SeriesAppend(sid, p.one_ts[k], p.one_vals[k], p.one_series[k])
        elif st is None:
            hs = head.series.get(sid)
            if hs is None:
                if len(head.series) + len(p.new_series) >= max_head:
                    rejections.append(self._head_full(labels, n))
                    return None
                p.new_series.append((sid, labels))
                p.maybe_unused = True
                st = SeriesAppend(sid, NO_TIMESTAMP, 0.0, None)
            else:
                st = SeriesAppend(sid, hs.last_t, hs.last_v, hs)
            touched[sid] = st
        return st

    def _head_full(self, labels: Labels, n: int) -> Rejection:
        limit = self._options.max_head_series
        return Rejection(
            labels,
            None,
            f"head series limit of {limit} reached (storage.max_head_series): new series "
            "refused, samples dropped",
            "head_series",
            max(n, 1),
        )

    def _take_exemplars(
        self,
        sid: int,
        batch: SeriesBatch,
        out: list[tuple[int, Exemplar]],
        rejections: list[Rejection],
    ) -> None:
        """Exemplars newer than the series' last one (older ones are ignored, not errors);
        ones whose labels break the exemplar limit are rejected (the sample is kept)."""
        last = self._head.exemplars.last_t(sid)
        check = self._options.label_limits.check_exemplar
        for ex in batch.exemplars:
            problem = check(ex.labels) if ex.labels else None
            if problem is not None:
                rejections.append(
                    Rejection(batch.labels, ex.timestamp, problem.reason, problem.kind)
                )
                continue
            if ex.timestamp > last:
                out.append((sid, ex))
                last = ex.timestamp

    @staticmethod
    def _reject(
        labels: Labels,
        t: int,
        v: float,
        st: SeriesAppend,
        *,
        bounds: tuple[int, int],
        rejections: list[Rejection],
    ) -> int:
        """Classify a sample the fast path refused; 1 if it is an exact duplicate (accepted)."""
        min_valid, max_t = bounds
        if t > max_t:
            rejections.append(Rejection(labels, t, REASON_TOO_NEW, "too_new"))
            return 0
        if t == st.last_t:
            if _same_bits(v, st.last_v):
                return 1
            rejections.append(Rejection(labels, t, REASON_DUPLICATE, "duplicate"))
            return 0
        stored = st.series.value_at(t) if st.series is not None else None
        if stored is not None:
            # A retried multi-sample write: its older samples are already here, bit for bit.
            if _same_bits(v, stored):
                return 1
            rejections.append(Rejection(labels, t, REASON_DUPLICATE, "duplicate"))
        elif t < min_valid:
            rejections.append(Rejection(labels, t, REASON_OUT_OF_BOUNDS, "out_of_bounds"))
        else:
            rejections.append(Rejection(labels, t, REASON_OUT_OF_ORDER, "out_of_order"))
        return 0
