"""Exemplars pushed into the bridge reach a real Prometheus upstream (exemplar storage on),
also across a ``kill -9`` of the bridge before it had forwarded them.

Exemplars carry the trace ids that link a metric to its traces in Tempo; Prometheus answers
``/api/v1/query_exemplars`` from what it received, so that is the oracle here.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path

import numpy as np
from forward_support import Bridge, Prometheus, http_get, http_post, wait_until

from grafana_agent_bridge.labels import make_labels
from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import Exemplar, SeriesBatch

METRIC = "fwd_exemplar_test"
T = 'target="up0"'

Pushed = set[tuple[str, str, float, int]]
"""(series' ``path`` label, trace id, value, timestamp ms)."""


def push(url: str, t0: int, ticks: range, pushed: Pushed) -> None:
    """Three series, one sample per tick each; a trace-id exemplar on every other sample, and
    every third tick an exemplar in a write of its own, without samples."""
    for k in ticks:
        t = t0 + k * 1000
        series = []
        for path in ("/a", "/b", "/c"):
            labels = make_labels({"__name__": METRIC, "path": path})
            exemplars = []
            if (k + len(path) + ord(path[1])) % 2:
                trace = f"{k:08x}{ord(path[1]):024x}"
                exemplars.append(Exemplar(make_labels({"trace_id": trace}), k + 0.5, t))
                pushed.add((path, trace, k + 0.5, t))
            one = np.array([t], np.int64)
            series.append(SeriesBatch(labels, one, np.array([float(k)]), exemplars))
        status, answer = http_post(
            url, "/api/v1/write", encode_write_request(series), REMOTE_WRITE_HEADERS
        )
        assert status == 204, answer
        if k % 3 == 0:
            labels = make_labels({"__name__": METRIC, "path": "/a"})
            trace = f"{k:08x}{'late':>24}".replace(" ", "0")
            ex = Exemplar(make_labels({"trace_id": trace}), -1.0, t + 500)
            pushed.add(("/a", trace, -1.0, t + 500))
            alone = SeriesBatch(labels, np.empty(0, np.int64), np.empty(0, np.float64), [ex])
            body = encode_write_request([alone])
            status, answer = http_post(url, "/api/v1/write", body, REMOTE_WRITE_HEADERS)
            # After the series' samples: Prometheus keeps exemplars only of series it has.
            assert status == 204, answer


def upstream_exemplars(url: str, start_ms: int, end_ms: int) -> Pushed:
    q = urllib.parse.urlencode(
        {"query": METRIC, "start": f"{start_ms / 1000:.3f}", "end": f"{end_ms / 1000:.3f}"}
    )
    status, body = http_get(url, f"/api/v1/query_exemplars?{q}", timeout=30)
    assert status == 200, body[:300]
    got: Pushed = set()
    for item in json.loads(body)["data"]:
        path = item["seriesLabels"]["path"]
        for e in item["exemplars"]:
            t = round(float(e["timestamp"]) * 1000)
            got.add((path, e["labels"]["trace_id"], float(e["value"]), t))
    return got


def test_exemplars_are_forwarded_to_prometheus(tmp_path: Path) -> None:
    upstream = Prometheus(tmp_path / "up", features=("exemplar-storage",))
    bridge = Bridge(tmp_path / "bridge", [upstream.write_url]).start()
    pushed: Pushed = set()
    t0 = int(time.time() * 1000) - 60_000
    try:
        push(bridge.url, t0, range(0, 20), pushed)
        before_restart = len(pushed)
        bridge.kill9()
        bridge.start()
        push(bridge.url, t0, range(20, 40), pushed)
        end = t0 + 41_000
        wait_until(lambda: upstream_exemplars(upstream.url, t0, end) >= pushed, 30, "exemplars")
        assert upstream_exemplars(upstream.url, t0, end) == pushed
        # The samples went too, and the bridge counted what it sent.
        got = upstream.samples(METRIC, end)
        assert sorted(len(v) for v in got.values()) == [40, 40, 40]
        # The counter starts again at the restart; everything pushed since then went.
        sent = f"bridge_forward_exemplars_sent_total{{{T}}}"
        wait_until(lambda: bridge.metric(sent) >= len(pushed) - before_restart, 10, sent)
        assert bridge.metric(sent) <= len(pushed)
    finally:
        bridge.stop()
        upstream.stop()
