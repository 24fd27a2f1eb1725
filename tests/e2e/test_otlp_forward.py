"""OTLP metrics through the bridge to a real Prometheus (Debian's) across an upstream outage
and a ``kill -9`` of the bridge: every data point the bridge acknowledged (200 without
partial success) arrives upstream, translated (``jobs_done_total{job, instance, worker}``) and
with its ``target_info``, because OTLP ingest writes the same store that forwarding reads.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from faultproxy import PASS, FaultProxy
from forward_support import Bridge, Prometheus, wait_until
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

WORKERS = 5
TICKS = 40
T = 'target="up0"'


def export_body(tick: int, t_ms: int) -> bytes:
    """One export: ``jobs.done`` (a cumulative monotonic sum) per worker, value ``tick + w``."""
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    for key, value in (
        ("service.name", "jobs"),
        ("service.instance.id", "vm-3"),
        ("host.arch", "amd64"),
    ):
        rm.resource.attributes.add(key=key, value=AnyValue(string_value=value))
    metric = rm.scope_metrics.add().metrics.add(name="jobs.done", unit="{job}")
    metric.sum.is_monotonic = True
    metric.sum.aggregation_temporality = m.AGGREGATION_TEMPORALITY_CUMULATIVE
    for w in range(WORKERS):
        point = metric.sum.data_points.add(as_double=tick + w, time_unix_nano=t_ms * 1_000_000)
        point.attributes.append(KeyValue(key="worker", value=AnyValue(string_value=str(w))))
    return req.SerializeToString()


def send(bridge: Bridge, tick: int, t_ms: int) -> bool:
    """Whether the bridge acknowledged the export (200, nothing refused)."""
    try:
        r = requests.post(
            f"{bridge.url}/v1/metrics",
            data=export_body(tick, t_ms),
            headers={"Content-Type": "application/x-protobuf"},
            timeout=10,
        )
    except requests.RequestException:
        return False
    if r.status_code != 200:
        return False
    answer = ExportMetricsServiceResponse()
    answer.ParseFromString(r.content)
    return answer.partial_success.rejected_data_points == 0


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[tuple[Prometheus, FaultProxy]]:
    prom = Prometheus(tmp_path / "prom")
    proxy = FaultProxy(prom.write_url)
    yield prom, proxy
    proxy.close()
    prom.stop()


def test_otlp_points_survive_outage_and_kill9(
    tmp_path: Path, upstream: tuple[Prometheus, FaultProxy]
) -> None:
    prom, proxy = upstream
    bridge = Bridge(tmp_path / "bridge", [proxy.url], max_backoff="1s", target_timeout="1s")
    bridge.start()
    start_ms = int(time.time() * 1000) - TICKS * 100
    acked: list[int] = []
    try:
        for tick in range(TICKS):
            if tick == 10:
                proxy.refuse()  # upstream gone: points pile up in the bridge
            if tick == 20:
                bridge.kill9()  # with unforwarded, acknowledged points in its WAL
                bridge.start()
            if tick == 30:
                wait_until(
                    lambda: bridge.metric(f"bridge_forward_samples_pending{{{T}}}") > 0,
                    15,
                    "the backlog to be counted",
                )
                proxy.accept()
                proxy.set_mode(PASS)
            t_ms = start_ms + tick * 100
            for _ in range(50):  # a sender retries until acknowledged
                if send(bridge, tick, t_ms):
                    acked.append(tick)
                    break
                time.sleep(0.1)
        wait_until(
            lambda: (
                bridge.metric(f"bridge_forward_samples_pending{{{T}}}") == 0
                and bridge.metric(f"bridge_forward_samples_sent_total{{{T}}}") > 0
            ),
            30,
            "the backlog to drain",
        )
    finally:
        bridge.stop()

    assert acked == list(range(TICKS))
    end_ms = start_ms + TICKS * 100 + 1
    got = prom.samples("jobs_done_total", end_ms)
    expected = {
        (
            ("__name__", "jobs_done_total"),
            ("instance", "vm-3"),
            ("job", "jobs"),
            ("worker", str(w)),
        ): [(start_ms + k * 100, float(k + w)) for k in acked]
        for w in range(WORKERS)
    }
    assert {tuple(sorted(labels)): v for labels, v in got.items()} == expected
    info = prom.samples("target_info", end_ms)
    assert [dict(labels) for labels in info] == [
        {"__name__": "target_info", "job": "jobs", "instance": "vm-3", "host_arch": "amd64"}
    ]
