"""The embedded TSDB: the parts composed behind the Appender, Querier and ChangeFeed protocols.

``Store`` owns the data directory's lifecycle (its lock file, open with replay and repair,
close) and the order of locks, and delegates everything else to parts that own their state,
split as Prometheus splits ``tsdb``:

- ``wlog.WriteAheadLog``: segments, the checkpoint opening each, replay and repair;
- ``head.Head``: the label index, per-series samples, exemplars, metadata, time bounds;
  ``appender.HeadAppender`` holds the append rules that decide what a write may change;
- ``blockset.BlockSet`` and ``compact.Compactor``: immutable blocks, cutting them from the head,
  retention and WAL truncation;
- ``feed.Feed``: the change feed that forwarding consumes;
- ``querier.StoreQuerier``: reads over head and blocks.

Locks: ``Compactor``'s compaction lock, then ``Store._lock`` (an ``RLock`` shared by every
part; no part has a lock of its own). An append holds ``_lock`` from the rules to the commit,
so the WAL and the head never disagree about what was accepted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..labels import Labels, Matcher
from ..metrics import Registry
from ..storage import (
    Appender,
    AppendResult,
    ChangeFeed,
    Exemplar,
    FeedBatch,
    FeedPosition,
    ForwardSource,
    MetricMetadata,
    Querier,
    SeriesBatch,
    SeriesData,
    ShuttingDownError,
    StorageFullError,
)
from . import lockfile
from .appender import DETAILED_REJECTIONS, HeadAppender, RejectionLog
from .blockset import BlockSet
from .compact import Compactor
from .feed import Feed
from .head import Head
from .memseries import NO_TIMESTAMP
from .options import StoreOptions
from .progress import OpenProgress, progress_gauge
from .querier import StoreQuerier
from .state import read_json
from .stats import StoreStats
from .wlog import WriteAheadLog

__all__ = ["DETAILED_REJECTIONS", "Store", "StoreStats"]

log = logging.getLogger(__name__)


class Store:
    """An embedded TSDB. Use ``Store.open``; see the package docstring for the semantics."""

    def __init__(self, path: Path, options: StoreOptions) -> None:
        self.path = path
        self.options = options
        self._lock = threading.RLock()
        self._closed = False
        self._lock_fd = -1
        self._progress = OpenProgress()
        self.stats_ = StoreStats()
        self._head = Head(options.max_exemplars, self.stats_, options.block_duration_ms)
        self._appender = HeadAppender(self._head, options)
        self._wal = WriteAheadLog(
            path / "wal", options.wal_segment_bytes, self.stats_, self._head.checkpoint
        )
        self._feed = Feed(path / "feed", self._wal, self._head.ref_labels, self._lock, self.stats_)
        self._blocks = BlockSet(path / "blocks", options.block_cache_bytes, self.stats_)
        self._compactor = Compactor(
            path,
            options,
            self._lock,
            (self._head, self._blocks, self._wal, self._feed),
            stats=self.stats_,
            closed=lambda: self._closed,
        )
        self._querier = StoreQuerier(self._lock, self._head, self._blocks)

    # -- lifecycle --------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        options: StoreOptions | None = None,
        *,
        should_stop: Callable[[], bool] | None = None,
        registry: Registry | None = None,
    ) -> Store:
        """Open (creating if needed) the store in ``path``: replay and repair the WAL.

        Loading and replay log their progress; ``should_stop`` is polled throughout, and
        ``progress.OpenCancelledError`` is raised (the store released) as soon as it answers true.
        ``registry`` shows the progress as ``bridge_store_open_progress_ratio``.
        """
        store = cls(Path(path), options or StoreOptions())
        store._progress = OpenProgress(should_stop, gauge=progress_gauge(registry))
        store._open()
        return store

    def _open(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            self._load()
        except BaseException:
            self._blocks.close()
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
        for d in (self._wal.dir, self._feed.dir, self._blocks.dir):
            d.mkdir(parents=True, exist_ok=True)
        head = self._head
        state = read_json(self.path / "head.json") or {}
        head.min_valid_t = int(state.get("min_valid_t", NO_TIMESTAMP))
        self._feed.load()
        started = time.monotonic()
        self._blocks.load(self._progress)
        # Samples below the newest block's end are in blocks (a crash may have cut a block
        # without recording it in head.json): replay must not put them in the head again.
        head.min_valid_t = self._blocks.newest_end(head.min_valid_t)
        self._wal.replay(head, self._progress)
        head.finish_replay()
        self._blocks.bind((head.index.add, head.index.labels))
        self.stats_.replay_seconds = time.monotonic() - started
        log.info(
            "store opened: %d series, %d samples replayed from %d WAL segments in %.2fs",
            len(head.index),
            self.stats_.replay_samples,
            len(self._wal.segments),
            self.stats_.replay_seconds,
        )
        self._wal.start_segment()
        self._wal.write_checkpoint()
        if self.options.compact_automatically:
            self._compactor.start()

    def close(self) -> None:
        """Flush and fsync the WAL; later appends raise ``ShuttingDownError``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._compactor.stop()
        with self._lock:
            self._wal.close()
            self._blocks.close()
        self._release_lock()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Appender ---------------------------------------------------------------------------

    def append(
        self, series: Sequence[SeriesBatch], metadata: Sequence[MetricMetadata] = ()
    ) -> AppendResult:
        rejections = RejectionLog()
        with self._lock:
            if self._closed or not self._wal.is_open:
                raise ShuttingDownError("the store is closed")
            pending = self._appender.prepare(series, metadata, rejections)
            try:
                self._wal.log(pending.seal())
            except OSError as e:
                self._head.forget_ids(pending.added_ids)
                raise StorageFullError(f"cannot write the WAL: {e}") from e
            # The write is durable: apply it to the head.
            self._head.commit(pending)
            stats = self.stats_
            stats.samples_appended += pending.samples
            stats.samples_duplicate += pending.duplicates
            stats.samples_rejected += rejections.total()
            stats.exemplars_appended += len(pending.exemplars)
        if self.options.compact_automatically:
            self.maybe_compact()
        return AppendResult(
            accepted_samples=pending.samples + pending.duplicates,
            accepted_exemplars=len(pending.exemplars),
            accepted_histograms=len(pending.hists) + pending.histogram_duplicates,
            rejections=rejections,
        )

    # -- compaction and retention -----------------------------------------------------------

    def maybe_compact(self) -> None:
        """Wake the background compactor if the head spans enough time to cut a block."""
        self._compactor.maybe_compact()

    def compact(self, *, force: bool = False) -> int:
        """Cut due blocks from the head (all of it with ``force``), then apply retention and
        truncate the WAL. Returns the number of blocks written."""
        return self._compactor.compact(force=force)

    # -- Querier ----------------------------------------------------------------------------

    def select(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[SeriesData]:
        return self._querier.select(matchers, mint, maxt)

    def label_names(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[str]:
        return self._querier.label_names(matchers, mint, maxt)

    def label_values(
        self, name: str, matchers: Sequence[Matcher], mint: int, maxt: int
    ) -> list[str]:
        return self._querier.label_values(name, matchers, mint, maxt)

    def series(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[Labels]:
        return self._querier.series(matchers, mint, maxt)

    def exemplars(
        self, matchers: Sequence[Matcher], mint: int, maxt: int
    ) -> list[tuple[Labels, list[Exemplar]]]:
        return self._querier.exemplars(matchers, mint, maxt)

    def metadata(self) -> dict[str, list[MetricMetadata]]:
        return self._querier.metadata()

    # -- ChangeFeed -------------------------------------------------------------------------

    def register(self, consumer: str) -> FeedPosition:
        return self._feed.register(consumer)

    def unregister(self, consumer: str) -> None:
        """Forget a consumer (a removed forwarding target) so it no longer pins the WAL."""
        self._feed.unregister(consumer)

    def rename_consumer(self, old: str, new: str) -> bool:
        """Carry ``old``'s position over to ``new`` (a forwarding target's name changed);
        False when ``old`` is unknown. Should ``new`` exist too (a crash half-way through a
        rename), the earlier position wins: re-sending beats losing."""
        return self._feed.rename_consumer(old, new)

    def acknowledge(self, consumer: str, position: FeedPosition) -> None:
        self._feed.acknowledge(consumer, position)

    def end(self) -> FeedPosition:
        return self._feed.end()

    def state_dir(self) -> Path:
        """Where feed consumers keep their own progress files: inside the data directory, so
        they go wherever the WAL they describe goes."""
        return self.path / "forward"

    def samples_after(self, position: FeedPosition) -> int:
        """How many samples were appended after ``position`` (a forwarder's backlog)."""
        return self._feed.samples_after(position)

    def read(self, position: FeedPosition, max_samples: int) -> FeedBatch:
        return self._feed.read(position, max_samples)

    # -- stats ------------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        with self._lock:
            s = self.stats_
            s.series = len(self._head.index)
            s.head_series = len(self._head)
            s.head_samples = self._head.samples()
            s.wal_segments = len(self._wal.segments)
            s.wal_bytes = self._wal.nbytes()
            s.blocks = len(self._blocks)
            s.blocks_bytes = self._blocks.nbytes()
            s.block_samples = self._blocks.samples()
            return StoreStats(**vars(s))


if TYPE_CHECKING:

    def _contracts(store: Store, feed: Feed, querier: StoreQuerier) -> None:
        """Never called: makes the type checker prove the parts keep the storage contracts."""
        _: tuple[Appender, Querier, ForwardSource, ChangeFeed, Querier] = (
            store,
            store,
            store,
            feed,
            querier,
        )
