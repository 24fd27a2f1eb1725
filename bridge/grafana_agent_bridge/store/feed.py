"""The change feed: everything appended, read back from the WAL in append order from a
persisted per-consumer position (what ``forward/`` reads; Prometheus's remote-write watcher
tails the WAL the same way).

It owns the consumers' positions (``feed/consumer-<name>.json``) and the record of what
retention deleted before a consumer read it (``feed/lost.json``), so a consumer learns how much
it missed. Series labels come from the head's ref -> labels map, shared by reference.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..histogram.model import FloatHistogram
from ..labels import Labels
from ..storage import Exemplar, FeedBatch, FeedPosition, SeriesData
from . import histsamples, wal
from .state import read_json, write_json
from .stats import StoreStats
from .wlog import SegmentInfo, WriteAheadLog, samples_after

log = logging.getLogger(__name__)

_CONSUMER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


class Feed:
    """The ``ChangeFeed`` of a store; every method takes the store's lock itself."""

    def __init__(
        self,
        feed_dir: Path,
        wal_log: WriteAheadLog,
        labels_of: dict[int, Labels],
        lock: threading.RLock,
        stats: StoreStats,
    ) -> None:
        self.dir = feed_dir
        self._wal = wal_log
        self._labels_of = labels_of
        self._lock = lock
        self._stats = stats
        self.consumers: dict[str, FeedPosition] = {}
        self._lost: dict[int, SegmentInfo] = {}
        self._lost_changed = False

    def load(self) -> None:
        for p in self.dir.glob("consumer-*.json"):
            doc = read_json(p)
            name = p.name[len("consumer-") : -len(".json")]
            if isinstance(doc, dict) and "segment" in doc and "offset" in doc:
                self.consumers[name] = FeedPosition(int(doc["segment"]), int(doc["offset"]))
        lost = read_json(self.dir / "lost.json") or {}
        for key, doc in lost.items():
            info = SegmentInfo(int(key), marks=list(doc["marks"]), cum=list(doc["cum"]))
            self._lost[info.index] = info

    def _consumer_path(self, consumer: str) -> Path:
        if not _CONSUMER_NAME.match(consumer):
            raise ValueError(f"invalid feed consumer name {consumer!r}")
        return self.dir / f"consumer-{consumer}.json"

    # -- consumers --------------------------------------------------------------------------

    def register(self, consumer: str) -> FeedPosition:
        path = self._consumer_path(consumer)
        with self._lock:
            pos = self.consumers.get(consumer)
            if pos is None:
                pos = self._wal.first_position()
                self.consumers[consumer] = pos
                write_json(path, {"segment": pos.segment, "offset": pos.offset})
            return pos

    def unregister(self, consumer: str) -> None:
        path = self._consumer_path(consumer)
        with self._lock:
            self.consumers.pop(consumer, None)
            path.unlink(missing_ok=True)

    def rename_consumer(self, old: str, new: str) -> bool:
        old_path, new_path = self._consumer_path(old), self._consumer_path(new)
        with self._lock:
            pos = self.consumers.get(old)
            if pos is None:
                return False
            existing = self.consumers.get(new)
            if existing is not None and existing < pos:
                pos = existing
            write_json(new_path, {"segment": pos.segment, "offset": pos.offset})
            self.consumers[new] = pos
            del self.consumers[old]
            old_path.unlink(missing_ok=True)
            return True

    def acknowledge(self, consumer: str, position: FeedPosition) -> None:
        path = self._consumer_path(consumer)
        with self._lock:
            current = self.consumers.get(consumer)
            if current is not None and position < current:
                return
            self.consumers[consumer] = position
            write_json(path, {"segment": position.segment, "offset": position.offset})

    def end(self) -> FeedPosition:
        with self._lock:
            return self._wal.end()

    def samples_after(self, position: FeedPosition) -> int:
        with self._lock:
            return samples_after(self._wal.segments, position)

    # -- what WAL truncation takes from consumers -------------------------------------------

    def waiting_for(self, seg: int) -> list[str]:
        """Consumers that have not read all of segment ``seg`` yet."""
        return [c for c, p in self.consumers.items() if p.segment <= seg]

    def lose(self, seg: int, info: SegmentInfo) -> None:
        """Segment ``seg`` goes before every consumer read it: count and log what each missed,
        and remember it so ``read`` can report the gap."""
        for c in self.waiting_for(seg):
            pos = self.consumers[c]
            behind = info.samples - (info.samples_before(pos.offset) if pos.segment == seg else 0)
            self._stats.feed_samples_lost += behind
            log.warning(
                "retention removes WAL segment %d before feed consumer %s read it: "
                "%d samples lost to it",
                seg,
                c,
                behind,
            )
        self._lost[seg] = info
        self._lost_changed = True

    def save_losses(self) -> None:
        """Persist the sample counts of deleted segments a consumer had not read yet."""
        if not (self._lost_changed or self._lost):
            return
        self._lost_changed = False
        floor = min((p.segment for p in self.consumers.values()), default=None)
        before = len(self._lost)
        if floor is None:
            self._lost.clear()
        else:
            for seg in [s for s in self._lost if s < floor]:
                del self._lost[seg]
        doc = {str(s): {"marks": i.marks, "cum": i.cum} for s, i in self._lost.items()}
        if doc or before:
            write_json(self.dir / "lost.json", doc)

    # -- reading ----------------------------------------------------------------------------

    def read(self, position: FeedPosition, max_samples: int) -> FeedBatch:
        with self._lock:
            end = self._wal.end()
            segments = sorted(self._wal.segments)
            labels_of = self._labels_of
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
        if position.segment not in self._wal.segments:
            following = [s for s in segments if s > position.segment]
            with self._lock:
                skipped = samples_after(self._lost, position)
            position = FeedPosition(following[0], 0) if following else end
        refs_parts: list[npt.NDArray[np.uint64]] = []
        ts_parts: list[npt.NDArray[np.int64]] = []
        val_parts: list[npt.NDArray[np.float64]] = []
        exemplars: list[tuple[Labels, Exemplar]] = []
        hists: dict[tuple[int, int], FloatHistogram] = {}
        count = 0
        seg, offset = position.segment, position.offset
        while True:
            stop = end.offset if seg == end.segment else None
            records, at_end, corrupt = self._wal.read_records(seg, offset, stop)
            for rec in records:
                if rec.type in wal.SAMPLE_TYPES:
                    try:
                        refs, ts, vals = wal.decode_sample_record(rec)
                        found = wal.decode_record_histograms(rec, vals)
                    except wal.CorruptRecordError as e:
                        log.error("feed: WAL segment %d offset %d: %s", seg, rec.offset, e)
                        offset = rec.end
                        continue
                    refs_parts.append(refs)
                    ts_parts.append(ts)
                    val_parts.append(vals)
                    count += len(refs)
                    if found:
                        mask = histsamples.hist_mask(vals)
                        keys = zip(refs[mask].tolist(), ts[mask].tolist())
                        hists.update(zip(keys, found))
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
        batch = _group(labels_of, refs_parts, ts_parts, val_parts, hists)
        return FeedBatch(batch, FeedPosition(seg, offset), skipped, exemplars)


def _group(
    labels_of: dict[int, Labels],
    refs_parts: list[npt.NDArray[np.uint64]],
    ts_parts: list[npt.NDArray[np.int64]],
    val_parts: list[npt.NDArray[np.float64]],
    hists: dict[tuple[int, int], FloatHistogram],
) -> list[SeriesData]:
    """Samples regrouped by series (one stable sort keeps each series' append order)."""
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
        t, v = ts[lo:hi].copy(), vals[lo:hi].copy()
        h = None
        if hists:
            ref = int(refs[lo])
            h = histsamples.aligned(t, v, lambda at, ref=ref: hists.get((ref, at)))
        out.append(SeriesData(labels, t, v, h))
    return out
