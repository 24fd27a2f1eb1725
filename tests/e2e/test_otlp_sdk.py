"""A real OTLP client written by others, the OpenTelemetry Python SDK, exports metrics to a
real bridge daemon over OTLP/HTTP (protobuf and JSON exporters); the names, labels and values
queried back are what Prometheus 3.x's translation gives. Each expectation names its rule:

- names (prometheus/otlptranslator ``normalizeName``, UnderscoreEscapingWithSuffixes): dots
  to ``_``; a unit in braces is no unit; UCUM units as words (``By`` → ``bytes``, ``s`` →
  ``seconds``, ``Cel`` → ``celsius``); ``_total`` on monotonic sums; ``_ratio`` on gauges of
  unit ``1``;
- types (prometheusremotewrite ``metrics_to_prw.go``): a Counter (monotonic cumulative sum) is a
  counter, an UpDownCounter (non-monotonic sum) and gauges are gauges, histograms are classic
  (``_bucket{le}`` cumulative with ``+Inf``, ``_count``, ``_sum``);
- labels (``helper.go`` ``createAttributes``): attribute names sanitised (``http.method`` →
  ``http_method``), ``job`` = ``service.namespace/service.name``, ``instance`` =
  ``service.instance.id``; no ``otel_scope_*`` labels (``promote_scope_metadata`` is off by
  default); other resource attributes on ``target_info`` (``addResourceTargetInfo``);
- exemplars (``getPromExemplars``): ``trace_id``/``span_id`` labels in hex;
- exponential histograms: stored as native histograms under the histogram's name (with the
  unit suffix, no ``_bucket``/``_count``/``_sum`` series), the one observation recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from forward_support import BridgeProcess
from opentelemetry.exporter.otlp.json.http.metric_exporter import (
    OTLPMetricExporter as JSONExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as ProtoExporter,
)
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    proc = BridgeProcess(tmp_path_factory.mktemp("otlp") / "data")
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def run_sdk(exporter: Any, service: str) -> str:
    """Record one of each instrument kind and export once (force_flush), as an app would;
    the counter is incremented inside a sampled span, so it carries an exemplar with that
    span's trace id (returned, in hex)."""
    resource = Resource.create(
        {
            "service.name": service,
            "service.namespace": "shop",
            "service.instance.id": f"{service}-1",
            "host.name": "web-7",
        }
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=resource,
        metric_readers=[reader],
        views=[
            View(
                instrument_name="exp.latency", aggregation=ExponentialBucketHistogramAggregation()
            )
        ],
    )
    meter = provider.get_meter("checkout.lib", "1.2.3")
    tracer = TracerProvider().get_tracer("checkout")
    with tracer.start_as_current_span("checkout") as span:
        meter.create_counter("http.server.requests", unit="{request}").add(
            5, {"http.method": "GET"}
        )
        trace_id = format(span.get_span_context().trace_id, "032x")
    updown = meter.create_up_down_counter("queue.depth", unit="By")
    updown.add(10)
    updown.add(-3)
    meter.create_gauge("cpu.utilization", unit="1").set(0.25, {"cpu": "0"})

    def temperature(_options: CallbackOptions) -> list[Observation]:
        return [Observation(21.5, {"room": "lab"})]

    meter.create_observable_gauge("room.temperature", [temperature], unit="Cel")
    hist = meter.create_histogram(
        "request.duration", unit="s", explicit_bucket_boundaries_advisory=[0.5, 5, 10]
    )
    for v in (0.3, 7, 7):
        hist.record(v)
    meter.create_histogram("exp.latency", unit="s").record(0.2)
    assert provider.force_flush(10_000)
    provider.shutdown()
    return trace_id


def query(bridge: BridgeProcess, q: str) -> list[dict[str, Any]]:
    r = requests.get(f"{bridge.url}/api/v1/query", params={"query": q}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["data"]["result"]


def one(bridge: BridgeProcess, q: str) -> tuple[dict[str, str], float]:
    (s,) = query(bridge, q)
    return s["metric"], float(s["value"][1])


@pytest.mark.parametrize(
    ("make_exporter", "service"),
    [
        (lambda url: ProtoExporter(endpoint=f"{url}/v1/metrics"), "api-proto"),
        (lambda url: JSONExporter(endpoint=f"{url}/api/v1/otlp/v1/metrics"), "api-json"),
    ],
    ids=["protobuf", "json"],
)
def test_sdk_export_matches_prometheus_translation(
    bridge: BridgeProcess, make_exporter: Any, service: str
) -> None:
    trace_id = run_sdk(make_exporter(bridge.url), service)
    ident = {"job": f"shop/{service}", "instance": f"{service}-1"}
    sel = f'job="shop/{service}"'

    labels, value = one(bridge, f"http_server_requests_total{{{sel}}}")
    # getPromExemplars: the exemplar's trace and span ids as hex labels (JSON sends them hex)
    ex = requests.get(
        f"{bridge.url}/api/v1/query_exemplars",
        params={"query": f"http_server_requests_total{{{sel}}}", "start": "0", "end": "4e9"},
        timeout=10,
    ).json()["data"]
    assert ex[0]["exemplars"][0]["labels"]["trace_id"] == trace_id
    assert len(ex[0]["exemplars"][0]["labels"]["span_id"]) == 16
    assert labels == {"__name__": "http_server_requests_total", "http_method": "GET", **ident}
    assert value == 5
    assert one(bridge, f"queue_depth_bytes{{{sel}}}") == (
        {"__name__": "queue_depth_bytes", **ident},
        7,
    )
    assert one(bridge, f"cpu_utilization_ratio{{{sel}}}") == (
        {"__name__": "cpu_utilization_ratio", "cpu": "0", **ident},
        0.25,
    )
    assert one(bridge, f"room_temperature_celsius{{{sel}}}")[1] == 21.5
    buckets = {
        s["metric"]["le"]: float(s["value"][1])
        for s in query(bridge, f"request_duration_seconds_bucket{{{sel}}}")
    }
    assert buckets == {"0.5": 1, "5": 1, "10": 3, "+Inf": 3}
    assert one(bridge, f"request_duration_seconds_count{{{sel}}}")[1] == 3
    assert one(bridge, f"request_duration_seconds_sum{{{sel}}}")[1] == pytest.approx(14.3)
    info, value = one(bridge, f"target_info{{{sel}}}")
    assert value == 1 and info["host_name"] == "web-7" and info["instance"] == f"{service}-1"
    assert "service_name" not in info
    (exp,) = query(bridge, f'{{__name__=~"exp_latency.*", {sel}}}')
    assert exp["metric"]["__name__"] == "exp_latency_seconds"
    assert exp["histogram"][1]["count"] == "1" and float(exp["histogram"][1]["sum"]) == 0.2
    names = requests.get(
        f"{bridge.url}/api/v1/labels", params={"match[]": f"{{{sel}}}"}, timeout=10
    ).json()["data"]
    assert not [n for n in names if n.startswith("otel_scope")]
    meta = requests.get(f"{bridge.url}/api/v1/metadata", timeout=10).json()["data"]
    assert meta["http_server_requests_total"][0]["type"] == "counter"
    assert meta["queue_depth_bytes"][0]["type"] == "gauge"
    assert meta["request_duration_seconds"][0]["type"] == "histogram"
