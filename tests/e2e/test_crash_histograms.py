"""``kill -9`` of the daemon while native histograms stream in: every histogram it
acknowledged (HTTP 204) is there after the restart, bit for bit in count, sum and buckets."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np
from forward_support import Bridge, http_get, http_post

from grafana_agent_bridge.histogram.model import FloatHistogram, Span
from grafana_agent_bridge.labels import make_labels
from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import SeriesBatch

SERIES = 20


def hist(k: int, i: int) -> FloatHistogram:
    return FloatHistogram(
        schema=-53 if i % 2 else 1,
        count=3.0 * k,
        sum=0.25 * k + i,
        positive_spans=(Span(0, 3),),
        positive_buckets=(float(k), float(k), float(k)),
        custom_values=(0.1, 1.0, 10.0) if i % 2 else (),
    )


def test_kill9_during_histogram_ingest_loses_nothing_acknowledged(tmp_path: Path) -> None:
    bridge = Bridge(tmp_path / "bridge").start()
    start = int(time.time() * 1000) - 3_600_000
    acked: list[int] = []
    stop = threading.Event()

    def run() -> None:
        k = 1
        while not stop.is_set():
            body = encode_write_request(
                [
                    SeriesBatch(
                        make_labels({"__name__": "crash_nh", "i": str(i)}),
                        np.array([start + k * 1000], np.int64),
                        np.array([np.nan]),
                        histograms=[hist(k, i)],
                    )
                    for i in range(SERIES)
                ]
            )
            try:
                status, _ = http_post(bridge.url, "/api/v1/write", body, REMOTE_WRITE_HEADERS, 5)
            except OSError:
                return
            if status == 204:
                acked.append(k)
            k += 1

    pusher = threading.Thread(target=run)
    pusher.start()
    time.sleep(2.0)
    bridge.kill9()
    stop.set()
    pusher.join()
    assert len(acked) > 20, acked
    bridge = Bridge(tmp_path / "bridge").start()
    try:
        at = (start + (acked[-1] + 1) * 1000) / 1000
        q = urllib.parse.urlencode({"query": "crash_nh[2h]", "time": f"{at:.3f}"})
        status, body = http_get(bridge.url, f"/api/v1/query?{q}", timeout=60)
        assert status == 200, body[:300]
        result = json.loads(body)["data"]["result"]
        assert len(result) == SERIES
        for item in result:
            i = int(item["metric"]["i"])
            got = {round(float(t) * 1000): h for t, h in item["histograms"]}
            for k in acked:
                h = got[start + k * 1000]
                want = hist(k, i)
                assert (float(h["count"]), float(h["sum"])) == (want.count, want.sum)
                assert [float(b[3]) for b in h["buckets"]] == [float(k)] * 3
    finally:
        bridge.stop()
