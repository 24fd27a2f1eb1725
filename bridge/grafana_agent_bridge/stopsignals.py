"""Stopping on SIGTERM/SIGINT without doing anything unsafe inside the signal handler.

A Python signal handler runs in the main thread between two bytecodes, wherever the main
thread happens to be: possibly half-way through writing a log line to stderr, or holding the
lock of a ``threading.Event``. Logging from the handler can then raise a "reentrant call"
error that the interrupted logging call swallows, together with the stop request, and
``Event.set()`` can deadlock on that lock. Both were seen as a daemon that ignored a SIGTERM
sent during start-up. So the handler here only assigns a number, and the main thread waits
for it on a wake-up socket.
"""

from __future__ import annotations

import select
import signal
from types import FrameType

from .wakeup import WakeSocket


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

    def wait(self, poll_s: float = 5.0) -> None:
        """Block the main thread until a stop signal has arrived.

        The interpreter writes each signal's number to the ``set_wakeup_fd`` socket the
        moment it arrives, so the wait ends at once without waking up in between (the daemon
        used to poll five times a second, for as long as it ran). ``poll_s`` is a safety net;
        outside the main thread, where no wake-up socket can be set, it polls as before."""
        wake = WakeSocket()
        try:
            previous = signal.set_wakeup_fd(wake.write_fd, warn_on_full_buffer=False)
        except ValueError:  # not the main thread
            previous, poll_s = None, min(poll_s, 0.2)
        try:
            while not self.signum:
                select.select([wake], [], [], poll_s)
                wake.drain()
        finally:
            if previous is not None:
                signal.set_wakeup_fd(previous)
            wake.close()
