"""Forwarding to one upstream: a durable cursor, sharded parallel sends, exact resume.

Shape (after Prometheus's ``QueueManager``, with the local store in place of its WAL watcher)::

    feed.read ──► reader ──(series hash)──► shard 0..n-1 ──HTTP──► upstream
                     │                           │
                     └── progress mark ◄─────────┘   acker ──► feed.acknowledge (1/s)

- **Order.** A series always hashes to the same shard and a shard sends its requests one after
  another, so each series reaches the upstream in timestamp order while different series go
  in parallel.
- **Lockstep batches.** The reader hands one feed batch at a time to the shards and moves on
  only when every shard has finished its part, so "delivered" is always a single position.
  Before a batch goes out the reader notes (in a small file, no fsync: it has to survive
  ``kill -9``, not power loss) which batch is in flight; after it, that it is done.
- **Exact resume.** Receivers such as Prometheus reject a whole request when any sample in it
  is older than what they hold (400 "out of order"), so blindly re-sending delivered data
  after a crash would make them reject new data mixed into the same requests. After a crash
  the in-flight batch is therefore re-read exactly (same records, same shards, same requests)
  and re-sent on its own; each request then either was delivered before (the receiver answers
  400 or accepts the exact duplicate: counted, not dropped) or was not (it is delivered now).
  Everything before it is known delivered and skipped; everything after it was never sent.
- **Exemplars** come from the feed with the samples of the same records and travel on the
  same shard as their series, after its samples in the batch; they count towards
  ``max_samples_per_send`` like samples (as in Prometheus), so an exact resume rebuilds them too.
- **Memory.** One feed batch is held at a time; during an outage the backlog stays in the
  store, so memory does not grow with the outage's length.

Parts (each owns its state; ``TargetSender`` composes them and owns the threads, the lockstep
and the acknowledgements): ``reader`` (the feed, the exact re-read), ``batching`` (shards and
requests), ``delivery`` (one shard's retry loop), ``metadata`` (the periodic metadata sends),
``progress`` (the mark file and the resume point), ``catchup`` (the catch-up log lines);
the first three share a ``scope`` (the target's name, stats and stop signal).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import ForwardConfig, ForwardTarget, duration_ms
from ..redact import redact_url
from ..storage import FeedBatch, FeedPosition, ForwardSource, ShuttingDownError
from .batching import Sharder, ShardPart, plan_requests
from .catchup import CatchUpReport
from .client import RemoteWriteClient
from .delivery import ShardDelivery
from .metadata import METADATA_INTERVAL_S, MetadataSender
from .progress import Mark, ProgressFile, consumer_name
from .reader import FeedReader
from .scope import TargetScope
from .stats import ForwardStats

log = logging.getLogger(__name__)


@dataclass
class _Batch:
    """One feed batch on its way upstream."""

    start: FeedPosition
    next_position: FeedPosition
    samples: int
    min_t: int
    remaining: int
    """Shard parts not yet finished (delivered, rejected, or found delivered before)."""
    resume: bool = False
    """Re-sent after an unclean stop: a 400 means "already delivered", not a drop."""


class TargetSender:
    def __init__(
        self,
        feed: ForwardSource,
        target: ForwardTarget,
        config: ForwardConfig,
        stats: ForwardStats,
        *,
        shards: int = 4,
        ack_interval_s: float = 1.0,
        poll_interval_s: float = 0.05,
        metadata_interval_s: float = METADATA_INTERVAL_S,
        state_dir: Path | None = None,
    ) -> None:
        self.target = target
        self.consumer = consumer_name(target)
        self._feed = feed
        self._stats = stats
        self._label = label = target.name
        self._shards = shards
        self._per_send = config.max_samples_per_send
        self._ack_interval = ack_interval_s
        self._progress = ProgressFile(state_dir, self.consumer, label)

        self._stop = threading.Event()
        scope = TargetScope(label, stats, self._stop)
        self._cond = threading.Condition()
        self._current: _Batch | None = None
        self._delivered: FeedPosition | None = None
        self._acked: FeedPosition | None = None
        self._queues: list[queue.SimpleQueue[tuple[_Batch, ShardPart] | None]] = [
            queue.SimpleQueue() for _ in range(shards)
        ]
        self._clients = [RemoteWriteClient(target) for _ in range(shards + 1)]
        """One per shard, and the last one for metadata."""
        self._threads: list[threading.Thread] = []
        self._sharder = Sharder(shards)
        self._reader = FeedReader(
            feed,
            scope,
            read_size=config.max_samples_per_send * shards,
            poll_interval_s=poll_interval_s,
        )
        backoff = (duration_ms(config.min_backoff) / 1000, duration_ms(config.max_backoff) / 1000)
        self._deliveries = [
            ShardDelivery(client, i, scope, min_backoff_s=backoff[0], max_backoff_s=backoff[1])
            for i, client in enumerate(self._clients[:shards])
        ]
        self._metadata = MetadataSender(
            feed, self._clients[-1], scope, interval_s=metadata_interval_s
        )
        self._catchup = CatchUpReport(label)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._progress.migrate_legacy_state(self._feed, self.target)
        acked = self._feed.register(self.consumer)
        self._acked = acked
        start, resume = self._progress.resume_point(acked, self._shards)
        self._delivered = start
        self._stats.shards.set(self._shards, self._label)
        name = f"forward-{self._label}"
        read_args = (start, resume, self._send_batch)
        self._threads = [threading.Thread(target=self._reader.run, args=read_args, name=name)]
        self._threads += [
            threading.Thread(target=self._shard_loop, args=(i,), name=f"{name}-{i}")
            for i in range(self._shards)
        ]
        self._threads.append(threading.Thread(target=self._ack_loop, name=f"{name}-ack"))
        self._threads.append(threading.Thread(target=self._metadata.run, name=f"{name}-metadata"))
        for t in self._threads:
            t.daemon = True
            t.start()
        log.info(
            "forward %s: sending to %s from %s", self._label, redact_url(self.target.url), start
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop sending (in-flight requests are cut short) and persist what was delivered."""
        self._halt(timeout_s)
        for c in self._clients:
            c.close()
        self._persist()

    def _halt(self, timeout_s: float) -> None:
        """End the threads, cutting in-flight requests short; persists nothing (as kill -9)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for q in self._queues:
            q.put(None)
        for c in self._clients:
            c.abort()
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    # -- the lockstep -----------------------------------------------------------------------

    def _send_batch(self, start: FeedPosition, feed_batch: FeedBatch, resume: Mark | None) -> bool:
        """Hand a batch to the shards and wait until all are done; False when stopping."""
        end = feed_batch.next_position
        split = self._sharder.split(feed_batch)
        batch = _Batch(
            start, end, split.samples, split.min_t, len(split.parts), resume=resume is not None
        )
        if resume is not None:
            self._stats.resent.inc(split.samples, self._label)
        if split.parts:
            mark = Mark(start, end, split.samples, self._shards, split.exemplars)
            self._progress.write(mark)
            with self._cond:
                self._current = batch
            for shard, part in split.parts.items():
                self._queues[shard].put((batch, part))
            with self._cond:
                while batch.remaining and not self._stop.is_set():
                    self._cond.wait(0.5)
                if batch.remaining:
                    return False
        with self._cond:
            self._current = None
            self._delivered = end
        self._progress.write(Mark(end, end, 0, self._shards))
        return True

    def _shard_loop(self, shard: int) -> None:
        q = self._queues[shard]
        delivery = self._deliveries[shard]
        while True:
            item = q.get()
            if item is None:
                return
            batch, part = item
            for request in plan_requests(part.series, self._per_send, part.exemplars):
                if not delivery.deliver(request, resume=batch.resume):
                    return
            with self._cond:
                batch.remaining -= 1
                self._cond.notify_all()

    # -- progress ---------------------------------------------------------------------------

    def _ack_loop(self) -> None:
        tick = min(self._ack_interval, 0.25)
        last_ack = time.monotonic()
        while not self._stop.wait(tick):
            now = time.monotonic()
            if now - last_ack >= self._ack_interval:
                last_ack = now
                self._persist()
            self._update_gauges()

    def _persist(self) -> None:
        """Durably acknowledge what was delivered (lets the store's retention reclaim it)."""
        with self._cond:
            delivered = self._delivered
        if delivered is None or self._acked is None or not (self._acked < delivered):
            return
        try:
            self._feed.acknowledge(self.consumer, delivered)
            self._acked = delivered
        except ShuttingDownError:
            pass
        except Exception:
            log.exception("forward %s: persisting the position failed", self._label)

    def _update_gauges(self) -> None:
        pending, lag = self.refresh_gauges()
        self._catchup.update(pending, lag, self._stats.sent.get(self._label))

    def refresh_gauges(self) -> tuple[int, float]:
        """Set the backlog gauges from the state right now; returns (pending, lag).

        Also run on every read of the metrics, so the gauges are never older than the scrape.
        """
        with self._cond:
            delivered = self._delivered
            current = self._current
        pending = current.samples if current is not None else 0
        if delivered is not None:
            try:
                pending = int(self._feed.samples_after(delivered))
            except Exception:
                log.debug("forward %s: backlog size unavailable", self._label, exc_info=True)
        self._stats.pending.set(pending, self._label)
        lag = 0.0 if current is None else max(0.0, time.time() - current.min_t / 1000)
        self._stats.lag.set(lag, self._label)
        return pending, lag

    # -- introspection (tests, status) ------------------------------------------------------

    @property
    def delivered_position(self) -> FeedPosition | None:
        with self._cond:
            return self._delivered

    @property
    def caught_up(self) -> bool:
        """True once the reader has found nothing new and nothing is in flight."""
        with self._cond:
            return self._reader.caught_up and self._current is None
