"""Fuzzing the running daemon over HTTP: remote-write bodies and headers, the query API's
parameters and PromQL strings. Bad input must get a 4xx (or a 2xx when it happens to be
valid), never a 5xx, and the daemon must stay up.

Bounded: ``FUZZ_EXAMPLES`` examples per test (default 120), no deadline (a 2-core CI box).
"""

from __future__ import annotations

import os
import struct
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import cramjam
import numpy as np
import pytest
from forward_support import Bridge, http_get, http_post, series_labels
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grafana_agent_bridge.labels import make_labels
from grafana_agent_bridge.remote_write import (
    REMOTE_WRITE_HEADERS,
    WriteRequest,
    encode_write_request,
)
from grafana_agent_bridge.storage import SeriesBatch
from tests.promql_gen import (
    DEEP_SHAPES,
    deep_query,
    malformed_queries,
    pathological_regex,
    well_formed_queries,
)

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=os.environ.get("CI") is not None,
)
NOW_MS = int(time.time() * 1000)


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    b = Bridge(Path(tmp_path_factory.mktemp("fuzz")) / "bridge").start()
    labels = series_labels("fuzz_metric", 5)
    # Bait for pathological regexes: values a backtracking engine needs ages to reject (under
    # storage.max_label_value_length).
    bait = [
        make_labels({"__name__": "fuzz_bait", "v": "a" * n, "w": "ab" * n}) for n in (30, 1000)
    ]
    ts = np.array([NOW_MS - 15_000], dtype=np.int64)
    body = encode_write_request(SeriesBatch(lb, ts, np.array([1.0])) for lb in bait)
    assert http_post(b.url, "/api/v1/write", body, REMOTE_WRITE_HEADERS)[0] == 204
    for k in range(30):
        ts = np.array([NOW_MS - (30 - k) * 15_000], dtype=np.int64)
        body = encode_write_request(
            SeriesBatch(lb, ts, np.array([float(k * i)])) for i, lb in enumerate(labels)
        )
        assert http_post(b.url, "/api/v1/write", body, REMOTE_WRITE_HEADERS)[0] == 204
    yield b
    alive = b.alive()
    b.stop()
    assert alive, "the daemon died during fuzzing"


def check(bridge: Bridge, status: int, body: bytes, what: object) -> None:
    assert status < 500, (status, body[:300], what)
    assert bridge.alive()


# -- remote write ---------------------------------------------------------------------------

text = st.text(max_size=12)
label_name = st.one_of(
    st.sampled_from(["__name__", "job", "instance", "le", "", "0bad", "a-b", "__meta"]), text
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]),
)
timestamps = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(NOW_MS - 3_600_000, NOW_MS + 600_000),
)


@st.composite
def write_requests(draw: st.DrawFn) -> bytes:
    """Structurally valid protobuf with arbitrary content (labels, samples, exemplars)."""
    req = WriteRequest()
    for _ in range(draw(st.integers(0, 4))):
        ts = req.timeseries.add()  # type: ignore[attr-defined]
        for _ in range(draw(st.integers(0, 4))):
            ts.labels.add(name=draw(label_name), value=draw(text))
        if draw(st.booleans()):
            ts.labels.add(name="__name__", value=draw(st.sampled_from(["fz", "fuzz_metric", ""])))
        for _ in range(draw(st.integers(0, 5))):
            ts.samples.add(value=draw(floats), timestamp=draw(timestamps))
        for _ in range(draw(st.integers(0, 2))):
            ex = ts.exemplars.add(value=draw(floats), timestamp=draw(timestamps))
            ex.labels.add(name=draw(label_name), value=draw(text))
    for _ in range(draw(st.integers(0, 2))):
        req.metadata.add(  # type: ignore[attr-defined]
            type=draw(st.integers(0, 2**31 - 1)),
            metric_family_name=draw(text),
            help=draw(text),
            unit=draw(text),
        )
    return req.SerializeToString()


@FUZZ
@given(raw=write_requests(), mutate=st.lists(st.integers(0, 10_000), max_size=4))
def test_fuzz_remote_write_bodies(bridge: Bridge, raw: bytes, mutate: list[int]) -> None:
    data = bytearray(raw)
    for pos in mutate:  # flip bytes of a valid message: truncated fields, bad varints, ...
        if data:
            data[pos % len(data)] ^= 0x5A
    body = bytes(cramjam.snappy.compress_raw(bytes(data)))
    status, answer = http_post(bridge.url, "/api/v1/write", body, REMOTE_WRITE_HEADERS)
    check(bridge, status, answer, data)


@FUZZ
@given(
    body=st.binary(max_size=2048),
    compress=st.booleans(),
    ctype=st.one_of(
        st.sampled_from(
            [
                "application/x-protobuf",
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                "text/plain",
                "",
            ]
        ),
        st.text(max_size=40).filter(lambda s: "\n" not in s and "\r" not in s),
    ),
    encoding=st.sampled_from(["snappy", "gzip", "", "identity", "SNAPPY"]),
)
def test_fuzz_remote_write_bytes_and_headers(
    bridge: Bridge, body: bytes, compress: bool, ctype: str, encoding: str
) -> None:
    payload = bytes(cramjam.snappy.compress_raw(body)) if compress else body
    headers = {"Content-Type": ctype, "Content-Encoding": encoding}
    try:
        status, answer = http_post(bridge.url, "/api/v1/write", payload, headers)
    except ValueError:  # http.client refuses some header values itself; nothing was sent
        return
    check(bridge, status, answer, (body[:50], ctype, encoding))
    media = ctype.partition(";")[0].strip().lower()
    # Remote write 2.0 (proto=io.prometheus.write.v2.Request) is accepted like 1.0.
    wrong_type = media not in ("", "application/x-protobuf")
    if encoding.lower() != "snappy" or wrong_type:
        assert status == 415, (status, answer[:200], ctype, encoding)


# -- query API ------------------------------------------------------------------------------

param_value = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "1e30",
            "-1e30",
            "NaN",
            "Inf",
            "+Inf",
            "-Inf",
            "1.5",
            "30s",
            "1h",
            "0.001",
            str(NOW_MS / 1000),
            "2026-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "fuzz_metric",
            '{__name__=~".+"}',
            "up[5m]",
            "(",
        ]
    ),
)
PARAMS = ["query", "time", "start", "end", "step", "timeout", "match[]", "limit", "metric"]
ENDPOINTS = [
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/series",
    "/api/v1/labels",
    "/api/v1/label/__name__/values",
    "/api/v1/metadata",
    "/api/v1/query_exemplars",
    "/api/v1/status/buildinfo",
    "/api/v1/rules",
]


@FUZZ
@given(
    endpoint=st.one_of(
        st.sampled_from(ENDPOINTS),
        st.text(max_size=20).map(
            lambda n: "/api/v1/label/" + urllib.parse.quote(n, safe="") + "/values"
        ),
    ),
    params=st.lists(st.tuples(st.sampled_from(PARAMS), param_value), max_size=6),
    post=st.booleans(),
)
def test_fuzz_query_api_parameters(
    bridge: Bridge, endpoint: str, params: list[tuple[str, str]], post: bool
) -> None:
    qs = urllib.parse.urlencode(params)
    if post:
        status, body = http_post(
            bridge.url,
            endpoint,
            qs.encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
    else:
        status, body = http_get(bridge.url, f"{endpoint}?{qs}" if qs else endpoint)
    check(bridge, status, body, (endpoint, params))


# -- PromQL ---------------------------------------------------------------------------------

# Selectors of the well-formed grammar over what the fixture wrote.
SELECTORS = [
    "fuzz_metric",
    'fuzz_metric{series="s001"}',
    '{__name__=~"fuzz.*"}',
    'fuzz_metric{series!~"s00[12]"}',
    "fuzz_bait",
    "nothing",
    "fuzz_metric offset 1m",
    "fuzz_metric @ 100",
]


def promql() -> st.SearchStrategy[str]:
    """Both grammars of tests/promql_gen.py: well-formed queries and careless ones."""
    return st.one_of(well_formed_queries(SELECTORS), malformed_queries("fuzz_metric"))


@FUZZ
@given(expr=promql(), range_query=st.booleans())
def test_fuzz_promql(bridge: Bridge, expr: str, range_query: bool) -> None:
    if range_query:
        params = {
            "query": expr,
            "start": f"{NOW_MS / 1000 - 600:.3f}",
            "end": f"{NOW_MS / 1000:.3f}",
            "step": "15",
        }
        path = "/api/v1/query_range"
    else:
        params = {"query": expr, "time": f"{NOW_MS / 1000:.3f}"}
        path = "/api/v1/query"
    status, body = http_get(bridge.url, f"{path}?{urllib.parse.urlencode(params)}")
    check(bridge, status, body, expr)
    assert status in (200, 400, 422), (status, body[:300], expr)


@FUZZ
@given(expr=st.text(max_size=60))
def test_fuzz_promql_arbitrary_text(bridge: Bridge, expr: str) -> None:
    q = urllib.parse.urlencode({"query": expr, "time": f"{NOW_MS / 1000:.3f}"})
    status, body = http_get(bridge.url, f"/api/v1/query?{q}")
    check(bridge, status, body, expr)
    assert status in (200, 400, 422), (status, body[:300], expr)


# -- bounded work: deep, long and regex-pathological PromQL ----------------------------------

PROMQL_ENDPOINTS = [
    ("/api/v1/query", "query"),
    ("/api/v1/query_range", "query"),
    ("/api/v1/format_query", "query"),
    ("/api/v1/query_exemplars", "query"),
    ("/api/v1/series", "match[]"),
    ("/api/v1/labels", "match[]"),
]


def post_promql(bridge: Bridge, path: str, param: str, expr: str) -> tuple[int, bytes, float]:
    params = {param: expr, "start": f"{NOW_MS / 1000 - 600:.3f}", "end": f"{NOW_MS / 1000:.3f}"}
    if path == "/api/v1/query_range":
        params["step"] = "15"
    started = time.monotonic()
    status, body = http_post(
        bridge.url,
        path,
        urllib.parse.urlencode(params).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    return status, body, time.monotonic() - started


@FUZZ
@given(
    shape=st.sampled_from([s for s in DEEP_SHAPES if s != "mixed"]),
    depth=st.one_of(st.integers(0, 250), st.integers(250, 12_000)),
    endpoint=st.sampled_from(PROMQL_ENDPOINTS),
)
def test_fuzz_deep_promql(bridge: Bridge, shape: str, depth: int, endpoint: tuple) -> None:
    """Nesting up to far past ``query.max_nesting_depth`` (the parser died with SIGSEGV at
    ~10k levels): answered or refused quickly on every endpoint that parses PromQL."""
    expr = deep_query(shape, depth, "fuzz_metric")
    status, body, took = post_promql(bridge, *endpoint, expr)
    check(bridge, status, body, (shape, depth, endpoint))
    assert status in (200, 400, 422), (status, body[:300], shape, depth)
    if depth > 200:
        assert status == 400 and b"query.max_nesting_depth" in body, (shape, depth, body[:300])
    assert took < 5.0, (shape, depth, endpoint, took)


@FUZZ
@given(
    expr=st.one_of(
        st.integers(1, 3_000).map(
            lambda n: '{__name__=~"' + "|".join(f"m{i}" for i in range(n)) + '|fuzz_metric"}'
        ),
        st.integers(1, 300_000).map(lambda n: 'fuzz_metric{series!="' + "x" * n + '"}'),
        st.integers(1_000_000, 1_200_000).map(lambda n: "fuzz_metric" + " " * n),
        st.text(min_size=1, max_size=20).map(lambda t: t * 5_000),
    ),
    endpoint=st.sampled_from(PROMQL_ENDPOINTS),
)
def test_fuzz_long_promql(bridge: Bridge, expr: str, endpoint: tuple) -> None:
    status, body, took = post_promql(bridge, *endpoint, expr)
    check(bridge, status, body, (expr[:80], len(expr), endpoint))
    if len(expr) > 1 << 20:
        assert status == 400 and b"query.max_query_length" in body, body[:300]
    assert took < 5.0, (expr[:80], len(expr), endpoint, took)


@FUZZ
@given(pattern=st.randoms(use_true_random=False).map(pathological_regex), form=st.integers(0, 3))
def test_fuzz_pathological_regex(bridge: Bridge, pattern: str, form: int) -> None:
    """RE2 is linear: no regex query may take long (Python's re froze the daemon for minutes)."""
    p = pattern.replace("\\", "\\\\")
    expr = [
        f'{{__name__=~"fuzz_bait|x", v=~"{p}"}}',
        f'fuzz_bait{{w!~"{p}"}}',
        f'label_replace(fuzz_bait, "x", "$1", "v", "{p}")',
        f'label_replace({{__name__=~"{p}"}}, "x", "${{1}}", "w", "{p}")',
    ][form]
    path, param = ("/api/v1/series", "match[]") if form < 2 else ("/api/v1/query", "query")
    status, body, took = post_promql(bridge, path, param, expr)
    check(bridge, status, body, expr)
    assert status in (200, 400, 422), (status, body[:300], expr)
    assert took < 3.0, (expr, took)
