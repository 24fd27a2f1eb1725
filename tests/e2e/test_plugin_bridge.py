"""The plugin in front of the bridge itself, with Prometheus as the oracle.

The same samples go by remote write to a bridge and to Prometheus; the plugin then answers the
same Grafana queries from each, and the decoded frames must agree (labels, timestamps, values).
This is the deployment the SPEC describes: Grafana loads the plugin, the plugin queries a bridge.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from forward_support import BridgeProcess
from test_plugin_grafana import (  # the Grafana stand-in lives there
    ALERT_HEADERS,
    METRIC,
    Plugin,
    Prometheus,
    check_alerting_shape,
    context,
    data_query,
    plugin,  # noqa: F401  (module fixture)
    prometheus,  # noqa: F401  (module fixture)
    push_known_series,
)

from grafana_agent_bridge.plugin import pluginv2_pb2 as pb


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
