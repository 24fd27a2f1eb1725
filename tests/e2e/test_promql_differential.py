"""The bridge's PromQL engine against the real Prometheus, point by point.

The same generated data (counters with resets, gauges, classic histogram buckets, a series
that ends, explicit stale markers) is remote-written to a Prometheus started for the test and
appended to a bridge store; then hand-written and random queries are asked of both, instant
and range, and every series and value must agree within 1e-6.

Debian's Prometheus is 2.42 (2.x semantics): closed range windows, rate extrapolation that
differs when a series starts inside the window, subquery alignment that differs when an
evaluation time is a multiple of the subquery step. So sample timestamps are odd milliseconds
while every evaluation time, range and offset is even (no window edge ever falls on a sample),
all series start before the first window, and evaluation times are never multiples of 10 s.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import requests

from grafana_agent_bridge.labels import Labels, make_labels
from grafana_agent_bridge.promql import Engine, PromQLError
from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import STALE_NAN, SeriesBatch
from grafana_agent_bridge.store import Store, StoreOptions
from tests.support import PROMETHEUS, require_prometheus, start_prometheus, stop_process

SCRAPE = 15_000
POINTS = 160  # 40 minutes of data
FIRST_MS = 25 * 60_000 + 7_000
"""Earliest evaluation time after the first sample: longer than any range + subquery range +
offset used below, so no window (inner or outer) starts before a series does."""


@dataclass
class Env:
    prom: str
    engine: Engine
    base: int  # first sample time (ms), a multiple of 60 s
    end: int  # last sample time


def _generate(base: int) -> list[SeriesBatch]:
    rng = np.random.default_rng(2024)
    out: list[SeriesBatch] = []

    def times(n: int = POINTS) -> np.ndarray:
        jitter = rng.integers(500, 4500, n) * 2 + 1  # odd milliseconds
        return base + np.arange(n, dtype=np.int64) * SCRAPE + jitter

    for inst in ("i0", "i1", "i2"):
        for path in ("/a", "/b"):
            for code in ("200", "500"):
                inc = rng.integers(0, 20, POINTS).astype(float) * (0.5 if code == "500" else 1)
                vals = np.cumsum(inc) + 3
                if inst == "i1" and path == "/a":
                    vals[70:] -= vals[70] - 1  # a counter reset
                labels = {
                    "__name__": "dt_requests_total",
                    "job": "api",
                    "instance": inst,
                    "path": path,
                    "code": code,
                }
                out.append(SeriesBatch(make_labels(labels), times(), vals))
    for room in ("hall", "kitchen", "cellar"):
        for floor in ("0", "1"):
            walk = 20 + np.cumsum(rng.normal(0, 0.7, POINTS))
            labels = {"__name__": "dt_temp_celsius", "room": room, "floor": floor}
            out.append(SeriesBatch(make_labels(labels), times(), walk))
    for inst in ("i0", "i1"):
        counts = np.zeros(POINTS)
        les = ("0.05", "0.1", "0.25", "0.5", "1", "+Inf")
        obs = rng.exponential(0.2, (POINTS, 40))
        for le in les:
            bound = math.inf if le == "+Inf" else float(le)
            counts = np.cumsum((obs <= bound).sum(axis=1)).astype(float)
            labels = {"__name__": "dt_latency_seconds_bucket", "le": le, "instance": inst}
            out.append(SeriesBatch(make_labels(labels), times(), counts))
    # A series that stops half-way (disappears after the lookback) and one that is marked
    # stale explicitly, then comes back.
    t = times()
    out.append(
        SeriesBatch(
            make_labels({"__name__": "dt_temp_celsius", "room": "attic", "floor": "2"}),
            t[:110],
            15 + rng.normal(0, 1, 110),
        )
    )
    vals = rng.normal(5, 1, POINTS)
    vals[110] = STALE_NAN
    out.append(SeriesBatch(make_labels({"__name__": "dt_flappy", "job": "api"}), t, vals))
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    require_prometheus()
    tmp = tmp_path_factory.mktemp("promql-diff")
    proc, url = start_prometheus(
        PROMETHEUS,
        tmp / "prometheus",
        "global:\n  scrape_interval: 1m\nstorage:\n  tsdb:\n    out_of_order_time_window: 100y\n",
    )
    store = Store.open(tmp / "bridge-data", StoreOptions(compact_automatically=False))
    try:
        now = int(time.time() * 1000)
        base = (now - 50 * 60_000) // 60_000 * 60_000
        series = _generate(base)
        body = encode_write_request(series)
        r = requests.post(
            f"{url}/api/v1/write", data=body, headers=REMOTE_WRITE_HEADERS, timeout=30
        )
        assert r.status_code == 204, r.text
        res = store.append(series)
        assert not res.rejections
        yield Env(url, Engine(store), base, base + POINTS * SCRAPE)
    finally:
        store.close()
        stop_process(proc)


def _prom(env: Env, path: str, **params: str | float) -> tuple[str, object]:
    r = requests.get(f"{env.prom}/api/v1/{path}", params=params, timeout=30)
    body = r.json()
    if body["status"] != "success":
        return "error", body.get("error")
    return body["data"]["resultType"], body["data"]["result"]


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b)) or abs(a - b) < 1e-9


def _labels(metric: dict[str, str]) -> Labels:
    return make_labels(metric)


def compare_instant(env: Env, query: str, t_ms: int) -> str | None:
    kind, want = _prom(env, "query", query=query, time=t_ms / 1000)
    try:
        res = env.engine.instant(query, t_ms)
    except PromQLError as e:
        return None if kind == "error" else f"bridge error {e}, Prometheus answered"
    if kind == "error":
        return f"Prometheus error {want}, bridge answered {res.value}"
    if kind != res.result_type:
        return f"type {res.result_type} != {kind}"
    if kind == "scalar":
        return None if _close(res.value[1], float(want[1])) else f"{res.value} != {want}"  # type: ignore[index]
    assert kind == "vector"
    got = {lb: v for lb, _, v in res.value}  # type: ignore[attr-defined]
    exp = {_labels(s["metric"]): float(s["value"][1]) for s in want}  # type: ignore[attr-defined]
    if got.keys() != exp.keys():
        return f"series differ: bridge-only {set(got) - set(exp)}, prom-only {set(exp) - set(got)}"
    for lb, v in exp.items():
        if not _close(got[lb], v):
            return f"{lb}: bridge {got[lb]!r} != prometheus {v!r}"
    return None


def compare_range(
    env: Env, query: str, start: int, end: int, step: int, *, nonempty: bool = False
) -> str | None:
    kind, want = _prom(
        env, "query_range", query=query, start=start / 1000, end=end / 1000, step=step / 1000
    )
    if nonempty and not want:
        return "Prometheus returned nothing: the query does not test anything"
    try:
        res = env.engine.range(query, start, end, step)
    except PromQLError as e:
        return None if kind == "error" else f"bridge error {e}, Prometheus answered"
    if kind == "error":
        return f"Prometheus error {want}, bridge answered"
    got = {
        s.labels: dict(zip(s.timestamps.tolist(), s.values.tolist()))
        for s in res.value  # type: ignore[attr-defined]
    }
    exp = {
        _labels(s["metric"]): {round(float(t) * 1000): float(v) for t, v in s["values"]}
        for s in want  # type: ignore[attr-defined]
    }
    if got.keys() != exp.keys():
        return f"series differ: bridge-only {set(got) - set(exp)}, prom-only {set(exp) - set(got)}"
    for lb, pts in exp.items():
        if pts.keys() != got[lb].keys():
            return f"{lb}: steps differ {sorted(set(pts) ^ set(got[lb]))[:5]}"
        for t, v in pts.items():
            if not _close(got[lb][t], v):
                return f"{lb} @ {t}: bridge {got[lb][t]!r} != prometheus {v!r}"
    return None


HAND_WRITTEN = [
    "dt_requests_total",
    'dt_requests_total{path=~"/a|/b", code!="500", instance!~"i2"}',
    '{__name__=~"dt_.*", job="api"}',
    "rate(dt_requests_total[5m])",
    "sum by (path) (rate(dt_requests_total[2m]))",
    "sum without (instance, code) (increase(dt_requests_total[10m]))",
    "irate(dt_requests_total[1m]) * 60",
    "resets(dt_requests_total[20m])",
    "changes(dt_temp_celsius[10m])",
    "delta(dt_temp_celsius[5m])",
    "idelta(dt_temp_celsius[2m])",
    "deriv(dt_temp_celsius[10m])",
    "predict_linear(dt_temp_celsius[10m], 600)",
    "holt_winters(dt_temp_celsius[10m], 0.3, 0.6)",
    "avg_over_time(dt_temp_celsius[7m]) - min_over_time(dt_temp_celsius[7m] offset 3m)",
    "stddev_over_time(dt_temp_celsius[10m])",
    "quantile_over_time(0.9, dt_temp_celsius[10m])",
    "last_over_time(dt_flappy[10m])",
    "dt_flappy",
    "count_over_time(dt_flappy[3m])",
    'absent(dt_temp_celsius{room="attic"})',
    'absent_over_time(dt_temp_celsius{room="attic"}[1m])',
    "histogram_quantile(0.9, sum by (le) (rate(dt_latency_seconds_bucket[5m])))",
    "histogram_quantile(0.5, rate(dt_latency_seconds_bucket[10m]))",
    "topk(3, dt_temp_celsius)",
    "bottomk by (room) (1, dt_temp_celsius)",
    "quantile by (floor) (0.3, dt_temp_celsius)",
    'count_values("t", round(dt_temp_celsius))',
    "stddev(dt_temp_celsius) + stdvar(dt_temp_celsius)",
    "group by (room) (dt_temp_celsius)",
    "dt_temp_celsius > bool 20",
    "dt_temp_celsius > 20 < 25",
    "rate(dt_requests_total[5m]) / on(instance, path) group_left sum by (instance, path) "
    "(rate(dt_requests_total[5m]))",
    "sum by (instance) (rate(dt_requests_total[5m])) and on(instance) "
    "(sum by (instance) (rate(dt_requests_total[5m])) > 2)",
    'dt_temp_celsius{floor="0"} or dt_temp_celsius{room="hall"}',
    'dt_temp_celsius unless on(room) dt_temp_celsius{floor="1"} > 21',
    'label_replace(dt_temp_celsius, "where", "$1-$2", "room", "(.)(.*)")',
    'label_join(dt_temp_celsius, "id", "/", "room", "floor")',
    "clamp(dt_temp_celsius, 19, 21) + clamp_min(dt_temp_celsius, 20)"
    " - clamp_max(dt_temp_celsius, 20)",
    "abs(delta(dt_temp_celsius[3m])) ^ 0.5 % 3",
    "scalar(sum(dt_flappy)) * vector(2)",
    'timestamp(dt_temp_celsius{room="hall"})',
    "max_over_time(rate(dt_requests_total[2m])[10m:30s])",
    "avg_over_time(dt_temp_celsius[5m:20s] offset 1m)",
    "sum(dt_requests_total offset 5m)",
    "time() - timestamp(dt_flappy)",
    "-dt_temp_celsius",
    "dt_temp_celsius @ start() - dt_temp_celsius",
    "rate(dt_requests_total[5m] @ start())",
    "sum_over_time(dt_temp_celsius[10m:1m] @ end() offset 2m)",
    "sgn(deriv(dt_temp_celsius[5m])) * exp(ln(abs(dt_temp_celsius)))",
]


def _times(env: Env) -> list[int]:
    """Instant evaluation times: even, never a multiple of 10 s, all windows after series start."""
    first = env.base + FIRST_MS
    return [first, first + 5 * 60_000 + 22_000, env.end - 3 * 60_000 + 7_000, env.end + 2_000 * 61]


@pytest.mark.parametrize("query", HAND_WRITTEN)
def test_hand_written_queries_match_prometheus(env: Env, query: str) -> None:
    problems = []
    for t in _times(env):
        p = compare_instant(env, query, t)
        if p:
            problems.append(f"instant @{t}: {p}")
    start = env.base + FIRST_MS
    p = compare_range(env, query, start, start + 25 * 60_000, 15_000, nonempty=True)
    if p:
        problems.append(f"range: {p}")
    assert not problems, "\n".join(problems)


def _random_query(rng: random.Random) -> str:
    sel = rng.choice(
        [
            "dt_requests_total",
            'dt_requests_total{code="200"}',
            'dt_requests_total{path!="/a"}',
            'dt_requests_total{instance=~"i[01]"}',
        ]
    )
    gauge = rng.choice(["dt_temp_celsius", 'dt_temp_celsius{floor="1"}', "dt_flappy"])
    rng_ = rng.choice(["1m", "2m", "5m", "7m", "10m"])
    labels = rng.sample(["instance", "path", "code", "job"], rng.randint(0, 2))
    grouping = rng.choice(["by", "without"]) + f" ({', '.join(labels)})"
    counter_fn = rng.choice(["rate", "increase", "irate", "resets", "changes"])
    gauge_fn = rng.choice(
        [
            "avg_over_time",
            "min_over_time",
            "max_over_time",
            "sum_over_time",
            "count_over_time",
            "last_over_time",
            "stdvar_over_time",
            "delta",
            "deriv",
            "idelta",
        ]
    )
    agg = rng.choice(["sum", "avg", "min", "max", "count", "stddev", "group"])
    inner = rng.choice(
        [
            f"{counter_fn}({sel}[{rng_}])",
            f"{agg} {grouping} ({counter_fn}({sel}[{rng_}]))",
            f"{gauge_fn}({gauge}[{rng_}])",
            f"{agg} {grouping} ({sel})",
            f"{gauge_fn}({gauge}[{rng_}] offset {rng.choice(['1m', '3m'])})",
            f"{agg} without (floor) ({gauge_fn}({gauge}[{rng_}]))",
            f"{gauge_fn}(({counter_fn}({sel}[{rng_}]))[{rng.choice(['5m', '10m'])}:"
            f"{rng.choice(['20s', '30s', '1m'])}])",
        ]
    )
    if rng.random() < 0.3:
        k = rng.choice(["1", "2", "3"])
        # topk/bottomk only over continuous values: ties are broken differently.
        smooth = f"{rng.choice(['avg_over_time', 'last_over_time', 'deriv'])}({gauge}[{rng_}])"
        inner = rng.choice([
            f"topk({k}, {smooth})",
            f"bottomk by (room) ({k}, {smooth})",
            f"quantile {grouping} ({rng.choice(['0.1', '0.5', '0.99'])}, {inner})",
            f'count_values {grouping} ("v", round({smooth}))',
            f"({inner}) {rng.choice(['+', '-', '/', '>', '<='])} on(instance, path) "
            f"group_left() sum by (instance, path) (rate({sel}[{rng_}]))",
            f"({inner}) {rng.choice(['and', 'or', 'unless'])} "
            + rng.choice(["dt_requests_total", 'dt_temp_celsius{room="hall"}']),
        ])  # fmt: skip
    op = rng.choice(
        ["", " * 2", " + 1", " > bool 1", " > 0.5", " / 3", " - on() group_left vector(1)", " ^ 2"]
    )
    return inner + op


def test_random_queries_match_prometheus(env: Env) -> None:
    rng = random.Random(42)
    problems = []
    start = env.base + FIRST_MS
    deadline = time.monotonic() + 60
    n = 0
    while n < 200 and time.monotonic() < deadline:
        q = _random_query(rng)
        t = rng.choice(_times(env))
        for p in (
            compare_instant(env, q, t),
            compare_range(
                env, q, start, start + 20 * 60_000, rng.choice([15_000, 30_000, 64_000])
            ),
        ):
            if p:
                problems.append(f"{q}: {p}")
        n += 1
    assert n >= 40
    assert not problems, "\n".join(problems[:20])
