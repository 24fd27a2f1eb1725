"""Cancel a running query when its client hangs up, with one watcher thread for all queries.

Grafana abandons queries when a dashboard is refreshed or left; without this the 2-core machine
would keep evaluating them to the end. The kernel's "peer hung up" poll events (``POLLRDHUP``,
``POLLHUP``, ``POLLERR``) say it without reading a byte, so this works for TLS connections as
well (which cannot be peeked at) and for descriptors above 1023 (which ``select`` cannot watch).

One shared thread polls every watched connection each ``TICK_S``: starting a thread per query
cost more than answering a single-series query (the new thread must be scheduled before
``Thread.start`` returns, ~0.5 ms on a loaded 2-core machine). Waking that thread for each query
costs the same kind of time (it takes the GIL and a core while the query runs), so a query only
wakes it when it sleeps: the thread keeps ticking for ``IDLE_S`` after the last query, so a
stream of queries never wakes it, and only then sleeps on a condition until the next one.
"""

from __future__ import annotations

import itertools
import select
import socket
import threading
import time

TICK_S = 0.25
"""How often the watched connections are polled: the most a hung-up client's query runs on."""
IDLE_S = 30.0
"""How long the thread keeps ticking with no query in flight before it sleeps until the next
(ticks cost a few microseconds each; a wake-up per query cost more than a small query)."""

_HUNG_UP = getattr(select, "POLLRDHUP", 0x2000) | select.POLLHUP | select.POLLERR


class _Watcher:
    """The connections of the queries in flight, and the one thread that polls them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._watched: dict[int, tuple[socket.socket, threading.Event]] = {}
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None
        self._asleep = False

    def add(self, conn: socket.socket, cancel: threading.Event) -> int:
        """Watch ``conn`` until :meth:`remove` with the returned key."""
        with self._lock:
            key = next(self._keys)
            self._watched[key] = (conn, cancel)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="disconnect-watch", daemon=True
                )
                self._thread.start()
            elif self._asleep:  # only a sleeping thread is woken; a ticking one polls in time
                self._asleep = False
                self._changed.notify()
        return key

    def remove(self, key: int) -> None:
        with self._lock:
            self._watched.pop(key, None)

    def _run(self) -> None:
        idle_since: float | None = None
        while True:
            with self._lock:
                if self._watched:
                    idle_since = None
                elif idle_since is None:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since >= IDLE_S:
                    self._asleep = True
                    while self._asleep:
                        self._changed.wait()
                    idle_since = None
                # One tick before each poll, never cut short (only a sleeping thread is
                # notified): a query's connection is first polled after at most TICK_S.
                self._changed.wait(TICK_S)
                watched = list(self._watched.values())
            if watched:
                _check(watched)


def _check(watched: list[tuple[socket.socket, threading.Event]]) -> None:
    """Set the cancel event of every connection whose peer hung up (or that is closed)."""
    poller = select.poll()
    by_fd: dict[int, list[threading.Event]] = {}
    for conn, cancel in watched:
        try:
            fd = conn.fileno()
            poller.register(fd, _HUNG_UP)
        except (OSError, ValueError):  # already closed
            cancel.set()
            continue
        by_fd.setdefault(fd, []).append(cancel)
    for fd, events in poller.poll(0):
        if events & _HUNG_UP:
            for cancel in by_fd.get(fd, ()):
                cancel.set()


_WATCHER = _Watcher()


class DisconnectWatch:
    """Sets ``cancel`` if the client closes ``conn`` while the ``with`` block runs; no-op
    when ``cancel`` is ``None``."""

    def __init__(self, conn: socket.socket, cancel: threading.Event | None) -> None:
        self.conn = conn
        self.cancel = cancel
        self._key: int | None = None

    def __enter__(self) -> DisconnectWatch:
        if self.cancel is not None:
            self._key = _WATCHER.add(self.conn, self.cancel)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._key is not None:
            _WATCHER.remove(self._key)
            self._key = None
