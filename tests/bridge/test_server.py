"""The daemon as a whole: graceful shutdown keeps every acknowledged write, structured logs,
and OpenTelemetry traces of requests when an OTLP endpoint is configured."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import requests
from test_api_http import start_daemon

from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import SeriesBatch
from tests.support import bridge_serve, free_port, wait_ready

T0 = 1_700_000_000_000


def _spawn(data: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        bridge_serve(data, port, "--no-collect", *extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # SIGABRT then dumps every thread's stack, so a hang explains itself.
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )


def _exit_or_explain(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    """Wait for the daemon to exit (draining stderr); on a hang, fail with its thread stacks."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"daemon did not exit within {timeout}s; its threads:\n{err.decode()[-8000:]}")
    return err


def test_sigterm_under_write_load_keeps_every_acknowledged_sample(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _spawn(tmp_path / "data", port, "--log-format", "json")
    acked: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        session = requests.Session()
        i = 0
        while not stop.is_set():
            t = T0 + i * 1000
            batch = SeriesBatch(
                (("__name__", "load"), ("w", "1")), np.array([t], np.int64), np.array([float(i)])
            )
            try:
                r = session.post(
                    f"{url}/api/v1/write",
                    data=encode_write_request([batch]),
                    headers=REMOTE_WRITE_HEADERS,
                    timeout=5,
                )
            except requests.RequestException:
                return
            if r.status_code == 204:
                acked.append(t)
            else:
                assert r.status_code == 503, r.text  # shutting down: retry later, never 4xx
            i += 1

    try:
        wait_ready(url, proc, timeout=20)
        thread = threading.Thread(target=writer)
        thread.start()
        while len(acked) < 200:
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        err = _exit_or_explain(proc, 20)
        assert proc.returncode == 0
        stop.set()
        thread.join(10)
        logs = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
        assert {"ts", "level", "logger", "msg"} <= set(logs[0])
        assert any(entry["msg"] == "stopped" for entry in logs)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    proc = _spawn(tmp_path / "data", port)
    try:
        wait_ready(url, proc, timeout=20)
        r = requests.get(
            f"{url}/api/v1/query",
            params={"query": "load[1d]", "time": str((acked[-1] + 1) / 1000)},
            timeout=10,
        ).json()
        stored = {round(float(t) * 1000) for t, _ in r["data"]["result"][0]["values"]}
        assert set(acked) <= stored, f"{len(set(acked) - stored)} acknowledged samples lost"
    finally:
        proc.terminate()
        proc.wait(20)


def test_requests_are_traced_to_the_otlp_endpoint(tmp_path: Path) -> None:
    received: list[tuple[str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    otlp = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=otlp.serve_forever, daemon=True).start()
    daemon = start_daemon(
        tmp_path,
        **{
            "tracing.otlp_endpoint": f"http://127.0.0.1:{otlp.server_address[1]}",
            "tracing.service_name": "bridge-under-test",
        },
    )
    try:
        r = requests.post(
            f"{daemon.listen_url()}/api/v1/query", data={"query": "1+1", "time": "4"}
        )
        assert r.status_code == 200
    finally:
        daemon.stop()  # flushes the span exporter
        otlp.shutdown()
        otlp.server_close()
    paths = {p for p, _ in received}
    assert paths == {"/v1/traces"}
    payload = b"".join(body for _, body in received)
    assert b"POST /api/v1/query" in payload and b"bridge-under-test" in payload


def test_no_tracing_means_no_exporter(tmp_path: Path) -> None:
    from grafana_agent_bridge import tracing

    daemon = start_daemon(tmp_path)
    try:
        assert not tracing.enabled()
        with tracing.span("x") as s:
            assert s is None
    finally:
        daemon.stop()


def test_sigterm_during_startup_still_closes_the_store(tmp_path: Path) -> None:
    port = free_port()
    proc = _spawn(tmp_path / "data", port)
    assert proc.stderr is not None
    seen = b""
    while b"opening the store" not in seen:  # the signal handlers are installed by now
        line = proc.stderr.readline()
        assert line, seen
        seen += line
    proc.send_signal(signal.SIGTERM)
    rest = _exit_or_explain(proc, 20)
    assert proc.returncode == 0
    assert b"stopped" in rest
