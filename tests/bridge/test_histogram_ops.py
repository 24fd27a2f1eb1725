"""Histogram arithmetic against the cases of Prometheus's own tests.

Cases are transcribed from ``model/histogram/float_histogram_test.go`` (function named in each
test); like those tests, results are compared after ``Compact(0)`` of both sides.
"""

from __future__ import annotations

import math

import pytest
from histogram_helpers import fh

from grafana_agent_bridge.histogram.model import (
    CUSTOM_BUCKETS_SCHEMA,
    FloatHistogram,
    Hint,
    IncompatibleSchemaError,
)
from grafana_agent_bridge.histogram.ops import (
    add,
    compact,
    detect_reset,
    div,
    equals,
    mul,
    promqltest_equal,
    reduce_resolution,
    sub,
)

NHCB = CUSTOM_BUCKETS_SCHEMA

A = fh(
    zt=0.01,
    zc=11,
    count=30,
    total=2.345,
    pos=[(-2, 2), (2, 3)],
    pb=[1, 0, 3, 4, 7],
    neg=[(3, 2), (3, 2)],
    nb=[3, 1, 5, 6],
)
B_ZT1 = fh(
    zt=1,
    zc=17,
    count=21,
    total=1.234,
    pos=[(1, 2), (0, 3)],
    pb=[2, 3, 6, 2, 5],
    neg=[(4, 2), (1, 2)],
    nb=[1, 1, 4, 4],
)

ADD_CASES = [
    pytest.param(
        fh(
            zt=0.01,
            zc=11,
            count=30,
            total=2.345,
            pos=[(-2, 2), (1, 3)],
            pb=[1, 0, 3, 4, 7],
            neg=[(3, 2), (3, 2)],
            nb=[3, 1, 5, 6],
        ),
        fh(
            zt=0.01,
            zc=8,
            count=21,
            total=1.234,
            pos=[(-2, 2), (1, 3)],
            pb=[0, 0, 2, 3, 6],
            neg=[(3, 2), (3, 2)],
            nb=[1, 1, 4, 4],
        ),
        fh(
            zt=0.01,
            zc=19,
            count=51,
            total=3.579,
            pos=[(-2, 2), (1, 3)],
            pb=[1, 0, 5, 7, 13],
            neg=[(3, 2), (3, 2)],
            nb=[4, 2, 9, 10],
        ),
        False,
        id="same bucket layout",
    ),
    pytest.param(
        A,
        fh(
            zt=0.01,
            zc=8,
            count=21,
            total=1.234,
            pos=[(-1, 4), (0, 3)],
            pb=[5, 4, 2, 3, 6, 2, 5],
            neg=[(4, 2), (1, 2)],
            nb=[1, 1, 4, 4],
        ),
        fh(
            zt=0.01,
            zc=19,
            count=51,
            total=3.579,
            pos=[(-2, 4), (0, 4)],
            pb=[1, 5, 4, 2, 6, 10, 9, 5],
            neg=[(3, 3), (1, 3)],
            nb=[3, 2, 1, 4, 9, 6],
        ),
        False,
        id="overlapping spans",
    ),
    pytest.param(
        fh(
            zt=0.01,
            zc=8,
            count=21,
            total=1.234,
            pos=[(-1, 4), (0, 3)],
            pb=[5, 4, 2, 3, 6, 2, 5],
            neg=[(4, 2), (1, 2)],
            nb=[1, 1, 4, 4],
        ),
        fh(
            zt=0.01,
            zc=11,
            count=30,
            total=2.345,
            schema=1,
            pos=[(-4, 3), (5, 5)],
            pb=[1, 0, 0, 3, 2, 2, 3, 4],
            neg=[(6, 3), (6, 4)],
            nb=[3, 0.5, 0.5, 2, 3, 2, 4],
        ),
        fh(
            zt=0.01,
            zc=19,
            count=51,
            total=3.579,
            pos=[(-2, 5), (0, 3)],
            pb=[1, 5, 4, 2, 6, 10, 9, 5],
            neg=[(3, 3), (1, 3)],
            nb=[3, 2, 1, 4, 9, 6],
        ),
        False,
        id="schema change",
    ),
    pytest.param(
        B_ZT1,
        A,
        fh(
            zt=1,
            zc=29,
            count=51,
            total=3.579,
            pos=[(1, 2), (0, 3)],
            pb=[2, 6, 10, 9, 5],
            neg=[(3, 3), (1, 3)],
            nb=[3, 2, 1, 4, 9, 6],
        ),
        False,
        id="larger zero bucket in first histogram",
    ),
    pytest.param(
        fh(
            zt=0.2,
            zc=17,
            count=21,
            total=1.234,
            pos=[(1, 2), (0, 3)],
            pb=[2, 3, 6, 2, 5],
            neg=[(4, 2), (1, 2)],
            nb=[1, 1, 4, 4],
        ),
        A,
        fh(
            zt=0.25,
            zc=29,
            count=51,
            total=3.579,
            pos=[(-1, 1), (1, 5)],
            pb=[0, 2, 6, 10, 9, 5],
            neg=[(3, 3), (1, 3)],
            nb=[3, 2, 1, 4, 9, 6],
        ),
        False,
        id="larger zero threshold ends up inside a populated bucket of the other",
    ),
    pytest.param(
        fh(
            zt=0.01,
            zc=8,
            count=21,
            total=1.234,
            pos=[(-2, 5), (0, 3)],
            pb=[2, 5, 4, 2, 3, 6, 2, 5],
            neg=[(4, 2), (1, 2)],
            nb=[1, 1, 4, 4],
        ),
        fh(
            zt=0.25,
            zc=12,
            count=30,
            total=2.345,
            schema=1,
            pos=[(-3, 2), (5, 5)],
            pb=[1, 0, 3, 2, 2, 3, 4],
            neg=[(6, 3), (6, 4)],
            nb=[3, 0.5, 0.5, 2, 3, 2, 4],
        ),
        fh(
            zt=0.25,
            zc=22,
            count=51,
            total=3.579,
            pos=[(-1, 7)],
            pb=[6, 4, 2, 6, 10, 9, 5],
            neg=[(3, 3), (1, 3)],
            nb=[3, 2, 1, 4, 9, 6],
        ),
        False,
        id="schema change combined with larger zero bucket in second histogram",
    ),
    pytest.param(
        fh(
            schema=NHCB,
            count=15,
            total=2.345,
            pos=[(0, 2), (1, 3)],
            pb=[1, 0, 3, 4, 7],
            cv=[1, 2, 3, 4, 5],
        ),
        fh(
            schema=NHCB,
            count=11,
            total=1.234,
            pos=[(0, 2), (1, 3)],
            pb=[0, 0, 2, 3, 6],
            cv=[1, 2, 3, 4, 5],
        ),
        fh(
            schema=NHCB,
            count=26,
            total=3.579,
            pos=[(0, 2), (1, 3)],
            pb=[1, 0, 5, 7, 13],
            cv=[1, 2, 3, 4, 5],
        ),
        False,
        id="same custom bucket layout",
    ),
    pytest.param(
        fh(schema=NHCB, count=10, total=100, pos=[(0, 3)], pb=[2, 3, 5], cv=[1, 2.5]),
        fh(schema=NHCB, count=8, total=80, pos=[(0, 4)], pb=[1, 2, 3, 2], cv=[1, 2, 3]),
        fh(schema=NHCB, count=18, total=180, pos=[(0, 2)], pb=[3, 15], cv=[1]),
        True,
        id="custom buckets with partial intersection",
    ),
    pytest.param(
        fh(schema=NHCB, count=6, total=2.345, pos=[(0, 1), (1, 1)], pb=[1, 5], cv=[2, 4]),
        fh(
            schema=NHCB,
            count=220,
            total=1.234,
            pos=[(0, 2), (1, 1), (0, 2)],
            pb=[10, 20, 40, 50, 100],
            cv=[1, 2, 3, 4, 5],
        ),
        fh(schema=NHCB, count=226, total=3.579, pos=[(0, 3)], pb=[31, 40, 155], cv=[2, 4]),
        True,
        id="different custom bucket layout - intersection and rollup",
    ),
    pytest.param(
        fh(schema=NHCB, count=3, total=50, pos=[(0, 2)], pb=[1, 2], cv=[1.5]),
        fh(schema=NHCB, count=30, total=40, pos=[(0, 2)], pb=[10, 20], cv=[2.5]),
        fh(schema=NHCB, count=33, total=90, pos=[(0, 1)], pb=[33]),
        True,
        id="custom buckets with no common boundaries except +Inf",
    ),
]


def assert_same(expected: FloatHistogram, actual: FloatHistogram) -> None:
    assert equals(compact(expected, 0), compact(actual, 0)), (
        f"expected {expected.test_expression()} got {actual.test_expression()}"
    )


@pytest.mark.parametrize(("a", "b", "expected", "reconciled"), ADD_CASES)
def test_add_matches_prometheus_cases(a, b, expected, reconciled):
    """TestFloatHistogramAdd: both operand orders give the same sum."""
    for x, y in ((a, b), (b, a)):
        x.validate()
        y.validate()
        res, collision, nhcb = add(x, y)
        assert not collision
        assert nhcb == reconciled
        assert_same(expected, res)


def test_add_refuses_exponential_with_custom_buckets():
    """TestFloatHistogramAdd "mix exponential and custom buckets histograms"."""
    nhcb = fh(
        schema=NHCB,
        count=11,
        total=12,
        pos=[(0, 2), (1, 3)],
        pb=[0, 0, 2, 3, 6],
        cv=[1, 2, 3, 4, 5],
    )
    with pytest.raises(IncompatibleSchemaError, match="mix of exponential and custom bucket"):
        add(A, nhcb)
    with pytest.raises(IncompatibleSchemaError):
        sub(nhcb, A)


@pytest.mark.parametrize(
    ("h1", "h2", "hint", "collision"),
    [
        (Hint.RESET, Hint.NOT_RESET, Hint.UNKNOWN, True),
        (Hint.GAUGE, Hint.RESET, Hint.GAUGE, False),
        (Hint.UNKNOWN, Hint.NOT_RESET, Hint.UNKNOWN, False),
        (Hint.NOT_RESET, Hint.NOT_RESET, Hint.NOT_RESET, False),
    ],
)
def test_add_combines_counter_reset_hints(h1, h2, hint, collision):
    """adjustCounterReset: gauge wins, then unknown; reset with not-reset collides."""
    res, got_collision, _ = add(fh(schema=NHCB, hint=h1), fh(schema=NHCB, hint=h2))
    assert res.hint == hint
    assert got_collision == collision


def test_sub_same_layout_and_schema_change():
    """TestFloatHistogramSub "same bucket layout" and "schema change"."""
    a = fh(
        zt=0.01,
        zc=11,
        count=30,
        total=23,
        pos=[(-2, 2), (1, 3)],
        pb=[1, 0, 3, 4, 7],
        neg=[(3, 2), (3, 2)],
        nb=[3, 1, 5, 6],
    )
    b = fh(
        zt=0.01,
        zc=8,
        count=21,
        total=12,
        pos=[(-2, 2), (1, 3)],
        pb=[0, 0, 2, 3, 6],
        neg=[(3, 2), (3, 2)],
        nb=[1, 1, 4, 4],
    )
    res, _, _ = sub(a, b)
    assert_same(
        fh(
            zt=0.01,
            zc=3,
            count=9,
            total=11,
            pos=[(-2, 2), (1, 3)],
            pb=[1, 0, 1, 1, 1],
            neg=[(3, 2), (3, 2)],
            nb=[2, 0, 1, 2],
        ),
        res,
    )
    a = fh(
        zt=0.01,
        zc=8,
        count=59,
        total=1.234,
        pos=[(-2, 5), (0, 3)],
        pb=[2, 5, 4, 2, 3, 6, 7, 5],
        neg=[(3, 3), (1, 3)],
        nb=[4, 10, 1, 4, 14, 7],
    )
    b = fh(
        zt=0.01,
        zc=2,
        count=19,
        total=0.345,
        schema=1,
        pos=[(-4, 3), (5, 5)],
        pb=[1, 0, 0, 1, 2, 2, 3, 4],
        neg=[(6, 3), (6, 4)],
        nb=[3, 0.5, 0.5, 2, 3, 2, 4],
    )
    res, _, _ = sub(a, b)
    assert_same(
        fh(
            zt=0.01,
            zc=6,
            count=40,
            total=0.889,
            pos=[(-2, 5), (0, 3)],
            pb=[1, 5, 4, 2, 2, 2, 0, 5],
            neg=[(3, 3), (1, 3)],
            nb=[1, 9, 1, 4, 9, 1],
        ),
        res,
    )


def test_sub_mismatched_custom_bounds_reconciles():
    """Sub maps both to the common bounds like Add (addCustomBucketsWithMismatches)."""
    a = fh(schema=NHCB, count=10, total=100, pos=[(0, 3)], pb=[2, 3, 5], cv=[1, 2.5])
    b = fh(schema=NHCB, count=8, total=80, pos=[(0, 4)], pb=[1, 2, 3, 2], cv=[1, 2, 3])
    res, _, reconciled = sub(a, b)
    assert reconciled
    assert res.custom_values == (1.0,)
    assert res.positive() == [(0, 1.0), (1, 1.0)]  # [2-1, (3+5)-(2+3+2)]


def test_mul_and_div():
    """TestFloatHistogramMul/Div: every count and the sum scale; a negative factor makes a
    gauge; dividing by zero leaves no buckets and Inf/NaN counts."""
    h = fh(
        zt=0.01,
        zc=11,
        count=30,
        total=23,
        pos=[(-2, 2), (1, 3)],
        pb=[1, 0, 3, 4, 7],
        neg=[(3, 2), (3, 2)],
        nb=[3, 1, 5, 6],
        hint=Hint.NOT_RESET,
    )
    m = mul(h, 2)
    assert (m.zero_count, m.count, m.sum) == (22, 60, 46)
    assert m.positive_buckets == (2, 0, 6, 8, 14)
    assert m.negative_buckets == (6, 2, 10, 12)
    assert m.hint == Hint.NOT_RESET
    assert mul(h, -1).hint == Hint.GAUGE
    d = div(h, 2)
    assert (d.zero_count, d.count, d.sum) == (5.5, 15, 11.5)
    assert d.positive_buckets == (0.5, 0, 1.5, 2, 3.5)
    z = div(h, 0)
    assert (z.count, z.sum, z.zero_count) == (math.inf, math.inf, math.inf)
    assert z.positive_buckets == () and z.negative_spans == ()
    assert math.isnan(div(fh(), 0).count)
    assert div(h, -2).hint == Hint.GAUGE


@pytest.mark.parametrize(
    ("pos", "pb", "max_empty", "exp_pos", "exp_pb"),
    [
        # TestFloatHistogramCompact "eliminate zero offsets"
        (
            [(-2, 1), (0, 3), (0, 1)],
            [1, 3.3, 4.2, 0.1, 3.3],
            0,
            [(-2, 5)],
            [1, 3.3, 4.2, 0.1, 3.3],
        ),
        # "eliminate multiple zero length spans"
        (
            [(-2, 2), (2, 0), (2, 0), (2, 0), (3, 3)],
            [1, 3.3, 4.2, 0.1, 3.3],
            0,
            [(-2, 2), (9, 3)],
            [1, 3.3, 4.2, 0.1, 3.3],
        ),
        # "cut empty buckets at start or end"
        (
            [(-4, 4), (5, 3)],
            [0, 0, 1, 3.3, 4.2, 0.1, 3.3],
            0,
            [(-2, 2), (5, 3)],
            [1, 3.3, 4.2, 0.1, 3.3],
        ),
        # "cut empty buckets from the middle of a span, avoiding none due to maxEmptyBuckets"
        ([(-2, 4)], [1, 0, 0, 3.3], 1, [(-2, 1), (2, 1)], [1, 3.3]),
        # "cut empty buckets and merge spans due to maxEmptyBuckets"
        ([(-2, 4), (3, 1)], [1, 0, 0, 3.3, 4.2], 1, [(-2, 1), (2, 1), (3, 1)], [1, 3.3, 4.2]),
        # "avoiding all cutting of empty buckets from the middle of a chunk due to ..."
        (
            [(-4, 6), (3, 3)],
            [0, 0, 1, 0, 0, 3.3, 4.2, 0.1, 3.3],
            2,
            [(-2, 4), (3, 3)],
            [1, 0, 0, 3.3, 4.2, 0.1, 3.3],
        ),
        # "everything merged into one span due to maxEmptyBuckets"
        (
            [(-4, 6), (3, 3)],
            [0, 0, 1, 0, 0, 3.3, 4.2, 0.1, 3.3],
            3,
            [(-2, 10)],
            [1, 0, 0, 3.3, 0, 0, 0, 4.2, 0.1, 3.3],
        ),
    ],
)
def test_compact(pos, pb, max_empty, exp_pos, exp_pb):
    res = compact(fh(pos=pos, pb=pb), max_empty)
    want = fh(pos=exp_pos, pb=exp_pb)
    assert res.positive() == want.positive()
    assert equals(res, want)


def test_reduce_resolution():
    """TestFloatHistogramReduceResolution: schema 0 → -1 merges index pairs (1,2)→1, (3,4)→2,
    (-1,0)→0 (targetIdx)."""
    h = fh(schema=0, pos=[(-2, 3), (2, 1)], pb=[1, 2, 3, 4], neg=[(0, 2)], nb=[5, 6])
    r = reduce_resolution(h, -1)
    assert r.schema == -1
    assert r.positive() == [(-1, 1.0), (0, 5.0), (2, 4.0)]
    assert r.negative() == [(0, 5.0), (1, 6.0)]
    with pytest.raises(ValueError, match="cannot reduce resolution"):
        reduce_resolution(h, 0)
    with pytest.raises(ValueError, match="custom buckets"):
        reduce_resolution(fh(schema=NHCB), -1)


FULL = fh(
    zt=0.01,
    zc=5.5,
    count=3493.3,
    total=2349209.324,
    pos=[(-2, 1), (2, 3)],
    pb=[1, 3.3, 4.2, 0.1],
    neg=[(3, 2), (3, 2)],
    nb=[3.1, 3, 1.234e5, 1000],
)


@pytest.mark.parametrize(
    ("previous", "current", "reset"),
    [
        (fh(), fh(), False),
        (fh(), FULL, False),
        (FULL, fh(), True),
        # "one bucket appears, nothing else changes"
        (
            FULL,
            fh(
                zt=0.01,
                zc=5.5,
                count=3493.3,
                total=2349209.324,
                pos=[(-2, 2), (1, 3)],
                pb=[1, 1.23, 3.3, 4.2, 0.1],
                neg=[(3, 2), (3, 2)],
                nb=[3.1, 3, 1.234e5, 1000],
            ),
            False,
        ),
        # "one bucket disappears": a populated bucket vanishes.
        (
            fh(
                zt=0.01,
                zc=5.5,
                count=3493.3,
                total=2349209.324,
                pos=[(-2, 2), (1, 3)],
                pb=[1, 1.23, 3.3, 4.2, 0.1],
                neg=[(3, 2), (3, 2)],
                nb=[3.1, 3, 1.234e5, 1000],
            ),
            FULL,
            True,
        ),
        # zero count goes down
        (
            FULL,
            fh(
                zt=0.01,
                zc=5.4,
                count=3493.3,
                total=2349209.324,
                pos=[(-2, 1), (2, 3)],
                pb=[1, 3.3, 4.2, 0.1],
                neg=[(3, 2), (3, 2)],
                nb=[3.1, 3, 1.234e5, 1000],
            ),
            True,
        ),
        # finer schema
        (FULL, fh(schema=1, zt=0.01, zc=5.5, count=3493.3, total=2349209.324), True),
        # the hint decides when it is not unknown
        (FULL, fh(hint=Hint.NOT_RESET), False),
        (fh(), fh(hint=Hint.RESET), True),
        # NHCB with different bounds: counts compared per common bound.
        (
            fh(schema=NHCB, count=10, pos=[(0, 3)], pb=[2, 3, 5], cv=[1, 2.5]),
            fh(schema=NHCB, count=10, pos=[(0, 4)], pb=[2, 1, 2, 5], cv=[1, 2, 3]),
            False,
        ),
        (
            fh(schema=NHCB, count=10, pos=[(0, 3)], pb=[2, 3, 5], cv=[1, 2.5]),
            fh(schema=NHCB, count=10, pos=[(0, 4)], pb=[1, 2, 2, 5], cv=[1, 2, 3]),
            True,
        ),
    ],
)
def test_detect_reset(previous, current, reset):
    """TestFloatHistogramDetectReset."""
    assert detect_reset(current, previous) is reset


def test_detect_reset_with_wider_zero_bucket():
    """A wider zero bucket that swallows whole previous buckets is no reset if its count
    holds theirs; one ending inside a populated previous bucket is."""
    prev = fh(zt=0.01, zc=5, count=20, pos=[(0, 2)], pb=[3, 12])  # (0.5,1] and (1,2]
    wider = fh(zt=1, zc=8, count=20, pos=[(1, 1)], pb=[12])
    assert detect_reset(wider, prev) is False
    assert detect_reset(fh(zt=1, zc=7, count=20, pos=[(1, 1)], pb=[13]), prev) is True
    inside = fh(zt=0.7, zc=8, count=20, pos=[(1, 1)], pb=[12])
    assert detect_reset(inside, prev) is True


def test_equals_and_test_equal():
    """TestFloatHistogramEquals: layout may be split differently but bits must match;
    promqltest compares within 1e-6 and the hint only when the test spelled it out."""
    a = fh(count=3, total=1, pos=[(0, 1), (0, 1)], pb=[1, 2])
    b = fh(count=3, total=1, pos=[(0, 1), (0, 0), (0, 1)], pb=[1, 2])
    assert equals(a, b)
    assert not equals(a, fh(count=3, total=1, pos=[(0, 1), (1, 1)], pb=[1, 2]))
    assert not equals(a, fh(count=3, total=1 + 1e-12, pos=[(0, 1), (0, 1)], pb=[1, 2]))
    assert promqltest_equal(
        a, fh(count=3, total=1 + 1e-12, pos=[(0, 2)], pb=[1, 2]), hint_set=False
    )
    gauge = fh(count=3, total=1, pos=[(0, 2)], pb=[1, 2], hint=Hint.GAUGE)
    assert promqltest_equal(a, gauge, hint_set=False)
    assert not promqltest_equal(a, gauge, hint_set=True)
    assert promqltest_equal(
        fh(count=1, pos=[(0, 2)], pb=[0, 1]), fh(count=1, pos=[(1, 1)], pb=[1]), hint_set=False
    )
