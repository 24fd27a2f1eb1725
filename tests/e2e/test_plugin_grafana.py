"""The plugin driven the way Grafana drives it, against a real Prometheus.

A small Grafana stand-in installs the plugin directory, starts the executable with Grafana's
environment, reads the go-plugin handshake, pings the gRPC health service and calls the pluginv2
services. Every frame is decoded with pyarrow and checked against the shape rules Grafana's
alerting applies. Prometheus holds known samples pushed with remote write; a recording HTTP proxy
between the plugin and Prometheus shows the exact requests the plugin makes.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import select
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import pyarrow as pa
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grafana_agent_bridge.plugin import install as plugin_install
from grafana_agent_bridge.plugin import pluginv2_pb2 as pb
from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import Exemplar, SeriesBatch
from tests.support import free_port, start_prometheus, stop_process

PROMETHEUS = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus")
if PROMETHEUS is None and os.environ.get("REQUIRE_PROMETHEUS") != "1":
    pytest.skip("prometheus is not installed", allow_module_level=True)

GRAFANA_ENV = {
    "grafana_plugin_type": "datasource",
    "PLUGIN_PROTOCOL_VERSIONS": "2",
    "PLUGIN_MIN_PORT": "10000",
    "PLUGIN_MAX_PORT": "25000",
}
HANDSHAKE = re.compile(r"^1\|2\|tcp\|127\.0\.0\.1:(\d+)\|grpc$")
ALERT_HEADERS = {"FromAlert": "true", "http_X-Rule-Uid": "rule-1", "X-Grafana-Org-Id": "1"}
METRIC = "plugin_test_temperature"
STEP_S = 15
SAMPLES = 41  # ten minutes at 15 s
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
NUMERIC_TYPES = (pa.float64(), pa.float32(), pa.int64(), pa.int32())


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class Prometheus:
    url: str
    end_ms: int  # time of the last pushed sample (a whole minute)

    def values(self, room: str) -> list[float]:
        return [expected_value(room, i) for i in range(SAMPLES)]


def expected_value(room: str, index: int) -> float:
    return 20.0 + index if room == "kitchen" else 10.0 + index / 2


def push_known_series(url: str, end_ms: int | None = None) -> int:
    """Remote-write the two known series (and one exemplar); return the last sample's time."""
    if end_ms is None:
        end_ms = (int(time.time()) // 60 - 1) * 60_000
    times = np.array(
        [end_ms - (SAMPLES - 1 - i) * STEP_S * 1000 for i in range(SAMPLES)], dtype=np.int64
    )
    series = [
        SeriesBatch(
            (("__name__", METRIC), ("job", "test"), ("room", room)),
            times,
            np.array([expected_value(room, i) for i in range(SAMPLES)], dtype=np.float64),
            [Exemplar((("trace_id", TRACE_ID),), 60.0, end_ms)] if room == "kitchen" else [],
        )
        for room in ("hall", "kitchen")
    ]
    remote_write(url, series)
    return end_ms


def remote_write(url: str, series: list[SeriesBatch]) -> None:
    """POST ``series`` to the bridge at ``url`` as one remote-write 1.0 request."""
    request = urllib.request.Request(
        f"{url}/api/v1/write",
        data=encode_write_request(series),
        headers=REMOTE_WRITE_HEADERS,
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 204)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Debian's Prometheus with two known series of 41 samples, pushed by remote write."""
    assert PROMETHEUS, "REQUIRE_PROMETHEUS=1 but prometheus is not installed"
    proc, url = start_prometheus(
        PROMETHEUS,
        tmp_path_factory.mktemp("prometheus"),
        "global:\n  scrape_interval: 15s\n",
        "--enable-feature=exemplar-storage",
        "--log.level=warn",
    )
    try:
        end_ms = push_known_series(url)
        yield Prometheus(url, end_ms)
    finally:
        stop_process(proc)


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    body: str
    headers: dict[str, str]  # names in lower case: HTTP header names are case-insensitive

    def params(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.body or self.query, keep_blank_values=True)


@dataclass
class Recorder:
    """A recording HTTP proxy in front of Prometheus: what exactly did the plugin send?"""

    url: str
    requests: list[Recorded] = field(default_factory=list)

    def take(self) -> list[Recorded]:
        taken, self.requests[:] = list(self.requests), []
        return taken


@pytest.fixture(scope="module")
def recorder(prometheus: Prometheus) -> Iterator[Recorder]:
    record = Recorder("")

    class Proxy(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            record.requests.append(
                Recorded(
                    self.command,
                    path,
                    query,
                    body.decode(),
                    {k.lower(): v for k, v in self.headers.items()},
                )
            )
            upstream = urllib.request.Request(
                prometheus.url + self.path,
                data=body if self.command == "POST" else None,
                headers={"Content-Type": self.headers.get("Content-Type", "")},
                method=self.command,
            )
            try:
                with urllib.request.urlopen(upstream, timeout=10) as response:
                    status, payload = response.status, response.read()
                    content_type = response.headers.get("Content-Type", "")
            except urllib.error.HTTPError as exc:
                status, payload = exc.code, exc.read()
                content_type = exc.headers.get("Content-Type", "")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self.forward()

        def do_POST(self) -> None:
            self.forward()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    record.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Plugin:
    proc: subprocess.Popen[str]
    port: int
    channel: grpc.Channel

    def query_data(self, request: pb.QueryDataRequest) -> pb.QueryDataResponse:
        call = self.channel.unary_unary(
            "/pluginv2.Data/QueryData",
            request_serializer=pb.QueryDataRequest.SerializeToString,
            response_deserializer=pb.QueryDataResponse.FromString,
        )
        return call(request, timeout=30)

    def check_health(self, request: pb.CheckHealthRequest) -> pb.CheckHealthResponse:
        call = self.channel.unary_unary(
            "/pluginv2.Diagnostics/CheckHealth",
            request_serializer=pb.CheckHealthRequest.SerializeToString,
            response_deserializer=pb.CheckHealthResponse.FromString,
        )
        return call(request, timeout=30)

    def collect_metrics(self) -> dict[str, float]:
        call = self.channel.unary_unary(
            "/pluginv2.Diagnostics/CollectMetrics",
            request_serializer=pb.CollectMetricsRequest.SerializeToString,
            response_deserializer=pb.CollectMetricsResponse.FromString,
        )
        text = call(pb.CollectMetricsRequest(), timeout=30).metrics.prometheus.decode()
        samples = (line.rsplit(" ", 1) for line in text.splitlines() if line[:1] not in "#")
        return {name: float(value) for name, value in samples}

    def call_resource(self, request: pb.CallResourceRequest) -> list[pb.CallResourceResponse]:
        call = self.channel.unary_stream(
            "/pluginv2.Resource/CallResource",
            request_serializer=pb.CallResourceRequest.SerializeToString,
            response_deserializer=pb.CallResourceResponse.FromString,
        )
        return list(call(request, timeout=30))


def start_plugin(directory: Path) -> tuple[subprocess.Popen[str], str]:
    """Launch the installed executable as Grafana does; return it and its first stdout line."""
    launcher = plugin_install.install(directory, own_env=False)  # this env has the extra
    # Only Grafana's variables (as with pluginsSkipHostEnvVars): nothing else may be needed.
    proc = subprocess.Popen(
        [str(launcher)],
        cwd=directory,
        env=GRAFANA_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)  # Grafana's handshake timeout
    if not ready:
        proc.kill()
        raise AssertionError("no handshake line within 60 s")
    return proc, proc.stdout.readline().rstrip("\n")


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plugin]:
    proc, line = start_plugin(tmp_path_factory.mktemp("plugins") / plugin_install.PLUGIN_ID)
    match = HANDSHAKE.match(line)
    assert match, f"bad handshake line {line!r}"
    port = int(match.group(1))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Plugin(proc, port, channel)
    finally:
        channel.close()
        stop(proc)


def context(url: str, **settings: object) -> pb.PluginContext:
    json_data = settings.pop("json_data", {})
    secure = settings.pop("secure", {})
    return pb.PluginContext(
        orgId=1,
        pluginId=plugin_install.PLUGIN_ID,
        dataSourceInstanceSettings=pb.DataSourceInstanceSettings(
            id=1,
            uid="bridge",
            name="bridge",
            url=url,
            jsonData=json.dumps(json_data).encode(),
            decryptedSecureJsonData=secure,  # type: ignore[arg-type]
            **settings,  # type: ignore[arg-type]
        ),
    )


def data_query(
    ref_id: str,
    model: dict[str, object],
    from_ms: int,
    to_ms: int,
    *,
    interval_ms: int = 1000,
    max_data_points: int = 43200,
) -> pb.DataQuery:
    model = {"refId": ref_id, "intervalMs": interval_ms, "maxDataPoints": max_data_points, **model}
    return pb.DataQuery(
        refId=ref_id,
        maxDataPoints=max_data_points,
        intervalMS=interval_ms,
        timeRange=pb.TimeRange(fromEpochMS=from_ms, toEpochMS=to_ms),
        json=json.dumps(model).encode(),
    )


@dataclass
class Frame:
    table: pa.Table
    meta: dict[str, object]
    schema_meta: dict[str, str]

    def labels(self) -> dict[str, str]:
        return json.loads(self.table.schema.field(1).metadata[b"labels"])

    def times_ms(self) -> list[int]:
        return [ns // 1_000_000 for ns in self.table.column(0).cast(pa.int64()).to_pylist()]

    def values(self) -> list[float]:
        return self.table.column(1).to_pylist()


def decode(frame: bytes) -> Frame:
    reader = pa.ipc.open_file(pa.BufferReader(frame))  # Grafana uses Arrow's file reader
    table = reader.read_all()
    schema_meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    return Frame(table, json.loads(schema_meta.get("meta", "{}")), schema_meta)


def check_alerting_shape(response: pb.DataResponse, ref_id: str, kind: str) -> list[Frame]:
    """Grafana alerting's rules for dataplane frames (facts §D) on every frame of one refId."""
    assert not response.error, response.error
    frames = [decode(f) for f in response.frames]
    assert frames, "no frames"
    label_sets = []
    for frame in frames:
        assert frame.schema_meta["refId"] == ref_id
        assert "name" in frame.schema_meta
        assert frame.meta["type"] == kind
        assert frame.meta["typeVersion"] != [0, 0]
        assert frame.meta["typeVersion"] == [0, 1]
        schema = frame.table.schema
        numeric = [f for f in schema if f.type in NUMERIC_TYPES]
        times = [f for f in schema if pa.types.is_timestamp(f.type)]
        others = [f for f in schema if f not in numeric and f not in times]
        assert len(numeric) == 1, "exactly one numeric field per frame"
        assert not others, f"no string/bool fields allowed: {others}"
        for time_field in times:
            assert time_field.type.unit == "ns"
            assert time_field.type.tz is None
            assert frame.table.column(time_field.name).null_count == 0
        labels = json.loads(numeric[0].metadata[b"labels"])
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
        label_sets.append(tuple(sorted(labels.items())))
        if kind == "numeric-multi":
            assert frame.table.num_rows <= 1
        else:
            assert len(times) == 1
            stamps = frame.times_ms()
            assert stamps == sorted(stamps)
    assert len(set(label_sets)) == len(label_sets), "label sets must be unique"
    return frames


def test_handshake_health_service_and_port_range(plugin: Plugin) -> None:
    assert 10000 <= plugin.port <= 25000
    health = health_pb2_grpc.HealthStub(plugin.channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service="plugin"), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_check_health_runs_grafanas_probe(
    plugin: Plugin, recorder: Recorder, prometheus: Prometheus
) -> None:
    recorder.take()
    reply = plugin.check_health(pb.CheckHealthRequest(pluginContext=context(recorder.url)))
    assert reply.status == pb.CheckHealthResponse.OK
    assert reply.message == "Successfully queried the Prometheus API."
    assert json.loads(reply.jsonDetails)["application"] == "Prometheus"
    probe = recorder.take()[0]
    assert (probe.method, probe.path) == ("POST", "/api/v1/query")
    assert probe.headers["content-type"] == "application/x-www-form-urlencoded"
    assert probe.body == "query=1%2B1&time=4"


def test_instant_alert_query_gives_numeric_multi_frames(
    plugin: Plugin, recorder: Recorder, prometheus: Prometheus
) -> None:
    recorder.take()
    end = prometheus.end_ms + 123  # alert evaluations send an unaligned "now - to"
    request = pb.QueryDataRequest(
        pluginContext=context(recorder.url),
        headers=ALERT_HEADERS,
        queries=[data_query("A", {"expr": METRIC, "instant": True, "range": False}, 0, end)],
    )
    reply = plugin.query_data(request)
    assert set(reply.responses) == {"A"}
    assert reply.responses["A"].status == 200
    frames = check_alerting_shape(reply.responses["A"], "A", "numeric-multi")
    got = {f.labels()["room"]: f.values() for f in frames}
    assert got == {"hall": [prometheus.values("hall")[-1]], "kitchen": [60.0]}
    assert frames[0].labels() == {"__name__": METRIC, "job": "test", "room": "hall"}
    (call,) = recorder.take()
    assert (call.method, call.path) == ("POST", "/api/v1/query")
    assert call.params() == {"query": [METRIC], "time": [f"{end // 1000}.123"]}
    assert call.headers["x-rule-uid"] == "rule-1"
    assert call.headers["fromalert"] == "true"


def test_range_alert_query_matches_prometheus_point_for_point(
    plugin: Plugin, recorder: Recorder, prometheus: Prometheus
) -> None:
    recorder.take()
    start, end = prometheus.end_ms - 600_000 + 500, prometheus.end_ms + 700
    expr = f'{METRIC}{{room="kitchen"}} * 2'
    request = pb.QueryDataRequest(
        pluginContext=context(recorder.url),
        headers=ALERT_HEADERS,
        queries=[data_query("B", {"expr": expr, "range": True}, start, end)],
    )
    reply = plugin.query_data(request)
    (frame,) = check_alerting_shape(reply.responses["B"], "B", "timeseries-multi")
    (call,) = recorder.take()
    params = {k: v[0] for k, v in call.params().items()}
    # Alert defaults (intervalMs 1000, maxDataPoints 43200) give a 1 s step; range floored to it.
    assert params == {
        "query": expr,
        "start": str(start // 1000),
        "end": str(end // 1000),
        "step": "1",
    }
    oracle_url = f"{prometheus.url}/api/v1/query_range?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(oracle_url, timeout=10) as response:
        (oracle,) = json.load(response)["data"]["result"]
    assert frame.times_ms() == [int(t * 1000) for t, _ in oracle["values"]]
    assert frame.values() == [float(v) for _, v in oracle["values"]]
    assert len(frame.values()) == 601  # one point per second over 10 minutes, both ends
    assert frame.values()[-1] == 120.0
    assert frame.labels() == {"job": "test", "room": "kitchen"}
    assert frame.meta["custom"] == {"resultType": "matrix"}


def test_dashboard_range_query_uses_grafanas_step_and_legend(
    plugin: Plugin, recorder: Recorder, prometheus: Prometheus
) -> None:
    recorder.take()
    start, end = prometheus.end_ms - 600_000 + 4_000, prometheus.end_ms + 9_000
    model = {"expr": METRIC, "legendFormat": "{{room}} temperature"}
    request = pb.QueryDataRequest(
        pluginContext=context(recorder.url, json_data={"httpMethod": "GET"}),
        queries=[data_query("C", model, start, end, interval_ms=600, max_data_points=40)],
    )
    reply = plugin.query_data(request)
    frames = check_alerting_shape(reply.responses["C"], "C", "timeseries-multi")
    (call,) = recorder.take()
    assert call.method == "GET"
    assert call.params()["step"] == ["15"]  # 600 s / 40 points = 15 s
    for frame in frames:
        assert all(t % 15_000 == 0 for t in frame.times_ms())
        room = frame.labels()["room"]
        config = json.loads(frame.table.schema.field(1).metadata[b"config"])
        assert config["displayNameFromDS"] == f"{room} temperature"
        assert frame.times_ms()[-1] == prometheus.end_ms
        assert frame.values()[-1] == prometheus.values(room)[-1]


def test_bad_queries_fail_alone_with_a_400_status(
    plugin: Plugin, recorder: Recorder, prometheus: Prometheus
) -> None:
    end = prometheus.end_ms
    request = pb.QueryDataRequest(
        pluginContext=context(recorder.url),
        headers=ALERT_HEADERS,
        queries=[
            data_query("good", {"expr": "vector(1)", "instant": True}, 0, end),
            data_query("syntax", {"expr": "sum(", "instant": True}, 0, end),
            data_query("model", {"instant": True}, 0, end),
            data_query("empty", {"expr": "absent_metric_xyz", "instant": True}, 0, end),
        ],
    )
    reply = plugin.query_data(request)
    assert set(reply.responses) == {"good", "syntax", "model", "empty"}
    good = check_alerting_shape(reply.responses["good"], "good", "numeric-multi")
    assert good[0].values() == [1.0]
    syntax = reply.responses["syntax"]
    assert syntax.error.startswith("bad_data: ")
    assert (syntax.status, syntax.errorSource, list(syntax.frames)) == (400, "downstream", [])
    model = reply.responses["model"]
    assert "no expr" in model.error
    assert model.status == 400
    (empty,) = [decode(f) for f in reply.responses["empty"].frames]
    assert empty.table.num_columns == 0  # NoData for alerting, not an error
    assert empty.meta["type"] == "numeric-multi"


def test_unreachable_url_is_a_502_everywhere(plugin: Plugin) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    reply = plugin.query_data(
        pb.QueryDataRequest(
            pluginContext=context(url),
            queries=[data_query("A", {"expr": "up", "instant": True}, 0, 60_000)],
        )
    )
    assert reply.responses["A"].status == 502
    assert "Connection refused" in reply.responses["A"].error
    health = plugin.check_health(pb.CheckHealthRequest(pluginContext=context(url)))
    assert health.status == pb.CheckHealthResponse.ERROR
    assert health.message.endswith("There was an error returned querying the Prometheus API.")
    (resource,) = plugin.call_resource(
        pb.CallResourceRequest(
            pluginContext=context(url), path="api/v1/labels", method="GET", url="api/v1/labels"
        )
    )
    assert resource.code == 502
    assert json.loads(resource.body)["status"] == "error"
    no_url = plugin.check_health(pb.CheckHealthRequest(pluginContext=context("")))
    assert no_url.status == pb.CheckHealthResponse.ERROR
    assert "no URL" in no_url.message


def test_call_resource_serves_the_query_editors_metadata(
    plugin: Plugin, recorder: Recorder, prometheus: Prometheus
) -> None:
    recorder.take()
    window = f"start={prometheus.end_ms // 1000 - 3600}&end={prometheus.end_ms // 1000 + 60}"
    (labels,) = plugin.call_resource(
        pb.CallResourceRequest(
            pluginContext=context(recorder.url),
            path="api/v1/labels",
            method="GET",
            url=f"api/v1/labels?{window}",
        )
    )
    assert labels.code == 200
    assert list(labels.headers["Content-Type"].values) == ["application/json"]
    assert {"__name__", "job", "room"} <= set(json.loads(labels.body)["data"])
    # Label values by form POST: Prometheus answers 405, so the plugin retries as GET.
    match = urllib.parse.quote(f'{METRIC}{{job="test"}}')
    (values,) = plugin.call_resource(
        pb.CallResourceRequest(
            pluginContext=context(recorder.url),
            path="api/v1/label/room/values",
            method="POST",
            url=f"api/v1/label/room/values?{window}",
            body=f"match%5B%5D={match}".encode(),
        )
    )
    assert values.code == 200
    assert json.loads(values.body)["data"] == ["hall", "kitchen"]
    calls = recorder.take()
    assert [(c.method, c.path) for c in calls] == [
        ("GET", "/api/v1/labels"),
        ("POST", "/api/v1/label/room/values"),
        ("GET", "/api/v1/label/room/values"),
    ]
    assert calls[-1].params()["match[]"] == [f'{METRIC}{{job="test"}}']
    (outside,) = plugin.call_resource(
        pb.CallResourceRequest(
            pluginContext=context(recorder.url), path="../../etc/passwd", method="GET"
        )
    )
    assert outside.code == 404


def test_auth_settings_reach_the_server(
    plugin: Plugin, recorder: Recorder, prometheus: Prometheus
) -> None:
    recorder.take()
    ctx = context(
        recorder.url,
        basicAuthEnabled=True,
        basicAuthUser="grafana",
        json_data={"httpHeaderName1": "X-Scope-OrgID"},
        secure={"basicAuthPassword": "pw", "httpHeaderValue1": "tenant-1"},
    )
    plugin.query_data(
        pb.QueryDataRequest(
            pluginContext=ctx,
            queries=[data_query("A", {"expr": "up", "instant": True}, 0, prometheus.end_ms)],
        )
    )
    (call,) = recorder.take()
    assert call.headers["authorization"] == "Basic Z3JhZmFuYTpwdw=="
    assert call.headers["x-scope-orgid"] == "tenant-1"


def test_plugin_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc, line = start_plugin(tmp_path / "plugin")
    try:
        assert HANDSHAKE.match(line)
    finally:
        code = stop(proc)
    assert code == 0


def test_exemplars_come_with_dashboard_queries_but_not_alerts(
    plugin: Plugin, recorder: Recorder, prometheus: Prometheus
) -> None:
    recorder.take()
    end = prometheus.end_ms + 1000
    model = {"expr": f'{METRIC}{{room="kitchen"}}', "exemplar": True}
    query = data_query("E", model, end - 600_000, end, max_data_points=40)
    reply = plugin.query_data(
        pb.QueryDataRequest(pluginContext=context(recorder.url), queries=[query])
    )
    series, exemplars = [decode(f) for f in reply.responses["E"].frames]
    assert series.meta["type"] == "timeseries-multi"
    assert exemplars.schema_meta["name"] == "exemplar"
    assert exemplars.meta["custom"] == {"resultType": "exemplar"}
    assert exemplars.table.column_names == ["Time", "Value", "__name__", "job", "room", "trace_id"]
    assert exemplars.times_ms() == [prometheus.end_ms]
    assert exemplars.values() == [60.0]
    assert exemplars.table.column("trace_id").to_pylist() == [TRACE_ID]
    calls = recorder.take()
    assert [c.path for c in calls] == ["/api/v1/query_range", "/api/v1/query_exemplars"]
    assert calls[1].params()["start"] == [str((end - 600_000) // 15_000 * 15)]
    alert = plugin.query_data(
        pb.QueryDataRequest(
            pluginContext=context(recorder.url), headers=ALERT_HEADERS, queries=[query]
        )
    )
    (only,) = check_alerting_shape(alert.responses["E"], "E", "timeseries-multi")
    assert only.labels()["room"] == "kitchen"
    assert [c.path for c in recorder.take()] == ["/api/v1/query_range"]


def test_collect_metrics_counts_queries_by_outcome(plugin: Plugin, recorder: Recorder) -> None:
    ok = 'grafana_agent_bridge_plugin_queries_total{outcome="ok"}'
    bad = 'grafana_agent_bridge_plugin_queries_total{outcome="bad_query"}'
    before = plugin.collect_metrics()
    plugin.query_data(
        pb.QueryDataRequest(
            pluginContext=context(recorder.url),
            queries=[
                data_query("A", {"expr": "vector(1)", "instant": True}, 0, 60_000),
                data_query("B", {"expr": "rate(", "instant": True}, 0, 60_000),
                data_query("C", {"expr": "up{", "instant": True}, 0, 60_000),
            ],
        )
    )
    after = plugin.collect_metrics()
    assert after[ok] - before.get(ok, 0) == 1
    assert after[bad] - before.get(bad, 0) == 2
    assert after["grafana_agent_bridge_plugin_query_duration_seconds_count"] >= 3
