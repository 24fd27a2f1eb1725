"""The reading side of a target: the feed from a position, one batch at a time.

After an unclean stop it first reads the batch that was in flight again, exactly (same records,
so the same shards and requests: see ``sender.py``), then carries on with fresh batches. It
polls the feed's end when there is nothing new, and a store fault only pauses it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..storage import FeedBatch, FeedPosition, ForwardSource, ShuttingDownError
from .batching import count_samples
from .progress import Mark
from .scope import TargetPart, TargetScope

log = logging.getLogger(__name__)

REREAD_MAX_READS = 1000
"""Bound on the reads that rebuild one in-flight batch (each advances by at least a record)."""

SendBatch = Callable[[FeedPosition, FeedBatch, Mark | None], bool]
"""Hands a batch (its start, the batch, the mark when it is an exact resend) to the shards and
returns once all have finished it: False when stopping."""


class FeedReader(TargetPart):
    def __init__(
        self,
        feed: ForwardSource,
        scope: TargetScope,
        *,
        read_size: int,
        poll_interval_s: float,
    ) -> None:
        super().__init__(scope)
        self._feed = feed
        self._read_size = read_size
        self._poll = poll_interval_s
        self.caught_up = False
        """The last look found nothing new (whether a batch is still in flight is the
        sender's to know)."""

    def run(self, position: FeedPosition, resume: Mark | None, send: SendBatch) -> None:
        """Read from ``position`` until stopped, ``send`` taking each batch in turn."""
        while not self._stop.is_set():
            try:
                if resume is not None:
                    batch = self.reread(position, resume)
                    if batch is None:
                        # Not the same records (a WAL repair cut them): new data is mixed in,
                        # so a 400 can no longer mean "already delivered".
                        resume = None
                        batch = self._feed.read(position, self._read_size)
                elif not (position < self._feed.end()):
                    self.caught_up = True
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
                self.caught_up = True
                resume = None
                self._stop.wait(self._poll)
                continue
            self.caught_up = False
            if not send(position, batch, resume):
                return
            resume = None
            position = batch.next_position

    def reread(self, position: FeedPosition, mark: Mark) -> FeedBatch | None:
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
        for _ in range(REREAD_MAX_READS):
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
