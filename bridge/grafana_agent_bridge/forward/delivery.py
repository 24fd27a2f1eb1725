"""The retry loop of one shard: a request is sent until it is delivered, rejected, or the
target stops.

What each answer means is ``client.py``'s business (``Outcome``); here is what is done about
it: delivered is counted; rejected is dropped and logged, except that a 400 to a request sent
before (a retry whose first answer was lost, or the resend after a crash) means "already
there"; anything else waits (``Retry-After`` or the exponential backoff) and tries again. A
remote write 2.0 request that only a 1.0 receiver would answer so switches the client to 1.0.
"""

from __future__ import annotations

import logging
import time

from ..remote_write import encode_write_request
from ..remote_write2 import encode_write_request_v2
from ..storage import SeriesBatch
from .backoff import Backoff
from .batching import count_exemplars, count_samples
from .client import Outcome, RemoteWriteClient, SendResult
from .scope import TargetPart, TargetScope

log = logging.getLogger(__name__)

FAILURE_LOG_INTERVAL_S = 30.0
"""While an upstream keeps failing, one warning per shard per this many seconds is enough."""


class ShardDelivery(TargetPart):
    """Delivers one shard's requests, one after another, over the shard's own client."""

    def __init__(
        self,
        client: RemoteWriteClient,
        shard: int,
        scope: TargetScope,
        *,
        min_backoff_s: float,
        max_backoff_s: float,
    ) -> None:
        super().__init__(scope)
        self._client = client
        self._shard = shard
        self._min_backoff = min_backoff_s
        self._max_backoff = max_backoff_s

    def deliver(self, request: list[SeriesBatch], *, resume: bool) -> bool:
        """Send until delivered or rejected (True), or until stopped (False)."""
        client = self._client
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
            self._stats.requests.inc(1, self._label, result_class(result))
            if v2 and knows_only_v1(result):
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
                        self._shard,
                        attempt,
                        time.monotonic() - first_failure,
                    )
                return True
            if result.outcome is Outcome.REJECTED:
                self._rejected(result, n, n_ex, sent_before=resume or attempt > 0)
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
                    self._shard,
                    f"HTTP {result.status}: {result.reason}" if result.status else result.reason,
                    delay,
                    attempt + 1,
                )
            if self._stop.wait(delay):
                return False
            attempt += 1
            self._stats.retried.inc(n, self._label)

    def _rejected(self, result: SendResult, n: int, n_ex: int, *, sent_before: bool) -> None:
        """A non-retryable answer: already delivered (a resent 400), or dropped for good."""
        if sent_before and result.status == 400:
            # The same request sent before (its answer lost, or before a crash) makes an
            # all-or-nothing receiver such as Prometheus answer 400 "out of order": the
            # samples are there already.
            log.info(
                "forward %s: %d re-sent samples and %d exemplars were already upstream "
                "(HTTP 400: %s)",
                self._label,
                n,
                n_ex,
                result.reason,
            )
            return
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


def knows_only_v1(result: SendResult) -> bool:
    """A 2.0 request answered 415, or 2xx without the ``...-Samples-Written`` header every 2.0
    receiver sends: a 1.0 receiver, which reads a 2.0 body as an empty 1.0 request (2.0 reserves
    1.0's field numbers) and so would drop the batch while saying 204."""
    if result.status == 415:
        return True
    return result.outcome is Outcome.DELIVERED and result.samples_written is None


def result_class(result: SendResult) -> str:
    """The ``result`` label of ``bridge_forward_requests_total``."""
    if result.status == 0:
        return "network"
    if result.status == 429:
        return "429"
    return f"{result.status // 100}xx"
