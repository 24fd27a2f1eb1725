"""Compaction and retention: cutting blocks from the head, deleting what retention gives up
and truncating the WAL behind them (Prometheus's ``compact.go`` plus the DB's reload and
retention), on a background thread or on demand.

Lock order: ``Compactor``'s own lock (one compaction at a time) is taken first, then the
store's lock, held only for the short steps that read or swap state; writing a block's files
happens without the store's lock, so appends and queries carry on meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .block import write_block
from .blockset import BlockSet
from .feed import Feed
from .head import NO_MIN, Head
from .options import StoreOptions
from .state import write_json
from .stats import StoreStats
from .wlog import WriteAheadLog

log = logging.getLogger(__name__)


class Compactor:
    def __init__(
        self,
        path: Path,
        options: StoreOptions,
        lock: threading.RLock,
        parts: tuple[Head, BlockSet, WriteAheadLog, Feed],
        *,
        stats: StoreStats,
        closed: Callable[[], bool],
    ) -> None:
        self._path = path
        self._options = options
        self._lock = lock
        self._head, self._blocks, self._wal, self._feed = parts
        self._stats = stats
        self._closed = closed
        self._compact_lock = threading.Lock()
        self._wanted = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the background thread --------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="store-compactor", daemon=True)
        self._thread.start()
        self._wanted.set()

    def stop(self) -> None:
        """Wake the thread so it sees the store closed, and wait for it."""
        self._wanted.set()
        if self._thread is not None:
            self._thread.join()

    def maybe_compact(self) -> None:
        """Wake the background compactor if the head spans enough time to cut a block."""
        if self._thread is not None and self._due(force=False):
            self._wanted.set()

    def _loop(self) -> None:
        while True:
            # Also wake up now and then without appends: retention and WAL truncation (after
            # a feed consumer acknowledged) must not wait for the next block to be due.
            self._wanted.wait(self._options.housekeeping_interval_s)
            self._wanted.clear()
            if self._closed():
                return
            try:
                self.compact()
            except Exception:  # a failed compaction must not kill the daemon; retried later
                log.exception("compaction failed")

    # -- cutting blocks ---------------------------------------------------------------------

    def _due(self, *, force: bool) -> tuple[int, int] | None:
        """The block range ``[start, end)`` to cut next, or None."""
        with self._lock:
            head_min = self._head.min_t
            if head_min == NO_MIN:
                return None
            bd = self._options.block_duration_ms
            start = head_min - head_min % bd
            if force or self._head.max_t - start >= self._options.head_chunk_span * bd:
                return start, start + bd
            return None

    def compact(self, *, force: bool = False) -> int:
        """Cut due blocks from the head (all of it with ``force``), then apply retention and
        truncate the WAL. Returns the number of blocks written."""
        written = 0
        with self._compact_lock:
            while not self._closed() or force:
                due = self._due(force=force)
                if due is None:
                    break
                self._cut_block(*due)
                written += 1
            self._apply_retention()
        return written

    def _cut_block(self, start: int, end: int) -> None:
        began = time.monotonic()
        head = self._head
        with self._lock:
            # From now on older samples are "out of bounds": the range being cut is frozen.
            head.freeze_before(end)
            snapshot = head.snapshot(start, end)
        path = None
        if snapshot:
            path = write_block(
                self._blocks.dir,
                snapshot,
                start,
                end,
                group_samples=self._options.block_group_samples,
                level=self._options.zstd_level,
            )
        with self._lock:
            if path is not None:
                self._blocks.add(path, (head.index.add, head.index.labels))
            write_json(self._path / "head.json", {"min_valid_t": head.min_valid_t})
            head.truncate(end)
            self._stats.compactions += 1
            self._stats.compaction_seconds += time.monotonic() - began
        log.info(
            "cut block [%d, %d): %d series in %.2fs",
            start,
            end,
            len(snapshot),
            time.monotonic() - began,
        )

    # -- retention --------------------------------------------------------------------------

    def _disk_bytes(self) -> int:
        return self._blocks.nbytes() + self._wal.nbytes()

    def _apply_retention(self) -> None:
        opts = self._options
        with self._lock:
            blocks = self._blocks.blocks
            cutoff = self._blocks.newest_end(self._head.max_t) - opts.retention_time_ms
            doomed = [b for b in blocks if b.maxt <= cutoff]
            keep = [b for b in blocks if b.maxt > cutoff]
            if opts.retention_size_bytes:
                total = self._disk_bytes() - sum(b.nbytes for b in doomed)
                while keep and total > opts.retention_size_bytes:
                    total -= keep[0].nbytes
                    doomed.append(keep.pop(0))
            if doomed:
                self._blocks.delete(doomed)
                self._forget_unused_series()
            self._truncate_wal(cutoff)

    def _forget_unused_series(self) -> None:
        """Drop index entries of series left in neither the head nor any block."""
        used = set(self._head.series)
        for b in self._blocks:
            used.update(b.sids.tolist())
        index = self._head.index
        index.remove_all([s for s in index.all_ids() if s not in used])

    def _truncate_wal(self, cutoff: int) -> None:
        """Delete the oldest closed WAL segments whose samples are all in blocks and that no
        feed consumer still needs, or that retention forces out (consumers are told)."""
        wal_log = self._wal
        assert wal_log.current is not None
        limit = self._options.retention_size_bytes
        for seg in sorted(wal_log.segments):
            if seg == wal_log.current:
                break
            info = wal_log.segments[seg]
            if info.samples and info.max_t >= self._head.min_valid_t:
                break  # part of its data lives only in the head
            if self._feed.waiting_for(seg):
                expired = info.samples > 0 and info.max_t <= cutoff
                oversize = bool(limit) and self._disk_bytes() > limit
                if not (expired or oversize):
                    break
                self._feed.lose(seg, info)
            wal_log.delete_segment(seg)
        self._feed.save_losses()
