"""Shared pieces of the benchmarks: synthetic remote-write payloads, a Prometheus and a bridge
as child processes on free ports, and CPU/RSS readings from ``/proc``.

Benchmarks print figures side by side with Debian's Prometheus on the same machine and the
same payloads; they never assert (timing on a shared 2-core box is not a test).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests

from grafana_agent_bridge.labels import Labels, make_labels
from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import SeriesBatch
from tests.support import bridge_serve, free_port, start_prometheus, stop_process, wait_ready

CLK_TCK = os.sysconf("SC_CLK_TCK")
PROMETHEUS = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus")


# -- synthetic data ---------------------------------------------------------------------------


@dataclass
class Workload:
    """A node-exporter-like mix (as in the facts' compression measurements): per 10 metrics,
    4 constant gauges, 3 integer counters, 3 noisy 2-decimal gauges; one scrape every 15 s
    with a per-host offset and +-3 ms jitter, as real scrapes have."""

    n_series: int = 10_000
    scrapes: int = 120
    per_request: int = 2_000
    step_ms: int = 15_000
    start_ms: int = 1_700_000_000_000
    seed: int = 7

    def labels(self) -> list[Labels]:
        out = []
        for i in range(self.n_series):
            host, metric = divmod(i, 100)
            out.append(
                make_labels(
                    {
                        "__name__": f"node_metric_{metric:02d}",
                        "instance": f"host-{host:03d}.example.internal:9100",
                        "job": "node",
                        "env": "production",
                        "region": "eu-west-1",
                        "mode": f"m{metric % 8}",
                    }
                )
            )
        return out

    def columns(self) -> tuple[np.ndarray, np.ndarray]:
        """(timestamps, values), each shaped (scrapes, n_series)."""
        rng = np.random.default_rng(self.seed)
        n, k = self.n_series, self.scrapes
        hosts = np.arange(n) // 100
        kind = (np.arange(n) % 100) % 10
        offset = (hosts * 137) % self.step_ms
        jitter = rng.integers(-3, 4, size=(k, hosts.max() + 1))[:, hosts]
        ts = self.start_ms + np.arange(k)[:, None] * self.step_ms + offset[None, :] + jitter
        values = np.empty((k, n))
        const = kind < 4
        counter = (kind >= 4) & (kind < 7)
        noisy = kind >= 7
        values[:, const] = (np.arange(n)[const] % 97)[None, :] * 1.0
        incr = rng.integers(0, 1000, size=(k, int(counter.sum())))
        values[:, counter] = np.cumsum(incr, axis=0).astype(np.float64)
        values[:, noisy] = np.round(rng.normal(50, 10, size=(k, int(noisy.sum()))), 2)
        return ts.astype(np.int64), values

    def payloads(self) -> list[tuple[bytes, int]]:
        """Snappy remote-write bodies of ``per_request`` series x 1 sample, scrape by scrape
        (how Prometheus's sender batches), with their sample counts."""
        labels = self.labels()
        ts, values = self.columns()
        out = []
        for k in range(self.scrapes):
            for lo in range(0, self.n_series, self.per_request):
                hi = min(lo + self.per_request, self.n_series)
                body = encode_write_request(
                    SeriesBatch(labels[i], ts[k, i : i + 1], values[k, i : i + 1])
                    for i in range(lo, hi)
                )
                out.append((body, hi - lo))
        return out


def post_all(url: str, payloads: list[tuple[bytes, int]]) -> tuple[int, int, float]:
    """POST every payload in order; returns (samples acknowledged, failed requests, seconds)."""
    session = requests.Session()
    ok = failed = 0
    started = time.monotonic()
    for body, n in payloads:
        r = session.post(url, data=body, headers=REMOTE_WRITE_HEADERS, timeout=60)
        if r.status_code in (200, 204):
            ok += n
        else:
            failed += 1
    session.close()
    return ok, failed, time.monotonic() - started


# -- processes --------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class Server:
    """A child server process on a free port; ``stop`` kills it."""

    proc: subprocess.Popen[bytes]
    base: str  # http://127.0.0.1:<port>
    data: Path

    def blocks(self) -> Iterator[tuple[Path, int]]:
        """(block dir, samples) of every persisted block."""
        raise NotImplementedError

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        stop_process(self.proc, 30)


class PrometheusServer(Server):
    def __init__(self, workdir: Path, *, block_minutes: int) -> None:
        if PROMETHEUS is None:
            raise RuntimeError("prometheus is not installed (apt-get install prometheus)")
        self.data = workdir / "data"  # where start_prometheus puts the TSDB
        self.proc, self.base = start_prometheus(
            PROMETHEUS,
            workdir,
            "global:\n  scrape_interval: 15s\n",
            f"--storage.tsdb.min-block-duration={block_minutes}m",
            f"--storage.tsdb.max-block-duration={block_minutes}m",
            "--storage.tsdb.retention.time=100y",
            timeout=60,
        )

    def blocks(self) -> Iterator[tuple[Path, int]]:
        """(block dir, samples) of every persisted block."""
        for meta in self.data.glob("*/meta.json"):
            yield meta.parent, int(json.loads(meta.read_text())["stats"]["numSamples"])


class BridgeServer(Server):
    def __init__(self, workdir: Path, *, block_minutes: int) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.data = workdir / "data"
        cfg = workdir / "bridge.yaml"
        cfg.write_text(f"storage:\n  block_duration: {block_minutes}m\n  retention_time: 36500d\n")
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            bridge_serve(
                self.data, port, "--config", str(cfg), "--no-collect", "--log-level", "warning"
            ),
            stdout=subprocess.DEVNULL,
            stderr=open(workdir / "bridge.log", "wb"),  # noqa: SIM115
        )
        wait_ready(self.base, self.proc, log=workdir / "bridge.log", timeout=60)

    def blocks(self) -> Iterator[tuple[Path, int]]:
        for meta in (self.data / "blocks").glob("*/meta.json"):
            yield meta.parent, int(json.loads(meta.read_text())["samples"])


def block_bytes_per_sample(server: Server) -> tuple[float, int, int]:
    """(bytes per sample, bytes, samples) over the server's compacted blocks."""
    size = samples = 0
    for path, n in server.blocks():
        size += dir_bytes(path)
        samples += n
    return (size / samples if samples else float("nan")), size, samples


def wait_for_blocks(server: Server, samples: int, timeout: float) -> bool:
    """Wait until the server's blocks hold ``samples`` samples (compaction is periodic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if block_bytes_per_sample(server)[2] >= samples:
            return True
        time.sleep(0.5)
    return False
