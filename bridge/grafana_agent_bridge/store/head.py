"""The head: every series the store knows (the label index), the recent samples of each
(``HeadSeries``), the exemplars and the metadata, and the time bounds the append rules use.
Prometheus keeps the same in ``tsdb/head*.go``.

The head changes in three ways, all under the store's lock: WAL replay on open (it is the
WAL's ``ReplayTarget``), ``commit`` of an append that the WAL has taken (``appender.py`` decides
what is accepted, before anything is logged), and ``truncate`` once compaction cut a block.

A histogram sample enters the head with the counter-reset hint it reads back with from
Prometheus's TSDB (``histogram.readback``), derived once from the series' previous sample
when it is committed or replayed; blocks are cut from the head and keep it. The WAL, and so
the change feed and forwarding, keep the hint as written, as Prometheus's WAL does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ..histogram import readback
from ..histogram.model import FloatHistogram
from ..labels import Labels
from ..storage import Exemplar, MetricMetadata
from . import histsamples
from .block import BlockSeries
from .exemplars import ExemplarBuffer
from .index import SeriesIndex
from .memseries import NO_TIMESTAMP, TAIL, HeadSeries
from .stats import StoreStats
from .wlog import HistEntries, WalBatch

log = logging.getLogger(__name__)

NO_MIN = 2**63 - 1
"""``Head.min_t`` of an empty head."""


@dataclass
class PendingAppend:
    """An append the rules accepted, ready for the WAL (``wal_batch``) and then ``commit``.

    Samples come in two shapes: one-sample series (nearly every remote-write series) as plain
    lists, and several samples of a series as arrays in ``many``. ``columns`` joins them in
    append order for the WAL record. A histogram sample is a marker in the value columns
    (``histsamples``) with its histogram in ``hists``.
    """

    new_series: list[tuple[int, Labels]] = field(default_factory=list)
    """Series this write creates in the head (possibly known to the index from blocks)."""
    added_ids: list[int] = field(default_factory=list)
    """Ids this write added to the index; those nothing ended up using are removed again."""
    one_series: list[HeadSeries | None] = field(default_factory=list)
    """Per one-sample entry, the head series if it existed before (None: look it up)."""
    one_refs: list[int] = field(default_factory=list)
    one_ts: list[int] = field(default_factory=list)
    one_vals: list[float] = field(default_factory=list)
    many: list[tuple[int, npt.NDArray[np.int64], npt.NDArray[np.float64]]] = field(
        default_factory=list
    )
    exemplars: list[tuple[int, Exemplar]] = field(default_factory=list)
    metadata: list[MetricMetadata] = field(default_factory=list)
    """Metadata that differs from what the head has."""
    hists: dict[tuple[int, int], FloatHistogram] = field(default_factory=dict)
    """The histogram of each marker sample, by (series id, timestamp)."""
    hist_wire: dict[tuple[int, int], bytes] = field(default_factory=dict)
    """Of ``hists``, the serialized form they arrived in, where known (``SeriesBatch``)."""
    histogram_duplicates: int = 0
    """Of ``duplicates``, the histogram ones."""
    duplicates: int = 0
    """Exact duplicates of stored samples: accepted, not stored again."""
    used: set[int] = field(default_factory=set)
    maybe_unused: bool = False
    """Whether a series this write creates may end up without a sample (its samples all
    refused): only then are the used ones worked out. A new series whose one sample was
    taken when it was created is used."""
    wal: WalBatch = field(default_factory=WalBatch)

    def keep_histogram(self, sid: int, t: int, h: FloatHistogram, wire: bytes | None) -> None:
        """The histogram of the marker just taken at ``t``, and its wire form if known."""
        self.hists[(sid, t)] = h
        if wire is not None:
            self.hist_wire[(sid, t)] = wire

    def seal(self) -> WalBatch:
        """Build the column arrays and the WAL batch; drop new series nothing uses."""
        one_refs, one_ts, one_vals, many = self.one_refs, self.one_ts, self.one_vals, self.many
        if many:
            refs = np.concatenate(
                [np.array(one_refs, np.uint64)]
                + [np.full(len(t), sid, np.uint64) for sid, t, _ in many]
            )
            ts = np.concatenate([np.array(one_ts, np.int64)] + [t for _, t, _ in many])
            vals = np.concatenate([np.array(one_vals, np.float64)] + [v for _, _, v in many])
        else:
            refs = np.array(one_refs, np.uint64)
            ts = np.array(one_ts, np.int64)
            vals = np.array(one_vals, np.float64)
        total = len(refs)
        if self.maybe_unused and (self.new_series or self.added_ids):
            used = set(refs.tolist()) if total else set()
            used.update(sid for sid, _ in self.exemplars)
            self.used = used
            self.new_series = [(sid, lb) for sid, lb in self.new_series if sid in used]
        max_t = int(ts.max()) if total else NO_TIMESTAMP
        hists: list[FloatHistogram] = []
        wires: list[bytes | None] = []
        if self.hists:
            mask = histsamples.hist_mask(vals)
            keys = list(zip(refs[mask].tolist(), ts[mask].tolist()))
            hists = list(map(self.hists.__getitem__, keys))
            if self.hist_wire:
                wires = list(map(self.hist_wire.get, keys))
        self.wal = WalBatch(
            self.new_series, refs, ts, vals, max_t, self.exemplars, self.metadata, hists, wires
        )
        return self.wal

    @property
    def samples(self) -> int:
        return len(self.wal.refs)


class Head:
    def __init__(
        self,
        max_exemplars: int,
        stats: StoreStats,
        chunk_range_ms: int = readback.DEFAULT_CHUNK_RANGE_MS,
    ) -> None:
        self.chunk_range_ms = chunk_range_ms
        """Prometheus's head chunk range (its block duration): where chunks are cut, which
        the hints histograms read back with depend on."""
        self.index = SeriesIndex()
        self.series: dict[int, HeadSeries] = {}
        self.ref_labels: dict[int, Labels] = {}
        """WAL series ref -> labels, for every ref in a retained segment (the feed reads it)."""
        self.exemplars = ExemplarBuffer(max_exemplars)
        self.metadata: dict[str, MetricMetadata] = {}
        self.min_valid_t = NO_TIMESTAMP
        """Samples older than this are out of bounds: their range is in a block."""
        self.max_t = NO_TIMESTAMP
        self.min_t = NO_MIN
        """Oldest sample in the head (exact: lowered by appends, recomputed after a cut)."""
        self._stats = stats

    def __len__(self) -> int:
        return len(self.series)

    def samples(self) -> int:
        return sum(len(hs) for hs in self.series.values())

    def checkpoint(self) -> tuple[list[tuple[int, Labels]], list[MetricMetadata]]:
        """What opens every WAL segment: the live series and the metadata."""
        return [(sid, hs.labels) for sid, hs in self.series.items()], list(self.metadata.values())

    # -- replay (the WAL's ReplayTarget) -----------------------------------------------------

    def replay_series(self, series: list[tuple[int, Labels]]) -> None:
        for ref, labels in series:
            self.ref_labels[ref] = labels
            sid = self.index.add(labels, ref)
            if sid != ref:
                # Same labels under two refs (a series recreated): both refs name it.
                self.index.reserve(ref)

    def replay_metadata(self, items: list[MetricMetadata]) -> None:
        for m in items:
            self.metadata[m.metric_family_name] = m

    def replay_exemplars(self, items: list[tuple[int, Exemplar]]) -> None:
        for ref, ex in items:
            labels = self.ref_labels.get(ref)
            if labels is not None:
                self.exemplars.add(self.index.add(labels), ex)

    def replay_histograms(self, items: HistEntries) -> None:
        for ref, t, h in items:
            labels = self.ref_labels.get(ref)
            hs = self.series.get(self.index.add(labels)) if labels is not None else None
            if hs is not None:
                hs.add_histogram(t, h)

    def replay_samples(
        self,
        refs: npt.NDArray[np.uint64],
        ts: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> None:
        """Group one segment's samples by series (one numpy sort) and append them."""
        order = np.argsort(refs, kind="stable")
        refs, ts, values = refs[order], ts[order], values[order]
        first = np.empty(len(refs), dtype=bool)
        first[0] = True
        np.not_equal(refs[1:], refs[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        ends = np.empty_like(starts)
        ends[:-1] = starts[1:]
        ends[-1] = len(refs)
        # The WAL holds only accepted samples, so each series ascends: check that in one
        # vectorised step and filter only the series where it does not hold (damage).
        ascending = np.ones(len(refs), dtype=bool)
        np.greater(ts[1:], ts[:-1], out=ascending[1:])
        ascending |= first
        bad = set(refs[~ascending].tolist())
        floor = self.min_valid_t - 1
        for lo, hi, ref in zip(starts.tolist(), ends.tolist(), refs[starts].tolist()):
            labels = self.ref_labels.get(ref)
            if labels is None:
                log.error("WAL samples for undefined series ref %d dropped", ref)
                continue
            sid = self.index.add(labels)
            hs = self.series.get(sid)
            if hs is None:
                hs = self.series[sid] = HeadSeries(sid, labels)
            t = ts[lo:hi]
            v = values[lo:hi]
            low = max(hs.last_t, floor)
            if ref in bad or int(t[0]) <= low:
                prev = np.maximum.accumulate(np.concatenate(([low], t)))[:-1]
                keep = t > prev
                t, v = t[keep], v[keep]
            if len(t):
                hs.append_many(t, v)
                self._stats.replay_samples += len(t)
                self.max_t = max(self.max_t, int(t[-1]))

    def finish_replay(self) -> None:
        # Series whose samples all fell before the head boundary have nothing in the head.
        for sid in [s for s, hs in self.series.items() if not len(hs)]:
            del self.series[sid]
        # The WAL holds the hints as written; the head holds them as read back. A series'
        # first sample after the head boundary reads back as opening a chunk, as in
        # Prometheus, whose replay starts a new head chunk after its memory-mapped ones.
        for hs in self.series.values():
            if hs.hists:
                self._read_back_all(hs)
        self.recompute_min()

    def _read_back_all(self, hs: HeadSeries) -> None:
        assert hs.hists is not None
        t_col, v_col = hs.columns()
        ts = t_col.tolist()
        marks = histsamples.hist_mask(v_col).tolist()
        hists = hs.hists
        for i, (t, marked) in enumerate(zip(ts, marks)):
            h = hists.get(t) if marked else None
            if h is None:
                continue
            prev = hists.get(ts[i - 1]) if i and marks[i - 1] else None
            hists[t] = readback.stored(h, t, prev, ts[i - 1] if i else None, self.chunk_range_ms)

    def _read_back(self, hs: HeadSeries, t: int, h: FloatHistogram) -> FloatHistogram:
        """``h``, committed at ``t`` after the series' columns took its marker, with the hint
        it reads back with (from the sample before it, which the head still holds unless
        compaction took the series' whole past: then it opens a chunk, as in Prometheus)."""
        before = hs.sample_before(t)
        if before is None:
            return readback.stored(h, t, None, None, self.chunk_range_ms)
        pt, pv = before
        prev = hs.histogram_at(pt) if histsamples.is_mark(pv) else None
        return readback.stored(h, t, prev, pt, self.chunk_range_ms)

    # -- appends -----------------------------------------------------------------------------

    def forget_ids(self, sids: Sequence[int], *, keep: set[int] | None = None) -> None:
        """Take index entries an append added back out (all, or those not in ``keep``)."""
        self.index.remove_all(sids if keep is None else [s for s in sids if s not in keep])

    def commit(self, p: PendingAppend) -> None:
        """Apply an append the WAL holds now."""
        series = self.series
        for sid, labels in p.new_series:
            self.ref_labels[sid] = labels
            series[sid] = HeadSeries(sid, labels)
        if p.added_ids and p.maybe_unused:
            self.forget_ids(p.added_ids, keep=p.used)
        for known, sid, t, v in zip(p.one_series, p.one_refs, p.one_ts, p.one_vals):
            hs = known
            if hs is None:
                hs = series[sid]
                if hs.first_t == NO_TIMESTAMP:
                    hs.first_t = t
                    self.min_t = min(self.min_t, t)
            # HeadSeries.append_one, inlined: this loop runs once per stored sample.
            tail = hs.tail_t
            tail.append(t)
            hs.tail_v.append(v)
            hs.last_t = t
            hs.last_v = v
            if len(tail) >= TAIL:
                hs.flush()
        for sid, t, v in p.many:
            series[sid].append_many(t, v)
            self.min_t = min(self.min_t, series[sid].first_t)
        for (sid, t), h in p.hists.items():  # in time order within each series
            hs = series[sid]
            hs.add_histogram(t, self._read_back(hs, t, h))
        for sid, ex in p.exemplars:
            self.exemplars.add(sid, ex)
        for m in p.metadata:
            self.metadata[m.metric_family_name] = m
        if p.samples:
            self.max_t = max(self.max_t, p.wal.max_t)

    # -- compaction --------------------------------------------------------------------------

    def recompute_min(self) -> None:
        mins = [hs.first_t for hs in self.series.values() if len(hs)]
        self.min_t = min(mins) if mins else NO_MIN

    def freeze_before(self, end: int) -> None:
        """From now on samples older than ``end`` are out of bounds (a block takes them)."""
        self.min_valid_t = max(self.min_valid_t, end)

    def snapshot(self, start: int, end: int) -> list[BlockSeries]:
        """Copies of the samples in ``[start, end)``, for a block."""
        out = []
        for hs in self.series.values():
            if len(hs) and hs.first_t < end:
                t, v = hs.window(start, end - 1)
                if len(t):
                    h = histsamples.aligned(t, v, hs.histogram_at) if hs.hists else None
                    out.append(BlockSeries(hs.labels, t, v, h))
        return out

    def truncate(self, end: int) -> None:
        """Forget samples older than ``end`` (now in a block) and series left empty."""
        for sid in list(self.series):
            hs = self.series[sid]
            hs.drop_before(end)
            if not len(hs):
                del self.series[sid]
        self.recompute_min()
