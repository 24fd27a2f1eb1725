"""The query limits, in process with the real store and engine: each refuses before the cost is
paid (memory measured with tracemalloc, time with a clock) and names its configuration key."""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from grafana_agent_bridge.api import QueryAPI
from grafana_agent_bridge.api.params import Params
from grafana_agent_bridge.api.routes import answer
from grafana_agent_bridge.labels import make_labels
from grafana_agent_bridge.promql import Engine, QueryTimeoutError, TooManySamplesError
from grafana_agent_bridge.promql.errors import ParseError
from grafana_agent_bridge.promql.promqltest.memquerier import MemoryStore
from grafana_agent_bridge.promql.querytext import TextLimits
from grafana_agent_bridge.storage import SeriesBatch
from grafana_agent_bridge.store import Store

NOW = 100_000_000


def _store(series: int = 3) -> MemoryStore:
    s = MemoryStore()
    ts = np.arange(NOW - 3_600_000, NOW, 15_000, dtype=np.int64)
    for i in range(series):
        lb = make_labels({"__name__": "x", "i": str(i)})
        s.append([SeriesBatch(lb, ts, np.arange(len(ts), dtype=np.float64))])
    return s


@pytest.mark.parametrize("window", ["12h", "1d", "30d"])
def test_a_fine_subquery_is_refused_before_its_arrays_exist(window: str) -> None:
    engine = Engine(_store(), max_memory_bytes=256 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(TooManySamplesError, match=r"query\.max_memory"):
            engine.instant(f'max_over_time(x{{i="0"}}[{window}:1ms])', NOW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak >> 20} MiB allocated before the refusal"


def test_the_estimate_stays_above_what_a_subquery_really_allocates() -> None:
    """Calibration: a subquery the budget admits must not use more than it was charged."""
    engine = Engine(_store(50), max_memory_bytes=1 << 40)
    charged: list[int] = []
    original = engine._evaluator

    def spy(**kw: object):  # type: ignore[no-untyped-def]
        ev = original(**kw)  # type: ignore[arg-type]
        charged.append(0)
        reserve = ev.ctx.reserve_bytes

        def counting(n: int) -> None:
            charged[-1] += n
            reserve(n)

        ev.ctx.reserve_bytes = counting  # type: ignore[method-assign]
        return ev

    engine._evaluator = spy  # type: ignore[method-assign]
    tracemalloc.start()
    try:
        engine.instant("max_over_time(x[10m:100ms])", NOW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert charged[0] >= peak, (charged[0] >> 20, peak >> 20)


def test_count_values_is_charged_per_new_row() -> None:
    engine = Engine(_store(20), max_memory_bytes=2 << 20)
    with pytest.raises(TooManySamplesError, match=r"query\.max_memory"):
        engine.range('count_values("v", x)', NOW - 3_000_000, NOW, 15_000)


def test_ordinary_queries_fit_the_default_budget() -> None:
    engine = Engine(_store(200))
    for q in ("sum(rate(x[5m]))", "x", "max_over_time(x[10m:15s])", "topk(3, x)"):
        engine.range(q, NOW - 3_600_000, NOW, 15_000)


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("(" * 300 + "x" + ")" * 300, "query.max_nesting_depth"),
        ("x" + " + x" * 300, "query.max_nesting_depth"),
        ("x" + " " * 5_000, "query.max_query_length"),
    ],
)
def test_text_limits_name_their_key(query: str, key: str) -> None:
    engine = Engine(_store(), text_limits=TextLimits(max_length=4_096, max_depth=200))
    with pytest.raises(ParseError, match=key.replace(".", r"\.")):
        engine.instant(query, NOW)


def test_a_slow_window_loop_honours_the_timeout() -> None:
    """One series, many windows of the exact (Python) path: the deadline is checked inside."""
    engine = Engine(_store(1))
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError):
        engine.range(
            "quantile_over_time(0.5, x[1h:10ms])", NOW - 3_600_000, NOW, 1_000, timeout_s=0.3
        )
    assert time.monotonic() - started < 2.0


def test_metadata_requests_take_a_slot_and_end_at_the_deadline(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db")
    try:
        ts = np.array([NOW], dtype=np.int64)
        store.append(
            [
                SeriesBatch(make_labels({"__name__": "m", "id": str(i)}), ts, np.ones(1))
                for i in range(5_000)
            ]
        )
        api = QueryAPI(Engine(store), store, timeout_s=0.5, max_concurrent_queries=1)
        many = "&".join(f"match[]=m{{id!=%22{i}%22}}" for i in range(2_000))
        answers: list = []
        threads = [
            threading.Thread(target=lambda p=p: answers.append(answer(api, p, Params(many))))
            for p in ("/api/v1/series", "/api/v1/labels", "/api/v1/label/id/values")
        ]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        took = time.monotonic() - started
        assert [a.status for a in answers] == [503, 503, 503], [a.body[:200] for a in answers]
        assert all(b'"errorType":"timeout"' in a.body for a in answers)
        assert took < 2.0  # each within the 0.5 s timeout, queue wait included
    finally:
        store.close()
