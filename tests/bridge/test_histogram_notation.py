"""The promqltest series notation, as ``promql/parser`` (lex.go, generated_parser.y
``series_item``, parse.go ``buildHistogramFromMap``/``histogramsSeries``) defines it."""

from __future__ import annotations

import math

import pytest
from histogram_helpers import fh

from grafana_agent_bridge.histogram.model import STALE_NAN, Hint, same_bits
from grafana_agent_bridge.histogram.notation import (
    HistogramPoint,
    NotationError,
    expand_series_values,
    parse_histogram,
)
from grafana_agent_bridge.histogram.ops import equals, promqltest_equal


def test_full_histogram_description():
    """Every key of histogramDesc, mapped to its FloatHistogram field; buckets become one
    span starting at the offset."""
    p = parse_histogram(
        "{{schema:1 sum:-0.3 count:3.1 z_bucket:7.1 z_bucket_w:0.05 buckets:[5.1 10 7] "
        "offset:-3 n_buckets:[4.1 5] n_offset:-5 counter_reset_hint:gauge}}"
    )
    want = fh(
        schema=1,
        total=-0.3,
        count=3.1,
        zc=7.1,
        zt=0.05,
        pos=[(-3, 3)],
        pb=[5.1, 10, 7],
        neg=[(-5, 2)],
        nb=[4.1, 5],
        hint=Hint.GAUGE,
    )
    assert equals(p.histogram, want)
    assert p.histogram.hint == Hint.GAUGE
    assert p.hint_set


def test_custom_values_and_defaults():
    p = parse_histogram("{{schema:-53 sum:1 count:1 custom_values:[5 10] buckets:[1]}}")
    assert p.histogram.custom_values == (5, 10)
    assert p.histogram.positive_spans[0].offset == 0
    assert not p.hint_set
    empty = parse_histogram("{{}}").histogram
    assert equals(empty, fh())
    assert equals(parse_histogram("{{ }}").histogram, fh())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 2 3", [1, 2, 3]),
        ("1+1x3", [1, 2, 3, 4]),  # xN gives N+1 values (the extra one is for time 0)
        ("10-2x2", [10, 8, 6]),
        ("5x2", [5, 5, 5]),
        ("_ 1 _x2 2", [None, 1, None, None, 2]),  # _xN gives exactly N gaps
        ("0x5", [0, 0, 0, 0, 0, 0]),  # no hex in series descriptions
        ("-1 +2 1e3 1_000", [-1, 2, 1000, 1000]),
        ("1.5+0.5x2", [1.5, 2.0, 2.5]),
    ],
)
def test_float_values(text, expected):
    assert expand_series_values(text) == expected


def test_special_values():
    stale, inf, neg_inf, nan = expand_series_values("stale Inf -Inf NaN")
    assert isinstance(stale, float) and same_bits(stale, STALE_NAN)
    assert inf == math.inf and neg_inf == -math.inf
    assert isinstance(nan, float) and math.isnan(nan) and not same_bits(nan, STALE_NAN)


def test_histogram_repetition_and_series():
    """``{{a}}xN`` repeats a N+1 times; ``{{a}}+{{b}}xN`` is a, a+b, ..., a+N·b (Add)."""
    vals = expand_series_values("{{sum:1 count:1}}x2 _ {{sum:2 count:2}}+{{sum:3 count:1}}x2")
    assert len(vals) == 7
    assert vals[3] is None
    sums = [v.histogram.sum for v in vals if isinstance(v, HistogramPoint)]
    assert sums == [1, 1, 1, 2, 5, 8]
    down = expand_series_values(
        "{{schema:0 count:10 sum:10 buckets:[4 6]}}-{{count:1 sum:1 buckets:[0 1]}}x2"
    )
    last = down[-1]
    assert isinstance(last, HistogramPoint)
    assert last.histogram.count == 8 and last.histogram.positive_buckets == (4, 4)


def test_series_hint_set_comes_from_the_increment():
    """histogramsIncreaseSeries takes the hint flag of the increment for every value."""
    vals = expand_series_values(
        "{{sum:1 count:1 counter_reset_hint:gauge}}+{{sum:1 count:1 counter_reset_hint:gauge}}x1"
    )
    assert all(isinstance(v, HistogramPoint) and v.hint_set for v in vals)
    assert all(isinstance(v, HistogramPoint) and v.histogram.hint == Hint.GAUGE for v in vals)
    vals = expand_series_values("{{sum:1 count:1 counter_reset_hint:gauge}}+{{sum:1}}x1")
    assert not any(isinstance(v, HistogramPoint) and v.hint_set for v in vals)


def test_series_refuses_coarser_increment():
    """histogramsSeries refuses an increment of a lower schema than the running value."""
    with pytest.raises(NotationError, match="cannot merge from schema 0 to 1"):
        expand_series_values("{{schema:1 sum:1}}+{{schema:0 sum:1}}x2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{sum:1 sum:2}}", 'duplicate key "sum"'),
        ("{{foo:1}}", "unknown histogram description key"),
        ("{{counter_reset_hint:maybe}}", "counter_reset_hint"),
        ("{{schema:1.5}}", "schema"),
        ("{{sum:1", "not closed"),
        ("1+x3", "bad series value"),
        ("abc", "bad series value"),
        ("{{sum:1}}+{{sum:1}}", "needs a repetition"),
        ("1x99999999999", "over the limit"),
    ],
)
def test_bad_notation_is_refused_with_a_reason(text, message):
    with pytest.raises(NotationError, match=message):
        expand_series_values(text)


def test_promqltest_file_parser_reads_histograms_with_the_notation():
    """The corpus harness reads load blocks and expected results through this module."""
    from grafana_agent_bridge.promql.promqltest.testfile import LoadCmd, parse_file

    cmds = parse_file(
        "load 1m\n"
        "  h {{schema:0 sum:1 count:2 buckets:[1 1]}}+{{sum:1 count:1 buckets:[0 1]}}x2\n"
        "\n"
        "eval instant at 2m h\n"
        "  h {{schema:0 sum:3 count:4 buckets:[1 3] counter_reset_hint:gauge}}\n"
    )
    load = cmds[0]
    assert isinstance(load, LoadCmd)
    (_, values) = load.series[0]
    assert [v.histogram.count for v in values if isinstance(v, HistogramPoint)] == [2, 3, 4]
    (_, expected) = cmds[1].expected[0]  # type: ignore[union-attr]
    (point,) = expected
    assert isinstance(point, HistogramPoint) and point.hint_set
    last = values[-1]
    assert isinstance(last, HistogramPoint)
    # Same observations; the expected hint (gauge) is spelled out, so it is compared too.
    assert promqltest_equal(point.histogram, last.histogram, hint_set=False)
    assert not promqltest_equal(point.histogram, last.histogram, hint_set=point.hint_set)
