"""Absolute deadlines for reading from a client connection.

A socket timeout bounds each ``recv``, not a request: a client that sends one byte every few
seconds ("slowloris") never trips it, and used to hold its connection, thread and file
descriptor for as long as it liked. :class:`DeadlineReader` is the raw stream under a
connection's buffered ``rfile``; before every ``recv`` it sets the socket's timeout to what
is left until ``deadline``, so the whole request line and headers (or the whole body) must
arrive in time, however they are dribbled.
"""

from __future__ import annotations

import io
import math
import select
import socket
import ssl
import time


class DeadlineReader(io.RawIOBase):
    """Reads ``sock`` until ``deadline`` (``time.monotonic()`` seconds), then ``TimeoutError``."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.deadline = math.inf

    def expire_in(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the client did not send in time")
        self.sock.settimeout(left)
        return self.sock.recv_into(buffer)


def tls_handshake(sock: ssl.SSLSocket, seconds: float) -> None:
    """Complete a server-side TLS handshake within ``seconds`` in all (a blocking handshake's
    timeout applies to each read, which a client can stretch byte by byte)."""
    deadline = time.monotonic() + seconds
    sock.setblocking(False)
    try:
        while True:
            try:
                sock.do_handshake()
                return
            except ssl.SSLWantReadError:
                events = select.POLLIN
            except ssl.SSLWantWriteError:
                events = select.POLLOUT
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("TLS handshake not completed in time")
            poller = select.poll()
            poller.register(sock, events)
            poller.poll(left * 1000)
    finally:
        sock.setblocking(True)
