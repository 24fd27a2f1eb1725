"""Request heads: what the standard library accepted is accepted alike, what it refused is
refused with the same status, and header lines that are not headers are refused (as Go's
server, which Prometheus runs, refuses them) instead of silently ending the headers."""

from __future__ import annotations

import io
import socket
from http import HTTPStatus
from pathlib import Path

import pytest

from grafana_agent_bridge.api import head
from grafana_agent_bridge.api.http import BridgeHTTPServer


def headers(raw: bytes):  # type: ignore[no-untyped-def]
    return head.read_headers(io.BufferedReader(io.BytesIO(raw)))  # type: ignore[arg-type]


def test_headers_read_like_the_standard_library() -> None:
    h = headers(
        b"Host: x\r\nAccept-Encoding:gzip\r\nX-Twice: 1\r\nx-twice: 2\r\n"
        b"Folded: a\r\n  b\r\n\r\nbody"
    )
    assert h.get("accept-encoding") == "gzip"
    assert h.get("X-TWICE") == "1"  # the first of a repeated header
    assert h.get_all("x-twice") == ["1", "2"]
    assert h.get("Folded") == "a b"
    assert h.get("Missing") is None
    assert [n for n, _ in h.items()] == ["Host", "Accept-Encoding", "X-Twice", "x-twice", "Folded"]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"X: " + b"a" * head.MAX_LINE + b"\r\n\r\n", HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE),
        (b"X: a\r\n" * head.MAX_HEADERS + b"\r\n", HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE),
        (b"Host: x\r\nnot a header\r\nTransfer-Encoding: chunked\r\n\r\n", HTTPStatus.BAD_REQUEST),
        (b"Content-Length : 5\r\n\r\n", HTTPStatus.BAD_REQUEST),
        (b": empty name\r\n\r\n", HTTPStatus.BAD_REQUEST),
        (b" folded first\r\n\r\n", HTTPStatus.BAD_REQUEST),
    ],
)
def test_bad_header_blocks_are_refused(raw: bytes, status: HTTPStatus) -> None:
    with pytest.raises(head.HeadError) as e:
        headers(raw)
    assert e.value.status == status


def test_request_lines() -> None:
    line = head.request_line("GET //evil.example/x?q=1 HTTP/1.1", "HTTP/0.9")
    assert line is not None
    assert (line.command, line.path, line.version, line.keep_alive) == (
        "GET",
        "/evil.example/x?q=1",
        "HTTP/1.1",
        True,
    )
    old = head.request_line("GET / HTTP/1.0", "HTTP/0.9")
    assert old is not None and not old.keep_alive
    assert head.request_line("", "HTTP/0.9") is None
    for text, status in [
        ("GET / HTTP/2.0", HTTPStatus.HTTP_VERSION_NOT_SUPPORTED),
        ("GET / HTTP/1.1.1", HTTPStatus.BAD_REQUEST),
        ("GET / FTP/1.1", HTTPStatus.BAD_REQUEST),
        ("GET / HTTP/1.x", HTTPStatus.BAD_REQUEST),
        ("GET a b HTTP/1.1", HTTPStatus.BAD_REQUEST),
        ("POST /", HTTPStatus.BAD_REQUEST),
    ]:
        with pytest.raises(head.HeadError) as e:
            head.request_line(text, "HTTP/0.9")
        assert e.value.status == status, text


def test_a_refused_head_is_answered_and_the_connection_closed(tmp_path: Path) -> None:
    import threading

    srv = BridgeHTTPServer(("127.0.0.1", 0))
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as c:
            c.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nbroken line\r\n\r\n")
            answer = b""
            while chunk := c.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert b"Connection: close" in answer
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as c:
            c.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)
