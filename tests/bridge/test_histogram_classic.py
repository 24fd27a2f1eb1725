"""``load_with_nhcb``'s conversion of classic histograms (``util/convertnhcb``), checked
against histograms.test cases of the corpus."""

from __future__ import annotations

import math

import pytest

from grafana_agent_bridge.histogram.classic import (
    ClassicConversionError,
    ClassicHistogram,
    nhcb_series,
)
from grafana_agent_bridge.histogram.kahan import finish, kahan_add
from grafana_agent_bridge.histogram.notation import expand_series_values, parse_histogram
from grafana_agent_bridge.histogram.ops import mul, promqltest_equal
from grafana_agent_bridge.histogram.rate import histogram_increase


def load(step_ms: int, lines: dict[str, str]):
    """Series as a ``load_with_nhcb`` block gives them: labels and (t, value) samples."""
    out = []
    for desc, values in lines.items():
        name, _, rest = desc.partition("{")
        labels = {"__name__": name}
        for pair in filter(None, rest.rstrip("}").split(",")):
            k, _, v = pair.partition("=")
            labels[k.strip()] = v.strip().strip('"')
        vals = expand_series_values(values)
        out.append(
            (labels, [(i * step_ms, v) for i, v in enumerate(vals) if isinstance(v, float)])
        )
    return out


def test_sum_over_time_of_converted_histograms():
    """histograms.test: sum_over_time(histogram_over_time[4m:1m]) at 3m adds all four."""
    series = load(
        60_000,
        {
            'histogram_over_time_bucket{le="0"}': "0 1 3 9",
            'histogram_over_time_bucket{le="1"}': "2 3 3 9",
            'histogram_over_time_bucket{le="2"}': "3 8 5 10",
            'histogram_over_time_bucket{le="4"}': "3 10 6 18",
        },
    )
    ((labels, points),) = nhcb_series(series)
    assert labels == {"__name__": "histogram_over_time"}
    total, comp = points[0][1], None
    for _, h in points[1:]:
        total, comp, _, _ = kahan_add(total, h, comp)
    want = parse_histogram("{{schema:-53 count:37 custom_values:[0 1 2 4] buckets:[13 4 9 11]}}")
    assert promqltest_equal(want.histogram, finish(total, comp), hint_set=False)


def test_increase_with_counter_reset():
    """histograms.test: increase(histogram_with_reset[15m]) at 10m; the raw increase is the
    last histogram (the reset adds the first back), extrapolated by 15m/10m."""
    series = load(
        300_000,
        {
            'histogram_with_reset_bucket{le="1"}': "1  3  9",
            'histogram_with_reset_bucket{le="2"}': "3  3  9",
            'histogram_with_reset_bucket{le="4"}': "8  5 12",
            'histogram_with_reset_bucket{le="8"}': "10  6 18",
            "histogram_with_reset_sum{}": "36 16 61",
        },
    )
    ((_, points),) = nhcb_series(series)
    inc, _ = histogram_increase([h for _, h in points], is_counter=True)
    assert inc is not None
    want = parse_histogram(
        "{{schema:-53 count:27 sum:91.5 custom_values:[1 2 4 8] counter_reset_hint:gauge "
        "buckets:[13.5 0 4.5 9]}}"
    )
    assert promqltest_equal(want.histogram, mul(inc, 1.5), hint_set=True)


def test_float_data_makes_float_histogram_and_count_from_count_series():
    h = ClassicHistogram()
    h.set_bucket_count(1, 1.5)
    h.set_bucket_count(math.inf, 2.5)
    h.set_count(2.5)
    h.set_sum(3)
    got, integer = h.convert()
    assert not integer
    assert got.positive() == [(0, 1.5), (1, 1.0)] and got.custom_values == (1.0,)


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        ([("b", 1, 5), ("b", 2, 3)], "not cumulative"),
        ([("b", 1, -1)], "non-negative"),
        ([("b", math.nan, 1)], "NaN"),
        ([("b", math.inf, 2), ("c", 3, 0)], "count mismatch"),
    ],
)
def test_inconsistent_classic_data_fails_the_load(steps, reason):
    h = ClassicHistogram()
    for kind, a, b in steps:
        if kind == "b":
            h.set_bucket_count(a, b)
        else:
            h.set_count(a)
    with pytest.raises(ClassicConversionError, match=reason):
        h.convert()
