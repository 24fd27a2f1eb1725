"""OTLP/HTTP metrics ingest over real HTTP into the real store, queried back through the API."""

from __future__ import annotations

import errno
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)

from grafana_agent_bridge.store import wal as wal_mod
from tests.bridge.otlp_support import DELTA, T0_NS, counter, gauge, histogram, request
from tests.bridge.test_api_http import start_daemon

PROTO = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
T0_S = T0_NS / 1e9


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[str]:
    daemon = start_daemon(tmp_path)
    try:
        yield daemon.listen_url()
    finally:
        daemon.stop()


def query(url: str, q: str, t: float = T0_S) -> list[dict]:
    r = requests.get(f"{url}/api/v1/query", params={"query": q, "time": str(t)}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["data"]["result"]


def export(
    url: str, req: object, path: str = "/api/v1/otlp/v1/metrics", **kw: object
) -> requests.Response:
    body = req.SerializeToString()  # type: ignore[attr-defined]
    return requests.post(url + path, data=body, headers=PROTO, timeout=10, **kw)  # type: ignore[arg-type]


def parsed(r: requests.Response) -> ExportMetricsServiceResponse:
    out = ExportMetricsServiceResponse()
    if r.headers["Content-Type"].startswith("application/json"):
        json_format.Parse(r.content, out)
    else:
        out.ParseFromString(r.content)
    return out


def test_protobuf_export_is_stored_and_queryable(bridge: str) -> None:
    req = request(
        [
            counter("http.requests", 42, unit="{request}", method="GET"),
            histogram("lat", [1], [2, 1], 3.5, unit="s"),
        ],
        resource={"service.name": "api", "service.instance.id": "i-1", "host.name": "h"},
    )
    r = export(bridge, req)
    assert r.status_code == 200, r.content
    assert r.headers["Content-Type"] == "application/x-protobuf"
    assert not parsed(r).HasField("partial_success")
    (s,) = query(bridge, "http_requests_total")
    assert s["metric"] == {
        "__name__": "http_requests_total",
        "job": "api",
        "instance": "i-1",
        "method": "GET",
    }
    assert s["value"][1] == "42"
    assert query(bridge, 'lat_seconds_bucket{le="+Inf"}')[0]["value"][1] == "3"
    assert query(bridge, "target_info")[0]["metric"]["host_name"] == "h"
    meta = requests.get(f"{bridge}/api/v1/metadata", timeout=10).json()["data"]
    assert meta["http_requests_total"] == [{"type": "counter", "help": "", "unit": "{request}"}]


def test_default_otlp_path_and_gzip(bridge: str) -> None:
    body = gzip.compress(request([gauge("g", 5)]).SerializeToString())
    r = requests.post(
        bridge + "/v1/metrics",
        data=body,
        headers={**PROTO, "Content-Encoding": "gzip"},
        timeout=10,
    )
    assert r.status_code == 200
    assert query(bridge, "g")[0]["value"][1] == "5"


def test_json_export_with_hex_ids_and_string_int64(bridge: str) -> None:
    doc = {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "js"}}]
                },
                "scopeMetrics": [
                    {
                        "scope": {"name": "lib"},
                        "metrics": [
                            {
                                "name": "jobs.done",
                                "sum": {
                                    "aggregationTemporality": 2,
                                    "isMonotonic": True,
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": str(T0_NS),
                                            "asInt": "12",
                                            "attributes": [
                                                {"key": "queue", "value": {"stringValue": "q1"}}
                                            ],
                                            "exemplars": [
                                                {
                                                    "timeUnixNano": str(T0_NS),
                                                    "asDouble": 1,
                                                    "traceId": "5b8efff798038103d269b633813fc60c",
                                                    "spanId": "eee19b7ec3c1b174",
                                                }
                                            ],
                                        }
                                    ],
                                },
                                "unknownFieldFromTheFuture": 1,
                            }
                        ],
                    }
                ],
            }
        ]
    }
    r = requests.post(
        bridge + "/api/v1/otlp/v1/metrics", data=json.dumps(doc), headers=JSON, timeout=10
    )
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {}
    (s,) = query(bridge, "jobs_done_total")
    assert s["metric"] == {"__name__": "jobs_done_total", "job": "js", "queue": "q1"}
    assert s["value"][1] == "12"
    ex = requests.get(
        f"{bridge}/api/v1/query_exemplars",
        params={"query": "jobs_done_total", "start": str(T0_S - 60), "end": str(T0_S + 60)},
        timeout=10,
    ).json()["data"]
    assert ex[0]["exemplars"][0]["labels"] == {
        "trace_id": "5b8efff798038103d269b633813fc60c",
        "span_id": "eee19b7ec3c1b174",
    }


def test_partial_success_in_both_encodings(bridge: str) -> None:
    req = request([counter("d", 1, temporality=DELTA), gauge("kept", 1)])
    r = export(bridge, req)
    assert r.status_code == 200
    ps = parsed(r).partial_success
    assert ps.rejected_data_points == 1 and "invalid temporality" in ps.error_message
    assert query(bridge, "kept")
    j = requests.post(
        bridge + "/api/v1/otlp/v1/metrics",
        data=json_format.MessageToJson(request([counter("d2", 1, temporality=DELTA)])),
        headers=JSON,
        timeout=10,
    )
    assert j.status_code == 200
    assert j.json()["partialSuccess"]["rejectedDataPoints"] == "1"


def test_store_rejections_become_partial_success(bridge: str) -> None:
    assert export(bridge, request([gauge("g", 1, T0_NS + 10**9)])).status_code == 200
    r = export(bridge, request([gauge("g", 2, T0_NS)]))  # older than the stored sample
    ps = parsed(r).partial_success
    assert ps.rejected_data_points == 1 and "out of order" in ps.error_message.lower()


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"\xff\xff\xff", PROTO, 400),
        (b"{not json", JSON, 400),
        (b"[1, 2]", JSON, 400),
        (b'{"resourceMetrics": 5}', JSON, 400),
        (b"x", {"Content-Type": "text/plain"}, 415),
        (b"x", {**PROTO, "Content-Encoding": "br"}, 415),
        (b"not gzip", {**PROTO, "Content-Encoding": "gzip"}, 400),
        (gzip.compress(b"")[:-4], {**PROTO, "Content-Encoding": "gzip"}, 400),
        (b"[" * 100_000 + b"]" * 100_000, JSON, 400),
    ],
)
def test_hostile_bodies_get_a_reason_and_change_nothing(
    bridge: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    r = requests.post(bridge + "/api/v1/otlp/v1/metrics", data=body, headers=headers, timeout=10)
    assert r.status_code == status
    assert r.content  # a google.rpc.Status naming the problem
    assert requests.get(f"{bridge}/-/healthy", timeout=10).status_code == 200


def test_bad_exemplar_trace_id_is_400(bridge: str) -> None:
    doc = json_format.MessageToDict(request([counter("c", 1)]))
    point = doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["dataPoints"][0]
    point["exemplars"] = [{"traceId": "zz" * 16, "asDouble": 1}]
    r = requests.post(bridge + "/v1/metrics", data=json.dumps(doc), headers=JSON, timeout=10)
    assert r.status_code == 400 and "traceId" in r.json()["message"]


def test_limits_before_decompression_and_decoding(tmp_path: Path) -> None:
    daemon = start_daemon(
        tmp_path, **{"ingest.max_decoded_bytes": 100_000, "ingest.max_decoded_elements": 1000}
    )
    url = daemon.listen_url()
    try:
        bomb = gzip.compress(b"\0" * 10_000_000)  # ~10 KB that inflates to 10 MB
        r = requests.post(
            url + "/v1/metrics",
            data=bomb,
            headers={**PROTO, "Content-Encoding": "gzip"},
            timeout=10,
        )
        assert r.status_code == 413 and b"ingest.max_decoded_bytes" in r.content
        many = request([gauge(f"g{i}", i) for i in range(300)])
        r = export(url, many)
        assert r.status_code == 413 and b"ingest.max_decoded_elements" in r.content
        assert query(url, "g1") == []
    finally:
        daemon.stop()


def test_write_allow_list_applies(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path, **{"ingest.allowed_clients": ["10.9.9.9"]})
    try:
        r = export(daemon.listen_url(), request([gauge("g", 1)]))
        assert r.status_code == 403
    finally:
        daemon.stop()


def test_get_is_not_allowed(bridge: str) -> None:
    r = requests.get(bridge + "/v1/metrics", timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "POST"


def test_full_disk_is_retryable_503(bridge: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real store's write-ahead log hits ENOSPC: nothing kept, 503 + Retry-After; once
    # space is back the sender's retry is stored.
    real_write = wal_mod.os.write

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wal_mod.os, "write", full)
    r = export(bridge, request([gauge("g", 1)]))
    assert r.status_code == 503 and r.headers["Retry-After"].isdigit()
    monkeypatch.setattr(wal_mod.os, "write", real_write)
    assert export(bridge, request([gauge("g", 1)])).status_code == 200
    assert query(bridge, "g")[0]["value"][1] == "1"
