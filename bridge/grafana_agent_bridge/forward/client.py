"""One keep-alive HTTP connection to a remote-write receiver, and what its answers mean.

``http.client`` rather than a third-party client: one request at a time per connection is all a
shard needs, and the standard library keeps the daemon's dependency set small. Each shard owns
one ``RemoteWriteClient``, so connections are reused across sends (TLS handshakes are not free)
and never shared between threads.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import http.client
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .. import __version__
from ..config import ForwardTarget, duration_ms
from ..redact import scrub
from ..remote_write import REMOTE_WRITE_HEADERS
from ..remote_write2 import REMOTE_WRITE_V2_HEADERS
from .backoff import parse_retry_after

USER_AGENT = f"grafana-agent-bridge/{__version__}"
MAX_ERROR_BODY = 1024
"""Bytes of an error response kept for the log line that explains a drop."""


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    """Network error, 5xx or 429: the upstream may take it later."""
    REJECTED = "rejected"
    """Any other answer (4xx): sending it again would be rejected again."""


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    status: int
    """HTTP status, 0 for a network error."""
    reason: str
    """The response body (truncated) or the network error, for logs."""
    retry_after: float | None = None
    samples_written: str | None = None
    """``X-Prometheus-Remote-Write-Samples-Written`` as answered (None: absent, as from a
    receiver that knows only remote write 1.0)."""


def classify(status: int) -> Outcome:
    """The remote-write 1.0 rules: 2xx done, 5xx and 429 retried, everything else dropped."""
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status >= 500 or status == 429:
        return Outcome.RETRY
    return Outcome.REJECTED


class RemoteWriteClient:
    def __init__(self, target: ForwardTarget) -> None:
        parts = urlsplit(target.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout = duration_ms(target.timeout) / 1000
        self._ssl: ssl.SSLContext | None = None
        if self._https:
            self._ssl = ssl.create_default_context()
            if target.tls_insecure_skip_verify:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        self.v2 = target.protobuf_message == "io.prometheus.write.v2.Request"
        """Whether batches go out as remote write 2.0; cleared by ``fall_back``."""
        self._headers = {"User-Agent": USER_AGENT, **target.header_values()}
        if token := target.bearer_token.get_secret_value():
            self._headers["Authorization"] = f"Bearer {token}"
        elif parts.username is not None and not any(
            k.lower() == "authorization" for k in self._headers
        ):  # as Go's HTTP client (so Prometheus) does with credentials in the URL
            userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            basic = base64.b64encode(userinfo.encode()).decode()
            self._headers["Authorization"] = f"Basic {basic}"
        self._url = target.url
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        with self._lock:
            if self._conn is None:
                if self._https:
                    self._conn = http.client.HTTPSConnection(
                        self._host, self._port, timeout=self._timeout, context=self._ssl
                    )
                else:
                    self._conn = http.client.HTTPConnection(
                        self._host, self._port, timeout=self._timeout
                    )
            return self._conn

    def fall_back(self) -> None:
        """Send remote write 1.0 from now on (the target answered a 2.0 request with 415)."""
        self.v2 = False

    def send(self, body: bytes, attempt: int = 0, *, v2: bool = False) -> SendResult:
        """POST one compressed request (2.0 headers when ``v2``); never raises for network or
        HTTP errors."""
        headers = {**(REMOTE_WRITE_V2_HEADERS if v2 else REMOTE_WRITE_HEADERS), **self._headers}
        if attempt:
            headers["Retry-Attempt"] = str(attempt)
        conn = self._connection()
        try:
            conn.request("POST", self._path, body=body, headers=headers)
            resp = conn.getresponse()
            status = resp.status
            data = resp.read(MAX_ERROR_BODY + 1) if status >= 300 else b""
            if status < 300 or len(data) <= MAX_ERROR_BODY:
                resp.read()  # drain what is left so the connection can be reused
            else:
                self.close()
            retry_after = resp.getheader("Retry-After")
            written = resp.getheader("X-Prometheus-Remote-Write-Samples-Written")
        except (OSError, http.client.HTTPException, ValueError) as e:
            # ValueError: http.client raises it on a connection that abort() closed under it.
            self.close()
            reason = scrub(f"{type(e).__name__}: {e}".strip(), self._url)
            return SendResult(Outcome.RETRY, 0, reason)
        if resp.will_close:
            self.close()
        outcome = classify(status)
        # An upstream may echo what it was sent (a key in the URL): never let it reach the log.
        reason = scrub(data[:MAX_ERROR_BODY].decode("utf-8", "replace").strip(), self._url)
        wait = parse_retry_after(retry_after) if outcome is Outcome.RETRY else None
        return SendResult(outcome, status, reason, wait, written)

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def abort(self) -> None:
        """Cut an in-flight request short (shutdown must not wait for a stalled upstream)."""
        with self._lock:
            conn = self._conn
        sock = getattr(conn, "sock", None) if conn is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
