"""docs/deploy.md's non-Juju path ("Without Juju: the snap alone"), followed for real.

Every command line of that section is taken from the guide, in order, with the parser the
guide's consistency check uses (``tests/deploy_doc.py``), and either run or skipped with its
reason; a line this test does not know fails it, so the guide cannot grow a step nobody ran.

- ``snap set`` lines go through the snap's REAL configure hook (``snap/hooks/configure`` and the
  bridge's validator); only ``snapctl`` is faked (``tests/fake_snap.py``), standing in for
  snapd's settings store. Values are the guide's own; ``<a long random string>`` is chosen here.
- The daemon is then started as the snap's daemon app starts it (``grafana-agent-bridge serve
  --config $SNAP_COMMON/config.yaml``, see ``snap/snapcraft.yaml``), on the file the hook wrote.
- Substituted, and only so the test stays on this machine: one more ``snap set`` through the
  same hook changes ``listen-address`` (the guide's ``0.0.0.0:9099``) to a free
  ``127.0.0.1`` port, ``forward-urls`` (the guide's ``prometheus.cos.example``) to a real local
  Prometheus with its remote-write receiver, and ``tracing-endpoint`` (``tempo.cos.example``)
  to a local sink; the data directory is the hook's ``$SNAP_COMMON/data``, in a temp dir.
- The checks (``snap logs``, ``curl .../-/ready``, ``grafana-agent-bridge query``) run against
  that daemon, with the port substituted, and assert what the guide says one should see. The
  prose around them is checked too: the token is required, Grafana's "Save & test" passes with
  the header, and a remote-write from an allowed client (127.0.0.1) is stored and forwarded.
- ``snap install``/``connect``/``get``/``services`` need snapd, which this machine lacks: each
  is reported as a skipped step with its reason (``test_step_needing_snapd``).
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from forward_support import Prometheus, bridge_command, http_get, http_post, wait_until

from grafana_agent_bridge.config import load_config
from grafana_agent_bridge.labels import make_labels
from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import SeriesBatch
from tests.deploy_doc import DOC, SNAP_SECTION, command_lines, placeholder, section
from tests.fake_snap import FakeSnap, make_fake_snap
from tests.support import free_port, stop_process, wait_ready

SNAP = "grafana-agent-bridge"
TOKEN_ENV = "GRAFANA_AGENT_BRIDGE_TOKEN"
GUIDE_PORT = "9099"
STEPS = command_lines(section(DOC.read_text(), SNAP_SECTION))

NO_SNAPD = "no snapd on this machine"
SNAPD_ONLY: dict[tuple[str, str], str] = {
    ("snap", "install"): f"{NO_SNAPD}: installing is snapd's; the fake $SNAP (this venv's "
    "python, the repository's configure hook) stands in for the installed snap",
    ("snap", "connect"): f"{NO_SNAPD}: interface connections are snapd's; unconfined here, the "
    "daemon reads /proc, /sys and the mounts directly",
    ("snap", "get"): f"{NO_SNAPD}: `snap get` prints snapd's settings store, which the fake "
    "snapctl only stands in for",
    ("snap", "services"): f"{NO_SNAPD}: the daemon runs as this test's child process with the "
    "snap's daemon command, not as a snapd service",
}


def _step_id(argv: list[str]) -> str:
    return " ".join(argv)[:70]


def _snapd_reason(argv: list[str]) -> str | None:
    return SNAPD_ONLY.get((argv[0], argv[1])) if len(argv) > 1 else None


class _TraceSink(http.server.BaseHTTPRequestHandler):
    """Stands in for Tempo's OTLP/HTTP receiver: accepts whatever is posted."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Walk:
    """What following the guide produced: the daemon, its log, and what each step did."""

    snap: FakeSnap
    url: str
    token: str
    log_path: Path
    upstream: Prometheus
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    results: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _apply_snap_set(snap: FakeSnap, argv: list[str], token: str) -> None:
    """``snap set grafana-agent-bridge K=V...``: store the values as snapd would, then run the
    configure hook, which must accept them."""
    assert argv[2] == SNAP, argv
    items = [
        f"{k}={token}" if placeholder(v) else f"{k}={v}"
        for k, _, v in (item.partition("=") for item in argv[3:])
    ]
    snap.snap_set(items)
    result = snap.run_hook()
    assert result.returncode == 0, f"{' '.join(argv)}: the configure hook refused: {result.stderr}"


def _run_cli(argv: list[str], url: str, token: str) -> subprocess.CompletedProcess[str]:
    """``grafana-agent-bridge query ...`` as the guide writes it (``VAR=<the token>`` prefixes
    become the environment, with the token set earlier), pointed at the test's port."""
    assigns = {}
    while argv and "=" in argv[0] and not argv[0].startswith("-"):
        key, _, value = argv[0].partition("=")
        assigns[key] = token if placeholder(value) else value
        argv = argv[1:]
    assert argv[:2] == [SNAP, "query"], argv
    return subprocess.run(
        [*bridge_command(), *argv[1:], "--url", url],
        env={**{k: v for k, v in os.environ.items() if k != TOKEN_ENV}, **assigns},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    base = tmp_path_factory.mktemp("snap-path")
    snap = make_fake_snap(base / "snap")
    token = os.urandom(24).hex()  # the reader's `<a long random string>`
    upstream = Prometheus(base / "prometheus")
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TraceSink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = base / "daemon.log"
    proc: subprocess.Popen[bytes] | None = None
    state = Walk(snap, url, token, log_path, upstream)
    try:
        checks = []
        for argv in STEPS:
            if _snapd_reason(argv):
                state.skipped.append(_step_id(argv))
            elif argv[:2] == ["snap", "set"]:
                _apply_snap_set(snap, argv, token)
                state.ran.append(_step_id(argv))
            else:
                checks.append(argv)  # run once the daemon is up

        # The substitution (see the module docstring), through the same hook.
        _apply_snap_set(
            snap,
            [
                "snap",
                "set",
                SNAP,
                f"listen-address=127.0.0.1:{port}",
                f"forward-urls={upstream.write_url}",
                f"tracing-endpoint=http://127.0.0.1:{sink.server_address[1]}",
            ],
            token,
        )
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [*bridge_command(), "serve", "--config", str(snap.config_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        wait_ready(url, proc, log=log_path, timeout=60)

        for argv in checks:
            key = _step_id(argv)
            if argv[0] == "snap" and argv[1] == "logs":
                assert argv[-1] == f"{SNAP}.daemon", argv
                state.results[key] = subprocess.CompletedProcess(argv, 0, state.log(), "")
            elif argv[0] == "curl":
                target = argv[-1].replace(f"127.0.0.1:{GUIDE_PORT}", f"127.0.0.1:{port}")
                parts = urllib.parse.urlsplit(target)
                status, body = http_get(f"{parts.scheme}://{parts.netloc}", parts.path)
                state.results[key] = subprocess.CompletedProcess(argv, status, body.decode(), "")
            elif SNAP in argv and "query" in argv:
                # The first collection of `up` may still be under way: the guide's command is
                # repeated (up to 30 s) until it shows a series, as a reader would.
                deadline = time.monotonic() + 30
                while True:
                    result = _run_cli(argv, url, token)
                    if "up{" in result.stdout or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                state.results[key] = result
            else:
                pytest.fail(f"a step of the guide this test does not follow: {' '.join(argv)}")
            state.ran.append(key)
        yield state
    finally:
        if proc is not None:
            stop_process(proc, 20)
        sink.shutdown()
        upstream.stop()


def _result(walk: Walk, program: str) -> subprocess.CompletedProcess[str]:
    found = [r for k, r in walk.results.items() if program in k]
    assert len(found) == 1, f"the guide has no single `{program}` check: {list(walk.results)}"
    return found[0]


def _query(walk: Walk, expr: str, token: str | None) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = urllib.parse.urlencode({"query": expr}).encode()
    status, raw = http_post(walk.url, "/api/v1/query", body, headers)
    return status, json.loads(raw)


@pytest.mark.parametrize(
    "argv",
    [s for s in STEPS if _snapd_reason(s)],
    ids=[_step_id(s) for s in STEPS if _snapd_reason(s)],
)
def test_step_needing_snapd(argv: list[str]) -> None:
    pytest.skip(_snapd_reason(argv) or "")


def test_every_step_of_the_guide_was_run_or_skipped_with_a_reason(walk: Walk) -> None:
    assert walk.ran and walk.skipped
    assert sorted(walk.ran + walk.skipped) == sorted(_step_id(s) for s in STEPS)
    assert any(s.startswith("snap set") for s in walk.ran)


def test_the_hooks_config_has_the_guides_settings(walk: Walk) -> None:
    cfg = load_config(walk.snap.config_file)
    assert cfg.storage.retention_time.days == 30
    assert cfg.storage.retention_size == 20 << 30
    assert cfg.ingest.allowed_clients == ["10.0.0.0/24", "127.0.0.1"]
    assert cfg.query.resolve_auth_token() == walk.token
    assert cfg.data_dir == str(walk.snap.common / "data")


def test_the_log_shows_the_store_opening_then_ready(walk: Walk) -> None:
    log = _result(walk, "snap logs").stdout
    opening = log.index("opening the store")
    assert log.index("store ready", opening) > opening, log[-2000:]


def test_ready_answers_200_with_the_guides_text(walk: Walk) -> None:
    ready = _result(walk, "curl")
    assert ready.returncode == 200
    assert ready.stdout.strip() == "Grafana Agent Bridge is Ready."


def test_query_with_the_token_shows_up(walk: Walk) -> None:
    result = _result(walk, "query")
    assert result.returncode == 0, result.stderr
    assert 'up{instance="' in result.stdout and 'job="node"' in result.stdout, result.stdout


def test_the_query_cli_without_the_token_is_refused(walk: Walk) -> None:
    result = _run_cli([SNAP, "query", "up"], walk.url, "")
    assert result.returncode == 1
    assert "unauthorized" in result.stderr
    assert walk.token not in result.stderr + result.stdout


def test_token_file_works_and_token_on_the_command_line_warns(walk: Walk, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(walk.token + "\n")
    by_file = _run_cli([SNAP, "query", "up", "--token-file", str(token_file)], walk.url, "")
    assert by_file.returncode == 0, by_file.stderr
    assert "up{" in by_file.stdout
    by_flag = _run_cli([SNAP, "query", "up", "--token", walk.token], walk.url, "")
    assert by_flag.returncode == 0, by_flag.stderr
    assert "warning: --token" in by_flag.stderr


def test_the_query_api_needs_the_token_and_grafanas_save_and_test_passes_with_it(
    walk: Walk,
) -> None:
    status, _ = _query(walk, "1+1", None)
    assert status == 401
    status, _ = _query(walk, "1+1", "not-" + walk.token)
    assert status == 401
    status, answer = _query(walk, "1+1", walk.token)  # Grafana's health check, with the header
    assert status == 200
    assert answer["status"] == "success"


def test_a_write_from_an_allowed_client_is_stored_and_forwarded(walk: Walk) -> None:
    now_ms = int(time.time() * 1000)
    labels = make_labels({"__name__": "deploy_doc_probe", "job": "guide"})
    body = encode_write_request([SeriesBatch(labels, np.array([now_ms]), np.array([42.0]))])
    status, reply = http_post(walk.url, "/api/v1/write", body, REMOTE_WRITE_HEADERS)
    assert status == 204, reply  # 127.0.0.1 is in the guide's allowed-clients

    status, answer = _query(walk, "deploy_doc_probe", walk.token)
    assert status == 200
    result = answer["data"]["result"]  # type: ignore[index]
    assert [float(s["value"][1]) for s in result] == [42.0], answer

    # "forwarding normally follows within seconds": the upstream (the substituted COS
    # Prometheus) holds the same sample.
    def forwarded() -> bool:
        got = walk.upstream.samples("deploy_doc_probe", now_ms + 1000)
        return [v for series in got.values() for _, v in series] == [42.0]

    wait_until(forwarded, 30, "the sample to be forwarded upstream")
