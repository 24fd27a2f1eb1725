"""Stopping on SIGTERM/SIGINT without doing anything unsafe inside the signal handler.

A Python signal handler runs in the main thread between two bytecodes, wherever the main
thread happens to be: possibly half-way through writing a log line to stderr, or holding the
lock of a ``threading.Event``. Logging from the handler can then raise a "reentrant call"
error that the interrupted logging call swallows, together with the stop request, and
``Event.set()`` can deadlock on that lock. Both were seen as a daemon that ignored a SIGTERM
sent during start-up. So the handler here only assigns a number, and the main thread polls it.
"""

from __future__ import annotations

import signal
import time
from types import FrameType


class StopSignals:
    def __init__(self) -> None:
        self.signum = 0

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if not self.signum:  # a plain assignment: safe wherever the main thread was
            self.signum = signum

    @property
    def requested(self) -> bool:
        return self.signum != 0

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def wait(self, poll_s: float = 0.2) -> None:
        """Block the main thread until a stop signal has arrived."""
        while not self.signum:
            time.sleep(poll_s)
