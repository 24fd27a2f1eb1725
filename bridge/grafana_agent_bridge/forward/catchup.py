"""Log lines that show a forwarder catching up on a backlog (after an outage or a restart).

The gauges ``bridge_forward_samples_pending`` and ``bridge_forward_lag_seconds`` say how far
behind a target is; an operator reading the log needs the same story told as it happens: when
the target fell behind, every few seconds how much is left, how fast it goes and roughly how
long it will take, and when it has caught up. A target counts as behind while the oldest sample
not yet delivered is older than ``CATCHUP_LAG_S``, so steady forwarding logs nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

CATCHUP_LAG_S = 60.0
LOG_EVERY_S = 10.0


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class CatchUpReport:
    """Fed every gauge update of one target; logs the catch-up's start, progress and end."""

    def __init__(self, label: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.clock = clock
        self.behind = False
        self._since = 0.0
        self._logged = 0.0
        self._peak = 0
        self._sent_at_start = 0.0
        self._sent_at_log = 0.0

    def update(self, pending: int, lag_s: float, sent_total: float) -> None:
        """One look at the target: samples not yet delivered, the age of the oldest one in
        flight (0: none in flight), and the samples delivered so far (a counter)."""
        now = self.clock()
        if not self.behind:
            if lag_s < CATCHUP_LAG_S or pending <= 0:
                return
            self.behind = True
            self._since = self._logged = now
            self._peak = pending
            self._sent_at_start = self._sent_at_log = sent_total
            log.info(
                "forward %s: catching up: %d samples to send, the oldest %s old",
                self.label,
                pending,
                _duration(lag_s),
            )
            return
        # A lag of 0 only means no batch is in flight at this instant: not the end by itself.
        if pending <= 0 or 0 < lag_s < CATCHUP_LAG_S:
            self.behind = False
            log.info(
                "forward %s: caught up: %d samples sent in %s",
                self.label,
                int(sent_total - self._sent_at_start),
                _duration(now - self._since),
            )
            return
        self._peak = max(self._peak, pending)
        if now - self._logged < LOG_EVERY_S:
            return
        rate = (sent_total - self._sent_at_log) / max(now - self._logged, 1e-9)
        self._logged, self._sent_at_log = now, sent_total
        left = f"about {_duration(pending / rate)} left" if rate > 0 else "nothing delivered"
        log.info(
            "forward %s: catching up: %.0f%% of the backlog sent, %d samples to send "
            "(%.0f samples/s, %s), the oldest %s old",
            self.label,
            100 * (1 - pending / self._peak),
            pending,
            rate,
            left,
            _duration(lag_s),
        )
