"""Binary operators with histograms (``promql/engine.go`` ``vectorElemBinop``)."""

from __future__ import annotations

import pytest
from histogram_helpers import fh

from grafana_agent_bridge.histogram.binop import binop
from grafana_agent_bridge.histogram.model import FloatHistogram, Hint
from grafana_agent_bridge.histogram.ops import equals


def hist(v: object) -> FloatHistogram:
    assert isinstance(v, FloatHistogram)
    return v


H = fh(count=4, total=6, pos=[(0, 3)], pb=[1, 0, 3], hint=Hint.NOT_RESET)


def test_scaling_is_compacted():
    for res in (binop("*", H, 2.0), binop("*", 2.0, H)):
        assert res.keep and res.note is None
        assert hist(res.value).positive() == [(0, 2.0), (2, 6.0)]  # the empty bucket is gone
    assert hist(binop("/", H, 2.0).value).count == 2


def test_subtraction_is_a_gauge_and_addition_keeps_the_hint():
    diff = hist(binop("-", H, H).value)
    assert diff.hint == Hint.GAUGE and diff.count == 0 and diff.positive() == []
    assert hist(binop("+", H, H).value).hint == Hint.NOT_RESET


@pytest.mark.parametrize(
    ("op", "lhs", "rhs", "text"),
    [
        ("+", H, 1.0, 'operator "+": histogram + float'),
        ("/", 1.0, H, 'operator "/": float / histogram'),
        (">", H, H, 'operator ">": histogram > histogram'),
        ("*", H, H, 'operator "*": histogram * histogram'),
    ],
)
def test_incompatible_types_drop_the_sample_with_an_info(op, lhs, rhs, text):
    res = binop(op, lhs, rhs)
    assert res.value is None and not res.keep
    assert res.note == (f"PromQL info: incompatible sample types encountered for binary {text}")


def test_bucket_layout_and_counter_reset_conflicts_drop_with_a_warning():
    nhcb = fh(schema=-53, count=1, pos=[(0, 1)], pb=[1], cv=[1])
    res = binop("+", H, nhcb)
    assert res.value is None and res.note_is_warning
    assert (
        res.note == "PromQL warning: incompatible bucket layout encountered for binary operator +"
    )
    reset = fh(count=1, pos=[(0, 1)], pb=[1], hint=Hint.RESET)
    res = binop("-", H, reset)
    assert res.value is None
    assert res.note == "PromQL warning: conflicting counter resets during histogram subtraction"


def test_equality_filters_and_keeps_the_left_side():
    same = fh(count=4, total=6, pos=[(0, 3)], pb=[1, 0, 3])
    res = binop("==", H, same)
    assert res.keep and res.value is H
    assert not binop("!=", H, same).keep
    assert not binop("==", H, hist(binop("*", H, 2.0).value)).keep
    assert equals(H, same)


def test_reconciled_custom_bounds_keep_the_sample_with_an_info():
    a = fh(schema=-53, count=10, total=100, pos=[(0, 3)], pb=[2, 3, 5], cv=[1, 2.5])
    b = fh(schema=-53, count=8, total=80, pos=[(0, 4)], pb=[1, 2, 3, 2], cv=[1, 2, 3])
    res = binop("+", a, b)
    assert res.value is not None
    assert res.note == "PromQL info: mismatched custom buckets were reconciled during addition"
