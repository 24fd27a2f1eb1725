"""The PromQL engine's contract with the HTTP API: result shapes, Prometheus 3.x semantics
that dashboards depend on, and the error types the API maps to status codes."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from grafana_agent_bridge.labels import make_labels
from grafana_agent_bridge.promql import (
    Engine,
    EvaluationError,
    ParseError,
    QueryCanceledError,
    QueryTimeoutError,
    TooManySamplesError,
)
from grafana_agent_bridge.storage import STALE_NAN, SeriesBatch
from grafana_agent_bridge.store import Store, StoreOptions

MIN = 60_000


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = Store.open(tmp_path / "db", StoreOptions(compact_automatically=False))
    yield s
    s.close()


def put(store: Store, labels: dict[str, str], ts: list[int], vals: list[float]) -> None:
    res = store.append(
        [SeriesBatch(make_labels(labels), np.array(ts, dtype=np.int64), np.array(vals))]
    )
    assert not res.rejections


def counters(store: Store, n: int = 3, points: int = 31, step: int = 15_000) -> None:
    rng = np.random.default_rng(7)
    for i in range(n):
        ts = [k * step + int(rng.integers(0, 3000)) for k in range(points)]
        vals = np.cumsum(rng.integers(0, 100, points)).astype(float).tolist()
        vals[points // 2] = 0.0  # a counter reset
        put(store, {"__name__": "req_total", "job": "api", "instance": str(i)}, ts, vals)


def test_instant_vector_shape_and_name_dropping(store: Store) -> None:
    put(store, {"__name__": "up", "job": "a"}, [0, MIN], [1, 1])
    res = Engine(store).instant("up", MIN)
    assert res.result_type == "vector"
    assert res.value == [(make_labels({"__name__": "up", "job": "a"}), MIN, 1.0)]
    res = Engine(store).instant("up * 2", MIN)
    assert res.value == [(make_labels({"job": "a"}), MIN, 2.0)]


def test_scalar_and_string_results(store: Store) -> None:
    eng = Engine(store)
    assert eng.instant("1 + 2", 5000).result_type == "scalar"
    assert eng.instant("1 + 2", 5000).value == (5000, 3.0)
    assert eng.instant('"hi"', 5000).value == (5000, "hi")


def test_range_query_equals_instant_query_at_every_step(store: Store) -> None:
    """Range evaluation is vectorised over all steps; it must agree with step-by-step."""
    counters(store)
    eng = Engine(store)
    queries = [
        "req_total",
        "rate(req_total[1m])",
        "sum by (job) (increase(req_total[2m]))",
        "irate(req_total[1m]) > bool 1",
        "max_over_time(req_total[90s]) - min_over_time(req_total[90s] offset 30s)",
        "topk(2, req_total)",
        "avg(rate(req_total[1m])) + on() group_left vector(1)",
        "sum_over_time(rate(req_total[1m])[2m:20s])",
        "quantile(0.9, req_total)",
        'count_values("v", round(req_total / 100))',
    ]
    for q in queries:
        rr = eng.range(q, 60_000, 420_000, 30_000)
        got = {
            (s.labels, int(t)): float(v)
            for s in rr.value  # type: ignore[attr-defined]
            for t, v in zip(s.timestamps, s.values)
        }
        want = {}
        for t in range(60_000, 420_001, 30_000):
            for lb, ts, v in eng.instant(q, t).value:  # type: ignore[attr-defined]
                want[(lb, ts)] = v
        assert got.keys() == want.keys(), q
        for k, v in want.items():
            assert got[k] == pytest.approx(v, rel=1e-9, nan_ok=True), (q, k)


def test_range_result_is_sorted_matrix(store: Store) -> None:
    counters(store)
    rr = Engine(store).range("req_total", 0, 300_000, 15_000)
    assert rr.result_type == "matrix"
    labels = [s.labels for s in rr.value]  # type: ignore[attr-defined]
    assert labels == sorted(labels) and len(labels) == 3


def test_windows_are_left_open(store: Store) -> None:
    put(store, {"__name__": "g"}, [0, 10_000, 20_000, 40_000], [1, 1, 1, 1])
    res = Engine(store).instant("count_over_time(g[1m])", 60_000)
    assert res.value[0][2] == 3.0  # type: ignore[index]  # the sample at t-1m is out


def test_lookback_and_staleness(store: Store) -> None:
    put(store, {"__name__": "g", "a": "1"}, [0, 30_000], [5, STALE_NAN])
    put(store, {"__name__": "g", "a": "2"}, [0], [7])
    eng = Engine(store)
    assert [v for _, _, v in eng.instant("g", 20_000).value] == [5.0, 7.0]  # type: ignore[attr-defined]
    assert [v for _, _, v in eng.instant("g", 40_000).value] == [7.0]  # type: ignore[attr-defined]
    assert eng.instant("g", 300_001).value == []
    assert len(eng.instant("g", 299_000, lookback_delta_ms=1000).value) == 0  # type: ignore[arg-type]


def test_offset_at_and_subquery(store: Store) -> None:
    put(store, {"__name__": "g"}, [k * MIN for k in range(11)], [float(k) for k in range(11)])
    eng = Engine(store)
    assert eng.instant("g offset 3m", 10 * MIN).value[0][2] == 7.0  # type: ignore[index]
    assert eng.instant("g @ 120", 10 * MIN).value[0][2] == 2.0  # type: ignore[index]
    rr = eng.range("g @ end()", 0, 5 * MIN, MIN)
    assert rr.value[0].values.tolist() == [5.0] * 6  # type: ignore[index]
    # 5 sub-steps at 2m..10m (left-open at 10m-10m=0... aligned to 2m)
    assert eng.instant("sum_over_time(g[10m:2m])", 10 * MIN).value[0][2] == 2 + 4 + 6 + 8 + 10  # type: ignore[index]


def test_regex_matchers_are_anchored_re2(store: Store) -> None:
    put(store, {"__name__": "m", "env": "Production"}, [0], [1])
    put(store, {"__name__": "m", "env": "prod"}, [0], [2])
    eng = Engine(store)
    assert len(eng.instant('m{env=~"prod"}', 0).value) == 1  # type: ignore[arg-type]
    assert len(eng.instant('m{env=~"(?i)prod.*"}', 0).value) == 2  # type: ignore[arg-type]
    assert len(eng.instant('m{env=~"[[:upper:]].*"}', 0).value) == 1  # type: ignore[arg-type]


def test_label_replace_go_template(store: Store) -> None:
    put(store, {"__name__": "m", "src": "a-b"}, [0], [1])
    res = Engine(store).instant('label_replace(m, "dst", "${1}x$2", "src", "(.*)-(.*)")', 0)
    assert dict(res.value[0][0])["dst"] == "axb"  # type: ignore[index]


def test_errors_carry_api_error_types(store: Store) -> None:
    counters(store)
    put(store, {"__name__": "other", "job": "api", "x": "1"}, [0], [1])
    put(store, {"__name__": "other", "job": "api", "x": "2"}, [0], [1])
    eng = Engine(store)
    with pytest.raises(ParseError) as e:
        eng.instant("sum(", 0)
    assert e.value.error_type == "bad_data"
    with pytest.raises(ParseError):
        eng.range("req_total[5m]", 0, 60_000, 15_000)
    with pytest.raises(EvaluationError, match="many-to-many matching not allowed") as e2:
        eng.instant("req_total + on(job) other", 60_000)
    assert e2.value.error_type == "execution"
    with pytest.raises(TooManySamplesError) as e3:
        Engine(store, max_samples=10).instant("req_total[10m]", 450_000)
    assert e3.value.error_type == "execution"
    with pytest.raises(QueryTimeoutError) as e4:
        eng.instant("rate(req_total[1m])", 60_000, timeout_s=0.0)
    assert e4.value.error_type == "timeout"
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(QueryCanceledError) as e5:
        eng.instant("req_total", 0, cancel=cancel)
    assert e5.value.error_type == "canceled"


def test_a_repeated_query_text_answers_each_time_from_its_own_times_and_limits(
    store: Store,
) -> None:
    # Parsed texts are cached per engine: a dashboard's repeats must still see the new data
    # and times, a refused text must stay refused, and another engine's limits still apply.
    from grafana_agent_bridge.promql.querytext import TextLimits

    put(store, {"__name__": "up", "job": "a"}, [0, MIN], [1, 2])
    eng = Engine(store)
    assert eng.instant("up", 0).value[0][2] == 1.0  # type: ignore[index]
    assert eng.instant("up", MIN).value[0][2] == 2.0  # type: ignore[index]
    put(store, {"__name__": "up", "job": "a"}, [2 * MIN], [3])
    assert eng.instant("up", 2 * MIN).value[0][2] == 3.0  # type: ignore[index]
    for _ in range(2):
        with pytest.raises(ParseError):
            eng.instant("up{", MIN)
    deep = "(" * 20 + "up" + ")" * 20
    assert eng.instant(deep, MIN).value
    with pytest.raises(ParseError, match="max_nesting_depth"):
        Engine(store, text_limits=TextLimits(max_depth=10)).instant(deep, MIN)


@pytest.mark.parametrize("fn", ["rate", "increase", "delta"])
def test_functions_over_many_series_give_each_series_its_own_result(store: Store, fn: str) -> None:
    """Wide range queries are evaluated in blocks of rows (and selected in bulk): every
    series' result must be exactly what a query for that series alone gives, in every
    block, resets included."""
    rng = np.random.default_rng(11)
    n, points = 700, 240
    batches = []
    for i in range(n):
        ts = np.arange(points, dtype=np.int64) * 15_000 + int(rng.integers(0, 5000))
        vals = np.cumsum(rng.random(points) * 10)
        vals[rng.integers(0, points, 3)] = 0.5  # resets
        batches.append(
            SeriesBatch(make_labels({"__name__": "c_total", "i": f"{i:04d}"}), ts, vals)
        )
    assert not store.append(batches).rejections
    engine = Engine(store)
    wide = engine.range(f"{fn}(c_total[1m])", 60_000, 3_500_000, 15_000).value
    assert len(wide) == n
    for i in (0, 283, 284, 567, 568, 699):  # (blocks of 65536 // 230 steps = 284 rows)
        (alone,) = engine.range(
            f'{fn}(c_total{{i="{i:04d}"}}[1m])', 60_000, 3_500_000, 15_000
        ).value
        got = wide[i]
        assert got.labels == alone.labels
        assert got.timestamps.tolist() == alone.timestamps.tolist()
        assert got.values.tobytes() == alone.values.tobytes()
