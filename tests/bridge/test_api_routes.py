"""The route table and the lifecycle: what each path answers, and in which phase.

The table is the one place a route is declared, so its answers for paths and methods it does
not have (404, 405 with ``Allow``) and the phase it is open in are checked here over real HTTP
as well as directly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests

from grafana_agent_bridge.api.http import BridgeHTTPServer
from grafana_agent_bridge.api.query import Response
from grafana_agent_bridge.api.router import Match, Refusal, Route, RouteTable
from grafana_agent_bridge.api.routes import Endpoints, bridge_routes
from grafana_agent_bridge.lifecycle import Lifecycle, LifecycleError, Phase
from grafana_agent_bridge.metrics import Registry


def _table() -> RouteTable:
    return bridge_routes(Endpoints(Lifecycle(), Registry(), str))


def test_lifecycle_moves_only_forward() -> None:
    life = Lifecycle()
    assert life.phase is Phase.STARTING and not life.serving
    life.advance(Phase.SERVING)
    assert life.serving
    with pytest.raises(LifecycleError):
        life.advance(Phase.STARTING)
    assert life.drain() and life.phase is Phase.DRAINING
    assert not life.drain()  # a second stop finds shutdown begun
    with pytest.raises(LifecycleError):
        life.advance(Phase.SERVING)
    life.advance(Phase.STOPPED)
    assert not life.drain() and life.phase is Phase.STOPPED


def test_a_stop_during_start_up_drains_without_serving() -> None:
    life = Lifecycle()
    assert life.drain()
    life.advance(Phase.STOPPED)
    assert not life.serving


def test_the_table_finds_each_route_and_refuses_the_rest() -> None:
    table = _table()
    for route in table.routes:
        if route.path.endswith("/*"):
            continue
        path = route.path.replace("{name}", "job")
        for method in route.methods:
            found = table.find(method, path)
            assert isinstance(found, Match) and found.route is route, (method, path)
    found = table.find("HEAD", "/-/ready")  # HEAD wherever GET
    assert isinstance(found, Match)
    refused = table.find("DELETE", "/api/v1/query")
    assert isinstance(refused, Refusal) and refused.response.status == 405
    assert refused.response.headers["Allow"] == "GET, HEAD, POST"
    refused = table.find("GET", "/api/v1/write")
    assert isinstance(refused, Refusal) and refused.response.headers["Allow"] == "POST"
    refused = table.find("GET", "/nowhere")
    assert isinstance(refused, Refusal) and refused.response.status == 404
    assert refused.label == "other"


def test_label_values_take_any_name_decoded_and_unknown_api_paths_fall_through() -> None:
    table = _table()
    found = table.find("GET", "/api/v1/label/a%2Fb/values")
    assert isinstance(found, Match) and found.args == {"name": "a/b"}
    assert found.route.handler_label == "/api/v1/label/:name/values"
    found = table.find("GET", "/api/v1/label//values")  # no name: an unknown API path
    assert isinstance(found, Match) and found.route.path == "/api/v1/*"
    refused = table.find("POST", "/api/v1/no_such_thing")  # Grafana retries a 405 as GET
    assert isinstance(refused, Refusal) and refused.response.status == 405


def test_two_routes_for_one_method_and_path_are_refused() -> None:
    def ok(_r: object) -> Response:
        return Response(204, b"")

    with pytest.raises(ValueError, match="POST /x"):
        RouteTable([Route(("POST",), "/x", ok), Route(("GET", "POST"), "/x", ok)])
    # One path may have a route per method.
    table = RouteTable([Route(("POST",), "/x", ok), Route(("GET",), "/x", ok)])
    assert isinstance(table.find("GET", "/x"), Match)
    refused = table.find("PUT", "/x")
    assert isinstance(refused, Refusal) and refused.response.headers["Allow"] == "POST, GET, HEAD"


@pytest.fixture
def server() -> Iterator[BridgeHTTPServer]:
    srv = BridgeHTTPServer(("127.0.0.1", 0), lifecycle=Lifecycle())
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


def test_readiness_and_health_follow_the_phase(server: BridgeHTTPServer) -> None:
    url = f"http://127.0.0.1:{server.port}"

    def codes() -> tuple[int, int]:
        return (
            requests.get(f"{url}/-/healthy", timeout=5).status_code,
            requests.get(f"{url}/-/ready", timeout=5).status_code,
        )

    assert codes() == (200, 503)  # starting: alive, not ready
    server.lifecycle.drain()
    assert codes() == (200, 503)  # draining
    r = requests.get(f"{url}/api/v1/query", params={"query": "1"}, timeout=5)
    assert r.status_code == 503 and "shutting down" in r.json()["error"]
    server.lifecycle.advance(Phase.STOPPED)
    assert codes() == (503, 503)
    # Paths and methods no route has are answered from the table in every phase.
    assert requests.get(f"{url}/nowhere", timeout=5).status_code == 404
    r = requests.put(f"{url}/-/ready", timeout=5)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"
