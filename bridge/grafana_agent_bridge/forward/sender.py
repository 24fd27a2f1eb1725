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
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import (
    ForwardConfig,
    ForwardTarget,
    derived_target_name,
    duration_ms,
    legacy_target_name,
)
from ..histogram.model import FloatHistogram
from ..labels import Labels
from ..redact import redact_url
from ..remote_write import encode_write_request
from ..remote_write2 import encode_write_request_v2
from ..storage import (
    Exemplar,
    FeedBatch,
    FeedPosition,
    ForwardSource,
    SeriesBatch,
    SeriesData,
    ShuttingDownError,
)
from .backoff import Backoff
from .catchup import CatchUpReport
from .client import Outcome, RemoteWriteClient, SendResult
from .stats import ForwardStats

log = logging.getLogger(__name__)

FAILURE_LOG_INTERVAL_S = 30.0
"""While an upstream keeps failing, one warning per shard per this many seconds is enough."""

METADATA_INTERVAL_S = 60.0
METADATA_PER_SEND = 500
"""As Prometheus's ``metadata_config`` (send_interval 1m, max_samples_per_send 500): metric
metadata (type, help, unit) is not in the sample stream, so all of it is sent periodically,
best effort (a failed send waits for the next round)."""


def consumer_name(target: ForwardTarget) -> str:
    """The feed consumer of a target: stable across restarts and reordering of targets."""
    return _consumer_of(target.name)


def _consumer_of(name: str) -> str:
    return f"forward-{name}"


def shard_of(labels: Labels, shards: int) -> int:
    """A series' shard, the same in every process (``hash()`` of a str is salted per process,
    and an exact resume needs the same requests as before the crash)."""
    h = 0
    for name, value in labels:
        h = zlib.crc32(value.encode(), zlib.crc32(name.encode(), h))
    return h % shards


@dataclass
class _Batch:
    """One feed batch on its way upstream."""

    start: FeedPosition
    next_position: FeedPosition
    samples: int
    exemplars: int
    min_t: int
    remaining: int
    """Shard parts not yet finished (delivered, rejected, or found delivered before)."""
    resume: bool = False
    """Re-sent after an unclean stop: a 400 means "already delivered", not a drop."""


@dataclass(frozen=True)
class Mark:
    """Delivery progress of a target as of the last batch boundary (see the module docstring)."""

    delivered: FeedPosition
    in_flight_end: FeedPosition
    in_flight_samples: int
    shards: int
    in_flight_exemplars: int = 0
    """Last, so a mark written before exemplars were forwarded (six fields) still parses."""

    def dump(self) -> str:
        d, f = self.delivered, self.in_flight_end
        fields = (d.segment, d.offset, f.segment, f.offset, self.in_flight_samples, self.shards)
        return " ".join(map(str, (*fields, self.in_flight_exemplars))) + "\n"

    @staticmethod
    def parse(text: str) -> Mark:
        values = [int(x) for x in text.split()]
        if len(values) == 6:
            values.append(0)
        ds, do, fs, fo, k, n, e = values
        return Mark(FeedPosition(ds, do), FeedPosition(fs, fo), k, n, e)


def count_samples(series: Sequence[SeriesData | SeriesBatch]) -> int:
    return sum(len(s.timestamps) for s in series)


def count_exemplars(series: Sequence[SeriesBatch]) -> int:
    return sum(len(s.exemplars) for s in series)


@dataclass
class ShardPart:
    """A shard's share of a feed batch: sample pieces and exemplars, both in feed order."""

    series: list[SeriesData] = field(default_factory=list)
    exemplars: list[tuple[Labels, Exemplar]] = field(default_factory=list)


def plan_requests(
    series: Sequence[SeriesData],
    limit: int,
    exemplars: Sequence[tuple[Labels, Exemplar]] = (),
) -> list[list[SeriesBatch]]:
    """Cut a shard's part of a batch into requests of at most ``limit`` samples + exemplars.

    Deterministic for the same input (an exact resume rebuilds the same requests). Pieces of
    the same series are joined, so a request names each series once, and a series split
    across requests keeps its timestamp order because the requests go one after another.
    A series' exemplars follow its samples (Prometheus keeps an exemplar only for a series it
    already has); a series with exemplars only comes after those with samples.
    """
    merged: dict[Labels, list[SeriesData]] = {}
    for s in series:
        if len(s.timestamps):
            merged.setdefault(s.labels, []).append(s)
    exemplars_of: dict[Labels, list[Exemplar]] = {}
    for labels, ex in exemplars:
        merged.setdefault(labels, [])
        exemplars_of.setdefault(labels, []).append(ex)
    requests: list[list[SeriesBatch]] = []
    current: list[SeriesBatch] = []
    room = limit
    for labels, parts in merged.items():
        hs: list[FloatHistogram | None] | None = None
        if len(parts) == 1:
            ts, vs, hs = parts[0].timestamps, parts[0].values, parts[0].histograms
        elif parts:
            ts = np.concatenate([p.timestamps for p in parts])
            vs = np.concatenate([p.values for p in parts])
            if any(p.histograms is not None for p in parts):
                hs = []
                for p in parts:
                    hs.extend(p.histograms or [None] * len(p.timestamps))
        else:
            ts, vs = np.empty(0, np.int64), np.empty(0, np.float64)
        exs = exemplars_of.get(labels, [])
        n = len(ts)
        total = n + len(exs)
        lo = 0
        while lo < total:  # samples first, then exemplars, as one stream of items
            hi = lo + min(room, total - lo)
            current.append(
                SeriesBatch(
                    labels,
                    ts[lo : min(hi, n)],
                    vs[lo : min(hi, n)],
                    exs[max(lo, n) - n : max(hi, n) - n],
                    histograms=hs[lo : min(hi, n)] if hs is not None else None,
                )
            )
            room -= hi - lo
            lo = hi
            if room == 0:
                requests.append(current)
                current, room = [], limit
    if current:
        requests.append(current)
    return requests


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
        self._label = target.name
        self._shards = shards
        self._per_send = config.max_samples_per_send
        self._read_size = config.max_samples_per_send * shards
        self._min_backoff = duration_ms(config.min_backoff) / 1000
        self._max_backoff = duration_ms(config.max_backoff) / 1000
        self._ack_interval = ack_interval_s
        self._poll = poll_interval_s
        self._metadata_interval = metadata_interval_s
        self._mark_path = state_dir / f"{self.consumer}.progress" if state_dir else None

        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._current: _Batch | None = None
        self._delivered: FeedPosition | None = None
        self._acked: FeedPosition | None = None
        self._caught_up = False
        self._queues: list[queue.SimpleQueue[tuple[_Batch, ShardPart] | None]] = [
            queue.SimpleQueue() for _ in range(shards)
        ]
        self._clients = [RemoteWriteClient(target) for _ in range(shards + 1)]
        """One per shard, and the last one for metadata."""
        self._threads: list[threading.Thread] = []
        self._shard_cache: dict[Labels, int] = {}
        self._catchup = CatchUpReport(target.name)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._migrate_legacy_state()
        acked = self._feed.register(self.consumer)
        self._acked = acked
        start, resume = self._resume_point(acked)
        self._delivered = start
        self._stats.shards.set(self._shards, self._label)
        name = f"forward-{self._label}"
        self._threads = [threading.Thread(target=self._read_loop, args=(start, resume), name=name)]
        self._threads += [
            threading.Thread(target=self._shard_loop, args=(i,), name=f"{name}-{i}")
            for i in range(self._shards)
        ]
        self._threads.append(threading.Thread(target=self._ack_loop, name=f"{name}-ack"))
        self._threads.append(threading.Thread(target=self._metadata_loop, name=f"{name}-metadata"))
        for t in self._threads:
            t.daemon = True
            t.start()
        log.info(
            "forward %s: sending to %s from %s", self._label, redact_url(self.target.url), start
        )

    def _migrate_legacy_state(self) -> None:
        """Rename state saved under the name earlier versions derived from the URL, which
        included its credentials (and put them in file names), to the current name, keeping
        the cursor: forwarding carries on where it was, nothing is re-sent or lost."""
        url = self.target.url
        legacy = legacy_target_name(url)
        if legacy == self.target.name or self.target.name != derived_target_name(url):
            return  # nothing to migrate, or an explicit name (a user's own choice)
        old = _consumer_of(legacy)
        moved = False
        if self._mark_path is not None:
            old_mark = self._mark_path.with_name(f"{old}.progress")
            try:
                if self._mark_path.exists():
                    old_mark.unlink(missing_ok=True)  # a rename cut short by a crash
                elif old_mark.exists():
                    os.replace(old_mark, self._mark_path)
                    moved = True
            except OSError as e:
                log.warning(
                    "forward %s: could not rename the old progress file: %s", self._label, e
                )
        if self._feed.rename_consumer(old, self.consumer):
            moved = True
        if moved:
            log.info(
                "forward %s: renamed the saved position from the old name, which contained "
                "the URL's credentials",
                self._label,
            )

    def _resume_point(self, acked: FeedPosition) -> tuple[FeedPosition, Mark | None]:
        """Where to start reading, and the batch that was in flight at an unclean stop."""
        mark = self._read_mark()
        if mark is None or mark.delivered < acked:
            return acked, None
        if mark.shards != self._shards:
            log.warning(
                "forward %s: the shard count changed since the last run; resuming from the "
                "last acknowledged position (some samples will be sent twice)",
                self._label,
            )
            return acked, None
        if not (mark.delivered < mark.in_flight_end):
            return mark.delivered, None
        log.info(
            "forward %s: resuming after an unclean stop: re-sending the %d samples that were "
            "in flight (the upstream may already have them)",
            self._label,
            mark.in_flight_samples,
        )
        return mark.delivered, mark

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

    # -- reading ----------------------------------------------------------------------------

    def _read_loop(self, position: FeedPosition, resume: Mark | None) -> None:
        while not self._stop.is_set():
            try:
                if resume is not None:
                    batch = self._reread(position, resume)
                    if batch is None:
                        # Not the same records (a WAL repair cut them): new data is mixed in,
                        # so a 400 can no longer mean "already delivered".
                        resume = None
                        batch = self._feed.read(position, self._read_size)
                elif not (position < self._feed.end()):
                    self._caught_up = True
                    self._stop.wait(self._poll)
                    continue
                else:
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
            if not batch.series and not batch.exemplars and not (position < batch.next_position):
                self._caught_up = True
                resume = None
                self._stop.wait(self._poll)
                continue
            self._caught_up = False
            if not self._send_batch(position, batch, resume):
                return
            resume = None
            position = batch.next_position

    def _reread(self, position: FeedPosition, mark: Mark) -> FeedBatch | None:
        """The batch that was in flight at an unclean stop, read again exactly; None if the
        WAL no longer holds the same records there.

        The feed gives the same batch for the same position and limit, so one read with the
        batch's sample + exemplar count normally ends on its last record. Further reads only
        pick up what a mark from before exemplars were forwarded did not count, and trailing
        records without samples or exemplars (series, metadata) end the batch at its old end.
        """
        end = mark.in_flight_end
        want_s, want_e = mark.in_flight_samples, mark.in_flight_exemplars
        batch = self._feed.read(position, max(1, want_s + want_e))
        if end < batch.next_position:
            return None
        got_s, got_e = count_samples(batch.series), len(batch.exemplars)
        for _ in range(1000):  # bounded: each read advances by at least one record
            if not (batch.next_position < end) or not (batch.next_position < self._feed.end()):
                break
            need = max(1, max(0, want_s - got_s) + max(0, want_e - got_e))
            more = self._feed.read(batch.next_position, need)
            if end < more.next_position or not (batch.next_position < more.next_position):
                break  # only records without samples or exemplars were left in the batch
            batch.series += more.series
            batch.exemplars += more.exemplars
            got_s += count_samples(more.series)
            got_e += len(more.exemplars)
            batch.next_position = more.next_position
        batch.next_position = end
        return batch

    def _shard(self, labels: Labels) -> int:
        shard = self._shard_cache.get(labels)
        if shard is None:
            if len(self._shard_cache) > 200_000:
                self._shard_cache.clear()
            shard = self._shard_cache[labels] = shard_of(labels, self._shards)
        return shard

    def _send_batch(self, start: FeedPosition, feed_batch: FeedBatch, resume: Mark | None) -> bool:
        """Hand a batch to the shards and wait until all are done; False when stopping."""
        end = feed_batch.next_position
        parts: dict[int, ShardPart] = {}
        samples = 0
        min_t: int | None = None
        for s in feed_batch.series:
            n = len(s.timestamps)
            if not n:
                continue
            parts.setdefault(self._shard(s.labels), ShardPart()).series.append(s)
            first = int(s.timestamps[0])
            min_t = first if min_t is None else min(min_t, first)
            samples += n
        for labels, ex in feed_batch.exemplars:
            parts.setdefault(self._shard(labels), ShardPart()).exemplars.append((labels, ex))
            min_t = ex.timestamp if min_t is None else min(min_t, ex.timestamp)
        exemplars = len(feed_batch.exemplars)
        batch = _Batch(
            start, end, samples, exemplars, min_t or 0, len(parts), resume=resume is not None
        )
        if resume is not None:
            self._stats.resent.inc(samples, self._label)
        if parts:
            self._write_mark(Mark(start, end, samples, self._shards, exemplars))
            with self._cond:
                self._current = batch
            for shard, part in parts.items():
                self._queues[shard].put((batch, part))
            with self._cond:
                while batch.remaining and not self._stop.is_set():
                    self._cond.wait(0.5)
                if batch.remaining:
                    return False
        with self._cond:
            self._current = None
            self._delivered = end
        self._write_mark(Mark(end, end, 0, self._shards))
        return True

    # -- sending ----------------------------------------------------------------------------

    def _shard_loop(self, shard: int) -> None:
        q = self._queues[shard]
        client = self._clients[shard]
        while True:
            item = q.get()
            if item is None:
                return
            batch, part = item
            for request in plan_requests(part.series, self._per_send, part.exemplars):
                if not self._deliver(client, shard, request, resume=batch.resume):
                    return
            with self._cond:
                batch.remaining -= 1
                self._cond.notify_all()

    def _deliver(
        self, client: RemoteWriteClient, shard: int, request: list[SeriesBatch], *, resume: bool
    ) -> bool:
        """Send until delivered or rejected (True), or until stopped (False)."""
        n = count_samples(request)
        n_ex = count_exemplars(request)
        v2 = client.v2
        body = encode_write_request_v2(request) if v2 else encode_write_request(request)
        backoff = Backoff(self._min_backoff, self._max_backoff)
        attempt = 0
        first_failure = 0.0
        last_log = 0.0
        while True:
            t0 = time.monotonic()
            result = client.send(body, attempt, v2=v2)
            self._stats.duration.observe(time.monotonic() - t0, self._label)
            self._stats.requests.inc(1, self._label, _result_class(result))
            if v2 and _knows_only_v1(result):
                # The target does not take 2.0: 1.0 from now on, this batch included.
                log.warning(
                    "forward %s: upstream answered remote write 2.0 with HTTP %d%s, sending "
                    "remote write 1.0 from now on: %s",
                    self._label,
                    result.status,
                    "" if result.status == 415 else " without X-Prometheus-Remote-Write-*",
                    result.reason or "(no reason given)",
                )
                client.fall_back()
                v2 = False
                body = encode_write_request(request)
                continue
            if result.outcome is Outcome.DELIVERED:
                self._stats.sent.inc(n, self._label)
                self._stats.exemplars_sent.inc(n_ex, self._label)
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
                if (resume or attempt) and result.status == 400:
                    # The same request sent before (its answer lost, or before a crash) makes
                    # an all-or-nothing receiver such as Prometheus answer 400 "out of order":
                    # the samples are there already.
                    log.info(
                        "forward %s: %d re-sent samples and %d exemplars were already upstream "
                        "(HTTP 400: %s)",
                        self._label,
                        n,
                        n_ex,
                        result.reason,
                    )
                    return True
                self._stats.failed.inc(n, self._label)
                self._stats.dropped.inc(n, self._label, "rejected")
                self._stats.exemplars_dropped.inc(n_ex, self._label)
                log.warning(
                    "forward %s: upstream rejected %d samples and %d exemplars with HTTP %d, "
                    "dropping them: %s",
                    self._label,
                    n,
                    n_ex,
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

    def _metadata_loop(self) -> None:
        client = self._clients[-1]
        get = self._feed.metadata
        while not self._stop.wait(min(5.0, self._metadata_interval)):
            try:
                items = [m for ms in get().values() for m in ms]
            except Exception:
                log.debug("forward %s: metadata unavailable", self._label, exc_info=True)
                items = []
            for lo in range(0, len(items), METADATA_PER_SEND):
                chunk = items[lo : lo + METADATA_PER_SEND]
                result = client.send(encode_write_request([], chunk))
                self._stats.requests.inc(1, self._label, _result_class(result))
                if result.outcome is not Outcome.DELIVERED:
                    log.debug("forward %s: metadata not delivered: %s", self._label, result)
                    break
                self._stats.metadata.inc(len(chunk), self._label)
            if self._stop.wait(max(0.0, self._metadata_interval - 5.0)):
                return

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
        self._catchup.update(pending, lag, self._stats.sent.get(self._label))

    def _read_mark(self) -> Mark | None:
        if self._mark_path is None:
            return None
        try:
            return Mark.parse(self._mark_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.warning("forward %s: ignoring unreadable %s: %s", self._label, self._mark_path, e)
            return None

    def _write_mark(self, mark: Mark) -> None:
        if self._mark_path is None:
            return
        tmp = self._mark_path.with_name(self._mark_path.name + ".tmp")
        try:
            tmp.write_text(mark.dump())
            os.replace(tmp, self._mark_path)
        except OSError as e:
            log.warning("forward %s: could not record progress in %s: %s", self._label, tmp, e)

    # -- introspection (tests, status) ------------------------------------------------------

    @property
    def delivered_position(self) -> FeedPosition | None:
        with self._cond:
            return self._delivered

    @property
    def caught_up(self) -> bool:
        """True once the reader has found nothing new and nothing is in flight."""
        with self._cond:
            return self._caught_up and self._current is None


def _knows_only_v1(result: SendResult) -> bool:
    """A 2.0 request answered 415, or 2xx without the ``...-Samples-Written`` header every 2.0
    receiver sends: a 1.0 receiver, which reads a 2.0 body as an empty 1.0 request (2.0 reserves
    1.0's field numbers) and so would drop the batch while saying 204."""
    if result.status == 415:
        return True
    return result.outcome is Outcome.DELIVERED and result.samples_written is None


def _result_class(result: SendResult) -> str:
    if result.status == 0:
        return "network"
    if result.status == 429:
        return "429"
    return f"{result.status // 100}xx"
