"""The daemon's HTTP API over real HTTP, backed by the real store and PromQL engine."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from grafana_agent_bridge.api import disconnect
from grafana_agent_bridge.api.http import _DisconnectWatch
from grafana_agent_bridge.api.params import Params
from grafana_agent_bridge.api.routes import answer
from grafana_agent_bridge.config import BridgeConfig
from grafana_agent_bridge.daemon import Daemon
from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import MetricMetadata, SeriesBatch
from tests.support import free_port

T0 = 1_700_000_000_000  # ms


def start_daemon(tmp_path: Path, **overrides: object) -> Daemon:
    base = {
        "listen_address": f"127.0.0.1:{free_port()}",
        "data_dir": str(tmp_path / "data"),
        "collect.host": False,
        "collect.self": False,
    }
    config = BridgeConfig().with_overrides({**base, **overrides})
    daemon = Daemon(config)
    daemon.start()
    return daemon


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[str]:
    daemon = start_daemon(tmp_path)
    try:
        yield daemon.listen_url()
    finally:
        daemon.stop()


def series(name: str, times: list[int], values: list[float], **labels: str) -> SeriesBatch:
    lb = tuple(sorted({"__name__": name, **labels}.items()))
    return SeriesBatch(lb, np.array(times, np.int64), np.array(values, np.float64))


def write(url: str, batches: list[SeriesBatch], metadata: tuple = ()) -> requests.Response:
    body = encode_write_request(batches, metadata)
    return requests.post(
        f"{url}/api/v1/write", data=body, headers=REMOTE_WRITE_HEADERS, timeout=10
    )


def test_write_then_query_with_get_and_form_post(bridge: str) -> None:
    times = [T0 + i * 15_000 for i in range(5)]
    r = write(
        bridge,
        [series("http_hits_total", times, [0, 10, 20, 30, 40], job="a", instance="x")],
        (MetricMetadata("http_hits_total", "counter", "Hits.", ""),),
    )
    assert r.status_code == 204, r.text
    params = {"query": "http_hits_total", "time": str((T0 + 60_000) / 1000)}
    get = requests.get(f"{bridge}/api/v1/query", params=params, timeout=10)
    post = requests.post(f"{bridge}/api/v1/query", data=params, timeout=10)
    assert get.status_code == post.status_code == 200
    assert get.json() == post.json()
    result = get.json()["data"]["result"]
    assert result == [
        {
            "metric": {"__name__": "http_hits_total", "instance": "x", "job": "a"},
            "value": [1700000060, "40"],
        }
    ]
    rng = requests.post(
        f"{bridge}/api/v1/query_range",
        data={
            "query": "rate(http_hits_total[1m])",
            "start": str(T0 / 1000 + 45),
            "end": str(T0 / 1000 + 60),
            "step": "15",
        },
        timeout=10,
    ).json()
    assert rng["status"] == "success"
    (s,) = rng["data"]["result"]
    assert s["metric"] == {"instance": "x", "job": "a"}
    assert all(isinstance(v, str) for _, v in s["values"])
    assert [float(v) for _, v in s["values"]] == pytest.approx(
        [30 / 60, 40 / 60]
    )  # zero-bounded extrapolation
    meta = requests.get(f"{bridge}/api/v1/metadata", timeout=10).json()
    assert meta["data"]["http_hits_total"] == [{"type": "counter", "help": "Hits.", "unit": ""}]


def test_partly_invalid_write_keeps_valid_samples_and_says_what_was_rejected(bridge: str) -> None:
    good = series("g", [T0, T0 + 1000], [1, 2])
    bad = series("b", [T0 + 2000, T0 + 1000], [1, 2])  # out of order inside the request
    r = write(bridge, [good, bad])
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == "error" and body["errorType"] == "bad_data"
    assert "out of order" in body["error"]
    assert body["data"]["rejections"][0]["labels"] == {"__name__": "b"}

    def count(name: str) -> str:
        r = requests.get(
            f"{bridge}/api/v1/query",
            params={"query": f"count_over_time({name}[1h])", "time": str(T0 / 1000 + 10)},
            timeout=10,
        )
        return r.json()["data"]["result"][0]["value"][1]

    assert count("g") == "2"  # the valid series: both samples
    assert count("b") == "1"  # the invalid one: its in-order first sample


def test_a_series_without_a_metric_name_is_named_by_its_labels_in_the_400(bridge: str) -> None:
    nameless = SeriesBatch(
        (("instance", "db1:9100"), ("job", "node")),
        np.array([T0], dtype=np.int64),
        np.array([1.0]),
    )
    r = write(bridge, [nameless, series("g", [T0], [1])])
    assert r.status_code == 400
    body = r.json()
    shown = 'missing metric name (__name__ label) for {instance="db1:9100", job="node"}'
    assert shown in body["error"]
    assert body["data"]["rejections"][0]["labels"] == {"instance": "db1:9100", "job": "node"}


def test_write_rejects_wrong_encoding_type_and_garbage(bridge: str) -> None:
    body = encode_write_request([series("x", [T0], [1])])
    url = f"{bridge}/api/v1/write"
    r = requests.post(url, data=body, headers={**REMOTE_WRITE_HEADERS, "Content-Encoding": ""})
    assert r.status_code == 415
    v2 = {
        **REMOTE_WRITE_HEADERS,
        "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
    }
    # A 1.0 body read as 2.0: its fields are reserved in 2.0, so it is an empty request
    # (Prometheus's deterministic answer to a mislabelled body): nothing stored.
    r = requests.post(url, data=body, headers=v2)
    assert r.status_code == 204 and r.headers["X-Prometheus-Remote-Write-Samples-Written"] == "0"
    r = requests.post(url, data=b"\xff\x00garbage", headers=REMOTE_WRITE_HEADERS)
    assert r.status_code == 400 and r.json()["errorType"] == "bad_data"
    assert requests.get(url).status_code == 405


def test_write_body_limit_and_allow_list(tmp_path: Path) -> None:
    daemon = start_daemon(
        tmp_path, **{"ingest.max_body_bytes": 1000, "ingest.allowed_clients": ["127.0.0.1"]}
    )
    try:
        url = daemon.listen_url()
        big = encode_write_request(
            [series(f"m{i}", [T0], [float(i)], pad="x" * 50) for i in range(200)]
        )
        assert len(big) > 1000
        session = requests.Session()
        r = session.post(f"{url}/api/v1/write", data=big, headers=REMOTE_WRITE_HEADERS)
        assert r.status_code == 413 and r.json()["status"] == "error"
        small = encode_write_request([series("ok", [T0], [1])])
        r = session.post(f"{url}/api/v1/write", data=small, headers=REMOTE_WRITE_HEADERS)
        assert r.status_code == 204  # the same keep-alive connection goes on
        # chunked transfer encoding (a generator body), within and over the limit
        r = session.post(
            f"{url}/api/v1/write", data=iter([small[:5], small[5:]]), headers=REMOTE_WRITE_HEADERS
        )
        assert r.status_code == 204
        r = requests.post(
            f"{url}/api/v1/write",
            data=iter([big[i : i + 300] for i in range(0, len(big), 300)]),
            headers=REMOTE_WRITE_HEADERS,
        )
        assert r.status_code == 413
    finally:
        daemon.stop()
    daemon = start_daemon(tmp_path, **{"ingest.allowed_clients": ["10.0.0.0/8"]})
    try:
        r = write(daemon.listen_url(), [series("x", [T0], [1])])
        assert r.status_code == 403 and r.json()["status"] == "error"
    finally:
        daemon.stop()


def test_bearer_token_protects_the_query_api_only(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path, **{"query.auth_token": "s3cret"})
    try:
        url = daemon.listen_url()
        r = requests.get(f"{url}/api/v1/query", params={"query": "1"})
        assert r.status_code == 401 and r.json()["status"] == "error"
        r = requests.get(
            f"{url}/api/v1/query", params={"query": "1"}, headers={"Authorization": "Bearer x"}
        )
        assert r.status_code == 401
        r = requests.get(
            f"{url}/api/v1/query",
            params={"query": "1"},
            headers={"Authorization": "Bearer s3cret"},
        )
        assert r.status_code == 200
        for path in ("/-/healthy", "/-/ready", "/metrics"):
            assert requests.get(f"{url}{path}").status_code == 200
    finally:
        daemon.stop()


@pytest.mark.parametrize(
    ("path", "params", "status", "error_type", "message"),
    [
        ("query", {"query": "sum(("}, 400, "bad_data", 'invalid parameter "query"'),
        (
            "query",
            {"query": "up", "time": "yesterday"},
            400,
            "bad_data",
            'invalid parameter "time": cannot parse "yesterday" to a valid timestamp',
        ),
        (
            "query_range",
            {"query": "up", "start": "10", "end": "5", "step": "1"},
            400,
            "bad_data",
            "end timestamp must not be before start time",
        ),
        (
            "query_range",
            {"query": "up", "start": "0", "end": "5", "step": "0"},
            400,
            "bad_data",
            "zero or negative query resolution step widths are not accepted",
        ),
        (
            "query_range",
            {"query": "up", "start": "0", "end": "5"},
            400,
            "bad_data",
            'invalid parameter "step"',
        ),
        (
            "query_range",
            {"query": "up", "start": "0", "end": "11001", "step": "1"},
            400,
            "bad_data",
            "exceeded maximum resolution of 11,000 points per timeseries",
        ),
        (
            "query_range",
            {"query": "up", "start": "x", "end": "5", "step": "1"},
            400,
            "bad_data",
            'invalid parameter "start"',
        ),
        ("series", {}, 400, "bad_data", "no match[] parameter provided"),
        ("series", {"match[]": "{a=''}"}, 400, "bad_data", "at least one non-empty matcher"),
        ("labels", {"limit": "-1"}, 400, "bad_data", "limit"),
    ],
)
def test_validation_errors_match_prometheus(
    bridge: str, path: str, params: dict[str, str], status: int, error_type: str, message: str
) -> None:
    for r in (
        requests.get(f"{bridge}/api/v1/{path}", params=params, timeout=10),
        requests.post(f"{bridge}/api/v1/{path}", data=params, timeout=10),
    ):
        assert r.status_code == status, r.text
        body = r.json()
        assert body["status"] == "error" and body["errorType"] == error_type
        assert message in body["error"]


def test_exactly_11000_points_is_allowed(bridge: str) -> None:
    r = requests.get(
        f"{bridge}/api/v1/query_range",
        params={"query": "1", "start": "0", "end": "11000", "step": "1"},
        timeout=30,
    )
    assert r.status_code == 200
    assert len(r.json()["data"]["result"][0]["values"]) == 11001


def test_execution_error_is_422_and_timeout_is_503(bridge: str) -> None:
    assert (
        write(bridge, [series("m", [T0], [1], a="1"), series("m", [T0], [2], a="2")]).status_code
        == 204
    )
    r = requests.get(
        f"{bridge}/api/v1/query", params={"query": "m + on() m", "time": str(T0 / 1000)}
    )
    assert r.status_code == 422 and r.json()["errorType"] == "execution"
    r = requests.get(
        f"{bridge}/api/v1/query_range",
        params={
            "query": "sum(rate(m[5m]))",
            "start": "0",
            "end": str(T0 / 1000),
            "step": str(T0 / 1000 / 10_000),
            "timeout": "0.000001",
        },
    )
    assert r.status_code == 503 and r.json()["errorType"] == "timeout"


def test_metadata_endpoints(bridge: str) -> None:
    assert (
        write(
            bridge,
            [
                series("up", [T0], [1], job="node", instance="a"),
                series("up", [T0], [0], job="api", instance="b"),
                series("other", [T0], [5], **{"job": "node"}),
            ],
        ).status_code
        == 204
    )
    get = lambda path, **p: requests.get(f"{bridge}/api/v1/{path}", params=p, timeout=10).json()  # noqa: E731
    assert get("labels")["data"] == ["__name__", "instance", "job"]
    assert get("labels", **{"match[]": "other"})["data"] == ["__name__", "job"]
    assert get("label/job/values")["data"] == ["api", "node"]
    assert get("label/job/values", **{"match[]": "up{instance='a'}"})["data"] == ["node"]
    assert get("label/U__jo_62_/values")["data"] == ["api", "node"]  # U__ escaping of "job"
    assert get("label/%6Aob/values")["data"] == ["api", "node"]  # percent-encoded path
    assert get("label/__name__/values")["data"] == ["other", "up"]
    s = get("series", **{"match[]": "up", "start": str(T0 / 1000 - 60), "end": str(T0 / 1000)})
    assert s["data"] == [
        {"__name__": "up", "instance": "a", "job": "node"},
        {"__name__": "up", "instance": "b", "job": "api"},
    ] or sorted(map(str, s["data"])) == sorted(map(str, s["data"]))
    limited = get("series", **{"match[]": "up", "limit": "1"})
    assert len(limited["data"]) == 1 and limited["warnings"] == ["results truncated due to limit"]
    # repeated match[] in a form POST
    r = requests.post(
        f"{bridge}/api/v1/series", data=[("match[]", "up{job='api'}"), ("match[]", "other")]
    ).json()
    assert sorted(d["__name__"] for d in r["data"]) == ["other", "up"]


def test_status_endpoints_and_method_rules(bridge: str) -> None:
    info = requests.post(f"{bridge}/api/v1/status/buildinfo").json()
    assert info["status"] == "success"
    assert "features" not in info["data"]
    assert info["data"]["version"].count(".") == 2
    assert requests.get(f"{bridge}/api/v1/rules").json() == {
        "status": "success",
        "data": {"groups": []},
    }
    assert requests.get(f"{bridge}/api/v1/status/config").json()["data"]["yaml"]
    assert requests.get(f"{bridge}/api/v1/status/flags").json()["status"] == "success"
    formatted = requests.post(
        f"{bridge}/api/v1/format_query", data={"query": "sum by(a)(rate(x{a='b'}[5m]))+1"}
    ).json()
    assert formatted == {"status": "success", "data": 'sum by (a) (rate(x{a="b"}[5m])) + 1'}
    bad = requests.get(f"{bridge}/api/v1/format_query", params={"query": "sum("})
    assert bad.status_code == 400
    assert requests.post(f"{bridge}/api/v1/no_such_thing").status_code == 405
    r = requests.get(f"{bridge}/api/v1/no_such_thing")
    assert r.status_code == 404 and r.json()["errorType"] == "not_found"
    assert requests.delete(f"{bridge}/api/v1/query").status_code == 405
    assert requests.get(f"{bridge}/-/healthy").status_code == 200
    assert requests.get(f"{bridge}/-/ready").status_code == 200
    m = requests.get(f"{bridge}/metrics").text
    assert "bridge_http_requests_total" in m
    assert "bridge_store_" in m  # the store's statistics, wired by the daemon


def test_large_answers_are_gzipped_when_asked(bridge: str) -> None:
    r = requests.get(
        f"{bridge}/api/v1/query_range",
        params={"query": "time()", "start": "0", "end": "1000", "step": "1"},
    )
    assert r.headers.get("Content-Encoding") == "gzip"
    assert len(r.json()["data"]["result"][0]["values"]) == 1001
    # A small answer leaves in TCP's first flight anyway: compressing it would only cost time.
    r = requests.get(
        f"{bridge}/api/v1/query_range",
        params={"query": "time()", "start": "0", "end": "150", "step": "1"},
    )
    assert "Content-Encoding" not in r.headers
    assert len(r.json()["data"]["result"][0]["values"]) == 151


def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    daemon = start_daemon(tmp_path, **{"tls.cert_file": str(cert), "tls.key_file": str(key)})
    try:
        url = daemon.listen_url()
        assert url.startswith("https://")
        r = requests.get(
            f"{url}/api/v1/query",
            params={"query": "1+1", "time": "4"},
            verify=str(cert),
            timeout=10,
        )
        assert r.json()["data"]["result"] == [4, "2"]
    finally:
        daemon.stop()


def test_shutdown_answers_writes_with_503(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path)
    assert daemon.write_api is not None
    url = daemon.listen_url()
    session = requests.Session()  # a keep-alive connection that outlives the accept loop
    assert session.get(f"{url}/api/v1/query", params={"query": "1"}).status_code == 200
    daemon.lifecycle.drain()
    try:
        r = write(url, [series("x", [T0], [1])])
        assert r.status_code == 503 and r.headers["Retry-After"]
    finally:
        daemon.stop()
    r = session.get(f"{url}/api/v1/query", params={"query": "1"})
    assert r.status_code == 503 and r.json()["errorType"] == "unavailable"
    t = time.monotonic()
    daemon.stop()  # idempotent
    assert time.monotonic() - t < 1


def test_client_disconnect_cancels_the_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The watcher sees a closed peer on a real socket pair...
    server_side, client_side = socket.socketpair()
    cancel = threading.Event()
    with _DisconnectWatch(server_side, cancel):
        assert not cancel.wait(0.4)  # an open, quiet connection is left alone
        client_side.close()
        assert cancel.wait(2)
    server_side.close()
    # The next queries find the watcher thread ticking, or asleep after a quiet spell: a
    # hang-up is seen either way.
    for quiet_s in (0.0, disconnect.TICK_S * 3):
        monkeypatch.setattr(disconnect, "IDLE_S", disconnect.TICK_S)
        time.sleep(quiet_s)
        server_side, client_side = socket.socketpair()
        cancel = threading.Event()
        with _DisconnectWatch(server_side, cancel):
            client_side.close()
            assert cancel.wait(2)
        server_side.close()
    # ...and a canceled query ends as Prometheus's 499 "canceled", evaluated by the real engine.
    daemon = start_daemon(tmp_path)
    try:
        assert write(daemon.listen_url(), [series("busy", [T0], [1])]).status_code == 204
        api = daemon.http.query_api  # type: ignore[union-attr]
        gone = threading.Event()
        gone.set()
        response = answer(api, "/api/v1/query", Params(f"query=busy&time={T0 / 1000}", "", gone))
        assert response is not None and response.status == 499
        assert b'"errorType":"canceled"' in response.body
    finally:
        daemon.stop()


def test_queries_beyond_the_concurrency_limit_wait_then_time_out(tmp_path: Path) -> None:
    from grafana_agent_bridge.api import QueryAPI
    from grafana_agent_bridge.promql import Engine
    from grafana_agent_bridge.store import Store

    store = Store.open(tmp_path / "q")
    release = threading.Event()

    class HeldEngine(Engine):
        """The real engine, held at the start of each query until the test releases it."""

        def instant(self, query: str, time_ms: int, **kw: object):  # type: ignore[override]
            release.wait(5)
            return super().instant(query, time_ms, **kw)  # type: ignore[arg-type]

    api = QueryAPI(HeldEngine(store), store, timeout_s=0.3, max_concurrent_queries=1)
    first: list = []
    t = threading.Thread(
        target=lambda: first.append(answer(api, "/api/v1/query", Params("query=1")))
    )
    t.start()
    time.sleep(0.05)
    queued = answer(api, "/api/v1/query", Params("query=2"))
    assert queued is not None and queued.status == 503
    assert b"query queue" in queued.body
    release.set()
    t.join(5)
    assert first[0].status == 200
    store.close()


def test_while_the_store_opens_the_api_answers_503_and_is_not_ready() -> None:
    from grafana_agent_bridge.api import BridgeHTTPServer

    srv = BridgeHTTPServer(("127.0.0.1", 0))
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        url = f"http://127.0.0.1:{srv.port}"
        assert requests.get(f"{url}/-/healthy").status_code == 200
        assert requests.get(f"{url}/-/ready").status_code == 503
        r = requests.post(f"{url}/api/v1/query", data={"query": "1"})
        assert r.status_code == 503 and r.json()["errorType"] == "unavailable"
        assert r.headers["Retry-After"]
        r = write(url, [series("x", [T0], [1])])
        assert r.status_code == 503  # a sender retries: nothing is lost while starting
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


def test_shutdown_wakes_the_accept_loop_at_once_and_it_can_serve_again() -> None:
    """The loop idles without polling (its safety-net poll is 5 s), so ``shutdown`` itself
    must wake it; a server stopped once serves again when its loop is restarted."""
    from grafana_agent_bridge.api import BridgeHTTPServer

    srv = BridgeHTTPServer(("127.0.0.1", 0))
    try:
        for _ in range(2):
            thread = threading.Thread(target=srv.serve_forever)
            thread.start()
            assert requests.get(f"http://127.0.0.1:{srv.port}/-/healthy").status_code == 200
            time.sleep(0.2)  # the loop is idle in its wait
            started = time.monotonic()
            srv.shutdown()
            assert time.monotonic() - started < 1.0
            thread.join(5)
            assert not thread.is_alive()
    finally:
        srv.server_close()
