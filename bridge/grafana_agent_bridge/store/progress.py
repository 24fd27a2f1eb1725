"""Progress of opening the store (loading blocks, replaying the WAL), and the way to stop it.

Opening a large data directory takes minutes; an operator watching the log must see it move
(a line every few seconds with counts and percent), ``/metrics`` shows the same as
``bridge_store_open_progress_ratio{stage}``, and a stop signal during the wait must end it at
once rather than after the replay. The store calls ``advance`` often (per block, per WAL
record); ``advance`` raises ``OpenCancelledError`` as soon as ``should_stop`` says so. Opening
again later redoes the work from the files, which the interrupted open never changed half-way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..metrics import Gauge, Registry

log = logging.getLogger("grafana_agent_bridge.store")

LOG_EVERY_S = 5.0

PROGRESS_RATIO_NAME = "bridge_store_open_progress_ratio"
PROGRESS_RATIO_HELP = (
    "How far opening the store has got, 0 to 1, by stage (blocks: loading blocks; wal: "
    "replaying the write-ahead log). 1 once the stage is done."
)


def progress_gauge(registry: Registry | None) -> Gauge:
    """The progress gauge in ``registry`` (the same one each time it is asked for); without a
    registry (tools, tests that do not look) one that nobody exposes."""
    if registry is None:
        return Gauge(PROGRESS_RATIO_NAME, PROGRESS_RATIO_HELP, ("stage",))
    return registry.gauge(PROGRESS_RATIO_NAME, PROGRESS_RATIO_HELP, ("stage",))


class OpenCancelledError(Exception):
    """Opening the store was stopped on request (a stop signal during the WAL replay)."""


class OpenProgress:
    """Counts one stage of opening at a time; logs and exposes it, and checks for a stop."""

    def __init__(
        self,
        should_stop: Callable[[], bool] | None = None,
        *,
        gauge: Gauge | None = None,
        log_every_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.should_stop = should_stop
        self.gauge = gauge if gauge is not None else progress_gauge(None)
        self.log_every_s = LOG_EVERY_S if log_every_s is None else log_every_s
        self.clock = clock
        self.stage = ""
        self.total = 0
        self.done = 0
        self._started = 0.0
        self._logged = 0.0

    def start(self, stage: str, total: int) -> None:
        self.stage, self.total, self.done = stage, total, 0
        self._started = self._logged = self.clock()
        self.gauge.set(0.0 if total else 1.0, stage)
        self.check()

    def check(self) -> None:
        """Raise ``OpenCancelledError`` if a stop was requested."""
        if self.should_stop is not None and self.should_stop():
            raise OpenCancelledError(f"stop requested while {self.describe()}")

    def advance(self, done: int, detail: str = "") -> None:
        """Record ``done`` units of the stage's total; log every few seconds; check for a stop."""
        self.done = done
        self.check()
        now = self.clock()
        if now - self._logged >= self.log_every_s:
            self._logged = now
            self.gauge.set(self.ratio(), self.stage)
            log.info("%s%s", self.describe(), f", {detail}" if detail else "")

    def finish(self) -> None:
        self.done = self.total
        self.gauge.set(1.0, self.stage)

    def ratio(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 1.0

    def describe(self) -> str:
        pct = f"{100 * self.ratio():.0f}%"
        elapsed = f"{self.clock() - self._started:.0f}s"
        if self.stage == "wal":
            mib = 1024 * 1024
            return (
                f"replaying the write-ahead log: {pct} ({self.done / mib:.1f} of "
                f"{self.total / mib:.1f} MiB) after {elapsed}"
            )
        if self.stage == "blocks":
            return f"loading blocks: {self.done} of {self.total} ({pct}) after {elapsed}"
        return f"opening the store ({self.stage}): {pct} after {elapsed}"
