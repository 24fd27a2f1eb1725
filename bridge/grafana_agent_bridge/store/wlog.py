"""The write-ahead log as a part of the store: its segments, the checkpoint that opens each one,
replay with repair on open, and reading records back for the change feed (Prometheus keeps
the same jobs in ``tsdb/wlog`` and the head's checkpointing).

The record format and its codecs are in ``wal.py``; this module decides which records an append
writes, in what order, and what the store remembers of every retained segment. It knows nothing
of the head: replay hands decoded records to a ``ReplayTarget`` and a checkpoint asks a
callback for the live series and metadata. Callers hold the store's lock.

Native histogram samples travel in the samples record itself (``wal.RecordType.SAMPLES_HIST``:
markers in the value column, the histograms after the columns, see ``histsamples``), so
``SegmentInfo`` counts them like any other sample and replay hands them over per segment.
"""

from __future__ import annotations

import logging
import os
import threading
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ..histogram.model import FloatHistogram
from ..labels import Labels
from ..storage import Exemplar, FeedPosition, MetricMetadata
from . import histsamples, wal
from .errors import NewerFormatError
from .memseries import NO_TIMESTAMP
from .progress import OpenProgress
from .stats import StoreStats

log = logging.getLogger(__name__)

_FEED_READ_BYTES = 4 * 1024 * 1024
"""How much of a segment one feed read looks at (widened for a record larger than this)."""

Columns = tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64], npt.NDArray[np.float64]]
"""Float samples as (series refs, timestamps, values)."""
Checkpoint = Callable[[], tuple[Sequence[tuple[int, Labels]], Sequence[MetricMetadata]]]
"""Returns the head's live series and the metadata, written at the start of every segment."""


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


def samples_after(segments: dict[int, SegmentInfo], position: FeedPosition) -> int:
    """Samples recorded in ``segments`` after ``position`` (a backlog, or what was lost)."""
    total = 0
    for seg, info in segments.items():
        if seg > position.segment:
            total += info.samples
        elif seg == position.segment:
            total += info.samples - info.samples_before(position.offset)
    return total


@dataclass
class WalBatch:
    """What one append logs, in the order it is written: new series first (their refs must
    resolve on replay), then samples, exemplars and changed metadata."""

    series: Sequence[tuple[int, Labels]] = ()
    refs: npt.NDArray[np.uint64] = field(default_factory=lambda: np.empty(0, np.uint64))
    ts: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    values: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0, np.float64))
    max_t: int = NO_TIMESTAMP
    """Newest timestamp in ``ts`` (the caller has it already)."""
    exemplars: Sequence[tuple[int, Exemplar]] = ()
    metadata: Sequence[MetricMetadata] = ()
    hists: Sequence[FloatHistogram] = ()
    """The histogram of each marker in ``values``, in order."""
    hist_wire: Sequence[bytes | None] = ()
    """Empty, or beside ``hists``: the serialized form each arrived in, where known."""


HistEntries = list[tuple[int, int, FloatHistogram]]
"""Histogram samples as (series ref, timestamp, histogram)."""


class ReplayTarget(Protocol):
    """Where replay sends what it decodes (the head). Samples come per segment, all at once."""

    def replay_series(self, series: list[tuple[int, Labels]]) -> None: ...

    def replay_samples(
        self,
        refs: npt.NDArray[np.uint64],
        ts: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> None: ...

    def replay_histograms(self, items: HistEntries) -> None:
        """After ``replay_samples`` of the same segment: the histograms of its markers."""
        ...

    def replay_exemplars(self, items: list[tuple[int, Exemplar]]) -> None: ...

    def replay_metadata(self, items: list[MetricMetadata]) -> None: ...


class WriteAheadLog:
    """The retained segments of ``wal_dir`` and the one open for appends."""

    def __init__(
        self, wal_dir: Path, segment_bytes: int, stats: StoreStats, checkpoint: Checkpoint
    ) -> None:
        self.dir = wal_dir
        self.segment_bytes = segment_bytes
        self.segments: dict[int, SegmentInfo] = {}
        self._stats = stats
        self._checkpoint = checkpoint
        self._writer: wal.SegmentWriter | None = None
        self._syncs: list[threading.Thread] = []
        self._checkpoint_due = False
        self._series_encoder = wal.SeriesEncoder()
        self._checkpoint_bytes = 0
        """Size of the checkpoint that opens the current segment (not counted against
        ``segment_bytes``)."""

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    @property
    def current(self) -> int | None:
        """The index of the segment appends go to."""
        return self._writer.index if self._writer is not None else None

    def nbytes(self) -> int:
        return sum(i.size for i in self.segments.values())

    # -- replay and repair ------------------------------------------------------------------

    def replay(self, target: ReplayTarget, progress: OpenProgress) -> None:
        """Read every segment into ``target``, cutting off (or removing) damaged tails."""
        segments = wal.list_segments(self.dir)
        sizes = [(self.dir / wal.segment_name(seg)).stat().st_size for seg in segments]
        progress.start("wal", sum(sizes))
        replayed = 0
        for i, seg in enumerate(segments):
            path = self.dir / wal.segment_name(seg)
            detail = f"segment {i + 1} of {len(segments)}, {self._stats.replay_samples} samples"
            progress.advance(replayed, detail)
            try:
                res = wal.read_segment(path)
            except NewerFormatError as e:
                raise e.at(f"WAL segment {path}") from None
            info = SegmentInfo(seg)
            parts: list[Columns] = []
            hists: HistEntries = []
            corrupt = res.corrupt
            good_end = res.good_end
            for rec in res.records:
                progress.advance(replayed + rec.offset, detail)
                try:
                    self._replay_record(rec, info, parts, hists, target)
                except wal.CorruptRecordError as e:
                    corrupt = f"undecodable record at offset {rec.offset}: {e}"
                    good_end = rec.offset
                    break
            replayed += sizes[i]
            if corrupt is not None:
                self._repair(path, good_end, corrupt)
                if good_end == 0:
                    continue
            info.size = good_end
            self.segments[seg] = info
            if parts:
                target.replay_samples(
                    np.concatenate([p[0] for p in parts]),
                    np.concatenate([p[1] for p in parts]),
                    np.concatenate([p[2] for p in parts]),
                )
            if hists:
                target.replay_histograms(hists)
        self._stats.wal_segments = len(self.segments)
        progress.finish()

    @staticmethod
    def _replay_record(
        rec: wal.Record,
        info: SegmentInfo,
        parts: list[Columns],
        hists: HistEntries,
        target: ReplayTarget,
    ) -> None:
        if rec.type in wal.SERIES_TYPES:
            target.replay_series(wal.decode_series_record(rec))
        elif rec.type in wal.SAMPLE_TYPES:
            refs, ts, values = wal.decode_sample_record(rec)
            found = wal.decode_record_histograms(rec, values)
            if found:
                mask = histsamples.hist_mask(values)
                hists.extend(zip(refs[mask].tolist(), ts[mask].tolist(), found))
            if len(refs):
                info.add(rec.offset, len(refs), int(ts.max()))
                parts.append((refs, ts, values))
        elif rec.type == wal.RecordType.METADATA:
            target.replay_metadata(wal.decode_metadata(rec.payload))
        elif rec.type == wal.RecordType.EXEMPLARS:
            target.replay_exemplars(wal.decode_exemplars(rec.payload))

    def _repair(self, path: Path, good_end: int, why: str) -> None:
        size = path.stat().st_size
        dropped = size - good_end
        self._stats.wal_corruptions += 1
        self._stats.wal_bytes_dropped += dropped
        self._stats.wal_records_dropped += 1
        if good_end == 0:
            log.error("WAL segment %s is unreadable (%s): removed it (%d bytes)", path, why, size)
            path.unlink()
            return
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

    # -- writing ----------------------------------------------------------------------------

    def start_segment(self) -> None:
        """Open the next segment and hand the finished one to a background fsync.

        A segment begins with a checkpoint of the head's series and the metadata, so it can be
        read without its predecessors (which retention or the feed may delete). If that write
        fails (disk full) the checkpoint stays due and goes in front of the next append.
        The checkpoint does not count against ``segment_bytes``: once a big head's checkpoint
        outgrew a segment, every append opened a new one (500,000 series wrote 4.3 GB of WAL,
        nearly all checkpoints, and replaying it took over 10 minutes).
        """
        index = max(self._writer.index if self._writer else 0, max(self.segments, default=0)) + 1
        new = wal.SegmentWriter(self.dir, index, create=True)
        old, self._writer = self._writer, new
        self.segments[index] = SegmentInfo(index, size=new.size)
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
        self._stats.wal_segments = len(self.segments)

    def _checkpoint_records(self) -> bytes:
        series, metadata = self._checkpoint()
        records = []
        if series:
            payload = self._series_encoder.encode(series)
            records.append(wal.series_record(payload))
        if metadata:
            payload = wal.encode_metadata(list(metadata))
            records.append(wal.encode_record(wal.RecordType.METADATA, payload))
        return b"".join(records)

    def write_checkpoint(self) -> None:
        assert self._writer is not None
        try:
            data = self._checkpoint_records()
            if data:
                self.segments[self._writer.index].size = self._writer.write(data)[1]
            self._checkpoint_due = False
            self._checkpoint_bytes = len(data)
        except OSError as e:
            log.error("cannot write the WAL checkpoint yet (%s); the next append retries", e)

    def _encode(self, batch: WalBatch) -> tuple[list[bytes], int]:
        """The records of ``batch``, and the offset of its samples record among them."""
        records: list[bytes] = []
        if batch.series:
            payload = self._series_encoder.encode(batch.series)
            records.append(wal.series_record(payload))
        samples_offset = sum(len(r) for r in records)
        if len(batch.refs):
            records.append(
                wal.encode_samples_record(
                    batch.refs, batch.ts, batch.values, batch.hists, batch.hist_wire
                )
            )
        if batch.exemplars:
            payload = wal.encode_exemplars(batch.exemplars)
            records.append(wal.encode_record(wal.RecordType.EXEMPLARS, payload))
        if batch.metadata:
            payload = wal.encode_metadata(batch.metadata)
            records.append(wal.encode_record(wal.RecordType.METADATA, payload))
        return records, samples_offset

    def log(self, batch: WalBatch) -> bool:
        """Write ``batch`` to the OS (it then survives ``kill -9``); False if it held nothing.

        Raises ``OSError`` (disk full, ...) with nothing of the batch written."""
        assert self._writer is not None
        records, samples_offset = self._encode(batch)
        if not records:
            return False
        data = b"".join(records)
        # The segment's own data, without the checkpoint that opens it.
        own = self._writer.size - self._checkpoint_bytes
        if own > len(wal.MAGIC) and own + len(data) > self.segment_bytes:
            self.start_segment()
        prefix = self._checkpoint_records() if self._checkpoint_due else b""
        start, end = self._writer.write(prefix + data)
        if prefix:
            self._checkpoint_bytes = len(prefix)
        self._checkpoint_due = False
        info = self.segments[self._writer.index]
        info.size = end
        if len(batch.refs):
            info.add(start + len(prefix) + samples_offset, len(batch.refs), batch.max_t)
        return True

    def close(self) -> None:
        """Wait for the background fsyncs, then fsync and close the open segment."""
        for t in self._syncs:
            t.join()
        if self._writer is not None:
            self._writer.close(sync=True)
            self._writer = None

    def delete_segment(self, seg: int) -> None:
        (self.dir / wal.segment_name(seg)).unlink(missing_ok=True)
        del self.segments[seg]
        self._stats.wal_segments_deleted += 1

    # -- reading for the feed ---------------------------------------------------------------

    def first_position(self) -> FeedPosition:
        first = min(self.segments, default=self._writer.index if self._writer else 1)
        return FeedPosition(first, 0)

    def end(self) -> FeedPosition:
        if self._writer is None:
            return self.first_position()
        return FeedPosition(self._writer.index, self._writer.size)

    def read_records(
        self, seg: int, offset: int, stop: int | None
    ) -> tuple[list[wal.Record], bool, str | None]:
        """Records of segment ``seg`` from ``offset``, a few MiB at a time (no lock needed:
        records before the end are never rewritten).

        Returns (records, whether the segment's readable end was reached, corruption if any).
        """
        path = self.dir / wal.segment_name(seg)
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
