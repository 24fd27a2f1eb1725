"""A fault-injecting HTTP proxy for remote-write, controlled from the test that runs it.

It sits between a sender (the bridge's forwarder) and a receiver (a real Prometheus), and on
command drops connections, refuses them (the port closed), answers 500/503/429 (with
``Retry-After``) or 400, or stalls. Without an upstream it is itself a recording receiver that
decodes every request with the bridge's own decoder, for tests that need to see what arrived.

Faults are either the standing ``mode`` or one-shot faults queued with ``fail_next``. Every
request is logged (time, ``Retry-Attempt`` header, what was answered) so tests can check the
sender's retry timing.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

PASS_HEADERS = ("Content-Type", "Content-Encoding", "X-Prometheus-Remote-Write-Version")


@dataclass(frozen=True)
class Fault:
    """What to do with a request: pass it on, drop the connection, answer, or stall."""

    kind: str = "pass"
    """``pass``, ``drop`` (close without answering), ``status``, ``stall`` (hold, then drop),
    ``swallow`` (pass it on, then drop the connection: delivered, but the sender never hears)."""
    status: int = 0
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    stall_s: float = 0.0

    @staticmethod
    def answer(status: int, body: str = "", retry_after: str | None = None) -> Fault:
        headers = (("Retry-After", retry_after),) if retry_after is not None else ()
        return Fault("status", status, body.encode(), headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A sender killed mid-request (the crash tests) is expected, not worth a traceback."""


PASS = Fault()
DROP = Fault("drop")
SWALLOW = Fault("swallow")


@dataclass
class Seen:
    at: float
    """``time.monotonic()`` when the request arrived."""
    path: str
    retry_attempt: str | None
    answered: int
    """HTTP status answered, 0 for a dropped connection."""
    nbytes: int


@dataclass
class Received:
    """What a recording receiver decoded: samples per series, in arrival order."""

    samples: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = field(
        default_factory=dict
    )
    requests: int = 0
    metadata: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """Metric family name → (type, help, unit), as last received."""
    exemplars: dict[
        tuple[tuple[str, str], ...], list[tuple[tuple[tuple[str, str], ...], float, int]]
    ] = field(default_factory=dict)
    """Series → its exemplars as (exemplar labels, value, timestamp), in arrival order."""

    def total(self) -> int:
        return sum(len(v) for v in self.samples.values())


class FaultProxy:
    """``strict``: as a receiver, reject (400, whole request) any sample not newer than the
    series' newest, except an exact duplicate of it, as Prometheus's receiver does."""

    def __init__(
        self,
        upstream: str | None = None,
        port: int = 0,
        *,
        strict: bool = False,
        tls: tuple[Path, Path] | None = None,
        keep_bodies: bool = False,
    ) -> None:
        self.upstream = urlsplit(upstream) if upstream else None
        self.strict = strict
        self.tls = tls
        """(certificate, key) PEM files: serve HTTPS."""
        self.mode: Fault = PASS
        self.seen: list[Seen] = []
        self.bodies: list[bytes] | None = [] if keep_bodies else None
        """With ``keep_bodies``: every request body that arrived, in arrival order."""
        self.received = Received()
        self._conns: set[socket.socket] = set()
        self.arrivals = 0
        """Requests that arrived (``seen`` lists them only once answered)."""
        self._once: list[Fault] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = port
        self._listen()

    # -- control ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/api/v1/write"

    def set_mode(self, fault: Fault) -> None:
        with self._lock:
            self.mode = fault
        if fault.kind != "stall":
            self._release.set()  # let stalled requests go (as dropped connections)
        else:
            self._release.clear()

    def fail_next(self, count: int, fault: Fault) -> None:
        """The next ``count`` requests get ``fault``, then the standing mode applies again."""
        with self._lock:
            self._once.extend([fault] * count)

    @contextmanager
    def outage(self, fault: Fault = DROP) -> Iterator[None]:
        self.set_mode(fault)
        try:
            yield
        finally:
            self.set_mode(PASS)

    def refuse(self) -> None:
        """Close the listening port and cut open connections: new ones are refused, as when
        the upstream host is down."""
        self._shutdown()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)

    def accept(self) -> None:
        """Listen again on the same port after ``refuse``."""
        if self._server is None:
            self._listen()

    def answered(self, status: int) -> int:
        with self._lock:
            return sum(1 for s in self.seen if s.answered == status)

    def close(self) -> None:
        self._release.set()
        self._shutdown()

    # -- serving ----------------------------------------------------------------------------

    def _listen(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy._conns.add(self.connection)

            def finish(self) -> None:
                with proxy._lock:
                    proxy._conns.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                if proxy._server is None:  # refusing: established connections die too
                    self.close_connection = True
                    return
                proxy._handle(self)

        deadline = time.monotonic() + 5
        while True:
            try:
                server = _Server(("127.0.0.1", self.port), Handler)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        if self.tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def _shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def _next_fault(self) -> Fault:
        with self._lock:
            return self._once.pop(0) if self._once else self.mode

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length)
        fault = self._next_fault()
        arrived = time.monotonic()
        with self._lock:
            self.arrivals += 1
            if self.bodies is not None:
                self.bodies.append(body)
        status = 0
        if fault.kind == "stall":
            self._release.wait(fault.stall_s or None)
            fault = DROP
        if fault.kind == "swallow":
            status = self._pass(h, body)[0]
            fault = DROP
        if fault.kind == "drop":
            h.close_connection = True
            with suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
        elif fault.kind == "status":
            status = fault.status
            self._reply(h, status, fault.body, fault.headers)
        else:
            status, answer, headers = self._pass(h, body)
            self._reply(h, status, answer, headers)
        with self._lock:
            self.seen.append(
                Seen(arrived, h.path, h.headers.get("Retry-Attempt"), status, len(body))
            )

    def _pass(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, bytes, tuple]:
        if self.upstream is None:
            return self._record(h, body)
        conn = http.client.HTTPConnection(
            self.upstream.hostname or "", self.upstream.port, timeout=30
        )
        try:
            headers = {k: v for k in PASS_HEADERS if (v := h.headers.get(k)) is not None}
            conn.request("POST", self.upstream.path or h.path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read(), ()
        except OSError as e:
            return 502, f"proxy: upstream unreachable: {e}".encode(), ()
        finally:
            conn.close()

    def _record(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, bytes, tuple]:
        from grafana_agent_bridge.remote_write import RemoteWriteError, decode_write_request

        try:
            decoded = decode_write_request(
                body, h.headers.get("Content-Type"), h.headers.get("Content-Encoding")
            )
        except RemoteWriteError as e:
            return e.status, e.message.encode(), ()
        with self._lock:
            skip: dict[int, int] = {}
            if self.strict:
                for k, s in enumerate(decoded.series):
                    have = self.received.samples.get(s.labels)
                    if not len(s.timestamps) or not have or int(s.timestamps[0]) > have[-1][0]:
                        continue
                    if (int(s.timestamps[0]), float(s.values[0])) != have[-1]:
                        return 400, b"out of order sample", ()
                    skip[k] = 1  # an exact duplicate of the newest sample: accepted, not kept
            self.received.requests += 1
            for m in decoded.metadata:
                self.received.metadata[m.metric_family_name] = (m.type, m.help, m.unit)
            for k, s in enumerate(decoded.series):
                lo = skip.get(k, 0)
                if len(s.timestamps):
                    self.received.samples.setdefault(s.labels, []).extend(
                        zip(s.timestamps[lo:].tolist(), s.values[lo:].tolist())
                    )
                if s.exemplars:
                    self.received.exemplars.setdefault(s.labels, []).extend(
                        (e.labels, e.value, e.timestamp) for e in s.exemplars
                    )
        return 204, b"", ()

    @staticmethod
    def _reply(
        h: BaseHTTPRequestHandler, status: int, body: bytes, headers: tuple[tuple[str, str], ...]
    ) -> None:
        with suppress(OSError):
            h.send_response(status)
            for k, v in headers:
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
