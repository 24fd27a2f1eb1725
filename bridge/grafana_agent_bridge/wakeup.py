"""Waking a thread that waits in ``select``/``poll`` without it polling a flag.

A thread that waits for "a request or a stop" with a timeout wakes up every timeout for as
long as nothing happens; the bridge may idle for hours. Whoever wants it to stop writes a
byte to this socket pair instead, and the waiting thread's ``select`` returns at once.
"""

from __future__ import annotations

import contextlib
import socket


class WakeSocket:
    """A non-blocking socket pair: select on it (it has a ``fileno``), ``wake`` it from
    anywhere, ``drain`` it once woken."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def fileno(self) -> int:
        """The end to wait on."""
        return self._reader.fileno()

    @property
    def write_fd(self) -> int:
        """The end a waker writes to (``signal.set_wakeup_fd`` takes it)."""
        return self._writer.fileno()

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # full: a wake-up byte is already waiting
            self._writer.send(b"\0")

    def drain(self) -> None:
        with contextlib.suppress(OSError):  # empty
            while self._reader.recv(64):
                pass

    def close(self) -> None:
        self._reader.close()
        self._writer.close()
