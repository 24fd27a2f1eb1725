"""Remote write 2.0 receive: golden vectors built from the published schema
(``rw2_vectors/generate.py``), decoded directly and sent to a real bridge over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cramjam
import pytest
import requests

from grafana_agent_bridge.remote_write import RemoteWriteError
from grafana_agent_bridge.remote_write2 import decode_write_request_v2, is_v2
from tests.bridge.rw2_vectors import generate
from tests.bridge.test_api_http import start_daemon

VECTORS = Path(__file__).resolve().parent / "rw2_vectors"
NAMES = sorted(p.stem for p in VECTORS.glob("*.bin"))
V2_HEADERS = {
    "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "2.0.0",
}


def vector(name: str) -> tuple[bytes, dict[str, Any]]:
    return (VECTORS / f"{name}.bin").read_bytes(), json.loads(
        (VECTORS / f"{name}.json").read_text()
    )


def show(labels: tuple[tuple[str, str], ...]) -> str:
    return "{" + ", ".join(f'{n}="{v}"' for n, v in labels) + "}"


def test_vectors_are_what_the_generator_makes() -> None:
    assert sorted(generate.VECTORS) == NAMES
    for name, build in generate.VECTORS.items():
        req, expected = build()
        body = bytes(cramjam.snappy.compress_raw(req.SerializeToString()))
        assert vector(name) == (body, json.loads(json.dumps(expected))), name


@pytest.mark.parametrize("name", NAMES)
def test_decode_golden_vector(name: str) -> None:
    body, expected = vector(name)
    try:
        decoded = decode_write_request_v2(body, "snappy")
    except RemoteWriteError as e:
        assert expected["status"] == e.status == 400
        assert expected["error"] in e.message
        return
    got = {  # the float samples (histograms are checked in their own tests)
        show(s.labels): [[t, v] for t, v in zip(s.timestamps.tolist(), s.values.tolist())]
        for s in decoded.series
        if len(s.timestamps) and s.histograms is None
    }
    assert got == expected["series"]
    exemplars = {
        show(s.labels): [[dict(e.labels), e.value, e.timestamp] for e in s.exemplars]
        for s in decoded.series
        if s.exemplars
    }
    assert exemplars == expected["exemplars"]
    assert {m.metric_family_name: [m.type, m.help, m.unit] for m in decoded.metadata} == (
        expected["metadata"]
    )
    reasons = " ".join(r.reason for r in decoded.rejections)
    if expected["status"] == 400:
        assert expected["error"] in reasons
        assert expected.get("error_also", "") in reasons
    else:
        assert decoded.rejections == []


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    daemon = start_daemon(tmp_path_factory.mktemp("rw2"))
    try:
        yield daemon.listen_url()
    finally:
        daemon.stop()


@pytest.mark.parametrize("name", NAMES)
def test_golden_vector_over_http(bridge: str, name: str) -> None:
    body, expected = vector(name)
    r = requests.post(f"{bridge}/api/v1/write", data=body, headers=V2_HEADERS, timeout=10)
    assert r.status_code == expected["status"], r.text
    for kind, n in expected["written"].items():
        assert r.headers[f"X-Prometheus-Remote-Write-{kind.capitalize()}-Written"] == str(n)
    if expected["status"] == 400:
        assert expected["error"] in r.json()["error"]
    for shown, points in expected["series"].items():
        t_last = points[-1][0] / 1000
        res = requests.get(
            f"{bridge}/api/v1/query", params={"query": shown, "time": str(t_last)}, timeout=10
        ).json()["data"]["result"]
        assert [float(s["value"][1]) for s in res] == [points[-1][1]], shown
    meta = requests.get(f"{bridge}/api/v1/metadata", timeout=10).json()["data"]
    for family, (mtype, help_text, unit) in expected["metadata"].items():
        assert meta[family] == [{"type": mtype, "help": help_text, "unit": unit}]


def test_is_v2_needs_protobuf_media_and_the_v2_message() -> None:
    assert is_v2("application/x-protobuf;proto=io.prometheus.write.v2.Request")
    assert is_v2("application/x-protobuf; proto=io.prometheus.write.v2.Request")
    assert not is_v2("application/x-protobuf")
    assert not is_v2("application/x-protobuf;proto=prometheus.WriteRequest")
    assert not is_v2("text/plain;proto=io.prometheus.write.v2.Request")
    assert not is_v2(None)


@pytest.mark.parametrize(
    ("body", "encoding", "status"),
    [
        (b"\xff\xff\xff", "snappy", 400),  # not snappy
        (bytes(cramjam.snappy.compress_raw(b"\xff\x01")), "snappy", 400),  # not protobuf
        (b"", "gzip", 415),
        (b"", "", 415),
    ],
)
def test_malformed_v2_bodies(bridge: str, body: bytes, encoding: str, status: int) -> None:
    headers = {**V2_HEADERS, "Content-Encoding": encoding}
    r = requests.post(f"{bridge}/api/v1/write", data=body, headers=headers, timeout=10)
    assert r.status_code == status
    assert r.headers["X-Prometheus-Remote-Write-Samples-Written"] == "0"
    assert r.json()["error"]


def test_decode_limits_apply_to_v2() -> None:
    req = generate.request_class()()
    req.symbols.extend(["", "__name__", "x"])
    for _ in range(50):
        req.timeseries.add(labels_refs=[1, 2]).samples.add(value=1, timestamp=1)
    body = bytes(cramjam.snappy.compress_raw(req.SerializeToString()))
    from grafana_agent_bridge.remote_write import DecodeLimits

    with pytest.raises(RemoteWriteError) as e:
        decode_write_request_v2(body, "snappy", bounds=DecodeLimits(max_decoded_elements=20))
    assert e.value.status == 413 and "ingest.max_decoded_elements" in e.value.message


def test_bad_exemplar_ref_refuses_only_the_exemplar() -> None:
    req = generate.request_class()()
    req.symbols.extend(["", "__name__", "x"])
    ts = req.timeseries.add(labels_refs=[1, 2])
    ts.samples.add(value=1, timestamp=5)
    ts.exemplars.add(labels_refs=[1, 40], value=1, timestamp=5)
    decoded = decode_write_request_v2(bytes(cramjam.snappy.compress_raw(req.SerializeToString())))
    assert [s.values.tolist() for s in decoded.series] == [[1.0]]
    assert decoded.series[0].exemplars == []
    assert decoded.rejections[0].kind == "invalid_exemplar"


def test_v2_histograms_are_validated_like_v1() -> None:
    # The 2.0 Histogram is 1.0's message: histogram.codec decodes and validates it.
    req = generate.request_class()()
    req.symbols.extend(["", "__name__", "h"])
    ts = req.timeseries.add(labels_refs=[1, 2])
    ts.histograms.add(count_int=1, schema=99, timestamp=5)
    ts.histograms.add(count_int=1, zero_count_int=1, timestamp=6)
    decoded = decode_write_request_v2(bytes(cramjam.snappy.compress_raw(req.SerializeToString())))
    kinds = sorted(r.kind for r in decoded.rejections)
    assert kinds == ["invalid_histogram"]
    (series,) = decoded.series
    assert series.timestamps.tolist() == [6]
    assert series.histograms is not None and series.histograms[0] is not None
    assert series.histograms[0].zero_count == 1
    assert "unknown schema" in next(
        r.reason for r in decoded.rejections if r.kind == "invalid_histogram"
    )
    (kept,) = decoded.histograms
    assert [s.timestamp for s in kept.samples] == [6]
