"""The bridge against a real Prometheus: same data, same queries, same answers.

Prometheus scrapes a small exposition server run by the test and remote-writes everything it
scrapes to the bridge, so both hold exactly the same samples. Then each query of the
evaluator's scope (selectors with all four matchers, ``offset``, rate/irate/increase,
sum/avg/min/max/count by/without, arithmetic and comparisons with scalars) is asked of both,
instant and range, and the answers must have the same series and values within 1e-6.

Prometheus 2.x windows are closed on the left, 3.x (our semantics) open: evaluation times are
chosen so that no window edge falls on a sample timestamp, where the two would differ. And 3.x
extrapolates ``rate`` differently when a series starts well inside the window (it caps the
start extrapolation at half an interval before applying the counter's zero point), so every
window also starts after the first sample.
"""

from __future__ import annotations

import math
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from forward_support import BridgeProcess

from tests.support import PROMETHEUS, free_port, require_prometheus, stop_process

SCRAPE_MS = 500
SCRAPES = 26
WINDOWS_MS = (2000, 3000, 5000, 7000)  # [range]s, offsets and their sums used below
STEP_MS = 625  # range queries: steps fall between the 0.5 s scrapes
RANGE_SPAN_MS = 2500


class Exposition:
    """Counters and gauges that change on every scrape, with a counter reset on the way."""

    def __init__(self) -> None:
        self.n = 0
        self.lock = threading.Lock()
        self.counters = {
            ("/a", "200"): 0.0,
            ("/a", "500"): 0.0,
            ("/b", "200"): 0.0,
            ("/c", "404"): 0.0,
        }

    def page(self) -> bytes:
        with self.lock:
            self.n += 1
            n = self.n
            for i, key in enumerate(self.counters):
                self.counters[key] += (n * (i + 3)) % 7 + 0.25 * i
            if n == 8:
                self.counters[("/b", "200")] = 1.0  # a restart of the instrumented process
            lines = ["# HELP e2e_requests_total Requests.", "# TYPE e2e_requests_total counter"]
            for (path, code), v in self.counters.items():
                lines.append(f'e2e_requests_total{{path="{path}",code="{code}"}} {v!r}')
            lines += ["# HELP e2e_temperature Temperature.", "# TYPE e2e_temperature gauge"]
            for j, room in enumerate(("hall", "kitchen", "cellar")):
                for k, floor in enumerate(("0", "1")):
                    value = 18 + j * 2.5 + k + math.sin(n / 3 + j) * 3
                    lines.append(f'e2e_temperature{{room="{room}",floor="{floor}"}} {value!r}')
        return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, float]]:
    """(prometheus URL, bridge URL, a good evaluation time in seconds)."""
    require_prometheus()
    tmp = tmp_path_factory.mktemp("prom-e2e")
    expo = Exposition()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = expo.page()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    target = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    bridge = BridgeProcess(tmp / "bridge-data", "--no-collect")
    prom_port = free_port()
    (tmp / "prometheus.yml").write_text(
        f"""
global:
  scrape_interval: 500ms
  scrape_timeout: 500ms
scrape_configs:
  - job_name: e2e
    static_configs:
      - targets: ["127.0.0.1:{target.server_address[1]}"]
remote_write:
  - url: {bridge.url}/api/v1/write
    queue_config:
      batch_send_deadline: 500ms
      min_backoff: 50ms
      max_backoff: 1s
    metadata_config:
      send_interval: 1s
"""
    )
    prom_log = (tmp / "prometheus.log").open("wb")
    prom = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=prom_log,
        stderr=prom_log,
    )
    prom_url = f"http://127.0.0.1:{prom_port}"
    try:
        bridge.wait_ready()
        deadline = time.monotonic() + SCRAPES * SCRAPE_MS / 1000 + 30
        while expo.n < SCRAPES:
            assert time.monotonic() < deadline, (tmp / "prometheus.log").read_text()[-2000:]
            assert prom.poll() is None, (tmp / "prometheus.log").read_text()[-2000:]
            time.sleep(0.2)
        target.shutdown()  # no more samples: both sides can converge on the same data
        probe = "count_over_time(e2e_requests_total[1h])"
        t_check = str(time.time() + 1)
        while True:
            a = _instant(prom_url, probe, t_check)
            b = _instant(bridge.url, probe, t_check)
            if a and a == b:
                break
            assert time.monotonic() < deadline, f"bridge never caught up: {a} vs {b}"
            time.sleep(0.3)
        yield prom_url, bridge.url, _evaluation_time(prom_url)
    finally:
        stop_process(prom, 15)
        prom_log.close()
        target.server_close()
        bridge.stop()


def _instant(url: str, query: str, t: str) -> dict:
    r = requests.get(f"{url}/api/v1/query", params={"query": query, "time": t}, timeout=10)
    body = r.json()
    assert body["status"] == "success", body
    return _by_series(body["data"])


def _evaluation_time(prom_url: str) -> float:
    """A time late in the data whose window edges (T, T - range, T - offset) avoid samples."""
    raw = requests.get(
        f"{prom_url}/api/v1/query",
        params={"query": "e2e_temperature[1h]", "time": str(time.time())},
        timeout=10,
    ).json()["data"]["result"]
    stamps = sorted({round(float(t) * 1000) for s in raw for t, _ in s["values"]})
    assert len(stamps) >= SCRAPES // 2, f"only {len(stamps)} scrapes stored"
    first, last = stamps[0], stamps[-1]
    for back in range(100, 1000, 7):
        t = last - back
        steps = {t - k * STEP_MS for k in range(RANGE_SPAN_MS // STEP_MS + 1)}
        edges = {e - d for e in steps for d in (0, *WINDOWS_MS)}
        if min(edges) > first and all(abs(e - s) > 5 for e in edges for s in stamps):
            return t / 1000
    raise AssertionError("no evaluation time away from sample timestamps")


def _by_series(data: dict) -> dict:
    rtype = data["resultType"]
    if rtype == "scalar":
        return {"": [tuple(data["result"])]}
    out = {}
    for s in data["result"]:
        key = tuple(sorted(s["metric"].items()))
        out[key] = [tuple(s["value"])] if rtype == "vector" else [tuple(p) for p in s["values"]]
    return out


def _same(prom: dict, ours: dict, what: str) -> None:
    assert sorted(prom) == sorted(ours), f"{what}: series differ\n{prom}\n{ours}"
    for key, points in prom.items():
        got = ours[key]
        assert [t for t, _ in points] == [t for t, _ in got], f"{what} {key}: timestamps"
        for (_, a), (_, b) in zip(points, got):
            fa, fb = float(a), float(b)
            if math.isnan(fa):
                assert math.isnan(fb), f"{what} {key}: {a} vs {b}"
            else:
                assert fb == pytest.approx(fa, rel=1e-6, abs=1e-6), f"{what} {key}: {a} vs {b}"


QUERIES = [
    "e2e_requests_total",
    'e2e_requests_total{code="200"}',
    'e2e_requests_total{code!="200"}',
    'e2e_requests_total{path=~"/a|/b"}',
    'e2e_requests_total{path!~"/a.*"}',
    '{__name__="e2e_temperature", room=~"k.*"}',
    "e2e_temperature offset 2s",
    "rate(e2e_requests_total[5s])",
    "irate(e2e_requests_total[3s])",
    "increase(e2e_requests_total[5s])",
    "rate(e2e_requests_total[3s] offset 2s)",
    "sum(rate(e2e_requests_total[5s]))",
    "sum by (code) (rate(e2e_requests_total[5s]))",
    "sum without (path) (increase(e2e_requests_total[5s]))",
    "avg by (room) (e2e_temperature)",
    "avg without (floor) (e2e_temperature)",
    "min by (floor) (e2e_temperature)",
    "max without (room, floor) (e2e_temperature)",
    "count by (code) (e2e_requests_total)",
    "count(e2e_temperature)",
    "e2e_temperature * 2 + 1",
    "10 - e2e_temperature / 4",
    "2 ^ (e2e_temperature / 10)",
    "e2e_temperature % 3",
    "e2e_temperature > 20",
    "e2e_temperature <= bool 20",
    "20 < e2e_temperature",
    "e2e_temperature == bool 21",
    "-e2e_temperature",
    "rate(e2e_requests_total[5s]) * 60 > 5",
    "sum(e2e_temperature) / count(e2e_temperature)",
    "up",
    "1 + 2 * 3",
]


@pytest.mark.parametrize("query", QUERIES)
def test_instant_queries_match_prometheus(pair: tuple[str, str, float], query: str) -> None:
    prom_url, bridge_url, t = pair
    _same(_instant(prom_url, query, str(t)), _instant(bridge_url, query, str(t)), query)


@pytest.mark.parametrize("query", QUERIES)
def test_range_queries_match_prometheus(pair: tuple[str, str, float], query: str) -> None:
    prom_url, bridge_url, t = pair
    params = {
        "query": query,
        "start": str(t - RANGE_SPAN_MS / 1000),
        "end": str(t),
        "step": str(STEP_MS / 1000),
    }
    answers = []
    for url in (prom_url, bridge_url):
        body = requests.post(f"{url}/api/v1/query_range", data=params, timeout=10).json()
        assert body["status"] == "success", (url, body)
        assert body["data"]["resultType"] == "matrix"
        answers.append(_by_series(body["data"]))
    _same(answers[0], answers[1], f"range {query}")
    assert answers[0], f"{query}: no data at all, the comparison would prove nothing"


def test_metadata_endpoints_match_prometheus(pair: tuple[str, str, float]) -> None:
    prom_url, bridge_url, t = pair
    params = {"match[]": "e2e_requests_total", "start": str(t - 60), "end": str(t)}
    for path in ("series", "labels", "label/path/values"):
        a = requests.get(f"{prom_url}/api/v1/{path}", params=params, timeout=10).json()["data"]
        b = requests.get(f"{bridge_url}/api/v1/{path}", params=params, timeout=10).json()["data"]
        key = lambda x: str(sorted(x.items())) if isinstance(x, dict) else x  # noqa: E731
        assert sorted(a, key=key) == sorted(b, key=key), path


def test_prometheus_sender_saw_no_failures(pair: tuple[str, str, float]) -> None:
    prom_url, bridge_url, _ = pair

    def total(url: str, name: str) -> float:
        text = requests.get(f"{url}/metrics", timeout=10).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )

    assert total(prom_url, "prometheus_remote_storage_samples_failed_total") == 0
    assert total(prom_url, "prometheus_remote_storage_samples_dropped_total") == 0
    assert total(bridge_url, 'bridge_ingest_requests_total{code="204"}') > 0
    assert total(bridge_url, 'bridge_ingest_requests_total{code="400"}') == 0
    # Prometheus also sends metric metadata; the bridge keeps it for Grafana's metrics browser.
    deadline = time.monotonic() + 10
    while True:
        meta = requests.get(f"{bridge_url}/api/v1/metadata", timeout=10).json()["data"]
        if "e2e_requests_total" in meta or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert meta["e2e_requests_total"] == [{"type": "counter", "help": "Requests.", "unit": ""}]
    assert meta["e2e_temperature"] == [{"type": "gauge", "help": "Temperature.", "unit": ""}]
