"""The histogram model: boundaries (``generic.go`` ``getBound``), iteration order
(``AllBucketIterator``), validation (``FloatHistogram.Validate``), the stale marker."""

from __future__ import annotations

import itertools
import math
from decimal import Context, Decimal

import pytest
from histogram_helpers import fh

from grafana_agent_bridge.histogram._fractions import FRACTIONS
from grafana_agent_bridge.histogram.bounds import bucket_bound, exponential_bound, target_index
from grafana_agent_bridge.histogram.model import HistogramError, stale_histogram


def test_fraction_table_is_the_true_boundaries_within_a_few_ulp():
    ctx = Context(prec=50)
    for k, v in enumerate(FRACTIONS):
        true = float(ctx.multiply(Decimal("0.5"), ctx.power(2, ctx.divide(k, 256))))
        assert abs(v - true) <= 4 * math.ulp(true), k
    assert all(a < b for a, b in itertools.pairwise(FRACTIONS))


@pytest.mark.parametrize(
    ("idx", "schema", "bound"),
    [
        (0, 0, 1.0),
        (1, 0, 2.0),
        (-1, 0, 0.5),
        (1, 1, 1.414213562373095),  # 2**0.5 as Prometheus's table has it
        (1, -1, 4.0),
        (-1, -2, 1 / 16),
        (1024, 0, 1.7976931348623157e308),  # last finite bucket ends at MaxFloat64
        (1025, 0, math.inf),
        (256, -2, 1.7976931348623157e308),
    ],
)
def test_exponential_bounds(idx, schema, bound):
    assert exponential_bound(idx, schema) == bound


def test_custom_bounds_and_target_index():
    cv = (1.0, 5.0)
    assert bucket_bound(-1, -53, cv) == -math.inf
    assert bucket_bound(1, -53, cv) == 5.0
    assert bucket_bound(2, -53, cv) == math.inf
    assert [target_index(i, 2, 0) for i in (-3, 0, 1, 4, 5)] == [0, 0, 1, 1, 2]


def test_all_buckets_order_and_zero_clipping():
    """Lowest value first; a bucket overlapping the zero bucket is cut at its threshold."""
    h = fh(zt=0.7, zc=1, count=4, total=1, pos=[(0, 2)], pb=[1, 1], neg=[(0, 1)], nb=[1])
    got = [(b.lower, b.upper, b.count) for b in h.all_buckets()]
    assert got == [(-1.0, -0.7, 1.0), (-0.7, 0.7, 1.0), (0.7, 1.0, 1.0), (1.0, 2.0, 1.0)]
    rev = [(b.lower, b.upper) for b in h.all_buckets_reversed()]
    assert rev == [(1.0, 2.0), (0.7, 1.0), (-0.7, 0.7), (-1.0, -0.7)]
    inc = [(b.lower_inclusive, b.upper_inclusive) for b in h.all_buckets()]
    assert inc == [(True, False), (True, True), (False, True), (False, True)]


@pytest.mark.parametrize(
    ("h", "message"),
    [
        (fh(schema=9), "invalid schema"),
        (fh(pos=[(0, 2)], pb=[1]), "spans need 2 buckets, have 1"),
        (fh(pos=[(0, 1), (-1, 1)], pb=[1, 1]), "offset is negative"),
        (fh(pos=[(0, 1)], pb=[-1]), "negative"),
        (fh(count=-1), "count is negative"),
        (fh(zc=-1), "zero bucket"),
        (fh(schema=-53, cv=[1, math.inf]), "must be finite"),
        (fh(schema=-53, cv=[math.nan]), "NaN"),
        (fh(schema=-53, cv=[1], neg=[(0, 1)], nb=[1]), "negative spans"),
    ],
)
def test_validate_refuses(h, message):
    with pytest.raises(HistogramError, match=message):
        h.validate()


def test_stale_marker_and_test_expression():
    assert stale_histogram().is_stale
    assert not fh(total=math.nan).is_stale
    h = fh(schema=1, count=3, total=2.5, pos=[(-1, 1), (1, 1)], pb=[1, 2])
    assert h.test_expression() == "{{schema:1 count:3 sum:2.5 offset:-1 buckets:[1 0 2]}}"
