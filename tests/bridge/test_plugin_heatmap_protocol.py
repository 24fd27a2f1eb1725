"""Heatmap frames over the plugin's real protocol: Grafana's QueryData gRPC call to the
plugin's server, the plugin querying a real bridge (in process) that holds native histograms
written by remote write. What Grafana receives must decode to heatmap-cells frames whose cells
are the stored histograms' buckets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pyarrow as pa
import pytest
import requests
from histogram_helpers import fh
from test_api_http import start_daemon

from grafana_agent_bridge.histogram.model import FloatHistogram
from grafana_agent_bridge.metrics import Registry
from grafana_agent_bridge.plugin import pluginv2_pb2 as pb
from grafana_agent_bridge.plugin.server import bind_in_range, build_server
from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import SeriesBatch

T0 = 1_700_000_000_000  # ms
STEP = 15_000


def growing(k: int) -> FloatHistogram:
    """The k-th scrape of a counter histogram: k observations in (0.5, 1], 2k in (1, 2]."""
    return fh(schema=0, count=3 * k, total=4 * k, pos=[(0, 2)], pb=[k, 2 * k])


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[str]:
    daemon = start_daemon(tmp_path)
    try:
        url = daemon.listen_url()
        batches = [
            SeriesBatch(
                (("__name__", "lat"), ("job", job)),
                np.array([T0 + k * STEP for k in range(4)], np.int64),
                np.full(4, np.nan),
                histograms=[growing(k + scale) for k in range(4)],
            )
            for job, scale in (("a", 1), ("b", 10))
        ]
        reply = requests.post(
            f"{url}/api/v1/write",
            data=encode_write_request(batches),
            headers=REMOTE_WRITE_HEADERS,
            timeout=10,
        )
        assert reply.status_code == 204, reply.text
        yield url
    finally:
        daemon.stop()


@pytest.fixture
def query_data() -> Iterator[grpc.UnaryUnaryMultiCallable]:
    server, _ = build_server(Registry())
    port = bind_in_range(server, 20000, 40000)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel.unary_unary(
            "/pluginv2.Data/QueryData",
            request_serializer=pb.QueryDataRequest.SerializeToString,
            response_deserializer=pb.QueryDataResponse.FromString,
        )
    finally:
        channel.close()
        server.stop(grace=None)


def ask(call: grpc.UnaryUnaryMultiCallable, url: str, model: dict, to_ms: int) -> list[tuple]:
    query = pb.DataQuery(
        refId="H",
        intervalMS=STEP,
        maxDataPoints=100,
        timeRange=pb.TimeRange(fromEpochMS=T0, toEpochMS=to_ms),
        json=json.dumps({"refId": "H", **model}).encode(),
    )
    context = pb.PluginContext(
        dataSourceInstanceSettings=pb.DataSourceInstanceSettings(url=url, jsonData=b"{}")
    )
    reply = call(pb.QueryDataRequest(pluginContext=context, queries=[query]), timeout=30)
    response = reply.responses["H"]
    assert not response.error, response.error
    out = []
    for raw in response.frames:
        table = pa.ipc.open_file(pa.BufferReader(raw)).read_all()
        meta = json.loads(table.schema.metadata[b"meta"])
        assert meta["type"] == "heatmap-cells"
        assert table.column_names == ["xMax", "yMin", "yMax", "count", "yLayout"]
        labels = json.loads(table.schema.field("yMin").metadata[b"labels"])
        ms = [ns // 1_000_000 for ns in table.column("xMax").cast(pa.int64()).to_pylist()]
        rows = zip(ms, *(table.column(n).to_pylist() for n in table.column_names[1:]))
        out.append((labels, list(rows)))
    return out


def test_an_instant_histogram_query_answers_heatmap_frames(bridge: str, query_data) -> None:
    at = T0 + 3 * STEP
    got = ask(query_data, bridge, {"expr": "lat", "instant": True, "range": False}, at)
    assert [labels["job"] for labels, _ in got] == ["a", "b"]
    for (_, rows), k in zip(got, (4, 13)):  # the last scrape of each
        assert rows == [(at, 0.5, 1.0, float(k), 0), (at, 1.0, 2.0, 2.0 * k, 0)]


def test_a_range_rate_of_histograms_answers_one_heatmap_per_series(
    bridge: str, query_data
) -> None:
    end = T0 + 3 * STEP
    model = {"expr": "rate(lat[1m])", "range": True, "instant": False, "interval": "15s"}
    got = ask(query_data, bridge, model, end)
    assert [labels for labels, _ in got] == [{"job": "a"}, {"job": "b"}]
    for labels, rows in got:
        times = sorted({r[0] for r in rows})
        assert len(times) >= 2, "one column of cells per step"
        for t in times:
            # Each column is the histogram the bridge's API gives at that step, bucket by bucket.
            answer = requests.get(
                f"{bridge}/api/v1/query",
                params={"query": f'rate(lat{{job="{labels["job"]}"}}[1m])', "time": t / 1000},
                timeout=10,
            ).json()
            (item,) = answer["data"]["result"]
            want = [
                (r, float(lo), float(hi), float(c))
                for r, lo, hi, c in item["histogram"][1]["buckets"]
            ]
            assert [(r[4], r[1], r[2], r[3]) for r in rows if r[0] == t] == want
