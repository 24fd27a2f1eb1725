"""SnapWorkload itself: against a fake snapd (charmlibs.snap's API and errors), a fake ``snap``
command run through the real subprocess runner, and a real local HTTP server for health and
queries.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from charmlibs import snap as real_snap

from workload import (
    MAX_METRICS_BYTES,
    OBSERVE_PLUGS,
    SNAP_NAME,
    InstalledSnap,
    QueryError,
    SettingsRejectedError,
    SnapWorkload,
    WorkloadError,
)


@dataclass
class Info:
    revision: str
    tracking: str


@dataclass
class FakeSnapd:
    """charmlibs.snap's functions over an in-memory snapd; errors are the library's own."""

    Error = real_snap.Error
    NotInstalledError = real_snap.NotInstalledError
    ChangeError = real_snap.ChangeError

    installed: Info | None = None
    config: dict[str, Any] = field(default_factory=dict[str, Any])
    calls: list[tuple[Any, ...]] = field(default_factory=list[tuple[Any, ...]])
    restarts: int = 0
    store_error: Exception | None = None
    bad_values: dict[str, str] = field(default_factory=dict[str, str])

    def list_one(self, name: str) -> Info:
        if self.installed is None:
            raise real_snap.NotInstalledError(
                "snap not installed", kind="snap-not-found", value=name
            )
        return self.installed

    def ensure_installed(self, name: str, channel: str, *, update: bool = True) -> bool:
        self.calls.append(("ensure_installed", name, channel, update))
        if self.store_error:
            raise self.store_error
        self.installed = Info("7", channel)
        return True

    def hold(self, name: str) -> None:
        self.calls.append(("hold", name))

    def connect(self, plug: tuple[str, str]) -> None:
        self.calls.append(("connect", plug))

    def remove(self, name: str) -> None:
        self.list_one(name)
        self.installed = None

    def get(self, name: str) -> dict[str, Any]:
        self.list_one(name)
        return dict(self.config)

    def set(self, name: str, changes: dict[str, Any]) -> None:
        """snapd runs the configure hook once; it rejects bad values, restarts on change."""
        self.calls.append(("set", dict(changes)))
        bad = [f"{k}: {self.bad_values[k]}" for k in changes if k in self.bad_values]
        if bad:
            lines = "\n".join(bad)
            message = (
                "cannot perform the following tasks:\n"
                f'- Run configure hook of "{name}" snap (run hook "configure": {lines})'
            )
            raise real_snap.ChangeError(message, kind="", value=None)
        before = dict(self.config)
        for key, value in changes.items():
            if value is None:
                self.config.pop(key, None)
            else:
                self.config[key] = value
        if self.config != before:
            self.restarts += 1


def test_install_from_store_holds_and_connects_the_observe_plugs():
    snapd = FakeSnapd()
    workload = SnapWorkload(snap_api=snapd)
    assert workload.installed() is None
    workload.install_from_store("latest/edge")
    assert snapd.calls == [
        ("ensure_installed", SNAP_NAME, "latest/edge", False),
        ("hold", SNAP_NAME),
        *[("connect", (SNAP_NAME, plug)) for plug in OBSERVE_PLUGS],
    ]
    assert workload.installed() == InstalledSnap(revision="7", tracking="latest/edge")


def test_store_failure_is_a_workload_error_with_snapds_reason():
    snapd = FakeSnapd(
        store_error=real_snap.NotInStoreError("snap not found", kind="snap-not-found", value="x")
    )
    with pytest.raises(WorkloadError, match="from latest/stable: snap not found"):
        SnapWorkload(snap_api=snapd).install_from_store("latest/stable")
    assert not any(call[0] == "hold" for call in snapd.calls)


@pytest.fixture
def fake_snap_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``snap`` executable first on PATH that logs its arguments and obeys env knobs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "snap"
    script.write_text(
        "#!/bin/sh\n"
        'echo "$@" >> "$FAKE_SNAP_LOG"\n'
        'if [ -n "$FAKE_SNAP_FAIL" ]; then echo "error: $FAKE_SNAP_FAIL" >&2; exit 1; fi\n'
        'if [ "$1" = services ]; then\n'
        "  echo 'Service  Startup  Current  Notes'\n"
        '  echo "grafana-agent-bridge.daemon  enabled  ${FAKE_SNAP_STATE:-active}  -"\n'
        "fi\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    log = tmp_path / "snap.log"
    monkeypatch.setenv("FAKE_SNAP_LOG", str(log))
    return log


def test_install_from_file_runs_snap_install_dangerous(fake_snap_command: Path, tmp_path: Path):
    snapd = FakeSnapd()
    snap_file = tmp_path / "bridge.snap"
    snap_file.write_bytes(b"squashfs")
    SnapWorkload(snap_api=snapd).install_from_file(snap_file)
    assert fake_snap_command.read_text().splitlines() == [f"install --dangerous {snap_file}"]
    assert ("hold", SNAP_NAME) in snapd.calls


def test_install_from_file_failure_carries_snaps_message(
    fake_snap_command: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FAKE_SNAP_FAIL", "cannot read snap file")
    with pytest.raises(WorkloadError, match="error: cannot read snap file"):
        SnapWorkload(snap_api=FakeSnapd()).install_from_file(tmp_path / "missing.snap")


def test_service_state_from_snap_services(fake_snap_command: Path, monkeypatch):
    workload = SnapWorkload(snap_api=FakeSnapd())
    assert workload.service_active()
    monkeypatch.setenv("FAKE_SNAP_STATE", "inactive")
    assert not workload.service_active()
    monkeypatch.setenv("FAKE_SNAP_FAIL", "snapd is down")
    assert not workload.service_active()


SETTINGS = {"listen-address": "0.0.0.0:9099", "retention-time": "15d", "forward-urls": ""}


def test_settings_change_runs_the_hook_once_and_only_with_the_changed_keys():
    snapd = FakeSnapd(installed=Info("7", "latest/stable"))
    workload = SnapWorkload(snap_api=snapd)
    assert workload.apply_settings(SETTINGS)
    assert snapd.restarts == 1
    snapd.calls.clear()
    assert not workload.apply_settings(SETTINGS)  # unchanged: no snap set at all
    assert snapd.calls == []
    assert workload.apply_settings({**SETTINGS, "retention-time": "30d"})
    assert snapd.calls == [("set", {"retention-time": "30d"})]
    assert snapd.restarts == 2


def test_none_unsets_a_key():
    snapd = FakeSnapd(installed=Info("7", ""), config={"query-auth-token": "x"})
    SnapWorkload(snap_api=snapd).apply_settings({"query-auth-token": None})
    assert "query-auth-token" not in snapd.config


def test_rejected_settings_raise_the_hooks_message_and_change_nothing():
    snapd = FakeSnapd(installed=Info("7", ""), bad_values={"retention-time": 'invalid "15x"'})
    with pytest.raises(SettingsRejectedError) as raised:
        SnapWorkload(snap_api=snapd).apply_settings({**SETTINGS, "retention-time": "15x"})
    assert str(raised.value) == 'retention-time: invalid "15x"'
    assert snapd.config == {} and snapd.restarts == 0


def test_every_rejected_key_is_in_the_message_as_the_hook_wrote_it():
    snapd = FakeSnapd(
        installed=Info("7", ""),
        bad_values={
            "retention-time": 'invalid duration "15x" (use e.g. "30s", "1h30m", "15d")',
            "retention-size": 'invalid size "1ZB"',
        },
    )
    bad = {"retention-time": "15x", "retention-size": "1ZB"}
    with pytest.raises(SettingsRejectedError) as raised:
        SnapWorkload(snap_api=snapd).apply_settings(bad)
    assert str(raised.value) == (
        'retention-time: invalid duration "15x" (use e.g. "30s", "1h30m", "15d"); '
        'retention-size: invalid size "1ZB"'
    )


def test_settings_on_a_missing_snap_are_a_workload_error():
    with pytest.raises(WorkloadError, match="snap not installed"):
        SnapWorkload(snap_api=FakeSnapd()).apply_settings(SETTINGS)


# -- HTTP: a real server on an ephemeral port ---------------------------------------------------


@dataclass
class Bridge:
    ready: int = 200
    status: int = 200
    body: bytes = b""
    gets: list[str] = field(default_factory=list[str])
    requests: list[tuple[str, dict[str, list[str]], str | None]] = field(
        default_factory=list[tuple[str, dict[str, list[str]], str | None]]
    )


@pytest.fixture
def bridge() -> Iterator[tuple[Bridge, int]]:
    state = Bridge()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            state.gets.append(self.path)
            if self.path == "/metrics":
                self._send(state.status, state.body)
                return
            self._send(state.ready, b"ready" if state.ready == 200 else b"not ready")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = parse_qs(self.rfile.read(length).decode())
            state.requests.append((self.path, form, self.headers.get("Authorization")))
            self._send(state.status, state.body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_ready_from_the_ready_endpoint(bridge):
    state, port = bridge
    workload = SnapWorkload(snap_api=FakeSnapd())
    assert workload.not_ready_reason(port) is None
    state.ready = 503
    assert workload.not_ready_reason(port) == f"http://127.0.0.1:{port}/-/ready answered HTTP 503"


def test_unreachable_bridge_is_not_ready():
    reason = SnapWorkload(snap_api=FakeSnapd()).not_ready_reason(1)
    assert reason is not None and "unreachable" in reason


def test_grafana_probe_asks_api_health_and_never_shows_credentials(bridge):
    state, port = bridge
    workload = SnapWorkload(snap_api=FakeSnapd())
    base = f"http://admin:s3cret@127.0.0.1:{port}/grafana/"
    assert workload.grafana_unreachable_reason(base) is None
    assert state.gets == ["/grafana/api/health"]
    state.ready = 503
    assert workload.grafana_unreachable_reason(base) == (
        f"unhealthy at http://127.0.0.1:{port}/grafana/ (HTTP 503)"
    )
    reason = workload.grafana_unreachable_reason("http://admin:s3cret@127.0.0.1:1")
    assert reason == "unreachable at http://127.0.0.1:1 (ConnectionError)"


def test_forwarding_health_is_unknown_when_metrics_cannot_be_read(bridge):
    state, port = bridge
    workload = SnapWorkload(snap_api=FakeSnapd())
    state.status, state.body = 200, b'bridge_forward_lag_seconds{target="t"} 7\n'
    health = workload.forwarding_health(port)
    assert health is not None and [t.lag_seconds for t in health.targets] == [7.0]
    state.status = 500
    assert workload.forwarding_health(port) is None
    state.status, state.body = 200, b"#" * (MAX_METRICS_BYTES + 1)
    assert workload.forwarding_health(port) is None
    assert workload.forwarding_health(1) is None


def test_query_sends_the_token_and_returns_the_data(bridge):
    state, port = bridge
    data = {"resultType": "vector", "result": [{"metric": {}, "value": [1, "2"]}]}
    state.body = json.dumps({"status": "success", "data": data}).encode()
    got = SnapWorkload(snap_api=FakeSnapd()).query(port, "tok", "sum(up)", "1700000000")
    assert got == data
    assert state.requests == [
        ("/api/v1/query", {"query": ["sum(up)"], "time": ["1700000000"]}, "Bearer tok")
    ]


def test_query_without_a_token_sends_no_header(bridge):
    state, port = bridge
    state.body = json.dumps({"status": "success", "data": {"resultType": "scalar"}}).encode()
    SnapWorkload(snap_api=FakeSnapd()).query(port, "", "1", None)
    assert state.requests == [("/api/v1/query", {"query": ["1"]}, None)]


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            400,
            {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"},
            "query failed (HTTP 400): bad_data: parse error at char 3",
        ),
        (401, {"status": "error", "error": "unauthorized"}, "rejected the query token"),
        (502, "<html>proxy</html>", "answered HTTP 502 with a non-JSON body"),
        (200, {"status": "success"}, "has no data object"),
    ],
)
def test_query_failures_say_what_went_wrong(bridge, status, body, message):
    state, port = bridge
    state.status = status
    state.body = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    with pytest.raises(QueryError, match=re.escape(message)):
        SnapWorkload(snap_api=FakeSnapd()).query(port, "tok", "up", None)


def test_query_against_a_closed_port_says_it_cannot_reach_the_bridge():
    with pytest.raises(
        QueryError, match=re.escape("cannot reach the bridge at http://127.0.0.1:1/")
    ):
        SnapWorkload(snap_api=FakeSnapd()).query(1, "", "up", None)


def test_a_truncated_metrics_page_is_unknown_not_an_exception():
    """The daemon dying mid-answer must not fail the hook that reads its forwarding state."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def answer_short() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nbridge_store_wal_bytes 5\n"
            )

    thread = threading.Thread(target=answer_short, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        assert SnapWorkload(snap_api=FakeSnapd()).forwarding_health(port) is None
    finally:
        thread.join(timeout=5)
        listener.close()
