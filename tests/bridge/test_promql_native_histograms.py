"""Native histograms through the engine and the HTTP API's JSON, on the in-memory store."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from grafana_agent_bridge.api.encoding import result_json
from grafana_agent_bridge.histogram.model import FloatHistogram, Span
from grafana_agent_bridge.labels import make_labels
from grafana_agent_bridge.promql.engine import Engine
from grafana_agent_bridge.promql.errors import PromQLError
from grafana_agent_bridge.promql.parser import parse_with_trims
from grafana_agent_bridge.promql.promqltest.memquerier import MemoryStore
from grafana_agent_bridge.storage import SeriesBatch


def _hist(count: float) -> FloatHistogram:
    """``count`` observations, half in (0.5, 1] and half in (1, 2] (schema 0)."""
    return FloatHistogram(
        schema=0,
        count=count,
        sum=count * 1.25,
        positive_spans=(Span(0, 2),),
        positive_buckets=(count / 2, count / 2),
    )


def _store() -> MemoryStore:
    store = MemoryStore()
    ts = np.arange(0, 600_000, 60_000, dtype=np.int64)
    hs: list[FloatHistogram | None] = [_hist(10.0 * i) for i in range(len(ts))]
    store.append(
        [
            SeriesBatch(
                make_labels({"__name__": "req"}), ts, np.full(len(ts), math.nan), histograms=hs
            ),
            SeriesBatch(make_labels({"__name__": "up"}), ts, np.ones(len(ts))),
        ]
    )
    return store


def test_instant_histogram_sample_is_encoded_under_histogram() -> None:
    res = Engine(_store()).instant("req", 540_000)
    data = json.loads(result_json(res.result_type, res.value))
    (sample,) = data["result"]
    assert "value" not in sample
    t, body = sample["histogram"]
    assert t == 540
    assert body["count"] == "90"
    assert body["sum"] == "112.5"
    assert body["buckets"] == [[0, "0.5", "1", "45"], [0, "1", "2", "45"]]


def test_rate_of_a_histogram_counter_is_a_histogram() -> None:
    res = Engine(_store()).instant("rate(req[5m])", 540_000)
    ((labels, _, h),) = res.value  # type: ignore[misc]
    assert labels == ()
    assert isinstance(h, FloatHistogram)
    # 10 observations a minute, extrapolated over the whole 5m window: 1/6 per second.
    assert math.isclose(h.count, 1 / 6)
    count = Engine(_store()).instant("histogram_count(rate(req[5m]))", 540_000)
    assert math.isclose(count.value[0][2], 1 / 6)  # type: ignore[index]


def test_range_query_keeps_floats_and_histograms_apart() -> None:
    res = Engine(_store()).range('{__name__=~"req|up"}', 480_000, 540_000, 60_000)
    data = json.loads(result_json(res.result_type, res.value))
    by_name = {s["metric"]["__name__"]: s for s in data["result"]}
    assert "values" not in by_name["req"]
    assert [p[0] for p in by_name["req"]["histograms"]] == [480, 540]
    assert "histograms" not in by_name["up"]
    assert by_name["up"]["values"] == [[480, "1"], [540, "1"]]


def test_float_functions_drop_histograms_and_sum_adds_them() -> None:
    engine = Engine(_store())
    assert engine.instant("abs(req)", 540_000).value == []
    total = engine.instant("sum(req)", 540_000).value
    assert isinstance(total[0][2], FloatHistogram)  # type: ignore[index]
    mixed = engine.instant('sum({__name__=~"req|up"})', 540_000)
    assert mixed.value == []
    assert mixed.warnings == [
        "PromQL warning: encountered a mix of histograms and floats for aggregation"
    ]


def test_trim_operators_parse_through_an_unused_comparison() -> None:
    _, trims = parse_with_trims(
        'req </ 1 == req >/ 0 and on() label_replace(up, "a", "</", "", "")'
    )
    assert trims == {"!=": "</", ">=": ">/"}
    res = Engine(_store()).instant("req </ 1", 540_000)
    ((labels, _, h),) = res.value  # type: ignore[misc]
    assert dict(labels) == {"__name__": "req"}
    assert isinstance(h, FloatHistogram)
    assert h.count == 45


def test_limit_ratio_hash_is_xxh64_of_the_labels() -> None:
    from grafana_agent_bridge.promql.ratiosample import in_sample, xxh64

    # Reference values of XXH64 (seed 0) from its specification's test vectors.
    assert xxh64(b"") == 0xEF46DB3751D8E999
    assert xxh64(b"abc") == 0x44BC2CF5AD770999
    assert xxh64(b"Nobody inspects the spammish repetition") == 0xFBCEA83C8A378BF1
    lb = make_labels({"__name__": "x", "a": "b"})
    assert in_sample(lb, 1.0)
    assert not in_sample(lb, 0.0)
    assert in_sample(lb, 0.5) != in_sample(lb, -0.5)


def test_topk_keeps_equal_values_as_prometheus_heap_does() -> None:
    """Series a=1, b=2, c=2, d=2: the heap keeps b and c (d never beats an equal top) and
    Go's sort of the heap yields c before b."""
    store = MemoryStore()
    ts = np.array([0], dtype=np.int64)
    for name, v in (("a", 1.0), ("b", 2.0), ("c", 2.0), ("d", 2.0)):
        store.append([SeriesBatch(make_labels({"__name__": "x", "s": name}), ts, np.array([v]))])
    res = Engine(store).instant("topk(2, x)", 0)
    assert [dict(lb)["s"] for lb, _, _ in res.value] == ["c", "b"]  # type: ignore[union-attr]
    low = Engine(store).instant("bottomk(2, x)", 0)
    assert [dict(lb)["s"] for lb, _, _ in low.value] == ["a", "b"]  # type: ignore[union-attr]


def _counter_store() -> MemoryStore:
    store = MemoryStore()
    ts = np.arange(0, 600_000, 60_000, dtype=np.int64)
    for name in ("a_total", "b_total"):
        lb = make_labels({"__name__": name, "job": "j"})
        store.append([SeriesBatch(lb, ts, np.arange(len(ts), dtype=np.float64))])
    return store


def test_delayed_name_removal_lets_label_replace_see_the_name() -> None:
    q = 'label_replace(rate(a_total[5m]), "n", "$1", "__name__", "(.*)")'
    delayed = Engine(_counter_store(), delayed_name_removal=True).instant(q, 540_000)
    assert [dict(lb) for lb, _, _ in delayed.value] == [{"job": "j", "n": "a_total"}]  # type: ignore[union-attr]
    eager = Engine(_counter_store()).instant(q, 540_000)  # Prometheus's production default
    assert [dict(lb) for lb, _, _ in eager.value] == [{"job": "j"}]  # type: ignore[union-attr]
    # A name set explicitly is kept; clashing names still fail at the end.
    named = 'label_replace(rate(a_total[5m]), "__name__", "r", "", "")'
    res = Engine(_counter_store(), delayed_name_removal=True).instant(named, 540_000)
    assert [dict(lb) for lb, _, _ in res.value] == [{"__name__": "r", "job": "j"}]  # type: ignore[union-attr]
    sub = Engine(_counter_store(), delayed_name_removal=True).instant(
        "rate(a_total[5m])[2m:1m]", 540_000
    )
    assert [s.labels for s in sub.value] == [(("job", "j"),)]  # type: ignore[union-attr]
    with pytest.raises(PromQLError, match="same labelset"):
        Engine(_counter_store(), delayed_name_removal=True).instant('rate({job="j"}[5m])', 540_000)


def test_histogram_samples_are_charged_to_the_memory_budget() -> None:
    """A budget that holds the floats of a window does not hold as many histograms."""
    budget = 5000  # ten float samples take about 0.5 KB, ten histograms over 10 KB
    Engine(_store(), max_memory_bytes=budget).instant("up", 540_000)
    with pytest.raises(PromQLError, match="too many samples"):
        Engine(_store(), max_memory_bytes=budget).instant("count_over_time(req[10m])", 540_000)
    Engine(_store(), max_memory_bytes=budget).instant("count_over_time(up[10m])", 540_000)


def test_info_keeps_histogram_samples_and_refuses_histogram_info_series() -> None:
    store = MemoryStore()
    ts = np.array([0], dtype=np.int64)
    ident = {"instance": "a", "job": "j"}
    store.append(
        [
            SeriesBatch(
                make_labels({"__name__": "h", **ident}),
                ts,
                np.array([math.nan]),
                histograms=[_hist(4.0)],
            ),
            SeriesBatch(
                make_labels({"__name__": "target_info", "v": "1", **ident}), ts, np.ones(1)
            ),
        ]
    )
    ((labels, _, h),) = Engine(store).instant("info(h)", 0).value  # type: ignore[misc]
    assert dict(labels)["v"] == "1"
    assert isinstance(h, FloatHistogram)
    with pytest.raises(PromQLError, match="info sample should be float"):
        Engine(store).instant('info(target_info, {__name__="h"})', 0)


def _two_counters_store() -> MemoryStore:
    """One series of one name that a query keeps as it is, one that ``rate`` derives from."""
    store = MemoryStore()
    ts = np.arange(0, 660_000, 60_000, dtype=np.int64)
    for env, slope in (("1", 1.0), ("2", 3.0)):
        lb = make_labels({"__name__": "m_total", "env": env})
        store.append([SeriesBatch(lb, ts, slope * np.arange(len(ts), dtype=np.float64))])
    return store


@pytest.mark.parametrize(
    "query",
    [
        'sum by (__name__) (m_total{env="1"} or rate(m_total{env="2"}[5m]))',
        'sum by (__name__) (rate(m_total{env="2"}[5m]) or m_total{env="1"})',
    ],
)
def test_a_name_group_loses_its_name_if_any_member_had_it_dropped(query: str) -> None:
    """With delayed name removal, ``by (__name__)`` puts a raw series and a rate of the same
    name in one group (Prometheus keys groups on the name either way); the sum then loses the
    name because one of its inputs was a derived quantity."""
    res = Engine(_two_counters_store(), delayed_name_removal=True).instant(query, 600_000)
    [(labels, _, value)] = res.value  # type: ignore[misc]
    assert dict(labels) == {}
    assert value == pytest.approx(10.0 + 0.05)


def test_a_name_group_of_kept_names_keeps_the_name() -> None:
    q = 'sum by (__name__) (m_total{env="1"} or rate(m_total{env="3"}[5m]))'
    res = Engine(_two_counters_store(), delayed_name_removal=True).instant(q, 600_000)
    assert [dict(lb) for lb, _, _ in res.value] == [{"__name__": "m_total"}]  # type: ignore[union-attr]


def test_count_values_by_name_keeps_the_name_as_prometheus_does() -> None:
    q = 'count_values by (__name__) ("v", rate(m_total{env="2"}[5m]))'
    res = Engine(_two_counters_store(), delayed_name_removal=True).instant(q, 600_000)
    assert [dict(lb) for lb, _, _ in res.value] == [{"__name__": "m_total", "v": "0.05"}]  # type: ignore[union-attr]


@pytest.mark.parametrize("fn", ["sort", "sort_desc", "sort_by_label", "sort_by_label_desc"])
def test_sorting_in_a_range_query_warns_and_in_an_instant_query_does_not(fn: str) -> None:
    store = _two_counters_store()
    warning = (
        "PromQL warning: sort is ineffective for range queries since results are always"
        " ordered by labels"
    )
    ranged = Engine(store).range(f"sum({fn}(m_total))", 60_000, 120_000, 60_000)
    assert warning in ranged.warnings
    assert warning not in Engine(store).instant(f"{fn}(m_total)", 120_000).warnings
