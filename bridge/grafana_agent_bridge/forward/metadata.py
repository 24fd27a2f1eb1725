"""Metric metadata (type, help, unit) to one target, resent in full on an interval.

Metadata is not in the sample stream, so, as Prometheus's ``metadata_config`` does (send
interval 1m, at most 500 per request), all of it is sent periodically and best effort: a
failed send waits for the next round, and it never holds up the samples (its own client).
"""

from __future__ import annotations

import logging

from ..remote_write import encode_write_request
from ..storage import ForwardSource
from .client import Outcome, RemoteWriteClient
from .delivery import result_class
from .scope import TargetPart, TargetScope

log = logging.getLogger(__name__)

METADATA_INTERVAL_S = 60.0
METADATA_PER_SEND = 500
FIRST_SEND_S = 5.0
"""The first round goes this soon after the start (or the whole interval, if shorter)."""


class MetadataSender(TargetPart):
    def __init__(
        self,
        feed: ForwardSource,
        client: RemoteWriteClient,
        scope: TargetScope,
        *,
        interval_s: float = METADATA_INTERVAL_S,
    ) -> None:
        super().__init__(scope)
        self._feed = feed
        self._client = client
        self._interval = interval_s

    def run(self) -> None:
        """Send every round until stopped."""
        while not self._stop.wait(min(FIRST_SEND_S, self._interval)):
            self.send_all()
            if self._stop.wait(max(0.0, self._interval - FIRST_SEND_S)):
                return

    def send_all(self) -> None:
        try:
            items = [m for ms in self._feed.metadata().values() for m in ms]
        except Exception:
            log.debug("forward %s: metadata unavailable", self._label, exc_info=True)
            items = []
        for lo in range(0, len(items), METADATA_PER_SEND):
            chunk = items[lo : lo + METADATA_PER_SEND]
            result = self._client.send(encode_write_request([], chunk))
            self._stats.requests.inc(1, self._label, result_class(result))
            if result.outcome is not Outcome.DELIVERED:
                log.debug("forward %s: metadata not delivered: %s", self._label, result)
                break
            self._stats.metadata.inc(len(chunk), self._label)
