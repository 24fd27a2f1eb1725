"""Shared pieces of the benchmarks: the two data sets as remote-write payloads, Prometheus, the
bridge and VictoriaMetrics as child processes on free loopback ports, CPU/RSS readings from
``/proc``, and the measurements the cost table is made of.

Benchmarks print figures side by side with Debian's Prometheus (and VictoriaMetrics when
``victoria-metrics`` is installed) on the same machine, the same payloads and the same client;
every comparison is printed as a ratio, with the load average at the time of measurement
(timing on a shared 2-core box is not a test: they never assert).

Sizes come from flags, with defaults from the environment so ``tox -e bench`` can be shrunk:
``BENCH_SERIES`` (comma list, default ``1000,10000,50000``), ``BENCH_MINUTES`` (data span),
``BENCH_DATASETS`` (``node_exporter,synthetic``), ``BENCH_REPEAT`` (query repeats).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cramjam
import numpy as np
import requests

from tests.support import bridge_serve, free_port, start_prometheus, stop_process, wait_ready

CLK_TCK = os.sysconf("SC_CLK_TCK")
PROMETHEUS = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus")
VICTORIA_METRICS = os.environ.get("VICTORIA_METRICS_BIN") or shutil.which("victoria-metrics")
VMAGENT = os.environ.get("VMAGENT_BIN") or shutil.which("vmagent")
ALIGNED_START_MS = 1_699_999_200_000  # a multiple of 2 h, so the first block starts full

REMOTE_WRITE_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}

LabelPairs = tuple[tuple[str, str], ...]


def env_list(name: str, default: str) -> list[str]:
    return [x.strip() for x in os.environ.get(name, default).split(",") if x.strip()]


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} cores"


def ratio(a: float, b: float, *, noisy: bool = False) -> str:
    """``a / b`` as ``2.31x``, or ``-`` when either side is missing; ``~2.31x`` when
    ``noisy`` (either side rests on too few CPU ticks, see ``NOISY_TICKS``)."""
    if not (np.isfinite(a) and np.isfinite(b)) or b == 0:
        return "-"
    return f"{'~' if noisy else ''}{a / b:.2f}x"


# -- remote-write encoding (hand-rolled: fast, and independent of the code under test) --------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + _varint(len(payload)) + payload


def label_blob(labels: LabelPairs) -> bytes:
    """The ``labels`` fields of a prompb.TimeSeries (names sorted, as senders do)."""
    return b"".join(
        _field(0x0A, _field(0x0A, n.encode()) + _field(0x12, v.encode())) for n, v in labels
    )


def sample_records(ts: np.ndarray, values: np.ndarray) -> bytes:
    """prompb.Sample messages of 16 bytes each (value: fixed64, timestamp: 6-byte varint),
    built with numpy; timestamps must be in [2^35, 2^42) ms (2011..2109)."""
    ts = ts.astype(np.int64).ravel()
    if ts.size and (ts.min() < 1 << 35 or ts.max() >= 1 << 42):
        raise ValueError("timestamps outside the fixed-width encoding's range")
    rec = np.empty((ts.size, 16), dtype=np.uint8)
    rec[:, 0] = 0x09
    rec[:, 1:9] = values.astype("<f8").ravel().view(np.uint8).reshape(-1, 8)
    rec[:, 9] = 0x10
    for j in range(6):
        rec[:, 10 + j] = ((ts >> (7 * j)) & 0x7F) | (0x80 if j < 5 else 0)
    return rec.tobytes()


def build_payloads(
    labels: list[LabelPairs],
    ts: np.ndarray,
    values: np.ndarray,
    *,
    per_request: int,
    deadline_ms: int | None,
    time_order: bool,
) -> tuple[list[tuple[bytes, int]], int]:
    """Snappy remote-write bodies with their sample counts, and how many of the first bodies
    hold every series' first sample (the series-creation round).

    Samples go scrape by scrape (``time_order`` False) or sorted by timestamp, as a sender's
    queue sees them (True); a request closes at ``per_request`` samples or once it spans
    ``deadline_ms``. Each series appears at most once per request (a sender would send two
    samples of one series in one TimeSeries; our intervals keep them apart).
    """
    k, n = ts.shape
    prefix = []
    for lb in labels:
        blob = label_blob(lb)
        prefix.append(b"\x0a" + _varint(len(blob) + 18) + blob + b"\x12\x10")
    order = np.arange(k * n)
    flat_ts = ts.ravel()
    if time_order:
        order = np.argsort(flat_ts, kind="stable")
    recs = sample_records(flat_ts[order], values.ravel()[order])
    series_of = (order % n).tolist()
    ts_sorted = flat_ts[order]
    out: list[tuple[bytes, int]] = []
    parts: list[bytes] = []
    seen: set[int] = set()
    first_round = 0
    batch_start = int(ts_sorted[0]) if len(ts_sorted) else 0
    in_batch: set[int] = set()
    for pos, i in enumerate(series_of):
        t = int(ts_sorted[pos])
        if parts and (
            len(parts) >= per_request
            or i in in_batch
            or (deadline_ms is not None and t - batch_start >= deadline_ms)
        ):
            out.append((bytes(cramjam.snappy.compress_raw(b"".join(parts))), len(parts)))
            parts, in_batch = [], set()
            if not first_round and len(seen) == n:
                first_round = len(out)
        if not parts:
            batch_start = t
        parts.append(prefix[i] + recs[16 * pos : 16 * pos + 16])
        in_batch.add(i)
        if len(seen) < n:
            seen.add(i)
    if parts:
        out.append((bytes(cramjam.snappy.compress_raw(b"".join(parts))), len(parts)))
    return out, first_round or len(out)


# -- the data sets -----------------------------------------------------------------------------


class DataSet(Protocol):
    name: str
    n_series: int
    scrapes: int
    step_ms: int
    start_ms: int

    def describe(self) -> str: ...
    @property
    def job_selector(self) -> str: ...
    @property
    def one_series(self) -> str: ...
    def labels(self) -> list[LabelPairs]: ...
    def columns(self) -> tuple[np.ndarray, np.ndarray]: ...
    def payloads(self) -> tuple[list[tuple[bytes, int]], int]: ...


@dataclass
class Workload:
    """The original synthetic set (kept as the second case): per 10 metrics, 4 constant
    gauges, 3 integer counters, 3 noisy 2-decimal gauges; one scrape every 15 s with a per-host
    offset and +-3 ms jitter; short labels. It flatters compression (no full-precision
    floats, small label sets) next to :class:`nodedata.NodeWorkload`."""

    n_series: int = 10_000
    scrapes: int = 120
    per_request: int = 2_000
    step_ms: int = 15_000
    start_ms: int = ALIGNED_START_MS
    seed: int = 7
    name: str = "synthetic"

    def describe(self) -> str:
        return (
            "synthetic: 100 metrics per host, constant/integer/2-decimal values, "
            "+-3 ms jitter, short labels"
        )

    job_selector = '{job="node"}'
    one_series = 'node_metric_04{instance="host-000.example.internal:9100"}'

    def label_dicts(self) -> list[dict[str, str]]:
        out = []
        for i in range(self.n_series):
            host, metric = divmod(i, 100)
            out.append(
                {
                    "__name__": f"node_metric_{metric:02d}",
                    "instance": f"host-{host:03d}.example.internal:9100",
                    "job": "node",
                    "env": "production",
                    "region": "eu-west-1",
                    "mode": f"m{metric % 8}",
                }
            )
        return out

    def labels(self) -> list[LabelPairs]:
        return [tuple(sorted(d.items())) for d in self.label_dicts()]

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

    def payloads(self) -> tuple[list[tuple[bytes, int]], int]:
        """``per_request`` series x 1 sample per body, scrape by scrape."""
        ts, values = self.columns()
        return build_payloads(
            self.labels(),
            ts,
            values,
            per_request=self.per_request,
            deadline_ms=None,
            time_order=False,
        )


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


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident memory of ``pid`` now (``VmHWM``: its peak since it started)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class Server:
    """A child server process on a free port; ``stop`` kills it."""

    name: str
    proc: subprocess.Popen[bytes]
    base: str  # http://127.0.0.1:<port>
    data: Path

    def blocks(self) -> Iterator[tuple[Path, int]]:
        """(block dir, samples) of every persisted block."""
        raise NotImplementedError

    def settle(self) -> None:
        """Make everything ingested visible to queries (a no-op where it already is)."""

    def compacted_bytes(self, samples: int) -> tuple[float, int, int]:
        """(bytes per sample, bytes, samples) once everything ingested is in its final,
        compressed on-disk form. May stop the server."""
        raise NotImplementedError

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        stop_process(self.proc, 30)


class PrometheusServer(Server):
    name = "prometheus"

    def __init__(
        self, workdir: Path, *, block_minutes: int, features: tuple[str, ...] = ()
    ) -> None:
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
            "--web.enable-admin-api",  # for the head snapshot below
            *(f"--enable-feature={f}" for f in features),
            timeout=60,
        )

    def blocks(self) -> Iterator[tuple[Path, int]]:
        """(block dir, samples) of every persisted block."""
        for meta in self.data.glob("*/meta.json"):
            yield meta.parent, int(json.loads(meta.read_text())["stats"]["numSamples"])

    def compacted_bytes(self, samples: int) -> tuple[float, int, int]:
        """(bytes per sample, bytes, samples) of a TSDB snapshot with the head: Prometheus
        writes its head out as one block, exactly as a compaction would."""
        r = requests.post(self.base + "/api/v1/admin/tsdb/snapshot", timeout=600)
        r.raise_for_status()
        snap = self.data / "snapshots" / r.json()["data"]["name"]
        size = n = 0
        for meta in snap.glob("*/meta.json"):
            size += dir_bytes(meta.parent)
            n += int(json.loads(meta.read_text())["stats"]["numSamples"])
        return (size / n if n else float("nan")), size, n


class BridgeServer(Server):
    name = "bridge"

    def __init__(self, workdir: Path, *, block_minutes: int) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.data = workdir / "data"
        self.block_minutes = block_minutes
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

    def compacted_bytes(self, samples: int) -> tuple[float, int, int]:
        """(bytes per sample, bytes, samples) of the blocks the bridge's own store cuts from
        the whole head: the daemon is stopped, then its data dir is opened in this process
        and compacted with ``force`` (the daemon has no endpoint for that)."""
        from grafana_agent_bridge.store import Store, StoreOptions

        self.stop()
        store = Store.open(
            self.data,
            StoreOptions(
                retention_time_ms=2**62,
                block_duration_ms=self.block_minutes * 60_000,
                compact_automatically=False,
            ),
        )
        try:
            store.compact(force=True)
        finally:
            store.close()
        return block_bytes_per_sample(self)


class VictoriaMetricsServer(Server):
    """Single-node VictoriaMetrics (Debian's ``victoria-metrics``), remote-write at
    ``/api/v1/write``, Prometheus query API. Its rollup-result cache is off
    (``-search.disableCache``): repeating one query would otherwise time the cache, which
    neither Prometheus nor the bridge has."""

    name = "victoria-metrics"

    def __init__(self, workdir: Path, *, block_minutes: int = 0) -> None:
        if VICTORIA_METRICS is None:
            raise RuntimeError("victoria-metrics is not installed")
        workdir.mkdir(parents=True, exist_ok=True)
        self.data = workdir / "data"
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        log = workdir / "victoria-metrics.log"
        self.proc = subprocess.Popen(
            [
                VICTORIA_METRICS,
                f"-storageDataPath={self.data}",
                f"-httpListenAddr=127.0.0.1:{port}",
                "-retentionPeriod=100y",
                "-search.disableCache",
                "-loggerLevel=ERROR",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(log, "wb"),  # noqa: SIM115
        )
        wait_ready(self.base, self.proc, log=log, timeout=60)

    def settle(self) -> None:
        requests.get(self.base + "/internal/force_flush", timeout=60).raise_for_status()

    def compacted_bytes(self, samples: int) -> tuple[float, int, int]:
        """(bytes per sample, bytes, samples) once in-memory parts are flushed and merged:
        the data and index directories, which is what stays on disk."""
        self.settle()
        requests.get(self.base + "/internal/force_merge", timeout=300).raise_for_status()
        last, stable_since = -1, time.monotonic()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # merges run in the background
            size = sum(dir_bytes(self.data / d) for d in ("data", "indexdb"))
            if size != last:
                last, stable_since = size, time.monotonic()
            elif time.monotonic() - stable_since > 3:
                break
            time.sleep(0.5)
        return (last / samples if samples else float("nan")), last, samples


SERVER_CLASSES: dict[str, Callable[..., Server]] = {
    "prometheus": PrometheusServer,
    "bridge": BridgeServer,
    "victoria-metrics": VictoriaMetricsServer,
}


def available_servers(wanted: list[str]) -> list[str]:
    """``wanted`` minus the comparison servers that are not installed, saying so."""
    out = []
    for name in wanted:
        if name == "prometheus" and PROMETHEUS is None:
            print("SKIP prometheus: not installed (apt-get install prometheus)")
        elif name == "victoria-metrics" and VICTORIA_METRICS is None:
            print("SKIP victoria-metrics: not installed (apt-get install victoria-metrics)")
        else:
            out.append(name)
    return out


def block_bytes_per_sample(server: Server) -> tuple[float, int, int]:
    """(bytes per sample, bytes, samples) over the server's compacted blocks."""
    size = samples = 0
    for path, n in server.blocks():
        size += dir_bytes(path)
        samples += n
    return (size / samples if samples else float("nan")), size, samples


# -- measurements -----------------------------------------------------------------------------


WARMUP_CALLS = 10
WARMUP_S = 0.05


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` calls after a warm-up: up to ``WARMUP_CALLS`` calls
    within ``WARMUP_S`` (a slow query warms up with one call, as before). A fresh keep-alive
    connection and a CPU that was idle take about ten requests to settle (seen on Prometheus
    and the bridge alike: ~1.2, 0.9, 0.85 ms ... 0.7 ms), so a median of five right after a
    single warm-up call measured that settling rather than the query."""
    started = time.perf_counter()
    for _ in range(WARMUP_CALLS):  # caches, first-touch allocations, the connection
        fn()
        if time.perf_counter() - started > WARMUP_S:
            break
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


class QueryClient:
    """Keep-alive HTTP/1.1 connections, one per server, the way Grafana's Go client holds them.

    ``requests`` spends ~0.4 ms of the benchmark's own Python per call (measured: Prometheus's
    ``/-/ready`` in 0.58 ms through a ``requests.Session`` against 0.15 ms through
    ``http.client``), which is client time charged to whichever server is measured; a plain
    ``http.client`` connection keeps that out of every server's figure alike. The JSON body is
    still parsed, as Grafana parses it."""

    def __init__(self) -> None:
        self._conns: dict[str, http.client.HTTPConnection] = {}

    def get_json(self, base: str, path: str, params: dict[str, object]) -> dict:
        url = path + "?" + urllib.parse.urlencode(params)
        for attempt in (0, 1):
            conn = self._conns.get(base)
            if conn is None:
                host, _, port = base.removeprefix("http://").partition(":")
                conn = self._conns[base] = http.client.HTTPConnection(host, int(port), timeout=300)
            try:
                conn.request("GET", url)
                r = conn.getresponse()
                data = r.read()
            except (http.client.HTTPException, OSError):
                conn.close()  # the server closed an idle connection: reconnect once
                del self._conns[base]
                if attempt:
                    raise
                continue
            if r.status != 200:
                raise RuntimeError(f"{base}{path}: HTTP {r.status}: {data[:200]!r}")
            return json.loads(data)
        raise AssertionError("unreachable")

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


def http_query(
    client: QueryClient, server: Server, q: str, p: dict[str, float]
) -> Callable[[], object]:
    """A call running one query through the server's HTTP API (parse, evaluate, JSON)."""
    path = "/api/v1/query_range" if "start" in p else "/api/v1/query"

    def run() -> object:
        body = client.get_json(server.base, path, {"query": q, **p})
        if body.get("status") != "success":
            raise RuntimeError(f"{server.name}: {q}: {body}")
        return body

    return run


def series_count(client: QueryClient, server: Server, selector: str, at_s: float) -> int:
    body = http_query(client, server, f"count({selector})", {"time": at_s})()
    result = body["data"]["result"]  # type: ignore[index]
    return int(float(result[0]["value"][1])) if result else 0


NOISY_TICKS = 10
"""CPU is read in clock ticks (``CLK_TCK``, 10 ms at 100 Hz), so a figure resting on fewer
ticks than this is uncertain by more than a tenth from the reading alone (one tick either way,
whatever the server): ``measure_ingest`` flags it, the tables mark it."""


def measure_ingest(
    server: Server, payloads: list[tuple[bytes, int]], first_round: int, *, n_series: int
) -> dict[str, float]:
    """Ingest figures of one server, fed the same payloads as every other.

    - ``cpu_us_per_sample``: server CPU (utime+stime of every thread) over all POSTs / samples;
    - ``create_us_per_series``: CPU of the first round (every series new, plus 1 s for deferred
      index work) minus what its samples cost at the steady rate, per series;
    - ``rss_per_series``: RSS growth over the idle server, per series;
    - ``peak_rss_mb``: the highest RSS the server reached from its start to the end of the
      ingest, as the kernel kept it (``VmHWM``), read before ``settle`` (the bridge's forced
      compaction, which Prometheus would not run yet);
    - ``create_us_per_series_noisy``: 1 when the creation CPU is under ``NOISY_TICKS`` clock
      ticks (3.4 ms for Prometheus's 1k series: under one tick), else 0.
    """
    url = server.base + "/api/v1/write"
    rss0 = rss_bytes(server.pid)
    cpu0 = cpu_seconds(server.pid)
    ok1, failed1, wall1 = post_all(url, payloads[:first_round])
    time.sleep(1.0)
    cpu1 = cpu_seconds(server.pid)
    ok2, failed2, wall2 = post_all(url, payloads[first_round:])
    cpu2 = cpu_seconds(server.pid)
    load = os.getloadavg()[0]
    rss = rss_bytes(server.pid)
    peak = rss_bytes(server.pid, "VmHWM")  # before settle(): the ingest's peak, for all alike
    ok = ok1 + ok2
    steady = (cpu2 - cpu1) / ok2 if ok2 else float("nan")
    create = (cpu1 - cpu0 - ok1 * steady) / n_series if ok2 else float("nan")
    server.settle()
    return {
        "samples": ok,
        "failed_requests": failed1 + failed2,
        "wall_s": wall1 + wall2,
        "cpu_s": cpu2 - cpu0,
        "cpu_us_per_sample": (cpu2 - cpu0) / ok * 1e6 if ok else float("nan"),
        "steady_us_per_sample": steady * 1e6,
        "create_us_per_series": create * 1e6,
        "create_us_per_series_noisy": float(not create * n_series * CLK_TCK >= NOISY_TICKS),
        "create_cpu_s": cpu1 - cpu0,
        "create_samples": ok1,
        "rss_mb": rss / 2**20,
        "peak_rss_mb": peak / 2**20,
        "rss_per_series": (rss - rss0) / n_series,
        "load_ingest": load,
    }


def creation_cpu(server: Server, first: list[tuple[bytes, int]]) -> tuple[float, int]:
    """CPU seconds a fresh ``server`` spends on the requests that create every series (plus
    1 s for deferred index work, as in ``measure_ingest``), and the samples they carried."""
    cpu0 = cpu_seconds(server.pid)
    ok, _failed, _wall = post_all(server.base + "/api/v1/write", first)
    time.sleep(1.0)
    return cpu_seconds(server.pid) - cpu0, ok


def combine_creation(
    runs: list[tuple[float, int]], steady_s_per_sample: float, n_series: int
) -> dict[str, float]:
    """Series-creation CPU per series over several fresh servers: each run's CPU less what
    its samples cost at the steady rate, averaged. Summing the runs' CPU before dividing
    averages out the clock-tick truncation of each reading (one run at 10k series rests on
    about five ticks of Prometheus's CPU); the noise flag looks at the ticks of all runs."""
    cpu = sum(c for c, _ in runs)
    samples = sum(k for _, k in runs)
    create = (cpu - samples * steady_s_per_sample) / (n_series * len(runs))
    per_run = [(c - k * steady_s_per_sample) / n_series * 1e6 for c, k in runs]
    return {
        "create_us_per_series": create * 1e6,
        "create_us_per_series_noisy": float(not cpu * CLK_TCK >= NOISY_TICKS),
        "create_runs": float(len(runs)),
        "create_spread_us": max(per_run) - min(per_run),
    }


def measure_disk(server: Server, samples: int) -> dict[str, float]:
    """Bytes on disk per sample in the server's final form (stops the bridge)."""
    bps, size, n = server.compacted_bytes(samples)
    return {"bytes_per_sample": bps, "block_bytes": size, "block_samples": n}
