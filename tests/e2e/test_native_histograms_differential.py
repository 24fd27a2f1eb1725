"""Native histograms end to end against Debian's Prometheus 2.42 (native histograms enabled).

The same integer native histograms are remote-written to Prometheus (labelled
``src="direct"``) and to the bridge, which forwards what it stores to that same Prometheus
(arriving without the label). Then:

- forwarding: every histogram the bridge acknowledged is upstream, count and sum exact, in
  order, also after the bridge was ``kill -9``-ed in the middle of the stream;
- the differential: ``histogram_count``, ``histogram_sum``, ``rate`` (through both) and
  ``histogram_quantile`` agree within 1e-6 between Prometheus and the bridge.

Where 2.x and 3.x semantics agree: Prometheus 3 interpolates exponentially inside a bucket of
a standard schema where 2.42 interpolated linearly, so the data is shaped to make the quantile
land exactly on a bucket boundary: two buckets of schema 0, (0.5, 1] and (1, 2], always equal,
so the median's rank is the end of the first bucket and both versions answer its upper
bound, 1. Counts, sums and their rates do not depend on interpolation and are compared at
several times over the whole stream.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from forward_support import Bridge, Prometheus, http_get, http_post, wait_until

from grafana_agent_bridge.histogram.model import FloatHistogram, Hint, Span
from grafana_agent_bridge.labels import make_labels
from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import SeriesBatch

STEP_MS = 15_000
TICKS = 40


def hist(k: int) -> FloatHistogram:
    """The k-th scrape of a growing counter histogram: 3k observations in each bucket."""
    return FloatHistogram(
        schema=0,
        count=6.0 * k,
        sum=4.5 * k,
        positive_spans=(Span(0, 2),),
        positive_buckets=(3.0 * k, 3.0 * k),
        hint=Hint.UNKNOWN,
    )


def push(url: str, labels: dict[str, str], ticks: list[int], start: int) -> None:
    series = SeriesBatch(
        make_labels(labels),
        np.array([start + k * STEP_MS for k in ticks], np.int64),
        np.full(len(ticks), np.nan),
        histograms=[hist(k) for k in ticks],
    )
    status, body = http_post(
        url, "/api/v1/write", encode_write_request([series]), REMOTE_WRITE_HEADERS
    )
    assert status == 204, body[:500]


def instant(url: str, query: str, at_ms: int) -> list[dict]:
    q = urllib.parse.urlencode({"query": query, "time": f"{at_ms / 1000:.3f}"})
    status, body = http_get(url, f"/api/v1/query?{q}")
    assert status == 200, body[:500]
    return json.loads(body)["data"]["result"]


def scalar_of(result: list[dict]) -> float:
    (item,) = result
    return float(item["value"][1])


@pytest.fixture
def prom(tmp_path: Path):
    p = Prometheus(tmp_path / "prom", features=("native-histograms",))
    yield p
    p.stop()


def test_histograms_forward_and_agree_with_prometheus(tmp_path: Path, prom: Prometheus) -> None:
    start = (int(time.time() * 1000) - TICKS * STEP_MS - 60_000) // STEP_MS * STEP_MS
    bridge = Bridge(tmp_path / "bridge", [prom.write_url], max_backoff="1s").start()
    try:
        half = list(range(1, TICKS // 2))
        push(prom.url, {"__name__": "nh", "src": "direct"}, list(range(1, TICKS)), start)
        push(bridge.url, {"__name__": "nh"}, half, start)
        bridge.kill9()  # acknowledged histograms must survive this
        bridge = Bridge(tmp_path / "bridge", [prom.write_url], max_backoff="1s").start()
        push(bridge.url, {"__name__": "nh"}, list(range(TICKS // 2, TICKS)), start)
        end = start + (TICKS - 1) * STEP_MS

        # Forwarding: everything upstream, exact, in order.
        def forwarded() -> list[list]:
            res = instant(prom.url, 'nh{src=""}[1h]', end)
            return res[0].get("histograms", []) if res else []

        wait_until(lambda: len(forwarded()) == TICKS - 1, 30, "all histograms forwarded")
        got = [
            (round(float(t) * 1000), float(h["count"]), float(h["sum"])) for t, h in forwarded()
        ]
        assert got == [(start + k * STEP_MS, 6.0 * k, 4.5 * k) for k in range(1, TICKS)]

        # The differential.
        queries = [
            ("histogram_count(nh{0})", None),
            ("histogram_sum(nh{0})", None),
            ("histogram_count(rate(nh{0}[2m]))", None),
            ("histogram_sum(rate(nh{0}[5m]))", None),
            ("histogram_quantile(0.5, rate(nh{0}[2m]))", 1.0),
            ("histogram_quantile(0.5, nh{0})", 1.0),
        ]
        for q, known in queries:
            for at in (start + 10 * STEP_MS, start + 25 * STEP_MS + 7_000, end):
                want = scalar_of(instant(prom.url, q.format('{src="direct"}'), at))
                have = scalar_of(instant(bridge.url, q.format(""), at))
                assert abs(want - have) <= 1e-6 * max(1.0, abs(want)), (q, at, want, have)
                if known is not None:
                    assert want == pytest.approx(known, abs=1e-9), q
    finally:
        bridge.stop()
