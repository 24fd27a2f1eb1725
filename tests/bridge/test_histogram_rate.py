"""The increase of a histogram run (``promql/functions.go`` ``histogramRate``)."""

from __future__ import annotations

from histogram_helpers import fh

from grafana_agent_bridge.histogram.model import Hint
from grafana_agent_bridge.histogram.notation import HistogramPoint, expand_series_values
from grafana_agent_bridge.histogram.notes import Note
from grafana_agent_bridge.histogram.ops import equals
from grafana_agent_bridge.histogram.rate import histogram_increase


def run(text: str):
    return [v.histogram for v in expand_series_values(text) if isinstance(v, HistogramPoint)]


def test_counter_without_reset_is_last_minus_first():
    pts = run(
        "{{schema:0 sum:4 count:4 buckets:[1 2 1]}}+{{sum:2 count:1 buckets:[1] offset:1}}x4"
    )
    h, notes = histogram_increase(pts, is_counter=True)
    assert h is not None and notes == frozenset()
    assert (h.count, h.sum) == (4, 8)
    assert h.positive() == [(1, 4.0)]  # compacted: the unchanged buckets are gone
    assert h.hint == Hint.GAUGE


def test_counter_reset_adds_the_value_before_it():
    pts = [
        fh(count=10, total=10, pos=[(0, 1)], pb=[10]),
        fh(count=15, total=15, pos=[(0, 1)], pb=[15]),
        fh(count=3, total=3, pos=[(0, 1)], pb=[3]),  # reset
        fh(count=5, total=5, pos=[(0, 1)], pb=[5]),
    ]
    h, _ = histogram_increase(pts, is_counter=True)
    # 5 - 10 + 15 (the value before the reset) = 10
    assert h is not None and equals(
        h, fh(count=10, total=10, pos=[(0, 1)], pb=[10], hint=Hint.GAUGE)
    )


def test_reset_between_first_two_ignores_the_first_layout():
    pts = [
        fh(schema=-53, cv=[1], count=9, pos=[(0, 1)], pb=[9]),
        fh(count=1, total=1),
        fh(count=3, total=2),
    ]
    h, notes = histogram_increase(pts, is_counter=True)
    assert h is not None and (h.count, h.sum) == (3, 2) and notes == frozenset()


def test_gauge_and_counter_notes():
    gauge = run("{{sum:1 count:1 counter_reset_hint:gauge}}x2")
    _, notes = histogram_increase(gauge, is_counter=True)
    assert notes == {Note.NOT_COUNTER}
    counter = run("{{sum:1 count:1}}x2")
    _, notes = histogram_increase(counter, is_counter=False)
    assert notes == {Note.NOT_GAUGE}
    _, notes = histogram_increase(gauge, is_counter=False)
    assert notes == frozenset()


def test_mixed_schemas_give_no_result():
    pts = [fh(count=1), fh(schema=-53, cv=[1], count=2, pos=[(0, 1)], pb=[2])]
    h, notes = histogram_increase([*pts, pts[1]], is_counter=False)
    assert h is None and notes == {Note.MIXED_EXPONENTIAL_CUSTOM}


def test_schema_drop_reduces_to_the_coarsest():
    pts = [
        fh(schema=1, count=2, total=2, pos=[(1, 2)], pb=[1, 1]),
        fh(schema=0, count=4, total=4, pos=[(1, 1)], pb=[4]),
    ]
    h, _ = histogram_increase(pts, is_counter=False)
    assert h is not None and h.schema == 0
    assert h.positive() == [(1, 2.0)]  # schema-1 buckets 1,2 merge into schema-0 bucket 1


def test_note_messages_are_prometheus_text():
    assert Note.NOT_COUNTER.message("foo") == (
        'PromQL warning: this native histogram metric is not a counter: "foo"'
    )
    assert Note.QUANTILE_NAN_RESULT.message("x") == (
        "PromQL info: input to histogram_quantile has NaN observations, result is NaN for "
        'metric name "x"'
    )
    assert Note.QUANTILE_NAN_RESULT.message() == (
        "PromQL info: input to histogram_quantile has NaN observations, result is NaN"
    )


def test_instant_delta_irate_and_idelta():
    """instantValue: irate after a reset takes the last histogram; idelta subtracts."""
    from grafana_agent_bridge.histogram.rate import histogram_instant_delta

    prev = fh(count=10, total=10, pos=[(0, 1)], pb=[10])
    last = fh(count=4, total=4, pos=[(0, 1)], pb=[4])
    h, notes = histogram_instant_delta(prev, last, is_rate=True)
    assert h is not None and h.count == 4 and notes == frozenset()
    h, notes = histogram_instant_delta(prev, last, is_rate=False)
    assert h is not None and h.count == -6 and notes == {Note.NOT_GAUGE}
    up = fh(count=15, total=15, pos=[(0, 1)], pb=[15])
    h, _ = histogram_instant_delta(prev, up, is_rate=True)
    assert h is not None and h.count == 5 and h.hint == Hint.GAUGE
