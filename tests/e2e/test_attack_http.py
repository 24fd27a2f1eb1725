"""Attacks on the bridge's HTTP edge: body framing, decompression bombs, slow connections, and
the small authentication and allow-list gaps.

Each test runs the real daemon (``attack_support.Target``) over loopback, attacks it a bounded
number of times with socket timeouts so nothing can hang, and asserts that the attack is
refused quickly with a clear answer and that the daemon survived (``assert_survived``: ready
within 2 s, pre-attack samples intact, peak RSS under the stated bound).
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cramjam
import pytest
from attack_support import Target
from forward_support import http_get, http_post
from google.protobuf.internal.encoder import _VarintBytes  # type: ignore[attr-defined]
from test_plugin_grafana import Plugin, context, plugin  # noqa: F401  (module fixture)

from grafana_agent_bridge.api.http import _DisconnectWatch
from grafana_agent_bridge.plugin import pluginv2_pb2 as pb
from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS

MIB = 1 << 20
IDLE_RSS_BOUND_MIB = 250
"""The daemon with the probe series stays near 100 MiB; an attack that gets its bytes buffered
or decoded (tens to hundreds of MiB) crosses this."""


def _target(tmp_path: Path, config: str = "", launcher: list[str] | None = None) -> Target:
    """A started target whose configuration file gets ``config`` (YAML sections) appended."""
    target = Target(tmp_path, launcher=launcher)
    if config:
        target.bridge.config.write_text(target.bridge.config.read_text() + config)
    return target.start()


def _connect(target: Target, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", target.bridge.port), timeout=timeout)


def _answer(sock: socket.socket) -> tuple[int, bytes]:
    """Status and body of the HTTP answer on ``sock`` (read until the server closes)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data:
                head, _, rest = data.partition(b"\r\n\r\n")
                length = [
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                if length and len(rest) >= length[0]:
                    break
    except ConnectionResetError:
        pass
    assert data, "no answer"
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


WRITE_HEAD = (
    b"POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
    b"Content-Encoding: snappy\r\nTransfer-Encoding: chunked\r\n\r\n"
)


# --- 3: chunk sizes that Python's int(_, 16) accepts but HTTP does not -----------------------


@pytest.mark.parametrize("size", [b"-1", b"+1", b"0x10", b"1_0"])
def test_chunk_size_that_is_not_plain_hex_is_refused_at_once(tmp_path: Path, size: bytes) -> None:
    target = _target(tmp_path, "ingest:\n  max_body_bytes: 1048576\n")
    try:
        # The answer must come while the client is still holding the body open: a reader that
        # accepted the size would wait for the rest (for -1: the whole stream, to EOF).
        with _connect(target, timeout=3) as sock:
            t0 = time.monotonic()
            sock.sendall(WRITE_HEAD + size + b"\r\n" + b"\x00" * 64)
            status, body = _answer(sock)
            took = time.monotonic() - t0
        assert status == 400, body
        assert b"invalid chunk size" in body, body
        assert took < 2, took
        print(f"chunk size {size!r}: 400 in {took * 1000:.0f} ms")
        # The bypass itself: 96 MiB after a chunk size of -1 against a 1 MiB limit. The bytes
        # are refused, not buffered (the connection is closed on the first line).
        with _connect(target, timeout=3) as sock:
            sock.sendall(WRITE_HEAD + size + b"\r\n")
            sent = 0
            try:
                while sent < 96 * MIB:
                    sock.sendall(b"\x00" * MIB)
                    sent += MIB
                sock.shutdown(socket.SHUT_WR)
                sock.recv(1024)
            except OSError:
                pass
        target.assert_survived(IDLE_RSS_BOUND_MIB)
    finally:
        target.stop()


# --- 4: decompression and decoding bombs ----------------------------------------------------


def _snappy(raw: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(raw))


def _series_with_empty_samples(n: int) -> bytes:
    """One valid series holding ``n`` empty samples: 2 bytes each on the wire, ~40 parsed."""
    name = b"\x0a\x08__name__\x12\x04bomb"  # Label{name: "__name__", value: "bomb"}
    labels = b"\x0a" + _VarintBytes(len(name)) + name
    inner = labels + b"\x12\x00" * n
    return b"\x0a" + _VarintBytes(len(inner)) + inner


def _post(target: Target, body: bytes, timeout: float = 30) -> tuple[int, bytes, float]:
    t0 = time.monotonic()
    status, answer = http_post(target.url, "/api/v1/write", body, REMOTE_WRITE_HEADERS, timeout)
    return status, answer, time.monotonic() - t0


def test_snappy_bombs_are_refused_before_they_are_decoded(tmp_path: Path) -> None:
    target = _target(tmp_path)
    try:
        # A header that claims 4 GiB, on a body of a few bytes.
        claim = _VarintBytes((4 << 30) - 1) + b"\x00" * 16
        status, answer, took = _post(target, claim)
        assert status == 413 and b"ingest.max_decoded_bytes" in answer, (status, answer)
        print(f"4 GiB header claim: 413 in {took * 1000:.0f} ms")
        # A real bomb: 8 MiB of empty series, 400 KiB compressed (21x), 4M protobuf elements
        # that would cost ~220 MiB parsed (and a rejection each).
        bomb = _snappy(b"\x0a\x00" * (4 << 20))
        status, answer, took = _post(target, bomb)
        assert status == 413 and b"ingest.max_decoded_elements" in answer, (status, answer)
        print(f"element bomb ({len(bomb)} bytes sent): 413 in {took * 1000:.0f} ms")
        peak = target.assert_survived(IDLE_RSS_BOUND_MIB)
        print(f"snappy bombs: peak RSS {peak:.0f} MiB")
    finally:
        target.stop()


def test_concurrent_large_decodes_are_bounded(tmp_path: Path) -> None:
    # Eight senders at once, each body just under the per-request sample limit (990k samples of one
    # series, ~60 MiB each to decode); one write slot means they are decoded one at a time,
    # and those that cannot get the slot in time are told to retry (503 + Retry-After).
    target = _target(tmp_path, "ingest:\n  max_concurrent_writes: 1\n")
    body = _snappy(_series_with_empty_samples(990_000))
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: _post(target, body, timeout=60), range(8)))
        for status, answer, _ in results:
            # 400: the 990k samples share one timestamp, so all but one are duplicates.
            assert status in (400, 503), (status, answer[:300])
            if status == 503:
                assert b"ingest.max_concurrent_writes" in answer, answer
        statuses = sorted(s for s, _, _ in results)
        slowest = max(t for _, _, t in results)
        print(f"8 concurrent decodes: {statuses}, slowest answer {slowest:.1f}s")
        peak = target.assert_survived(400)
        print(f"concurrent decodes: peak RSS {peak:.0f} MiB (bound 400)")
    finally:
        target.stop()


# --- 5: slow connections against a low file-descriptor limit --------------------------------

FD_LIMIT = 256
LOW_FD_LAUNCHER = [
    sys.executable,
    "-c",
    "import os, resource, sys; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({FD_LIMIT}, {FD_LIMIT})); "
    "os.execv(sys.executable, [sys.executable, '-m', 'grafana_agent_bridge', *sys.argv[1:]])",
]


def _open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def test_slow_connections_cannot_lock_clients_out(tmp_path: Path) -> None:
    # 400 clients that each send one header byte every 0.5 s, against a daemon allowed 256 open
    # files: more than it can hold. They must be cut off (2 s header deadline), the accept loop
    # must not spin, and a normal client must then be served within 2 s.
    target = _target(tmp_path, "web:\n  read_header_timeout: 2s\n", launcher=LOW_FD_LAUNCHER)
    slow: list[socket.socket] = []
    try:
        pid = target.pid
        cpu0 = _cpu_seconds(pid)
        for _ in range(400):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", target.bridge.port))
            slow.append(s)
        peak_fds = 0
        dribble_until = time.monotonic() + 4
        while time.monotonic() < dribble_until:
            for s in slow:
                with contextlib.suppress(OSError):
                    s.send(b"G")
            peak_fds = max(peak_fds, _open_fds(pid))
            time.sleep(0.5)
        cpu = _cpu_seconds(pid) - cpu0
        t0 = time.monotonic()
        status, _ = http_get(target.url, "/-/ready", timeout=2)
        took = time.monotonic() - t0
        assert status == 200
        print(
            f"400 slow connections: peak {peak_fds} fds (limit {FD_LIMIT}), daemon CPU "
            f"{cpu:.1f}s over the 4 s attack, normal client served in {took * 1000:.0f} ms"
        )
        assert peak_fds < FD_LIMIT
        assert cpu < 3, f"the daemon spent {cpu:.1f}s of CPU in 4s: a spinning accept loop"
        target.assert_survived(IDLE_RSS_BOUND_MIB)
    finally:
        for s in slow:
            s.close()
        target.stop()


# --- 11: authentication scheme, IPv4-mapped allow-list, TLS disconnect, plugin path ---------


def test_bearer_scheme_is_case_insensitive(tmp_path: Path) -> None:
    target = _target(tmp_path, "query:\n  auth_token: s3cret\n")
    try:

        def status(authorization: str) -> int:
            with _connect(target) as sock:
                sock.sendall(
                    b"GET /api/v1/labels HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    + f"Authorization: {authorization}\r\n\r\n".encode()
                )
                return _answer(sock)[0]

        assert status("Bearer s3cret") == 200
        assert status("bearer s3cret") == 200
        assert status("BEARER s3cret") == 200
        assert status("Bearer wrong") == 401
        assert status("Basic s3cret") == 401
        assert status("s3cret") == 401
    finally:
        target.stop()


def _write_from(target: Target, source: str) -> int:
    """Status of a remote write sent from loopback address ``source`` (e.g. 127.0.0.2)."""
    sock = socket.socket()
    sock.settimeout(5)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", target.bridge.port))
    with sock:
        body = _snappy(b"")
        head = "".join(f"{k}: {v}\r\n" for k, v in REMOTE_WRITE_HEADERS.items())
        sock.sendall(
            f"POST /api/v1/write HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        return _answer(sock)[0]


def test_ipv4_mapped_allow_list_entries_match(tmp_path: Path) -> None:
    # An entry written as IPv4-mapped IPv6 (as a dual-stack socket reports IPv4 clients) must
    # match the IPv4 client; Target.start() itself writes its probe samples from 127.0.0.1.
    target = _target(
        tmp_path, "ingest:\n  allowed_clients: ['::ffff:127.0.0.1', '::ffff:10.0.0.0/104']\n"
    )
    try:
        assert _write_from(target, "127.0.0.1") == 204
        assert _write_from(target, "127.0.0.2") == 403  # still an allow-list
        target.assert_survived(IDLE_RSS_BOUND_MIB)
    finally:
        target.stop()


def _tls_pair(tmp_path: Path) -> tuple[ssl.SSLSocket, ssl.SSLSocket]:
    """A connected server/client TLS socket pair over loopback, with a self-signed key."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)
        client = socket.create_connection(listener.getsockname(), timeout=10)
        raw_server, _ = listener.accept()
    server_side: list[ssl.SSLSocket] = []
    handshake = threading.Thread(
        target=lambda: server_side.append(server_ctx.wrap_socket(raw_server, server_side=True))
    )
    handshake.start()
    tls_client = client_ctx.wrap_socket(client)
    handshake.join(10)
    return server_side[0], tls_client


def test_tls_connections_get_the_disconnect_watch(tmp_path: Path) -> None:
    server_side, client_side = _tls_pair(tmp_path)
    cancel = threading.Event()
    with _DisconnectWatch(server_side, cancel):
        assert not cancel.wait(0.6)  # an open, quiet TLS connection is left alone
        client_side.close()
        assert cancel.wait(2), "a closed TLS client did not cancel its query"
    server_side.close()


@pytest.mark.parametrize("path", ["api/v1/labels\r\nX-Injected: 1", "api/v1/label/a\nb/values"])
def test_plugin_resource_path_with_cr_lf_is_a_400(
    tmp_path: Path,
    plugin: Plugin,  # noqa: F811
    path: str,
) -> None:
    target = _target(tmp_path)
    try:
        (reply,) = plugin.call_resource(
            pb.CallResourceRequest(
                pluginContext=context(target.url), path=path, method="GET", url=path
            )
        )
        assert reply.code == 400, (reply.code, reply.body[:300])
        assert b"control character" in reply.body, reply.body
        json.loads(reply.body)
        target.assert_survived(IDLE_RSS_BOUND_MIB)
    finally:
        target.stop()
