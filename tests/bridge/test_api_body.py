"""Request-body framing (``api.body``) and the read deadlines (``api.deadline``) of the server."""

from __future__ import annotations

import contextlib
import io
import socket
import time
from pathlib import Path

import pytest

from grafana_agent_bridge.api.body import (
    BodyError,
    check_transfer_encoding,
    content_length,
    read_chunked,
)
from tests.support import free_port


def chunked(raw: bytes, limit: int = 1 << 20) -> bytes:
    return read_chunked(io.BytesIO(raw), limit)  # type: ignore[arg-type]


def test_valid_chunked_bodies_decode() -> None:
    assert chunked(b"5\r\nhello\r\n0\r\n\r\n") == b"hello"
    assert chunked(b"A\r\n0123456789\r\n0\r\n\r\n") == b"0123456789"  # upper-case hex
    assert chunked(b"2 ;ext=1\r\nab\r\n1;x\r\nc\r\n0\r\nTrailer: v\r\n\r\n") == b"abc"
    assert chunked(b"3\nabc\n0\n\n") == b"abc"  # bare LF line ends are tolerated


@pytest.mark.parametrize(
    "size", [b"-1", b"+1", b"0x10", b"1_0", b" 1", b"1 ", b"", b"g", b"1" * 17]
)
def test_chunk_sizes_other_than_hex_digits_are_400(size: bytes) -> None:
    with pytest.raises(BodyError) as e:
        chunked(size + b"\r\n" + b"x" * 64 + b"\r\n0\r\n\r\n")
    assert e.value.status == 400


def test_chunked_limits_and_truncation() -> None:
    with pytest.raises(BodyError) as e:
        chunked(b"11\r\n" + b"x" * 17 + b"\r\n0\r\n\r\n", limit=16)
    assert e.value.status == 413
    for raw in (b"5\r\nhel", b"5\r\nhelloX\r\n0\r\n\r\n", b"5\r\nhello\r\n", b"1" * 2000):
        with pytest.raises(BodyError) as e:
            chunked(raw)
        assert e.value.status == 400, raw
    with pytest.raises(BodyError):
        chunked(b"0\r\n" + b"T: v\r\n" * 100 + b"\r\n")


def test_content_length_and_transfer_encoding_are_strict() -> None:
    assert content_length("0") == 0
    assert content_length("123") == 123
    for bad in ("-1", "+1", "1_0", "0x10", "", " 1", "1e3"):
        with pytest.raises(BodyError):
            content_length(bad)
    check_transfer_encoding("chunked")
    check_transfer_encoding("Chunked ")
    for bad in ("gzip, chunked", "chunked, gzip", "identity", ""):
        with pytest.raises(BodyError):
            check_transfer_encoding(bad)


def test_slow_headers_are_cut_off_and_slow_bodies_get_408(tmp_path: Path) -> None:
    from test_api_http import start_daemon

    daemon = start_daemon(
        tmp_path,
        **{
            "listen_address": f"127.0.0.1:{free_port()}",
            "web.read_header_timeout": "1s",
            "web.read_timeout": "1s",
        },
    )
    try:
        port = daemon.http.port  # type: ignore[union-attr]
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            for _ in range(10):  # one header byte every 0.2 s, for 2 s (the deadline is 1 s)
                with contextlib.suppress(OSError):
                    sock.sendall(b"G")
                time.sleep(0.2)
            try:
                closed = sock.recv(1) == b""
            except ConnectionResetError:
                closed = True
            assert closed, "a client dribbling its headers was not cut off"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(
                b"POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"
            )
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"web.read_timeout" in answer
    finally:
        daemon.stop()
