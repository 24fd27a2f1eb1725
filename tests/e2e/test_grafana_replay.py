"""Replays what Grafana 11/12's built-in ``prometheus`` datasource sends, against a real bridge.

The request sequence, methods, encodings and parameters follow Grafana's promlib client and
frontend (see ``shared/facts/grafana-datasource.md`` §A). Every answer is then read with
Grafana's own parsing rules (``pkg/promlib/converter/prom.go``): the JSON body whatever the
status, values as strings Go's ``ParseFloat`` accepts, timestamps as JSON numbers truncated to
milliseconds, metrics as string→string maps, only the known result types.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator

import numpy as np
import pytest
import requests
from forward_support import BridgeProcess

from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import Exemplar, MetricMetadata, SeriesBatch

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
GO_FLOAT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity|nan)$", re.I)


def go_parse_float(text: object) -> float:
    """Go's ``strconv.ParseFloat`` as Grafana applies it to a sample value (a JSON string)."""
    assert isinstance(text, str), f"sample value must be a JSON string, got {text!r}"
    assert GO_FLOAT.match(text), f"Go ParseFloat rejects {text!r}"
    return float(text)


def grafana_sample(pair: object) -> tuple[int, float]:
    assert isinstance(pair, list) and len(pair) == 2, pair
    t, v = pair
    assert isinstance(t, (int, float)) and not isinstance(t, bool), f"timestamp {t!r}"
    return int(t * 1000), go_parse_float(v)


def grafana_read(r: requests.Response) -> dict:
    """The envelope as Grafana's converter reads it; fails where Grafana would."""
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    body = json.loads(r.content)  # parsed whatever the status; non-JSON is an opaque error
    assert body["status"] in ("success", "error")
    for key in ("warnings", "infos"):
        assert all(isinstance(w, str) for w in body.get(key, []))
    if body["status"] == "error":
        assert isinstance(body["errorType"], str) and isinstance(body["error"], str)
    return body


def grafana_query_frames(r: requests.Response) -> list[tuple[dict, list[tuple[int, float]]]]:
    body = grafana_read(r)
    assert body["status"] == "success", body
    data = body["data"]
    rtype, result = data["resultType"], data["result"]
    assert rtype in ("matrix", "vector", "scalar", "string"), rtype
    if rtype in ("scalar", "string"):
        return [({}, [grafana_sample(result)])] if rtype == "scalar" else []
    frames = []
    for s in result:
        metric = s["metric"]
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in metric.items())
        points = (
            [grafana_sample(p) for p in s["values"]]
            if rtype == "matrix"
            else [grafana_sample(s["value"])]
        )
        frames.append((metric, points))
    return frames


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("replay")
    cfg = tmp / "bridge.yaml"
    cfg.write_text("collect:\n  interval: 1s\n")
    proc = BridgeProcess(tmp / "data", "--config", str(cfg))
    try:
        proc.wait_ready()
        now = int(time.time() * 1000) // 1000 * 1000
        times = np.arange(now - 600_000, now + 1, 15_000, dtype=np.int64)
        batches = [
            SeriesBatch(
                (("__name__", "app_requests_total"), ("instance", f"app-{i}:80"), ("job", "app")),
                times,
                np.cumsum(np.full(len(times), 3.0 + i)),
                [Exemplar((("trace_id", f"abc{i}"),), 1.5, int(times[-1]))],
            )
            for i in range(3)
        ]
        meta = [MetricMetadata("app_requests_total", "counter", "Requests served.", "")]
        r = requests.post(
            f"{proc.url}/api/v1/write",
            data=encode_write_request(batches, meta),
            headers=REMOTE_WRITE_HEADERS,
            timeout=10,
        )
        assert r.status_code == 204, r.text
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait for two host collections
            q = requests.get(
                f"{proc.url}/api/v1/query",
                params={"query": "count_over_time(node_load1[1m])"},
                timeout=5,
            ).json()
            if q["data"]["result"] and float(q["data"]["result"][0]["value"][1]) >= 2:
                break
            time.sleep(0.3)
        yield proc.url
    finally:
        proc.stop()


def test_health_check_save_and_test(bridge: str) -> None:
    # Backend CheckHealth: instant query 1+1 at unix 4 s, form POST (httpMethod unset).
    r = requests.post(f"{bridge}/api/v1/query", data="query=1%2B1&time=4", headers=FORM)
    assert r.status_code == 200  # any other status fails the health check at once
    assert grafana_query_frames(r) == [({}, [(4000, 2.0)])]
    # httpMethod GET variant, with the newer clients' timeout parameter.
    r = requests.get(f"{bridge}/api/v1/query?query=1%2B1&time=4&timeout=60s")
    assert r.status_code == 200 and grafana_read(r)["status"] == "success"


def test_buildinfo_heuristics_say_prometheus_not_mimir(bridge: str) -> None:
    # heuristics.go passes the path without a leading slash; it can arrive as a POST.
    for r in (
        requests.post(f"{bridge}/api/v1/status/buildinfo", headers=FORM),
        requests.get(f"{bridge}/api/v1/status/buildinfo"),
    ):
        body = grafana_read(r)
        assert r.status_code == 200 and body["status"] == "success"
        assert "features" not in body["data"]  # features → Mimir with a ruler API
        assert re.fullmatch(r"\d+\.\d+\.\d+", body["data"]["version"])  # version-detect


def test_datasource_init_rules_and_exemplar_probe(bridge: str) -> None:
    rules = grafana_read(requests.get(f"{bridge}/api/v1/rules"))
    recording = [
        rule for g in rules["data"]["groups"] for rule in g["rules"] if rule["type"] == "recording"
    ]
    assert recording == []
    now_ms = int(time.time() * 1000)
    # areExemplarsAvailable: start/end in *milliseconds*; success envelope = available.
    r = requests.get(
        f"{bridge}/api/v1/query_exemplars",
        params={"query": "test", "start": str(now_ms - 3_600_000), "end": str(now_ms)},
    )
    assert r.status_code == 200 and grafana_read(r)["status"] == "success"


def test_exemplars_for_a_query(bridge: str) -> None:
    now = time.time()
    r = requests.post(
        f"{bridge}/api/v1/query_exemplars",
        data={"query": "rate(app_requests_total[5m])", "start": str(now - 3600), "end": str(now)},
        headers=FORM,
    )
    body = grafana_read(r)
    assert body["status"] == "success"
    got = {g["seriesLabels"]["instance"]: g["exemplars"] for g in body["data"]}
    assert set(got) == {"app-0:80", "app-1:80", "app-2:80"}
    ex = got["app-1:80"][0]
    assert ex["labels"] == {"trace_id": "abc1"}
    assert go_parse_float(ex["value"]) == 1.5 and isinstance(ex["timestamp"], (int, float))


def test_metrics_browser_calls(bridge: str) -> None:
    now = int(time.time())
    window = {"start": str(now - 3600), "end": str(now)}
    # labels: GET (forced for label APIs by newer clients) and the POST form of older ones
    for r in (
        requests.get(f"{bridge}/api/v1/labels", params={**window, "limit": "40000"}),
        requests.post(f"{bridge}/api/v1/labels", data=window, headers=FORM),
    ):
        names = grafana_read(r)["data"]
        assert {"__name__", "job", "instance", "cpu", "mode"} <= set(names)
        assert names == sorted(names)
    metrics = grafana_read(
        requests.get(f"{bridge}/api/v1/label/__name__/values", params={**window, "limit": "40000"})
    )["data"]
    assert {"node_cpu_seconds_total", "app_requests_total", "up"} <= set(metrics)
    jobs = grafana_read(
        requests.get(
            f"{bridge}/api/v1/label/job/values",
            params={**window, "match[]": "app_requests_total"},
        )
    )["data"]
    assert jobs == ["app"]
    series = grafana_read(
        requests.post(
            f"{bridge}/api/v1/series",
            data={"match[]": '{__name__!=""}', **window, "limit": "40000"},
            headers=FORM,
        )
    )["data"]
    assert all(isinstance(v, str) for s in series for v in s.values())
    assert {"__name__": "app_requests_total", "instance": "app-0:80", "job": "app"} in series
    limited = grafana_read(
        requests.get(
            f"{bridge}/api/v1/series", params={"match[]": "app_requests_total", "limit": "2"}
        )
    )
    assert len(limited["data"]) == 2 and limited["warnings"]
    meta = grafana_read(requests.get(f"{bridge}/api/v1/metadata"))["data"]
    assert meta["app_requests_total"] == [
        {"type": "counter", "help": "Requests served.", "unit": ""}
    ]
    for entries in meta.values():
        assert all(set(e) == {"type", "help", "unit"} for e in entries)


def test_dashboard_range_query_form_post_step_aligned(bridge: str) -> None:
    step = 15
    now = time.time()
    end = math.floor(now / step) * step  # AlignTimeRange floors start and end to the step
    start = end - 600
    r = requests.post(
        f"{bridge}/api/v1/query_range",
        data={
            "query": "sum by (job) (rate(app_requests_total[1m]))",
            "start": str(start),
            "end": str(end),
            "step": str(step),
            "timeout": "60s",
        },
        headers=FORM,
    )
    assert r.status_code == 200
    frames = grafana_query_frames(r)
    assert [m for m, _ in frames] == [{"job": "app"}]
    points = frames[0][1]
    assert all(t % (step * 1000) == 0 and start * 1000 <= t <= end * 1000 for t, _ in points)
    assert len(points) >= 30
    # 3 + 4 + 5 per 15 s, extrapolated inside the series: 12 / 15 per second
    assert points[-1][1] == pytest.approx(12 / 15)
    # Host CPU panel with $__rate_interval already substituted, fractional start/end strings
    r = requests.post(
        f"{bridge}/api/v1/query_range",
        data={
            "query": 'sum by (mode) (rate(node_cpu_seconds_total{mode!="idle"}[4s]))',
            "start": f"{now - 30:.3f}",
            "end": f"{now:.3f}",
            "step": "1",
        },
        headers=FORM,
    )
    modes = {m["mode"] for m, _ in grafana_query_frames(r)}
    assert {"user", "system"} <= modes


def test_alert_rule_instant_query(bridge: str) -> None:
    # Unified alerting: instant, time = now - to (not aligned), FromAlert header, form POST.
    r = requests.post(
        f"{bridge}/api/v1/query",
        data={"query": "app_requests_total > 0", "time": f"{time.time():.3f}"},
        headers={**FORM, "FromAlert": "true", "X-Rule-Uid": "abc", "X-Grafana-Org-Id": "1"},
    )
    frames = grafana_query_frames(r)
    assert len(frames) == 3 and all(len(points) == 1 for _, points in frames)
    assert all(m["__name__"] == "app_requests_total" for m, _ in frames)


def test_errors_reach_grafana_as_envelopes(bridge: str) -> None:
    r = requests.post(f"{bridge}/api/v1/query", data={"query": "rate(x[5m]"}, headers=FORM)
    body = grafana_read(r)
    assert r.status_code == 400 and body["errorType"] == "bad_data"
    r = requests.post(
        f"{bridge}/api/v1/query_range",
        data={"query": "up", "start": "0", "end": "86400", "step": "1"},
        headers=FORM,
    )
    body = grafana_read(r)
    assert r.status_code == 400 and "11,000 points" in body["error"]


def test_post_fallback_rule_for_unknown_paths(bridge: str) -> None:
    # Grafana retries a POST answered 405 as GET; a 404 on POST would be a hard failure.
    r = requests.post(f"{bridge}/api/v1/status/tsdb", data="", headers=FORM)
    assert r.status_code == 405


def test_response_is_small_on_the_wire(bridge: str) -> None:
    # A dashboard-sized answer (3 series x 600 points, ~45 KB); answers under 8 KiB go plain.
    r = requests.get(
        f"{bridge}/api/v1/query_range",
        params={
            "query": "app_requests_total",
            "start": str(time.time() - 600),
            "end": str(time.time()),
            "step": "1",
        },
        headers={"Accept-Encoding": "gzip"},
    )
    assert r.headers.get("Content-Encoding") == "gzip"
    assert grafana_query_frames(r)


def test_bridge_answers_readiness(bridge: str) -> None:
    assert requests.get(f"{bridge}/-/ready").status_code == 200
    assert requests.get(f"{bridge}/-/healthy").status_code == 200
