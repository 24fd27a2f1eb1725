"""The plugin in front of the bridge itself, with Prometheus as the oracle.

The same samples go by remote write to a bridge and to Prometheus; the plugin then answers the
same Grafana queries from each, and the decoded frames must agree (labels, timestamps, values).
This is the deployment the SPEC describes: Grafana loads the plugin, the plugin queries a bridge.
Native histograms too: pushed to both (Prometheus with native histograms enabled), they must
come back as the same heatmap-cells frames, cell by cell.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pytest
from forward_support import BridgeProcess
from forward_support import Prometheus as ForwardPrometheus
from test_plugin_grafana import (  # the Grafana stand-in lives there
    ALERT_HEADERS,
    METRIC,
    Plugin,
    Prometheus,
    check_alerting_shape,
    context,
    data_query,
    decode,
    plugin,  # noqa: F401  (module fixture)
    prometheus,  # noqa: F401  (module fixture)
    push_known_series,
    remote_write,
)

from grafana_agent_bridge.histogram.model import FloatHistogram, Span
from grafana_agent_bridge.plugin import pluginv2_pb2 as pb
from grafana_agent_bridge.storage import SeriesBatch


@dataclass
class Bridge:
    url: str
    end_ms: int


@pytest.fixture(scope="module")
def bridge(
    tmp_path_factory: pytest.TempPathFactory,
    prometheus: Prometheus,  # noqa: F811
) -> Iterator[Bridge]:
    daemon = BridgeProcess(tmp_path_factory.mktemp("bridge") / "data", "--no-collect")
    try:
        daemon.wait_ready(30)
        yield Bridge(daemon.url, push_known_series(daemon.url, prometheus.end_ms))
    finally:
        daemon.stop()


def series_of(response: pb.DataResponse, ref_id: str, kind: str) -> dict[str, tuple]:
    frames = check_alerting_shape(response, ref_id, kind)
    return {json.dumps(f.labels(), sort_keys=True): (f.times_ms(), f.values()) for f in frames}


QUERIES = [
    ("instant", {"expr": METRIC, "instant": True, "range": False}, "numeric-multi"),
    ("sum", {"expr": f"sum by (room) ({METRIC})", "instant": True}, "numeric-multi"),
    ("range", {"expr": f'{METRIC}{{room="kitchen"}} * 2', "range": True}, "timeseries-multi"),
    ("rate", {"expr": f"rate({METRIC}[$__rate_interval])", "range": True}, "timeseries-multi"),
]


@pytest.mark.parametrize(("ref_id", "model", "kind"), QUERIES, ids=[q[0] for q in QUERIES])
def test_plugin_answers_the_same_from_the_bridge_as_from_prometheus(
    plugin: Plugin,  # noqa: F811
    prometheus: Prometheus,  # noqa: F811
    bridge: Bridge,
    ref_id: str,
    model: dict[str, object],
    kind: str,
) -> None:
    assert bridge.end_ms == prometheus.end_ms  # both stores hold the same samples
    end = prometheus.end_ms + 123
    answers = {}
    for name, url in (("bridge", bridge.url), ("prometheus", prometheus.url)):
        reply = plugin.query_data(
            pb.QueryDataRequest(
                pluginContext=context(url),
                headers=ALERT_HEADERS,
                queries=[data_query(ref_id, model, end - 600_000, end)],
            )
        )
        answers[name] = series_of(reply.responses[ref_id], ref_id, kind)
    bridge_series, oracle = answers["bridge"], answers["prometheus"]
    assert oracle
    assert bridge_series.keys() == oracle.keys()
    for labels, (times, values) in oracle.items():
        got_times, got_values = bridge_series[labels]
        assert got_times == times, labels
        # The bridge's own PromQL engine: equal up to floating-point rounding.
        assert got_values == pytest.approx(values, rel=1e-12, abs=1e-15), labels


def test_health_and_metadata_from_the_bridge(plugin: Plugin, bridge: Bridge) -> None:  # noqa: F811
    health = plugin.check_health(pb.CheckHealthRequest(pluginContext=context(bridge.url)))
    assert health.status == pb.CheckHealthResponse.OK, health.message
    start, end = bridge.end_ms // 1000 - 3600, bridge.end_ms // 1000 + 60
    (values,) = plugin.call_resource(
        pb.CallResourceRequest(
            pluginContext=context(bridge.url),
            path="api/v1/label/room/values",
            method="GET",
            url=f"api/v1/label/room/values?start={start}&end={end}",
        )
    )
    assert values.code == 200
    assert json.loads(values.body)["data"] == ["hall", "kitchen"]


# -- native histograms: heatmap frames --------------------------------------------------------

HIST_METRIC = "plugin_test_latency"
HIST_STEP_MS = 15_000
HIST_TICKS = 30


def growing_histogram(k: int) -> FloatHistogram:
    """The k-th scrape of a counter histogram (schema 0, a zero bucket, a negative bucket):
    every bucket grows, so no rate bucket is empty and both Prometheus versions list them all."""
    return FloatHistogram(
        schema=0,
        count=10.0 * k,
        sum=7.5 * k,
        zero_threshold=0.001,
        zero_count=1.0 * k,
        positive_spans=(Span(0, 3),),
        positive_buckets=(2.0 * k, 3.0 * k, 3.0 * k),
        negative_spans=(Span(1, 1),),
        negative_buckets=(1.0 * k,),
    )


def push_histograms(url: str, end_ms: int) -> None:
    series = [
        SeriesBatch(
            (("__name__", HIST_METRIC), ("job", job)),
            np.array(
                [end_ms - (HIST_TICKS - 1 - i) * HIST_STEP_MS for i in range(HIST_TICKS)],
                np.int64,
            ),
            np.full(HIST_TICKS, np.nan),
            histograms=[growing_histogram(scale * (i + 1)) for i in range(HIST_TICKS)],
        )
        for job, scale in (("api", 1), ("db", 3))
    ]
    remote_write(url, series)


def heatmaps(response: pb.DataResponse) -> dict[str, list[tuple]]:
    """Each heatmap-cells frame's cells by its series labels, checked for Grafana's shape."""
    assert not response.error, response.error
    out = {}
    for raw in response.frames:
        frame = decode(raw)
        assert frame.meta["type"] == "heatmap-cells"
        table = frame.table
        assert table.column_names == ["xMax", "yMin", "yMax", "count", "yLayout"]
        assert table.schema.field("yLayout").type == pa.int8()
        labels = json.loads(table.schema.field("yMin").metadata[b"labels"])
        columns = [table.column(name).to_pylist() for name in table.column_names[1:]]
        out[json.dumps(labels, sort_keys=True)] = list(zip(frame.times_ms(), *columns))
    return out


@pytest.fixture(scope="module")
def histogram_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, int]]:
    """A bridge and Debian's Prometheus (native histograms enabled), the same histograms in
    each; yields their URLs and the last sample's time."""
    end_ms = (int(time.time()) // 60 - 1) * 60_000
    prom = ForwardPrometheus(tmp_path_factory.mktemp("nh-prom"), features=("native-histograms",))
    daemon = BridgeProcess(tmp_path_factory.mktemp("nh-bridge") / "data", "--no-collect")
    try:
        daemon.wait_ready(30)
        for url in (prom.url, daemon.url):
            push_histograms(url, end_ms)
        yield daemon.url, prom.url, end_ms
    finally:
        daemon.stop()
        prom.stop()


HIST_QUERIES = [
    ("instant", {"expr": HIST_METRIC, "instant": True, "range": False}),
    ("rate", {"expr": f"rate({HIST_METRIC}[1m])", "range": True, "instant": False}),
]


@pytest.mark.parametrize(("ref_id", "model"), HIST_QUERIES, ids=[q[0] for q in HIST_QUERIES])
def test_native_histograms_come_as_the_same_heatmap_frames_as_from_prometheus(
    plugin: Plugin,  # noqa: F811
    histogram_stores: tuple[str, str, int],
    ref_id: str,
    model: dict[str, object],
) -> None:
    bridge_url, prom_url, end_ms = histogram_stores
    answers = {}
    for name, url in (("bridge", bridge_url), ("prometheus", prom_url)):
        reply = plugin.query_data(
            pb.QueryDataRequest(
                pluginContext=context(url),
                queries=[
                    data_query(
                        ref_id, model, end_ms - 5 * 60_000, end_ms, interval_ms=HIST_STEP_MS
                    )
                ],
            )
        )
        answers[name] = heatmaps(reply.responses[ref_id])
    bridge_cells, oracle = answers["bridge"], answers["prometheus"]
    name = {"__name__": HIST_METRIC} if ref_id == "instant" else {}  # rate drops the name
    want = [json.dumps({**name, "job": j}, sort_keys=True) for j in ("api", "db")]
    assert sorted(oracle) == want
    assert bridge_cells.keys() == oracle.keys()
    for labels, cells in oracle.items():
        assert cells, labels
        got = bridge_cells[labels]
        assert [c[0] for c in got] == [c[0] for c in cells], labels
        assert [(c[1], c[2], c[4]) for c in got] == [(c[1], c[2], c[4]) for c in cells], labels
        # The counts: equal for stored samples, up to rounding for the bridge's own rate.
        assert [c[3] for c in got] == pytest.approx([c[3] for c in cells], rel=1e-9), labels
    # The zero bucket and the negative one are among the cells, with their boundary rules.
    rules = {(c[1], c[2]): c[4] for cells in bridge_cells.values() for c in cells}
    assert rules[(-0.001, 0.001)] == 3 and rules[(-2.0, -1.0)] == 1 and rules[(1.0, 2.0)] == 0
