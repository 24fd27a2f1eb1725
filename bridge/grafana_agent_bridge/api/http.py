"""The bridge's HTTP server: the standard library's threading server, one thread per connection.

No web framework: the surface is small (a dozen fixed paths) and every byte of the answers is
dictated by Prometheus's API anyway. This module does transport only: it finds the request's
route in the table (``routes``; how to add one is described there) and enforces what the route
declares (``router.Route``), always in this order: the write allow-list (403), the bearer token
(401), the daemon's phase (503 while starting or shutting down), a write slot (503), the body
within its limit (413) and time (408); then it calls the endpoint, with a client hang-up
cancelling it where the route asks. TLS, compression, metrics and tracing are done here too;
what each endpoint answers lives in ``query`` and ``write``.

What a connection may cost is bounded (``WebLimits``): at most ``max_connections`` at once (more
are closed as soon as they are accepted, so the process never runs out of file descriptors);
the request line and headers must arrive within ``read_header_timeout`` and a body within
``read_timeout`` (absolute deadlines, see ``deadline``); an idle keep-alive connection is closed
after ``idle_timeout``; at most ``max_concurrent_writes`` remote writes are read and decoded at
once (others wait up to ``WRITE_QUEUE_WAIT_S``, then get 503 with ``Retry-After``, which
remote-write senders retry).
"""

from __future__ import annotations

import contextlib
import email.utils
import errno
import gzip
import hmac
import io
import ipaddress
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast
from urllib.parse import urlsplit

from .. import tracing
from ..lifecycle import Lifecycle, Phase
from ..metrics import Counter, Histogram, Registry
from ..wakeup import WakeSocket
from . import encoding, head
from .body import BodyError, check_transfer_encoding, content_length, read_chunked, read_exactly
from .deadline import DeadlineReader, tls_handshake
from .disconnect import DisconnectWatch as _DisconnectWatch
from .otlp import OTLPMetricsAPI
from .params import Params
from .query import QueryAPI, Response
from .router import Body, Refusal, Request, Route, RouteTable, call
from .routes import Endpoints, bridge_routes
from .write import WriteAPI

log = logging.getLogger(__name__)

GZIP_MIN_BYTES = 8 << 10
"""Smaller answers go uncompressed: they leave in the first flight of TCP segments anyway (ten
segments, ~14 KB), so compressing saves no round trip, while level-1 gzip of a 4 KB answer (a
single-series range query) cost ~20-60 us of server time, a fifth of the whole answer."""
DISCARD_MAX_BYTES = 256 << 20
"""Oversized bodies up to this size are read and dropped so the 413 reaches the client."""
WRITE_QUEUE_WAIT_S = 5.0
"""How long a remote write waits for a free decode slot before it is answered 503 (well inside
a sender's 30 s request timeout, so the retry comes from the sender, not from a piled-up queue)."""
WRITE_TIMEOUT_S = 60.0
"""Longest a single send of an answer may block on a client that does not read."""
ONE_WRITE_MAX_BYTES = 64 * 1024
"""Bodies up to this size go out in the same write as their headers (one copy, one syscall)."""
ACCEPT_BACKOFF_S = 0.1
"""Pause of the accept loop after the process ran out of file descriptors (never a busy spin)."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class HTTPMetrics:
    """The server's metrics, in the registry the daemon gives it."""

    def __init__(self, registry: Registry) -> None:
        self.requests: Counter = registry.counter(
            "bridge_http_requests_total",
            "HTTP requests answered, by handler and status.",
            ("handler", "code"),
        )
        self.seconds: Histogram = registry.histogram(
            "bridge_http_request_duration_seconds", "Time to answer HTTP requests.", ("handler",)
        )
        self.refused_connections: Counter = registry.counter(
            "bridge_http_connections_refused_total",
            "Connections closed at once: over web.max_connections, or no file descriptor left.",
        )


@dataclass(frozen=True)
class WebLimits:
    """What one client connection may cost (the ``web`` configuration section)."""

    read_header_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    idle_timeout_s: float = 300.0
    max_connections: int = 512
    max_concurrent_writes: int = 4


SAFETY_POLL_S = 5.0
"""How often the accept loop looks at its stop flag without being woken (``shutdown`` wakes
it at once)."""


class BridgeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        *,
        lifecycle: Lifecycle | None = None,
        registry: Registry | None = None,
        auth_token: str = "",
        allowed_networks: Sequence[Network] = (),
        max_body_bytes: int = 32 << 20,
        ssl_context: ssl.SSLContext | None = None,
        index_text: Callable[[], str] = lambda: "grafana-agent-bridge\n",
        limits: WebLimits | None = None,
    ) -> None:
        """Listen on ``address``; the API answers 503 until ``attach`` and the lifecycle says
        serving. ``registry`` receives the HTTP metrics and is what ``/metrics`` shows."""
        # Before the socket is bound: a failed bind calls server_close, which closes them.
        self._wake = WakeSocket()
        self._stop_requested = False
        self._loop_done = threading.Event()
        host = address[0]
        if host and ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        if ssl_context is not None:
            # Handshakes happen in the connection's thread (see _Handler.setup), never in the
            # accept loop, so one slow client cannot stall the others.
            self.socket = ssl_context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )
        self.tls = ssl_context is not None
        self.lifecycle = lifecycle or Lifecycle()
        registry = registry or Registry()
        self.metrics = HTTPMetrics(registry)
        self.auth_token = auth_token
        self.allowed_networks = [_unmapped(net) for net in allowed_networks]
        self.endpoints = Endpoints(
            self.lifecycle, registry, index_text, max_body_bytes=max_body_bytes
        )
        self.routes: RouteTable = bridge_routes(self.endpoints)
        self._inflight = 0
        self._inflight_lock = threading.Condition()
        self.limits = limits or WebLimits()
        self.write_slots = threading.BoundedSemaphore(self.limits.max_concurrent_writes)
        self.connections = 0
        """Connections accepted and not yet closed (at most ``limits.max_connections``)."""
        self._connections_lock = threading.Lock()

    def serve_forever(self, poll_interval: float = SAFETY_POLL_S) -> None:
        """The stdlib accept loop, woken by ``shutdown`` through a socket pair rather
        than by polling a flag: socketserver's own wakes every ``poll_interval`` (a few times a
        second at any useful shutdown latency) on a bridge that may idle for hours.
        ``poll_interval`` is only a safety net here."""
        self._loop_done.clear()
        try:
            with selectors.PollSelector() as selector:
                selector.register(self, selectors.EVENT_READ)
                selector.register(self._wake, selectors.EVENT_READ)
                while not self._stop_requested:
                    ready = selector.select(poll_interval)
                    if self._stop_requested:
                        break
                    for key, _events in ready:
                        if key.fileobj is self:
                            # socketserver's own step of its loop (not in its stubs)
                            self._handle_request_noblock()  # type: ignore[attr-defined]
                        else:
                            self._wake.drain()
                    self.service_actions()
        finally:
            self._stop_requested = False
            self._wake.drain()
            self._loop_done.set()

    def shutdown(self) -> None:
        """Stop ``serve_forever`` and wait for it to return (from another thread, as the
        stdlib's: called from the loop's own thread it would wait forever)."""
        self._stop_requested = True
        self._wake.wake()
        self._loop_done.wait()

    def server_close(self) -> None:
        super().server_close()
        self._wake.close()

    def get_request(self) -> tuple[socket.socket, object]:
        """Accept; out of file descriptors, pause briefly instead of spinning on EMFILE (the
        pending connection stays queued and is accepted once a descriptor is free)."""
        try:
            return super().get_request()
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                self.metrics.refused_connections.inc()
                log.warning("cannot accept a connection: %s; pausing", e.strerror)
                time.sleep(ACCEPT_BACKOFF_S)
            raise

    def verify_request(self, request: object, client_address: object) -> bool:
        """Admit a connection only below ``max_connections``; beyond, it is closed at once."""
        with self._connections_lock:
            if self.connections >= self.limits.max_connections:
                self.metrics.refused_connections.inc()
                return False
            self.connections += 1
            return True

    def process_request(self, request: object, client_address: object) -> None:
        try:
            super().process_request(request, client_address)  # type: ignore[arg-type]
        except BaseException:  # no thread started: the slot is free again
            self._connection_closed()
            raise

    def process_request_thread(self, request: object, client_address: object) -> None:
        try:
            super().process_request_thread(request, client_address)  # type: ignore[arg-type]
        finally:
            self._connection_closed()

    def _connection_closed(self) -> None:
        with self._connections_lock:
            self.connections -= 1

    def attach(
        self, query_api: QueryAPI, write_api: WriteAPI, otlp_api: OTLPMetricsAPI | None = None
    ) -> None:
        """Give the routes their endpoints (the server listens before the store is open); they
        answer once the lifecycle moves to serving."""
        self.endpoints.query_api = query_api
        self.endpoints.write_api = write_api
        self.endpoints.otlp_api = otlp_api

    @property
    def query_api(self) -> QueryAPI | None:
        return self.endpoints.query_api

    @property
    def write_api(self) -> WriteAPI | None:
        return self.endpoints.write_api

    def handle_error(self, request: object, client_address: object) -> None:
        """A broken connection (reset, failed TLS handshake) is the client's business."""
        log.debug("connection from %s failed", client_address, exc_info=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def enter(self) -> None:
        with self._inflight_lock:
            self._inflight += 1

    def leave(self) -> None:
        with self._inflight_lock:
            self._inflight -= 1
            self._inflight_lock.notify_all()

    def drain(self, timeout_s: float) -> bool:
        """Wait for requests in progress to finish (after ``shutdown``); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._inflight_lock:
            while self._inflight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._inflight_lock.wait(left)
        return True

    def client_may_write(self, host: str) -> bool:
        if not self.allowed_networks:
            return True
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.allowed_networks)


def _unmapped(net: Network) -> Network:
    """An IPv4-mapped entry (``::ffff:10.0.0.0/104``) as the IPv4 network it stands for, since
    client addresses are compared in their IPv4 form (a dual-stack socket reports IPv4 clients
    as ``::ffff:a.b.c.d``)."""
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network(f"{mapped}/{net.prefixlen - 96}")
    return net


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "grafana-agent-bridge"
    sys_version = ""
    _reader: DeadlineReader
    _served = False
    raw_requestline: bytes  # set by BaseHTTPRequestHandler.handle_one_request
    headers: head.Headers  # type: ignore[assignment]  # read by parse_request, not email

    @property
    def srv(self) -> BridgeHTTPServer:
        return cast(BridgeHTTPServer, self.server)

    def setup(self) -> None:
        # Headers and body go out in two writes; with Nagle's algorithm and the client's
        # delayed ACK that costs ~40 ms per keep-alive request.
        with contextlib.suppress(OSError):
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        limits = self.srv.limits
        if isinstance(self.request, ssl.SSLSocket):
            try:
                tls_handshake(self.request, limits.read_header_timeout_s)
            except (OSError, ssl.SSLError) as e:
                log.debug("TLS handshake with %s failed: %s", self.client_address[0], e)
                raise
        super().setup()
        # The first request line and headers are due within read_header_timeout of the accept.
        self._reader = DeadlineReader(self.connection)
        self._reader.expire_in(limits.read_header_timeout_s)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        """Wait up to ``idle_timeout`` for the next request on a kept-alive connection, then
        give its request line and headers ``read_header_timeout`` from their first byte."""
        limits = self.srv.limits
        if self._served:
            self._reader.expire_in(limits.idle_timeout_s)
            try:
                if not self.rfile.peek(1):  # type: ignore[attr-defined]
                    self.close_connection = True
                    return
            except (OSError, ValueError):
                self.close_connection = True
                return
            self._reader.expire_in(limits.read_header_timeout_s)
        self._served = True
        super().handle_one_request()

    def parse_request(self) -> bool:
        """The request line and headers (``head``: the standard library's checks, without
        its ``email`` parser); False after answering a refused head, as the base class."""
        self.command = None  # type: ignore[assignment]  # as the base class, until parsed
        self.request_version = self.default_request_version
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        try:
            line = head.request_line(self.requestline, self.default_request_version)
            if line is None:
                return False
            self.request_version = line.version
            self.close_connection = not line.keep_alive
            self.command, self.path = line.command, line.path
            self.headers = head.read_headers(self.rfile)  # type: ignore[arg-type]
        except head.HeadError as e:
            self.send_error(e.status, e.message, e.explain)
            return False
        connection = (self.headers.get("Connection") or "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        expect = (self.headers.get("Expect") or "").lower()
        if expect == "100-continue" and self.request_version >= "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.client_address[0], format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def _dispatch(self, method: str) -> None:
        started = time.perf_counter()
        parts = urlsplit(self.path)
        path = parts.path
        label = "other"
        srv = self.srv
        srv.enter()
        try:
            with tracing.span(f"{method} {path}", **{"http.method": method, "http.target": path}):
                found = srv.routes.find(method, path)
                if isinstance(found, Refusal):
                    label, response = found.label, found.response
                else:
                    label = found.route.handler_label
                    response = self._serve(found.route, found.args, method, path, parts.query)
        except BodyError as e:
            self.close_connection = True  # the rest of the body is unread or cannot be trusted
            response = Response(e.status, encoding.error("bad_data", str(e)))
        except Exception:  # a bug must cost one request, never the server
            log.exception("internal error answering %s %s", method, path)
            response = Response(500, encoding.error("internal", "internal server error"))
        finally:
            srv.leave()
        self._send(method, response)
        srv.metrics.requests.inc(1, label, str(response.status))
        srv.metrics.seconds.observe(time.perf_counter() - started, label)

    def _serve(
        self, route: Route, args: Mapping[str, str], method: str, path: str, query: str
    ) -> Response:
        """Check what ``route`` declares, in the module docstring's order, then call it."""
        srv = self.srv
        if route.write_allow_list and not srv.client_may_write(self.client_address[0]):
            return Response(
                403,
                encoding.error("forbidden", f"client {self.client_address[0]} may not write here"),
            )
        if route.auth and srv.auth_token and not self._authorized():
            return Response(
                401,
                encoding.error("unauthorized", "missing or invalid bearer token"),
                headers={"WWW-Authenticate": 'Bearer realm="grafana-agent-bridge"'},
            )
        phase = srv.lifecycle.phase
        if phase not in route.open_in:
            return _closed(phase)
        if not route.write_slot:
            return self._read_and_call(route, args, method, path, query)
        # Bodies, decompressed bytes and decoded messages held at once are bounded by the slots.
        if not srv.write_slots.acquire(timeout=WRITE_QUEUE_WAIT_S):
            self.close_connection = True  # its body is left unread
            return _unavailable(
                f"{srv.limits.max_concurrent_writes} remote writes are in progress "
                "(ingest.max_concurrent_writes); retry later"
            )
        try:
            return self._read_and_call(route, args, method, path, query)
        finally:
            srv.write_slots.release()

    def _read_and_call(
        self, route: Route, args: Mapping[str, str], method: str, path: str, query: str
    ) -> Response:
        form = ""
        body = b""
        headers: dict[str, str] = {}
        if route.body is Body.RAW:
            body = self._read_body(route.max_body)
            headers = {name.lower(): value for name, value in self.headers.items()}
        elif route.body is Body.FORM and method == "POST":
            raw = self._read_body(route.max_body)
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype == "application/x-www-form-urlencoded":
                try:
                    form = raw.decode("utf-8")
                except UnicodeDecodeError:
                    return Response(
                        400, encoding.error("bad_data", "form body is not valid UTF-8")
                    )
        request = Request(
            method,
            path,
            Params(query, form, threading.Event()),
            args,
            body,
            self.headers.get("Content-Type"),
            self.headers.get("Content-Encoding"),
            headers,
        )
        if route.watch_disconnect:
            assert request.params.cancel is not None
            with _DisconnectWatch(self.connection, request.params.cancel):
                return call(route, request)
        return call(route, request)

    def _authorized(self) -> bool:
        """``Authorization: Bearer <token>``, the scheme in any case (RFC 9110 §11.1)."""
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(token.strip().encode(), self.srv.auth_token.encode())

    def _read_body(self, limit: int) -> bytes:
        """The request body, all of it within ``read_timeout`` and at most ``limit`` bytes."""
        self._reader.expire_in(self.srv.limits.read_timeout_s)
        try:
            return self._read_framed_body(limit)
        except TimeoutError:
            raise BodyError(
                408,
                f"the request body did not arrive within {self.srv.limits.read_timeout_s:g}s "
                "(web.read_timeout)",
            ) from None

    def _read_framed_body(self, limit: int) -> bytes:
        transfer_encoding = self.headers.get("Transfer-Encoding")
        if transfer_encoding is not None:
            check_transfer_encoding(transfer_encoding)
            return read_chunked(self.rfile, limit)  # type: ignore[arg-type]
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        length = content_length(length_text.strip())
        if length > limit:
            # Read and drop a moderately oversized body so that the client gets to read the
            # 413 (a remote-write sender drops a request answered 4xx, but retries one whose
            # connection was reset, forever). Far larger bodies get the connection closed.
            if length <= DISCARD_MAX_BYTES:
                self._discard(length)
            raise BodyError(413, f"request body of {length} bytes exceeds the limit of {limit}")
        return read_exactly(self.rfile, length)  # type: ignore[arg-type]

    def _discard(self, length: int) -> None:
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                return
            left -= len(chunk)

    def _send(self, method: str, response: Response) -> None:
        """The status line, headers and body, written by hand in one buffer: the standard
        library's ``send_response``/``send_header`` cost more than a small query's answer
        (a formatted date, a debug line and a list entry per header, on every request)."""
        if self.request_version == "HTTP/0.9":  # no status line or headers at all
            self.close_connection = True
            return
        body = response.body
        status = response.status
        try:
            self.connection.settimeout(WRITE_TIMEOUT_S)
            if log.isEnabledFor(logging.DEBUG):
                self.log_request(status)
            lines = [_status_line(status), _SERVER_HEADER, "Date: ", _http_date(), "\r\n"]
            if response.content_type:
                lines += ("Content-Type: ", response.content_type, "\r\n")
            if (
                len(body) >= GZIP_MIN_BYTES
                and "gzip" in (self.headers.get("Accept-Encoding") or "")
                and status != 204
            ):
                body = gzip.compress(body, compresslevel=1)
                lines.append("Content-Encoding: gzip\r\n")
            if status != 204:
                lines += ("Content-Length: ", str(len(body)), "\r\n")
            for name, value in response.headers.items():
                lines += (name, ": ", value, "\r\n")
            if self.close_connection:
                lines.append("Connection: close\r\n")
            lines.append("\r\n")
            if method == "HEAD" or status == 204:
                body = b""
            data = "".join(lines).encode("latin-1", "strict")
            if len(body) <= ONE_WRITE_MAX_BYTES:
                # Headers and a small body in one send: one syscall, and the client wakes once.
                self.wfile.write(data + body)
            else:
                self.wfile.write(data)
                self.wfile.write(body)
        except (OSError, ssl.SSLError):  # reset, broken pipe, a client that does not read
            self.close_connection = True


_SERVER_HEADER = f"Server: {_Handler.server_version} {_Handler.sys_version}\r\n"
_STATUS_LINES: dict[int, str] = {}
_date_now: tuple[int, str] = (0, "")


def _status_line(status: int) -> str:
    """The status line of ``status`` (CRLF included), with the standard library's reasons."""
    line = _STATUS_LINES.get(status)
    if line is None:
        reason = _Handler.responses.get(status, ("",))[0]
        line = _STATUS_LINES[status] = f"{_Handler.protocol_version} {status} {reason}\r\n"
    return line


def _http_date() -> str:
    """The ``Date`` header's value, formatted once per second (RFC 9110 §5.6.7)."""
    global _date_now  # noqa: PLW0603 - a (second, text) pair swapped whole, safe across threads
    now = int(time.time())
    second, text = _date_now
    if second != now:
        text = email.utils.formatdate(now, usegmt=True)
        _date_now = (now, text)
    return text


def _closed(phase: Phase) -> Response:
    """The answer of a route that is not open in ``phase``."""
    if phase is Phase.STARTING:
        return _unavailable("the bridge is starting (replaying its write-ahead log)")
    return _unavailable("the bridge is shutting down")


def _unavailable(message: str) -> Response:
    return Response(503, encoding.error("unavailable", message), headers={"Retry-After": "2"})
