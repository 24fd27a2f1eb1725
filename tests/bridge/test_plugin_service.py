"""How the plugin reports a misbehaving server, over real HTTP, without Grafana or gRPC.

The server here is a scripted stdlib HTTP server: each test decides what it answers (an HTML
page, a Prometheus error envelope, silence past the timeout) and checks what Grafana would see.
"""

import http.server
import json
import threading
import time
from collections.abc import Iterator

import pytest

from grafana_agent_bridge.metrics import Registry
from grafana_agent_bridge.plugin import pluginv2_pb2 as pb
from grafana_agent_bridge.plugin.service import (
    PluginMetrics,
    call_resource,
    check_health,
    query_data,
)


class Scripted:
    """The answer the server gives next, and the requests it saw."""

    def __init__(self) -> None:
        self.status = 200
        self.content_type = "application/json"
        self.body = b"{}"
        self.delay = 0.0
        self.seen: list[tuple[str, str]] = []
        self.bodies: list[bytes] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Scripted]]:
    script = Scripted()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            script.bodies.append(self.rfile.read(length))
            script.seen.append((self.command, self.path))
            time.sleep(script.delay)
            self.send_response(script.status)
            self.send_header("Content-Type", script.content_type)
            self.send_header("Content-Length", str(len(script.body)))
            self.end_headers()
            self.wfile.write(script.body)

        def do_GET(self) -> None:
            self.answer()

        def do_POST(self) -> None:
            self.answer()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()


def ctx(url: str, **json_data: object) -> pb.PluginContext:
    return pb.PluginContext(
        dataSourceInstanceSettings=pb.DataSourceInstanceSettings(
            url=url, jsonData=json.dumps(json_data).encode()
        )
    )


def counted() -> PluginMetrics:
    """The metrics the plugin process counts in (its own registry)."""
    return PluginMetrics(Registry())


def instant(url: str, **json_data: object) -> pb.DataResponse:
    query = pb.DataQuery(
        refId="A",
        intervalMS=1000,
        maxDataPoints=100,
        timeRange=pb.TimeRange(fromEpochMS=0, toEpochMS=60_000),
        json=b'{"expr": "up", "instant": true}',
    )
    request = pb.QueryDataRequest(pluginContext=ctx(url, **json_data), queries=[query])
    reply = query_data(request, counted())
    return reply.responses["A"]


def test_prometheus_error_envelope_keeps_its_status_and_type(server):
    url, script = server
    script.status = 503
    script.body = b'{"status":"error","errorType":"timeout","error":"query timed out"}'
    got = instant(url)
    assert (got.error, got.status, got.errorSource) == (
        "timeout: query timed out",
        503,
        "downstream",
    )
    assert not got.frames


def test_a_body_that_is_not_prometheus_json_is_named(server):
    url, script = server
    script.content_type = "text/html"
    script.body = b"<html>login required</html>"
    got = instant(url)
    assert got.status == 502
    assert "unexpected answer from the server (HTTP 200): <html>login required" in got.error
    script.status = 500
    assert instant(url).status == 500


def test_a_success_envelope_with_a_broken_result_is_an_error_not_a_crash(server):
    url, script = server
    script.body = json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, 2]}]}}
    ).encode()
    got = instant(url)
    assert got.status == 502
    assert "cannot read the server's result" in got.error


def test_a_slow_server_times_out_with_504(server):
    url, script = server
    script.delay = 1.0
    started = time.monotonic()
    got = instant(url, queryTimeout="300ms")
    assert got.status == 504
    assert "timed out" in got.error
    assert time.monotonic() - started < 0.9
    assert script.bodies[0] == b"query=up&time=60&timeout=300ms"


def test_health_fails_on_any_status_but_200(server):
    url, script = server
    script.status = 204
    script.body = b""
    reply = check_health(pb.CheckHealthRequest(pluginContext=ctx(url)), counted())
    assert reply.status == pb.CheckHealthResponse.ERROR
    assert "bad response with status 204" in reply.message
    script.status = 200
    script.body = b'{"status":"error","errorType":"bad_data","error":"nope"}'
    reply = check_health(pb.CheckHealthRequest(pluginContext=ctx(url)), counted())
    assert reply.status == pb.CheckHealthResponse.ERROR
    assert reply.message.startswith("bad_data: nope - ")
    script.body = b'{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}'
    reply = check_health(pb.CheckHealthRequest(pluginContext=ctx(url)), counted())
    assert reply.status == pb.CheckHealthResponse.OK


def test_get_only_datasources_send_resource_posts_as_get(server):
    url, script = server
    script.body = b'{"status":"success","data":[]}'
    reply = call_resource(
        pb.CallResourceRequest(
            pluginContext=ctx(url, httpMethod="GET"),
            path="api/v1/series",
            method="POST",
            url="api/v1/series?start=1",
            body=b"match%5B%5D=up",
        ),
        counted(),
    )
    assert reply.code == 200
    assert script.seen == [("GET", "/api/v1/series?start=1&match%5B%5D=up")]


@pytest.mark.parametrize(
    "path", ["../../etc/passwd", "api/v1/../../-/quit", "api/v1/%2e%2e/%2E%2E/-/quit", "metrics"]
)
def test_resource_calls_stay_inside_the_prometheus_api(server, path):
    url, script = server
    request = pb.CallResourceRequest(pluginContext=ctx(url), path=path, method="GET")
    reply = call_resource(request, counted())
    assert reply.code == 404
    assert json.loads(reply.body)["errorType"] == "not_found"
    assert script.seen == []
