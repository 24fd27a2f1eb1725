"""The embedded TSDB: WAL + head + blocks behind the Appender, Querier and ChangeFeed protocols."""

from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
import struct
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..labels import Labels, Matcher
from ..storage import (
    AppendResult,
    Exemplar,
    FeedBatch,
    FeedPosition,
    MetricMetadata,
    Rejection,
    SeriesBatch,
    SeriesData,
    ShuttingDownError,
    StorageFullError,
)
from . import lockfile, wal
from .block import Block, BlockSeries, CorruptBlockError, GroupCache, write_block
from .head import NO_TIMESTAMP, TAIL, HeadSeries
from .index import SeriesIndex
from .options import StoreOptions
from .progress import OpenProgress
from .state import read_json, write_json

log = logging.getLogger(__name__)

REASON_OUT_OF_ORDER = "out of order sample"
REASON_DUPLICATE = "duplicate sample for timestamp"
REASON_OUT_OF_BOUNDS = "out of bounds"
REASON_TOO_NEW = "too far in the future"
DETAILED_REJECTIONS = 100
"""Rejections of one append kept one by one; the rest are counted by kind, so a write of a
million out-of-order samples does not build a million-entry list."""
_CONSUMER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
_FEED_READ_BYTES = 4 * 1024 * 1024
_NO_MIN = 2**63 - 1


def _same_bits(a: float, b: float) -> bool:
    return struct.pack("<d", a) == struct.pack("<d", b)


@dataclass
class SegmentInfo:
    """What the store remembers of a retained WAL segment (for the feed and truncation)."""

    index: int
    size: int = 0
    marks: list[int] = field(default_factory=list)
    """Offsets of the segment's sample records, ascending."""
    cum: list[int] = field(default_factory=list)
    """Samples in the segment up to and including the record at the same index of ``marks``."""
    max_t: int = NO_TIMESTAMP

    @property
    def samples(self) -> int:
        return self.cum[-1] if self.cum else 0

    def samples_before(self, offset: int) -> int:
        k = bisect_left(self.marks, offset)
        return self.cum[k - 1] if k else 0

    def add(self, offset: int, count: int, max_t: int) -> None:
        self.marks.append(offset)
        self.cum.append(self.samples + count)
        self.max_t = max(self.max_t, max_t)


def _samples_after(segments: dict[int, SegmentInfo], position: FeedPosition) -> int:
    """Samples recorded in ``segments`` after ``position`` (a backlog, or what was lost)."""
    total = 0
    for seg, info in segments.items():
        if seg > position.segment:
            total += info.samples
        elif seg == position.segment:
            total += info.samples - info.samples_before(position.offset)
    return total


@dataclass
class StoreStats:
    series: int = 0
    head_series: int = 0
    head_samples: int = 0
    samples_appended: int = 0
    samples_rejected: int = 0
    samples_duplicate: int = 0
    exemplars_appended: int = 0
    wal_bytes: int = 0
    wal_segments: int = 0
    wal_records_dropped: int = 0
    wal_bytes_dropped: int = 0
    wal_corruptions: int = 0
    blocks: int = 0
    blocks_bytes: int = 0
    block_samples: int = 0
    blocks_corrupt: int = 0
    compactions: int = 0
    compaction_seconds: float = 0.0
    retention_blocks_deleted: int = 0
    wal_segments_deleted: int = 0
    feed_samples_lost: int = 0
    replay_seconds: float = 0.0
    replay_samples: int = 0


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


class Store:
    """An embedded TSDB. Use ``Store.open``; see the package docstring for the semantics."""

    def __init__(self, path: Path, options: StoreOptions) -> None:
        self.path = path
        self.options = options
        self._lock = threading.RLock()
        self._index = SeriesIndex()
        self._head: dict[int, HeadSeries] = {}
        self._ref_labels: dict[int, Labels] = {}
        self._segments: dict[int, SegmentInfo] = {}
        self._consumers: dict[str, FeedPosition] = {}
        self._lost: dict[int, SegmentInfo] = {}
        self._metadata: dict[str, MetricMetadata] = {}
        self._exemplars: deque[tuple[int, Exemplar]] = deque(maxlen=options.max_exemplars)
        self._last_exemplar_t: dict[int, int] = {}
        self._min_valid_t = NO_TIMESTAMP
        self._closed = False
        self.stats_ = StoreStats()
        self._wal_dir = path / "wal"
        self._blocks_dir = path / "blocks"
        self._blocks: list[Block] = []
        self._group_cache = GroupCache(options.block_cache_bytes)
        self._head_max_t = NO_TIMESTAMP
        self._head_min_t = _NO_MIN
        """Oldest sample in the head (exact: lowered by appends, recomputed after a cut)."""
        self._compact_lock = threading.Lock()
        self._compact_wanted = threading.Event()
        self._compactor: threading.Thread | None = None
        self._syncs: list[threading.Thread] = []
        self._checkpoint_due = False
        self._checkpoint_bytes = 0
        """Size of the checkpoint that opens the current segment (not counted against
        ``wal_segment_bytes``)."""
        self._lock_fd = -1
        self._feed_dir = path / "feed"
        self._writer: wal.SegmentWriter | None = None
        self._progress = OpenProgress()

    # -- lifecycle --------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        options: StoreOptions | None = None,
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> Store:
        """Open (creating if needed) the store in ``path``: replay and repair the WAL.

        Loading and replay log their progress; ``should_stop`` is polled throughout, and
        ``progress.OpenCancelledError`` is raised (the store released) as soon as it answers true.
        """
        store = cls(Path(path), options or StoreOptions())
        store._progress = OpenProgress(should_stop)
        store._open()
        return store

    def _open(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            self._load()
        except BaseException:
            for b in self._blocks:
                b.close()
            self._release_lock()
            raise

    def _take_lock(self) -> None:
        """One writer per data directory: two would interleave WAL segments and corrupt them."""
        self._lock_fd = lockfile.acquire(self.path / "lock")

    def _release_lock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = -1

    def _load(self) -> None:
        for d in (self._wal_dir, self._feed_dir, self._blocks_dir):
            d.mkdir(parents=True, exist_ok=True)
        state = read_json(self.path / "head.json") or {}
        self._min_valid_t = int(state.get("min_valid_t", NO_TIMESTAMP))
        self._load_feed_state()
        started = time.monotonic()
        self._load_blocks()
        # Samples below the newest block's end are in blocks (a crash may have cut a block
        # without recording it in head.json): replay must not put them in the head again.
        for b in self._blocks:
            self._min_valid_t = max(self._min_valid_t, b.maxt)
        self._replay()
        for b in self._blocks:
            b.bind(self._index.add, self._index.labels)
        self.stats_.replay_seconds = time.monotonic() - started
        log.info(
            "store opened: %d series, %d samples replayed from %d WAL segments in %.2fs",
            len(self._index),
            self.stats_.replay_samples,
            len(self._segments),
            self.stats_.replay_seconds,
        )
        self._start_segment()
        self._write_checkpoint()
        if self.options.compact_automatically:
            self._compactor = threading.Thread(
                target=self._compact_loop, name="store-compactor", daemon=True
            )
            self._compactor.start()
            self._compact_wanted.set()

    def close(self) -> None:
        """Flush and fsync the WAL; later appends raise ``ShuttingDownError``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._compact_wanted.set()
        if self._compactor is not None:
            self._compactor.join()
        for t in self._syncs:
            t.join()
        with self._lock:
            if self._writer is not None:
                self._writer.close(sync=True)
                self._writer = None
            for b in self._blocks:
                b.close()
        self._release_lock()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- WAL replay and repair --------------------------------------------------------------

    def _replay(self) -> None:
        segments = wal.list_segments(self._wal_dir)
        sizes = [(self._wal_dir / wal.segment_name(seg)).stat().st_size for seg in segments]
        progress = self._progress
        progress.start("wal", sum(sizes))
        replayed = 0
        for i, seg in enumerate(segments):
            path = self._wal_dir / wal.segment_name(seg)
            detail = f"segment {i + 1} of {len(segments)}, {self.stats_.replay_samples} samples"
            progress.advance(replayed, detail)
            res = wal.read_segment(path)
            info = SegmentInfo(seg)
            refs_parts: list[npt.NDArray[np.uint64]] = []
            ts_parts: list[npt.NDArray[np.int64]] = []
            val_parts: list[npt.NDArray[np.float64]] = []
            corrupt = res.corrupt
            good_end = res.good_end
            for rec in res.records:
                progress.advance(replayed + rec.offset, detail)
                try:
                    self._replay_record(rec, info, refs_parts, ts_parts, val_parts)
                except wal.CorruptRecordError as e:
                    corrupt = f"undecodable record at offset {rec.offset}: {e}"
                    good_end = rec.offset
                    break
            replayed += sizes[i]
            if corrupt is not None:
                self._repair(path, good_end, corrupt, is_last=i == len(segments) - 1)
                if good_end == 0:
                    continue
            info.size = good_end
            self._segments[seg] = info
            if refs_parts:
                self._apply_replayed(
                    np.concatenate(refs_parts), np.concatenate(ts_parts), np.concatenate(val_parts)
                )
        self.stats_.wal_segments = len(self._segments)
        progress.finish()

    def _replay_record(
        self,
        rec: wal.Record,
        info: SegmentInfo,
        refs_parts: list[npt.NDArray[np.uint64]],
        ts_parts: list[npt.NDArray[np.int64]],
        val_parts: list[npt.NDArray[np.float64]],
    ) -> None:
        if rec.type == wal.RecordType.SERIES:
            for ref, labels in wal.decode_series(rec.payload):
                self._ref_labels[ref] = labels
                sid = self._index.add(labels, ref)
                if sid != ref:
                    # Same labels under two refs (a series recreated): both refs name it.
                    self._index.reserve(ref)
        elif rec.type in wal.SAMPLE_TYPES:
            refs, ts, values = wal.decode_sample_record(rec)
            if len(refs):
                info.add(rec.offset, len(refs), int(ts.max()))
                refs_parts.append(refs)
                ts_parts.append(ts)
                val_parts.append(values)
        elif rec.type == wal.RecordType.METADATA:
            for m in wal.decode_metadata(rec.payload):
                self._metadata[m.metric_family_name] = m
        elif rec.type == wal.RecordType.EXEMPLARS:
            for ref, ex in wal.decode_exemplars(rec.payload):
                labels = self._ref_labels.get(ref)
                if labels is not None:
                    self._remember_exemplar(self._index.add(labels), ex)

    def _apply_replayed(
        self,
        refs: npt.NDArray[np.uint64],
        ts: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> None:
        """Group one segment's samples by series (one numpy sort) and append them to the head."""
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
        floor = self._min_valid_t - 1
        for lo, hi, ref in zip(starts.tolist(), ends.tolist(), refs[starts].tolist()):
            labels = self._ref_labels.get(ref)
            if labels is None:
                log.error("WAL samples for undefined series ref %d dropped", ref)
                continue
            sid = self._index.add(labels)
            hs = self._head.get(sid)
            if hs is None:
                hs = self._head[sid] = HeadSeries(sid, labels)
            t = ts[lo:hi]
            v = values[lo:hi]
            low = max(hs.last_t, floor)
            if ref in bad or int(t[0]) <= low:
                prev = np.maximum.accumulate(np.concatenate(([low], t)))[:-1]
                keep = t > prev
                t, v = t[keep], v[keep]
            if len(t):
                hs.append_many(t, v)
                self.stats_.replay_samples += len(t)
                self._head_max_t = max(self._head_max_t, int(t[-1]))
        # Series whose samples all fell before the head boundary have nothing in the head.
        for sid in [s for s, hs in self._head.items() if not len(hs)]:
            del self._head[sid]
        self._recompute_head_min()

    def _repair(self, path: Path, good_end: int, why: str, *, is_last: bool) -> None:
        size = path.stat().st_size
        dropped = size - good_end
        self.stats_.wal_corruptions += 1
        self.stats_.wal_bytes_dropped += dropped
        self.stats_.wal_records_dropped += 1
        if good_end == 0:
            log.error("WAL segment %s is unreadable (%s): removed it (%d bytes)", path, why, size)
            path.unlink()
        else:
            log.error(
                "WAL segment %s is corrupt (%s): kept the first %d bytes, dropped %d bytes",
                path,
                why,
                good_end,
                dropped,
            )
            with open(path, "r+b") as f:
                f.truncate(good_end)
                f.flush()
                os.fsync(f.fileno())
        del is_last

    # -- WAL writing ------------------------------------------------------------------------

    def _start_segment(self) -> None:
        """Open the next segment and hand the finished one to a background fsync.

        A segment begins with a checkpoint of the head's series and the metadata, so it can be
        read without its predecessors (which retention or the feed may delete). If that write
        fails (disk full) the checkpoint stays due and goes in front of the next append.
        The checkpoint does not count against ``wal_segment_bytes``: once a big head's
        checkpoint outgrew a segment, every append opened a new one (500,000 series wrote
        4.3 GB of WAL, nearly all checkpoints, and replaying it took over 10 minutes).
        """
        index = max(self._writer.index if self._writer else 0, max(self._segments, default=0)) + 1
        new = wal.SegmentWriter(self._wal_dir, index, create=True)
        old, self._writer = self._writer, new
        self._segments[index] = SegmentInfo(index, size=new.size)
        self._checkpoint_due = True
        self._checkpoint_bytes = 0
        if old is not None:
            # fsync off the append path: appends wait for the lock, and the page cache already
            # protects the data from a crash of this process.
            sync = threading.Thread(
                target=old.close, kwargs={"sync": True}, name="wal-sync", daemon=True
            )
            sync.start()
            self._syncs = [t for t in self._syncs if t.is_alive()] + [sync]
        self.stats_.wal_segments = len(self._segments)

    def _checkpoint_records(self) -> bytes:
        records = []
        live = [(sid, hs.labels) for sid, hs in self._head.items()]
        if live:
            records.append(wal.encode_record(wal.RecordType.SERIES, wal.encode_series(live)))
        if self._metadata:
            payload = wal.encode_metadata(list(self._metadata.values()))
            records.append(wal.encode_record(wal.RecordType.METADATA, payload))
        return b"".join(records)

    def _write_checkpoint(self) -> None:
        assert self._writer is not None
        try:
            data = self._checkpoint_records()
            if data:
                self._segments[self._writer.index].size = self._writer.write(data)[1]
            self._checkpoint_due = False
            self._checkpoint_bytes = len(data)
        except OSError as e:
            log.error("cannot write the WAL checkpoint yet (%s); the next append retries", e)

    # -- Appender ---------------------------------------------------------------------------

    def append(
        self, series: Sequence[SeriesBatch], metadata: Sequence[MetricMetadata] = ()
    ) -> AppendResult:
        rejections = RejectionLog()
        result = AppendResult(rejections=rejections)
        limits = self.options.label_limits
        max_head = self.options.max_head_series or _NO_MIN
        with self._lock:
            if self._closed or self._writer is None:
                raise ShuttingDownError("the store is closed")
            index = self._index
            head = self._head
            min_valid = self._min_valid_t
            future = self.options.max_future_ms
            max_t = int(time.time() * 1000) + future if future > 0 else _NO_MIN
            new_series: list[tuple[int, Labels]] = []
            added_ids: list[int] = []
            # Per series touched by this write: [last_t, last_v, HeadSeries | None, sid].
            pending: dict[int, list] = {}
            one_refs: list[int] = []
            one_ts: list[int] = []
            one_vals: list[float] = []
            many: list[tuple[int, npt.NDArray[np.int64], npt.NDArray[np.float64]]] = []
            exemplars: list[tuple[int, Exemplar]] = []
            duplicates = 0
            by_labels = index.by_labels
            head_get = head.get
            one_hs: list[HeadSeries | None] = []
            for batch in series:
                labels = batch.labels
                ts = batch.timestamps
                vals = batch.values
                n = len(ts)
                if n == 1 and len(vals) == 1:
                    # Fast path, nearly every sample: a known series, its next sample.
                    sid = by_labels.get(labels)
                    if sid is not None and sid not in pending:
                        hs = head_get(sid)
                        if hs is not None:
                            t = ts.item(0)
                            v = vals.item(0)
                            if hs.last_t < t <= max_t and t >= min_valid:
                                pending[sid] = [t, v, hs, sid]
                                one_refs.append(sid)
                                one_ts.append(t)
                                one_vals.append(v)
                                one_hs.append(hs)
                                if batch.exemplars:
                                    self._take_exemplars(sid, batch, exemplars, rejections)
                                continue
                if not labels or len(vals) != n:
                    rejections.append(
                        Rejection(labels, None, "invalid series", "invalid_series", max(n, 1))
                    )
                    continue
                sid = by_labels.get(labels)
                if sid is None:
                    # Limits before cost: nothing is indexed for a series that breaks one.
                    problem = limits.check(labels)
                    if problem is not None:
                        rejections.append(
                            Rejection(labels, None, problem.reason, problem.kind, max(n, 1))
                        )
                        continue
                    if len(head) + len(new_series) >= max_head:
                        rejections.append(self._head_full(labels, n))
                        continue
                    sid = index.add(labels)
                    added_ids.append(sid)
                st = pending.get(sid)
                if st is None:
                    hs = head_get(sid)
                    if hs is None:
                        if len(head) + len(new_series) >= max_head:
                            rejections.append(self._head_full(labels, n))
                            continue
                        new_series.append((sid, labels))
                        st = [NO_TIMESTAMP, 0.0, None, sid]
                    else:
                        st = [hs.last_t, hs.last_v, hs, sid]
                    pending[sid] = st
                if n == 1:
                    t = ts.item(0)
                    v = vals.item(0)
                    if st[0] < t <= max_t and t >= min_valid:
                        st[0], st[1] = t, v
                        one_refs.append(sid)
                        one_ts.append(t)
                        one_vals.append(v)
                        one_hs.append(None)
                    else:
                        duplicates += self._reject(
                            labels, t, v, st=st, bounds=(min_valid, max_t), rejections=rejections
                        )
                elif n:
                    t0 = ts.item(0)
                    if (
                        t0 > st[0]
                        and t0 >= min_valid
                        and ts.item(n - 1) <= max_t
                        and bool(np.all(ts[1:] > ts[:-1]))
                    ):
                        st[0], st[1] = ts.item(n - 1), vals.item(n - 1)
                        many.append((sid, ts, vals))
                    else:
                        keep_t: list[int] = []
                        keep_v: list[float] = []
                        for t, v in zip(ts.tolist(), vals.tolist()):
                            if st[0] < t <= max_t and t >= min_valid:
                                st[0], st[1] = t, v
                                keep_t.append(t)
                                keep_v.append(v)
                            else:
                                duplicates += self._reject(
                                    labels,
                                    t,
                                    v,
                                    st=st,
                                    bounds=(min_valid, max_t),
                                    rejections=rejections,
                                )
                        if keep_t:
                            many.append(
                                (sid, np.array(keep_t, np.int64), np.array(keep_v, np.float64))
                            )
                if batch.exemplars:
                    self._take_exemplars(sid, batch, exemplars, rejections)
            rejections.close()
            meta_changed = [m for m in metadata if self._metadata.get(m.metric_family_name) != m]

            # Column arrays for the WAL record and the head, in append order.
            if many:
                refs = np.concatenate(
                    [np.array(one_refs, np.uint64)]
                    + [np.full(len(t), sid, np.uint64) for sid, t, _ in many]
                )
                all_ts = np.concatenate([np.array(one_ts, np.int64)] + [t for _, t, _ in many])
                all_vals = np.concatenate(
                    [np.array(one_vals, np.float64)] + [v for _, _, v in many]
                )
            else:
                refs = np.array(one_refs, np.uint64)
                all_ts = np.array(one_ts, np.int64)
                all_vals = np.array(one_vals, np.float64)
            total = len(refs)
            used: set[int] = set()
            if new_series or added_ids:
                used = set(refs.tolist()) if total else set()
                used.update(sid for sid, _ in exemplars)
                new_series = [(sid, lb) for sid, lb in new_series if sid in used]

            records: list[bytes] = []
            if new_series:
                records.append(
                    wal.encode_record(wal.RecordType.SERIES, wal.encode_series(new_series))
                )
            samples_offset = sum(len(r) for r in records)
            if total:
                records.append(wal.encode_samples_record(refs, all_ts, all_vals))
            if exemplars:
                payload = wal.encode_exemplars(exemplars)
                records.append(wal.encode_record(wal.RecordType.EXEMPLARS, payload))
            if meta_changed:
                payload = wal.encode_metadata(meta_changed)
                records.append(wal.encode_record(wal.RecordType.METADATA, payload))
            if records:
                data = b"".join(records)
                try:
                    # The segment's own data, without the checkpoint that opens it.
                    own = self._writer.size - self._checkpoint_bytes
                    if own > len(wal.MAGIC) and own + len(data) > self.options.wal_segment_bytes:
                        self._start_segment()
                    prefix = self._checkpoint_records() if self._checkpoint_due else b""
                    start, end = self._writer.write(prefix + data)
                    if prefix:
                        self._checkpoint_bytes = len(prefix)
                except OSError as e:
                    for sid in added_ids:
                        index.remove(sid)
                    raise StorageFullError(f"cannot write the WAL: {e}") from e
                self._checkpoint_due = False
                info = self._segments[self._writer.index]
                info.size = end
                if total:
                    info.add(start + len(prefix) + samples_offset, total, int(all_ts.max()))
            else:
                for sid in added_ids:
                    if sid not in used:
                        index.remove(sid)

            # The write is durable: apply it to the head.
            for sid, labels in new_series:
                self._ref_labels[sid] = labels
                head[sid] = HeadSeries(sid, labels)
            for sid in added_ids:
                if sid not in used:
                    index.remove(sid)
            for known, sid, t, v in zip(one_hs, one_refs, one_ts, one_vals):
                hs = known
                if hs is None:
                    hs = head[sid]
                    if hs.first_t == NO_TIMESTAMP:
                        hs.first_t = t
                        self._head_min_t = min(self._head_min_t, t)
                # HeadSeries.append_one, inlined: this loop runs once per stored sample.
                tail = hs.tail_t
                tail.append(t)
                hs.tail_v.append(v)
                hs.last_t = t
                hs.last_v = v
                if len(tail) >= TAIL:
                    hs.flush()
            for sid, t, v in many:
                head[sid].append_many(t, v)
                self._head_min_t = min(self._head_min_t, head[sid].first_t)
            for sid, ex in exemplars:
                self._remember_exemplar(sid, ex)
            for m in meta_changed:
                self._metadata[m.metric_family_name] = m

            if total:
                self._head_max_t = max(self._head_max_t, int(all_ts.max()))
            result.accepted_samples = total + duplicates
            result.accepted_exemplars = len(exemplars)
            self.stats_.samples_appended += total
            self.stats_.samples_duplicate += duplicates
            self.stats_.samples_rejected += rejections.total()
            self.stats_.exemplars_appended += len(exemplars)
        if self.options.compact_automatically:
            self.maybe_compact()
        return result

    def _head_full(self, labels: Labels, n: int) -> Rejection:
        limit = self.options.max_head_series
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
        last = self._last_exemplar_t.get(sid, NO_TIMESTAMP)
        check = self.options.label_limits.check_exemplar
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
        *,
        st: list,
        bounds: tuple[int, int],
        rejections: list[Rejection],
    ) -> int:
        """Classify a sample the fast path refused; 1 if it is an exact duplicate (accepted)."""
        min_valid, max_t = bounds
        if t > max_t:
            rejections.append(Rejection(labels, t, REASON_TOO_NEW, "too_new"))
            return 0
        if t == st[0]:
            if _same_bits(v, st[1]):
                return 1
            rejections.append(Rejection(labels, t, REASON_DUPLICATE, "duplicate"))
            return 0
        hs: HeadSeries | None = st[2]
        stored = hs.value_at(t) if hs is not None else None
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

    def _remember_exemplar(self, sid: int, ex: Exemplar) -> None:
        self._exemplars.append((sid, ex))
        self._last_exemplar_t[sid] = max(
            self._last_exemplar_t.get(sid, ex.timestamp), ex.timestamp
        )

    # -- blocks, compaction, retention -------------------------------------------------------

    def _load_blocks(self) -> None:
        entries = sorted(self._blocks_dir.iterdir())
        self._progress.start("blocks", len(entries))
        for done, p in enumerate(entries):
            self._progress.advance(done)
            if p.name.endswith(".tmp"):
                log.warning("removing unfinished block %s", p)
                shutil.rmtree(p, ignore_errors=True)
                continue
            if not p.is_dir() or p.name.endswith(".corrupt"):
                continue
            try:
                block = Block(p, self._group_cache)
            except CorruptBlockError as e:
                self.stats_.blocks_corrupt += 1
                aside = p.with_name(p.name + ".corrupt")
                log.error("block %s is corrupt (%s); set aside as %s", p, e, aside.name)
                try:
                    p.rename(aside)
                except OSError:
                    log.exception("could not set aside %s", p)
                continue
            if block.bad_groups:
                self.stats_.blocks_corrupt += 1
            self._blocks.append(block)
        self._blocks.sort(key=lambda b: (b.mint, b.maxt))
        self._progress.finish()

    def maybe_compact(self) -> None:
        """Wake the background compactor if the head spans enough time to cut a block."""
        if self._compactor is not None and self._compaction_due(force=False):
            self._compact_wanted.set()

    def _compact_loop(self) -> None:
        while True:
            # Also wake up now and then without appends: retention and WAL truncation (after
            # a feed consumer acknowledged) must not wait for the next block to be due.
            self._compact_wanted.wait(self.options.housekeeping_interval_s)
            self._compact_wanted.clear()
            if self._closed:
                return
            try:
                self.compact()
            except Exception:  # a failed compaction must not kill the daemon; retried later
                log.exception("compaction failed")

    def _recompute_head_min(self) -> None:
        mins = [hs.first_t for hs in self._head.values() if len(hs)]
        self._head_min_t = min(mins) if mins else _NO_MIN

    def _compaction_due(self, *, force: bool) -> tuple[int, int] | None:
        """The block range ``[start, end)`` to cut next, or None."""
        with self._lock:
            head_min = self._head_min_t
            if head_min == _NO_MIN:
                return None
            bd = self.options.block_duration_ms
            start = head_min - head_min % bd
            if force or self._head_max_t - start >= self.options.head_chunk_span * bd:
                return start, start + bd
            return None

    def compact(self, *, force: bool = False) -> int:
        """Cut due blocks from the head (all of it with ``force``), then apply retention and
        truncate the WAL. Returns the number of blocks written."""
        written = 0
        with self._compact_lock:
            while not self._closed or force:
                due = self._compaction_due(force=force)
                if due is None:
                    break
                self._cut_block(*due)
                written += 1
            self._apply_retention()
        return written

    def _cut_block(self, start: int, end: int) -> None:
        began = time.monotonic()
        with self._lock:
            # From now on older samples are "out of bounds": the range being cut is frozen.
            self._min_valid_t = max(self._min_valid_t, end)
            snapshot = []
            for hs in self._head.values():
                if len(hs) and hs.first_t < end:
                    t, v = hs.window(start, end - 1)
                    if len(t):
                        snapshot.append(BlockSeries(hs.labels, t, v))
        path = None
        if snapshot:
            path = write_block(
                self._blocks_dir,
                snapshot,
                start,
                end,
                group_samples=self.options.block_group_samples,
                level=self.options.zstd_level,
            )
        with self._lock:
            if path is not None:
                block = Block(path, self._group_cache)
                block.bind(self._index.add, self._index.labels)
                self._blocks.append(block)
                self._blocks.sort(key=lambda b: (b.mint, b.maxt))
            write_json(self.path / "head.json", {"min_valid_t": self._min_valid_t})
            for sid in list(self._head):
                hs = self._head[sid]
                hs.drop_before(end)
                if not len(hs):
                    del self._head[sid]
            self._recompute_head_min()
            self.stats_.compactions += 1
            self.stats_.compaction_seconds += time.monotonic() - began
        log.info(
            "cut block [%d, %d): %d series in %.2fs",
            start,
            end,
            len(snapshot),
            time.monotonic() - began,
        )

    def _disk_bytes(self) -> int:
        return sum(b.nbytes for b in self._blocks) + sum(i.size for i in self._segments.values())

    def _apply_retention(self) -> None:
        opts = self.options
        with self._lock:
            newest = max([self._head_max_t, *(b.maxt for b in self._blocks)])
            cutoff = newest - opts.retention_time_ms
            doomed = [b for b in self._blocks if b.maxt <= cutoff]
            keep = [b for b in self._blocks if b.maxt > cutoff]
            if opts.retention_size_bytes:
                total = self._disk_bytes() - sum(b.nbytes for b in doomed)
                while keep and total > opts.retention_size_bytes:
                    total -= keep[0].nbytes
                    doomed.append(keep.pop(0))
            if doomed:
                self._blocks = keep
                for b in doomed:
                    log.info("retention: deleting block %s [%d, %d)", b.id, b.mint, b.maxt)
                    shutil.rmtree(b.path, ignore_errors=True)
                    self._group_cache.drop_block(b.id)
                self.stats_.retention_blocks_deleted += len(doomed)
                self._forget_unused_series()
            self._truncate_wal(cutoff)

    def _forget_unused_series(self) -> None:
        """Drop index entries of series left in neither the head nor any block."""
        used = set(self._head)
        for b in self._blocks:
            used.update(b.sids.tolist())
        for sid in [s for s in self._index.all_ids() if s not in used]:
            self._index.remove(sid)

    def _truncate_wal(self, cutoff: int) -> None:
        """Delete the oldest closed WAL segments whose samples are all in blocks and that no
        feed consumer still needs, or that retention forces out (consumers are told)."""
        assert self._writer is not None
        limit = self.options.retention_size_bytes
        lost_changed = False
        for seg in sorted(self._segments):
            if seg == self._writer.index:
                break
            info = self._segments[seg]
            if info.samples and info.max_t >= self._min_valid_t:
                break  # part of its data lives only in the head
            waiting = [c for c, p in self._consumers.items() if p.segment <= seg]
            if waiting:
                expired = info.samples > 0 and info.max_t <= cutoff
                oversize = bool(limit) and self._disk_bytes() > limit
                if not (expired or oversize):
                    break
                for c in waiting:
                    pos = self._consumers[c]
                    behind = info.samples - (
                        info.samples_before(pos.offset) if pos.segment == seg else 0
                    )
                    self.stats_.feed_samples_lost += behind
                    log.warning(
                        "retention removes WAL segment %d before feed consumer %s read it: "
                        "%d samples lost to it",
                        seg,
                        c,
                        behind,
                    )
                self._lost[seg] = info
                lost_changed = True
            (self._wal_dir / wal.segment_name(seg)).unlink(missing_ok=True)
            del self._segments[seg]
            self.stats_.wal_segments_deleted += 1
        if lost_changed or self._lost:
            self._save_lost()

    def _save_lost(self) -> None:
        """Persist the sample counts of deleted segments a consumer had not read yet."""
        floor = min((p.segment for p in self._consumers.values()), default=None)
        before = len(self._lost)
        if floor is None:
            self._lost.clear()
        else:
            for seg in [s for s in self._lost if s < floor]:
                del self._lost[seg]
        doc = {str(s): {"marks": i.marks, "cum": i.cum} for s, i in self._lost.items()}
        if doc or before:
            write_json(self._feed_dir / "lost.json", doc)

    # -- Querier ----------------------------------------------------------------------------

    def select(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> Iterable[SeriesData]:
        with self._lock:
            # In label order, so the result needs no sort of label tuples.
            sids = self._index.in_label_order(self._index.select(matchers))
            labels_of = self._index.labels
            head_parts: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
            head_get = self._head.get
            for sid in sids:
                hs = head_get(sid)
                if hs is not None and hs.first_t <= maxt and hs.last_t >= mint:
                    t, v = hs.window(mint, maxt)
                    if len(t):
                        head_parts[sid] = (t, v)
            labels = [labels_of(sid) for sid in sids]
            blocks = [b for b in self._blocks if b.overlaps(mint, maxt)]
        # Blocks are immutable: read them without holding up appends.
        parts: dict[int, list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]] = {}
        for b in blocks:
            for sid, tv in b.read(sids, mint, maxt).items():
                parts.setdefault(sid, []).append(tv)
        for sid, tv in head_parts.items():
            parts.setdefault(sid, []).append(tv)
        # Blocks are cut from the head at aligned, disjoint ranges, so pieces simply follow
        # each other; only blocks that overlap (never written by this store) need a merge.
        disjoint = all(a.maxt <= b.mint for a, b in itertools.pairwise(blocks))
        out: list[SeriesData] = []
        for sid, lbls in zip(sids, labels):
            pieces = parts.get(sid)
            if not pieces:
                continue
            if len(pieces) == 1:
                t, v = pieces[0]
            else:
                t = np.concatenate([p[0] for p in pieces])
                v = np.concatenate([p[1] for p in pieces])
                if not disjoint and not bool(np.all(t[1:] > t[:-1])):
                    t, first = np.unique(t, return_index=True)  # keep the first of each t
                    v = v[first]
            out.append(SeriesData(lbls, t, v))
        return out

    def _sids_in_window(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[int]:
        with self._lock:
            sids = self._index.select(matchers)
            in_blocks: set[int] = set()
            for b in self._blocks:
                if b.overlaps(mint, maxt):
                    in_blocks |= b.sids_with_data(sids, mint, maxt)
            found = []
            for sid in sids:
                hs = self._head.get(sid)
                if sid in in_blocks or (
                    hs is not None and len(hs) and hs.first_t <= maxt and hs.last_t >= mint
                ):
                    found.append(sid)
            return found

    def label_names(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[str]:
        names: set[str] = set()
        with self._lock:
            for sid in self._sids_in_window(matchers, mint, maxt):
                names.update(n for n, _ in self._index.labels(sid))
        return sorted(names)

    def label_values(
        self, name: str, matchers: Sequence[Matcher], mint: int, maxt: int
    ) -> list[str]:
        values: set[str] = set()
        with self._lock:
            for sid in self._sids_in_window(matchers, mint, maxt):
                for n, v in self._index.labels(sid):
                    if n == name:
                        values.add(v)
        return sorted(values)

    def series(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[Labels]:
        with self._lock:
            return sorted(
                self._index.labels(sid) for sid in self._sids_in_window(matchers, mint, maxt)
            )

    def exemplars(
        self, matchers: Sequence[Matcher], mint: int, maxt: int
    ) -> list[tuple[Labels, list[Exemplar]]]:
        with self._lock:
            wanted = set(self._index.select(matchers))
            grouped: dict[int, list[Exemplar]] = {}
            for sid, ex in self._exemplars:
                if sid in wanted and mint <= ex.timestamp <= maxt:
                    grouped.setdefault(sid, []).append(ex)
            result = [
                (self._index.labels(sid), sorted(exs, key=lambda e: e.timestamp))
                for sid, exs in grouped.items()
                if self._index.get_labels(sid) is not None
            ]
        result.sort(key=lambda item: item[0])
        return result

    def metadata(self) -> dict[str, list[MetricMetadata]]:
        with self._lock:
            return {name: [m] for name, m in sorted(self._metadata.items())}

    # -- ChangeFeed -------------------------------------------------------------------------

    def _consumer_path(self, consumer: str) -> Path:
        if not _CONSUMER_NAME.match(consumer):
            raise ValueError(f"invalid feed consumer name {consumer!r}")
        return self._feed_dir / f"consumer-{consumer}.json"

    def _load_feed_state(self) -> None:
        for p in self._feed_dir.glob("consumer-*.json"):
            doc = read_json(p)
            name = p.name[len("consumer-") : -len(".json")]
            if isinstance(doc, dict) and "segment" in doc and "offset" in doc:
                self._consumers[name] = FeedPosition(int(doc["segment"]), int(doc["offset"]))
        lost = read_json(self._feed_dir / "lost.json") or {}
        for key, doc in lost.items():
            info = SegmentInfo(int(key), marks=list(doc["marks"]), cum=list(doc["cum"]))
            self._lost[info.index] = info

    def _first_position(self) -> FeedPosition:
        first = min(self._segments, default=self._writer.index if self._writer else 1)
        return FeedPosition(first, 0)

    def register(self, consumer: str) -> FeedPosition:
        path = self._consumer_path(consumer)
        with self._lock:
            pos = self._consumers.get(consumer)
            if pos is None:
                pos = self._first_position()
                self._consumers[consumer] = pos
                write_json(path, {"segment": pos.segment, "offset": pos.offset})
            return pos

    def unregister(self, consumer: str) -> None:
        """Forget a consumer (a removed forwarding target) so it no longer pins the WAL."""
        path = self._consumer_path(consumer)
        with self._lock:
            self._consumers.pop(consumer, None)
            path.unlink(missing_ok=True)

    def rename_consumer(self, old: str, new: str) -> bool:
        """Carry ``old``'s position over to ``new`` (a forwarding target's name changed);
        False when ``old`` is unknown. Should ``new`` exist too (a crash half-way through a
        rename), the earlier position wins: re-sending beats losing."""
        old_path, new_path = self._consumer_path(old), self._consumer_path(new)
        with self._lock:
            pos = self._consumers.get(old)
            if pos is None:
                return False
            existing = self._consumers.get(new)
            if existing is not None and existing < pos:
                pos = existing
            write_json(new_path, {"segment": pos.segment, "offset": pos.offset})
            self._consumers[new] = pos
            del self._consumers[old]
            old_path.unlink(missing_ok=True)
            return True

    def acknowledge(self, consumer: str, position: FeedPosition) -> None:
        path = self._consumer_path(consumer)
        with self._lock:
            current = self._consumers.get(consumer)
            if current is not None and position < current:
                return
            self._consumers[consumer] = position
            write_json(path, {"segment": position.segment, "offset": position.offset})

    def end(self) -> FeedPosition:
        with self._lock:
            if self._writer is None:
                return self._first_position()
            return FeedPosition(self._writer.index, self._writer.size)

    def state_dir(self) -> Path:
        """Where feed consumers keep their own progress files: inside the data directory, so
        they go wherever the WAL they describe goes."""
        return self.path / "forward"

    def samples_after(self, position: FeedPosition) -> int:
        """How many samples were appended after ``position`` (a forwarder's backlog)."""
        with self._lock:
            return _samples_after(self._segments, position)

    def _lost_after(self, position: FeedPosition) -> int:
        return _samples_after(self._lost, position)

    def read(self, position: FeedPosition, max_samples: int) -> FeedBatch:
        with self._lock:
            end = self.end()
            segments = sorted(self._segments)
            labels_of = self._ref_labels
        if end < position:
            # Past the end of the log (only a damaged or replaced WAL does that): the consumer
            # is caught up with everything there is.
            log.warning(
                "feed position %s is past the end of the WAL %s; using the end", position, end
            )
            return FeedBatch([], end)
        if position == end:
            return FeedBatch([], position)
        skipped = 0
        if position.segment not in self._segments:
            following = [s for s in segments if s > position.segment]
            with self._lock:
                skipped = self._lost_after(position)
            position = FeedPosition(following[0], 0) if following else end
        refs_parts: list[npt.NDArray[np.uint64]] = []
        ts_parts: list[npt.NDArray[np.int64]] = []
        val_parts: list[npt.NDArray[np.float64]] = []
        exemplars: list[tuple[Labels, Exemplar]] = []
        count = 0
        seg, offset = position.segment, position.offset
        while True:
            stop = end.offset if seg == end.segment else None
            records, at_end, corrupt = self._read_records(seg, offset, stop)
            for rec in records:
                if rec.type in wal.SAMPLE_TYPES:
                    try:
                        refs, ts, vals = wal.decode_sample_record(rec)
                    except wal.CorruptRecordError as e:
                        log.error("feed: WAL segment %d offset %d: %s", seg, rec.offset, e)
                        offset = rec.end
                        continue
                    refs_parts.append(refs)
                    ts_parts.append(ts)
                    val_parts.append(vals)
                    count += len(refs)
                elif rec.type == wal.RecordType.EXEMPLARS:
                    try:
                        items = wal.decode_exemplars(rec.payload)
                    except wal.CorruptRecordError as e:
                        log.error("feed: WAL segment %d offset %d: %s", seg, rec.offset, e)
                        offset = rec.end
                        continue
                    # Counted like samples, so a run of exemplar-only writes still makes
                    # bounded batches.
                    count += len(items)
                    for ref, ex in items:
                        labels = labels_of.get(ref)
                        if labels is None:
                            log.error(
                                "feed: series ref %d has no labels; skipping an exemplar", ref
                            )
                            continue
                        exemplars.append((labels, ex))
                offset = rec.end
                if count >= max_samples:
                    break
            if count >= max_samples or seg == end.segment:
                break
            if not at_end:
                continue
            if corrupt is not None:
                log.error("feed: %s in WAL segment %d; skipping the rest of it", corrupt, seg)
            following = [s for s in segments if s > seg]
            if not following:
                break
            seg, offset = following[0], 0
        batch = self._group(labels_of, refs_parts, ts_parts, val_parts)
        return FeedBatch(batch, FeedPosition(seg, offset), skipped, exemplars)

    def _read_records(
        self, seg: int, offset: int, stop: int | None
    ) -> tuple[list[wal.Record], bool, str | None]:
        """Records of segment ``seg`` from ``offset``, a few MiB at a time.

        Returns (records, whether the segment's readable end was reached, corruption if any).
        """
        path = self._wal_dir / wal.segment_name(seg)
        try:
            available = path.stat().st_size if stop is None else stop
        except FileNotFoundError:
            return [], True, "segment deleted"
        limit = _FEED_READ_BYTES
        while True:
            read_to = min(available, max(offset, len(wal.MAGIC)) + limit)
            try:
                res = wal.read_segment(path, offset, read_to)
            except FileNotFoundError:
                return [], True, "segment deleted"
            if read_to >= available:
                return res.records, True, res.corrupt
            if res.records:
                return res.records, False, None
            if res.corrupt is not None and not res.corrupt.startswith("torn"):
                return [], True, res.corrupt
            limit *= 4  # one record larger than the read window: widen it

    @staticmethod
    def _group(
        labels_of: dict[int, Labels],
        refs_parts: list[npt.NDArray[np.uint64]],
        ts_parts: list[npt.NDArray[np.int64]],
        val_parts: list[npt.NDArray[np.float64]],
    ) -> list[SeriesData]:
        if not refs_parts:
            return []
        refs = np.concatenate(refs_parts)
        ts = np.concatenate(ts_parts)
        vals = np.concatenate(val_parts)
        order = np.argsort(refs, kind="stable")
        refs, ts, vals = refs[order], ts[order], vals[order]
        starts = np.flatnonzero(np.r_[True, refs[1:] != refs[:-1]])
        ends = np.r_[starts[1:], len(refs)]
        out = []
        for lo, hi in zip(starts.tolist(), ends.tolist()):
            labels = labels_of.get(int(refs[lo]))
            if labels is None:
                log.error("feed: series ref %d has no labels; skipping its samples", refs[lo])
                continue
            out.append(SeriesData(labels, ts[lo:hi].copy(), vals[lo:hi].copy()))
        return out

    # -- stats ------------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        with self._lock:
            s = self.stats_
            s.series = len(self._index)
            s.head_series = len(self._head)
            s.head_samples = sum(len(hs) for hs in self._head.values())
            s.wal_segments = len(self._segments)
            s.wal_bytes = sum(i.size for i in self._segments.values())
            s.blocks = len(self._blocks)
            s.blocks_bytes = sum(b.nbytes for b in self._blocks)
            s.block_samples = sum(b.samples for b in self._blocks)
            return StoreStats(**vars(s))
