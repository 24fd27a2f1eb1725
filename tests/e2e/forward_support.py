"""Real peers for the e2e tests: a Prometheus receiver, the bridge daemon as a child process
(so it can be ``kill -9``-ed), and a steady remote-write pusher that records exactly which
samples the bridge acknowledged.

:class:`Bridge` is the one launcher of the daemon for the e2e suite: from a generated config
file (forwarding, storage options) or, as :class:`BridgeProcess`, from command-line flags only
(the README's way).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from grafana_agent_bridge.labels import Labels, make_labels
from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import SeriesBatch
from tests import support
from tests.support import PROMETHEUS, free_port, start_prometheus, stop_process, wait_ready


def require_prometheus() -> str:
    """The Prometheus binary; skip (fail under ``REQUIRE_PROMETHEUS=1``) when absent."""
    support.require_prometheus()
    return PROMETHEUS


def bridge_command() -> list[str]:
    """The installed ``grafana-agent-bridge`` entry point of this interpreter's environment."""
    beside = Path(sys.executable).parent / "grafana-agent-bridge"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("grafana-agent-bridge")
    return [found] if found else [sys.executable, "-m", "grafana_agent_bridge"]


def wait_until(cond: Callable[[], bool], timeout: float, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if cond():
                return
        except (OSError, http.client.HTTPException, ValueError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def http_get(base: str, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def http_post(
    base: str, path: str, body: bytes, headers: dict[str, str], timeout: float = 10.0
) -> tuple[int, bytes]:
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def parse_metrics(text: str) -> dict[str, float]:
    """``name{labels}`` → value from the text exposition format."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            continue
    return out


class Prometheus:
    """A real Prometheus with its remote-write receiver on, in a temporary directory.

    ``extra_config`` is appended to its configuration (e.g. a ``remote_write`` section, which
    makes it a relay: Prometheus forwards what it receives, as the bridge does). ``features``
    are passed as ``--enable-feature`` (e.g. ``exemplar-storage``).
    """

    def __init__(
        self, workdir: Path, extra_config: str = "", features: tuple[str, ...] = ()
    ) -> None:
        self.proc, self.url = start_prometheus(
            require_prometheus(),
            workdir,
            "global:\n  scrape_interval: 1h\n" + extra_config,
            "--log.level=warn",
            *(f"--enable-feature={f}" for f in features),
        )
        self.write_url = f"{self.url}/api/v1/write"

    def samples(self, metric: str, at_ms: int) -> dict[Labels, list[tuple[int, float]]]:
        """Every stored sample of ``metric`` in the hour before ``at_ms``, per series."""
        q = urllib.parse.urlencode({"query": f"{metric}[1h]", "time": f"{at_ms / 1000:.3f}"})
        status, body = http_get(self.url, f"/api/v1/query?{q}", timeout=60)
        assert status == 200, body[:500]
        out: dict[Labels, list[tuple[int, float]]] = {}
        for item in json.loads(body)["data"]["result"]:
            labels = make_labels(item["metric"])
            out[labels] = [(round(float(t) * 1000), float(v)) for t, v in item["values"]]
        return out

    def stop(self) -> None:
        stop_process(self.proc)


def bridge_config(
    data_dir: Path,
    port: int,
    forward_urls: list[str],
    storage: dict[str, object] | None = None,
    **forward: object,
) -> str:
    timeout = forward.pop("target_timeout", None)
    per_target = f"      timeout: {timeout}\n" if timeout else ""
    targets = "".join(
        f"    - url: {u}\n      name: up{i}\n{per_target}" for i, u in enumerate(forward_urls)
    )
    extra = "".join(f"  {k}: {v}\n" for k, v in forward.items())
    store = "".join(f"  {k}: {v}\n" for k, v in (storage or {}).items())
    return (
        f"listen_address: 127.0.0.1:{port}\n"
        f"data_dir: {data_dir}\n"
        "collect:\n  host: false\n  self: false\n"
        + (f"storage:\n{store}" if store else "")
        + "forward:\n"
        + (f"  targets:\n{targets}" if targets else "  targets: []\n")
        + extra
    )


class Bridge:
    """The bridge daemon (``grafana-agent-bridge serve``) as a child process.

    By default it runs from a generated config file (``workdir/bridge.yaml``) and logs stdout
    and stderr to ``workdir/bridge.log``. With ``config_file=False`` it gets only command-line
    flags (``--data-dir``, ``--listen-address`` and ``args``); with ``stdout_pipe`` its stdout
    (what ``serve`` prints for people) stays readable as ``proc.stdout``.
    """

    def __init__(
        self,
        workdir: Path,
        forward_urls: list[str] | None = None,
        *,
        port: int | None = None,
        launcher: list[str] | None = None,
        env: dict[str, str] | None = None,
        storage: dict[str, object] | None = None,
        args: list[str] | None = None,
        data_dir: Path | None = None,
        config_file: bool = True,
        stdout_pipe: bool = False,
        **forward: object,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.data_dir = data_dir or workdir / "data"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "bridge.yaml"
        if config_file:
            self.config.write_text(
                bridge_config(self.data_dir, self.port, forward_urls or [], storage, **forward)
            )
            self.serve_args = ["--config", str(self.config)]
        else:
            self.serve_args = [
                "--data-dir",
                str(self.data_dir),
                "--listen-address",
                f"127.0.0.1:{self.port}",
            ]
        self.log_path = workdir / "bridge.log"
        self.launcher = launcher or [sys.executable, "-m", "grafana_agent_bridge"]
        self.env = {"PYTHONUNBUFFERED": "1", **os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.args = args or []
        self.stdout_pipe = stdout_pipe

    def launch(self) -> Bridge:
        """Start the process without waiting for it to be ready."""
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*self.launcher, "serve", *self.serve_args, *self.args],
            stdout=subprocess.PIPE if self.stdout_pipe else log,
            stderr=log if self.stdout_pipe else subprocess.STDOUT,
            env=self.env,
        )
        log.close()
        self.starts += 1
        return self

    def wait_ready(self, timeout: float = 30.0) -> Bridge:
        wait_ready(self.url, self.proc, log=self.log_path, timeout=timeout)
        return self

    def start(self, timeout: float = 30.0) -> Bridge:
        return self.launch().wait_ready(timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        code = stop_process(self.proc, timeout)
        self.proc = None
        return code

    def metrics(self) -> dict[str, float]:
        status, body = http_get(self.url, "/metrics")
        assert status == 200
        return parse_metrics(body.decode())

    def metric(self, name: str, default: float = 0.0) -> float:
        return self.metrics().get(name, default)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log(self) -> str:
        """The end of the log, for assertion messages."""
        return self.log_text()[-3000:]


class BridgeProcess(Bridge):
    """The daemon from command-line flags only (the README's way), launched at once.

    Its stdout stays a pipe (``proc.stdout``): what ``serve`` prints for people is under test.
    """

    def __init__(self, data_dir: Path, *args: str, port: int | None = None) -> None:
        super().__init__(
            data_dir.parent,
            port=port,
            launcher=bridge_command(),
            args=list(args),
            data_dir=data_dir,
            config_file=False,
            stdout_pipe=True,
        )
        self.log_path = data_dir.parent / f"bridge-{self.port}.log"
        self.launch()


def series_labels(metric: str, n: int) -> list[Labels]:
    return [make_labels({"__name__": metric, "series": f"s{i:03d}"}) for i in range(n)]


class Pusher:
    """Pushes one sample per series per tick, retrying each request until it gets 204.

    Only a 204 counts as acknowledged, so ``acked`` is exactly what the bridge promised to
    keep: ticks ``0 .. acked-1`` of every series, with value ``tick + series index``.
    """

    def __init__(
        self,
        url: str,
        metric: str = "fwd_test",
        series: int = 20,
        interval_s: float = 0.05,
        start_ms: int | None = None,
    ) -> None:
        self.url = url
        self.labels = series_labels(metric, series)
        self.interval = interval_s
        self.step_ms = max(1, round(interval_s * 1000))
        self.start_ms = start_ms if start_ms is not None else int(time.time() * 1000)
        self.acked = 0
        self.failures = 0
        self.statuses: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def timestamp(self, tick: int) -> int:
        return self.start_ms + tick * self.step_ms

    def expected(self) -> dict[Labels, list[tuple[int, float]]]:
        return {
            labels: [(self.timestamp(k), float(k + i)) for k in range(self.acked)]
            for i, labels in enumerate(self.labels)
        }

    def body(self, tick: int) -> bytes:
        t = np.array([self.timestamp(tick)], dtype=np.int64)
        return encode_write_request(
            SeriesBatch(labels, t, np.array([float(tick + i)]))
            for i, labels in enumerate(self.labels)
        )

    def start(self) -> Pusher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        u = urllib.parse.urlsplit(self.url)
        conn: http.client.HTTPConnection | None = None
        next_at = time.monotonic()
        tick = 0
        body = self.body(tick)
        while not self._stop.is_set():
            status = 0
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=10)
                conn.request("POST", "/api/v1/write", body=body, headers=REMOTE_WRITE_HEADERS)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 204:
                tick += 1
                self.acked = tick
                body = self.body(tick)
                next_at += self.interval
                self._stop.wait(max(0.0, next_at - time.monotonic()))
            else:
                self.failures += 1
                next_at = time.monotonic()
                self._stop.wait(0.05)
        if conn is not None:
            conn.close()


def compare(
    expected: dict[Labels, list[tuple[int, float]]], got: dict[Labels, list[tuple[int, float]]]
) -> tuple[int, int]:
    """(samples expected, samples missing or different) between two per-series sample maps."""
    total = missing = 0
    for labels, samples in expected.items():
        have = dict(got.get(labels, []))
        total += len(samples)
        missing += sum(1 for t, v in samples if have.get(t) != v)
    return total, missing
