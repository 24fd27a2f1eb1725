"""Forwarding to one upstream: a durable cursor, sharded parallel sends, contiguous acks.

Shape (after Prometheus's ``QueueManager``, with the local store in place of its WAL watcher)::

    feed.read ──► reader ──(series hash)──► shard 0..n-1 ──HTTP──► upstream
                     ▲                           │
                     └── in-flight window ◄──────┘──► acker ──► feed.acknowledge

- **Order.** A series always hashes to the same shard and a shard sends its queue in order,
  so each series reaches the upstream in timestamp order while different series go in
  parallel.
- **Durability.** The cursor only moves past a feed batch once *every* shard has finished its
  part of it *and* of every earlier batch (a contiguous prefix), so a restart resumes exactly
  where delivery was complete. Anything sent after the last persisted ack is sent again after
  a crash: at-least-once, and the receiver accepts exact duplicates.
- **Memory.** At most ``max_inflight`` feed batches are held in memory; during an outage the
  reader simply stops reading and the backlog stays in the store, so memory does not grow with
  the outage's length.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import ForwardConfig, ForwardTarget, duration_ms
from ..labels import Labels
from ..remote_write import encode_write_request
from ..storage import ChangeFeed, FeedPosition, SeriesData, ShuttingDownError
from .backoff import Backoff
from .client import Outcome, RemoteWriteClient, SendResult
from .stats import ForwardStats

log = logging.getLogger(__name__)

FAILURE_LOG_INTERVAL_S = 30.0
"""While an upstream keeps failing, one warning per shard per this many seconds is enough."""


def consumer_name(target: ForwardTarget) -> str:
    """The feed consumer of a target: stable across restarts and reordering of targets."""
    return f"forward-{target.name}"


@dataclass
class _Batch:
    """One feed batch on its way upstream."""

    start: FeedPosition
    next_position: FeedPosition
    samples: int
    min_t: int
    remaining: int
    """Shard parts not yet finished (delivered or dropped)."""


_Item = tuple[_Batch, list[SeriesData]]


def count_samples(series: list[SeriesData]) -> int:
    return sum(len(s.timestamps) for s in series)


def plan_requests(series: list[SeriesData], limit: int) -> list[list[SeriesData]]:
    """Cut a shard's queued series into requests of at most ``limit`` samples.

    Pieces of the same series (from consecutive feed batches) are joined first, so a request
    names each series once, and a series split across requests keeps its timestamp order
    because the requests are sent one after another.
    """
    merged: dict[Labels, list[SeriesData]] = {}
    for s in series:
        if len(s.timestamps):
            merged.setdefault(s.labels, []).append(s)
    requests: list[list[SeriesData]] = []
    current: list[SeriesData] = []
    room = limit
    for labels, parts in merged.items():
        if len(parts) == 1:
            ts, vs = parts[0].timestamps, parts[0].values
        else:
            ts = np.concatenate([p.timestamps for p in parts])
            vs = np.concatenate([p.values for p in parts])
        lo = 0
        while lo < len(ts):
            take = min(room, len(ts) - lo)
            current.append(SeriesData(labels, ts[lo : lo + take], vs[lo : lo + take]))
            lo += take
            room -= take
            if room == 0:
                requests.append(current)
                current, room = [], limit
    if current:
        requests.append(current)
    return requests


class TargetSender:
    def __init__(
        self,
        feed: ChangeFeed,
        target: ForwardTarget,
        config: ForwardConfig,
        stats: ForwardStats,
        *,
        shards: int = 4,
        max_inflight: int = 4,
        ack_interval_s: float = 1.0,
        poll_interval_s: float = 0.05,
        state_dir: Path | None = None,
    ) -> None:
        self.target = target
        self.consumer = consumer_name(target)
        self._feed = feed
        self._stats = stats
        self._label = target.name
        self._per_send = config.max_samples_per_send
        self._read_size = config.max_samples_per_send * shards
        self._min_backoff = duration_ms(config.min_backoff) / 1000
        self._max_backoff = duration_ms(config.max_backoff) / 1000
        self._max_inflight = max_inflight
        self._ack_interval = ack_interval_s
        self._poll = poll_interval_s
        self._mark_path = state_dir / f"{self.consumer}.sent" if state_dir else None

        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._inflight: collections.deque[_Batch] = collections.deque()
        self._inflight_samples = 0
        self._delivered: FeedPosition | None = None
        self._acked: FeedPosition | None = None
        self._marked: FeedPosition | None = None
        self._resend_mark: FeedPosition | None = None
        self._caught_up = False
        self._queues: list[queue.SimpleQueue[_Item | None]] = [
            queue.SimpleQueue() for _ in range(shards)
        ]
        self._clients = [RemoteWriteClient(target) for _ in range(shards)]
        self._threads: list[threading.Thread] = []

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        start = self._feed.register(self.consumer)
        self._delivered = self._acked = start
        self._resend_mark = self._read_mark()
        if self._resend_mark is not None and start < self._resend_mark:
            log.info(
                "forward %s: resuming at %s; data up to %s was sent before an unclean stop "
                "and will be sent again",
                self._label,
                start,
                self._resend_mark,
            )
        self._stats.shards.set(len(self._queues), self._label)
        name = f"forward-{self._label}"
        self._threads = [threading.Thread(target=self._read_loop, args=(start,), name=name)]
        self._threads += [
            threading.Thread(target=self._shard_loop, args=(i,), name=f"{name}-{i}")
            for i in range(len(self._queues))
        ]
        self._threads.append(threading.Thread(target=self._ack_loop, name=f"{name}-ack"))
        for t in self._threads:
            t.daemon = True
            t.start()
        log.info("forward %s: sending to %s from %s", self._label, self.target.url, start)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop sending (in-flight requests are cut short) and persist what was delivered."""
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
        for c in self._clients:
            c.close()
        self._persist(force=True)

    # -- reading ----------------------------------------------------------------------------

    def _read_loop(self, position: FeedPosition) -> None:
        while not self._stop.is_set():
            with self._cond:
                while len(self._inflight) >= self._max_inflight and not self._stop.is_set():
                    self._cond.wait(0.5)
            if self._stop.is_set():
                return
            try:
                if not (position < self._feed.end()):
                    self._caught_up = True
                    self._stop.wait(self._poll)
                    continue
                batch = self._feed.read(position, self._read_size)
            except ShuttingDownError:
                return
            except Exception:  # a store fault must not end forwarding for good
                log.exception("forward %s: reading the local store failed", self._label)
                self._stop.wait(1.0)
                continue
            if batch.skipped_samples:
                self._stats.dropped.inc(batch.skipped_samples, self._label, "retention")
                log.warning(
                    "forward %s: %d samples were deleted by retention before they could be sent",
                    self._label,
                    batch.skipped_samples,
                )
            if not batch.series and not (position < batch.next_position):
                self._caught_up = True
                self._stop.wait(self._poll)
                continue
            self._caught_up = False
            self._dispatch(position, batch.next_position, batch.series)
            position = batch.next_position

    def _dispatch(self, start: FeedPosition, end: FeedPosition, series: list[SeriesData]) -> None:
        n_shards = len(self._queues)
        parts: dict[int, list[SeriesData]] = {}
        samples = 0
        min_t = 0
        for s in series:
            n = len(s.timestamps)
            if not n:
                continue
            parts.setdefault(hash(s.labels) % n_shards, []).append(s)
            first = int(s.timestamps[0])
            min_t = first if samples == 0 else min(min_t, first)
            samples += n
        batch = _Batch(start, end, samples, min_t, remaining=len(parts))
        with self._cond:
            self._inflight.append(batch)
            self._inflight_samples += samples
            if not parts:
                self._advance()
        for shard, part in parts.items():
            self._queues[shard].put((batch, part))

    # -- sending ----------------------------------------------------------------------------

    def _shard_loop(self, shard: int) -> None:
        q = self._queues[shard]
        client = self._clients[shard]
        while True:
            item = q.get()
            if item is None:
                return
            batches, series = [item[0]], list(item[1])
            queued = count_samples(series)
            stopping = False
            # Join what else is queued (small batches when keeping up) into fuller requests.
            while queued < self._per_send:
                try:
                    more = q.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batches.append(more[0])
                series.extend(more[1])
                queued += count_samples(more[1])
            for request in plan_requests(series, self._per_send):
                if not self._deliver(client, shard, request):
                    return
            with self._cond:
                for b in batches:
                    b.remaining -= 1
                self._advance()
            if stopping:
                return

    def _deliver(self, client: RemoteWriteClient, shard: int, request: list[SeriesData]) -> bool:
        """Send until delivered or rejected (True), or until stopped (False)."""
        n = count_samples(request)
        body = encode_write_request(request)
        backoff = Backoff(self._min_backoff, self._max_backoff)
        attempt = 0
        first_failure = 0.0
        last_log = 0.0
        while True:
            t0 = time.monotonic()
            result = client.send(body, attempt)
            self._stats.duration.observe(time.monotonic() - t0, self._label)
            self._stats.requests.inc(1, self._label, _result_class(result))
            if result.outcome is Outcome.DELIVERED:
                self._stats.sent.inc(n, self._label)
                self._stats.bytes.inc(len(body), self._label)
                self._stats.last_delivery.set(time.time(), self._label)
                if attempt:
                    log.info(
                        "forward %s: shard %d delivered again after %d failed attempts (%.1fs)",
                        self._label,
                        shard,
                        attempt,
                        time.monotonic() - first_failure,
                    )
                return True
            if result.outcome is Outcome.REJECTED:
                self._stats.failed.inc(n, self._label)
                self._stats.dropped.inc(n, self._label, "rejected")
                log.warning(
                    "forward %s: upstream rejected %d samples with HTTP %d, dropping them: %s",
                    self._label,
                    n,
                    result.status,
                    result.reason or "(no reason given)",
                )
                return True
            if self._stop.is_set():
                return False
            now = time.monotonic()
            if attempt == 0:
                first_failure = now
            delay = result.retry_after if result.retry_after is not None else backoff.next_delay()
            if now - last_log >= FAILURE_LOG_INTERVAL_S:
                last_log = now
                log.warning(
                    "forward %s: shard %d send failed (%s), retrying in %.2fs (attempt %d)",
                    self._label,
                    shard,
                    f"HTTP {result.status}: {result.reason}" if result.status else result.reason,
                    delay,
                    attempt + 1,
                )
            if self._stop.wait(delay):
                return False
            attempt += 1
            self._stats.retried.inc(n, self._label)

    # -- progress ---------------------------------------------------------------------------

    def _advance(self) -> None:
        """Move the delivered position over finished batches at the head (caller holds cond)."""
        moved = False
        while self._inflight and self._inflight[0].remaining == 0:
            b = self._inflight.popleft()
            self._inflight_samples -= b.samples
            self._delivered = b.next_position
            if self._resend_mark is not None and b.start < self._resend_mark:
                self._stats.resent.inc(b.samples, self._label)
            moved = True
        if moved:
            self._cond.notify_all()

    def _ack_loop(self) -> None:
        tick = min(self._ack_interval, 0.25)
        last_ack = time.monotonic()
        while not self._stop.wait(tick):
            now = time.monotonic()
            self._persist(force=now - last_ack >= self._ack_interval)
            if now - last_ack >= self._ack_interval:
                last_ack = now
            self._update_gauges()

    def _persist(self, *, force: bool) -> None:
        """Write the cheap sent-mark every tick; the durable ack when ``force``."""
        with self._cond:
            delivered = self._delivered
        if delivered is None:
            return
        self._write_mark(delivered)
        if force and self._acked is not None and self._acked < delivered:
            try:
                self._feed.acknowledge(self.consumer, delivered)
                self._acked = delivered
            except ShuttingDownError:
                pass
            except Exception:
                log.exception("forward %s: persisting the position failed", self._label)

    def _update_gauges(self) -> None:
        with self._cond:
            delivered = self._delivered
            oldest = self._inflight[0].min_t if self._inflight else None
            inflight = self._inflight_samples
        pending = inflight
        # Optional on a ChangeFeed: our store counts samples per WAL segment, so this is cheap.
        samples_after: Callable[[FeedPosition], int] | None = getattr(
            self._feed, "samples_after", None
        )
        if delivered is not None and samples_after is not None:
            try:
                pending = int(samples_after(delivered))
            except Exception:
                log.debug("forward %s: backlog size unavailable", self._label, exc_info=True)
        self._stats.pending.set(pending, self._label)
        lag = 0.0 if oldest is None else max(0.0, time.time() - oldest / 1000)
        self._stats.lag.set(lag, self._label)

    def _read_mark(self) -> FeedPosition | None:
        if self._mark_path is None:
            return None
        try:
            seg, off = self._mark_path.read_text().split()
            return FeedPosition(int(seg), int(off))
        except (OSError, ValueError):
            return None

    def _write_mark(self, position: FeedPosition) -> None:
        """Where delivery had got to, without fsync: it survives ``kill -9`` (not power loss),
        which is all it is for: counting what a restart sends twice."""
        if self._mark_path is None or position == self._marked:
            return
        tmp = self._mark_path.with_name(self._mark_path.name + ".tmp")
        try:
            tmp.write_text(f"{position.segment} {position.offset}\n")
            os.replace(tmp, self._mark_path)
            self._marked = position
        except OSError:
            log.debug("forward %s: could not write %s", self._label, tmp, exc_info=True)

    # -- introspection (tests, status) ------------------------------------------------------

    @property
    def delivered_position(self) -> FeedPosition | None:
        with self._cond:
            return self._delivered

    @property
    def caught_up(self) -> bool:
        """True once the reader has found nothing new and nothing is in flight."""
        with self._cond:
            return self._caught_up and not self._inflight


def _result_class(result: SendResult) -> str:
    if result.status == 0:
        return "network"
    if result.status == 429:
        return "429"
    return f"{result.status // 100}xx"
