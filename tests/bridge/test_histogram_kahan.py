"""Compensated histogram sums (``FloatHistogram.KahanAdd``), checked against the corpus's
``sum(histogram_sum)`` case of native_histograms.test, whose ±1e100 sums defeat plain
addition."""

from __future__ import annotations

from histogram_helpers import fh

from grafana_agent_bridge.histogram.kahan import finish, kahan_add
from grafana_agent_bridge.histogram.notation import parse_histogram
from grafana_agent_bridge.histogram.ops import add, promqltest_equal

SERIES = [
    "{{schema:0 count:25 sum:3.1 z_bucket:4 z_bucket_w:0.001 buckets:[1 2 0 1 1] "
    "n_buckets:[2 4 0 0 1 9]}}",
    "{{schema:0 count:41 sum:1e100 z_bucket:5 z_bucket_w:0.001 buckets:[1 3 1 2 1 1 1] "
    "n_buckets:[0 1 4 2 7 0 0 0 0 5 5 2]}}",
    "{{schema:0 count:41 sum:-1e100 z_bucket:5 z_bucket_w:0.001 buckets:[1 3 1 2 1 1 1] "
    "n_buckets:[0 1 4 2 7 0 0 0 0 5 5 2]}}",
    "{{schema:1 count:0 sum:1.3 z_bucket:3 z_bucket_w:0.001 buckets:[2 4 2 3 2 2] "
    "n_buckets:[1 2 5 3 8 1 1 1 1 6 3]}}",
]
EXPECTED = (
    "{{schema:0 count:107 sum:4.4 z_bucket:17 z_bucket_w:0.001 buckets:[5 14 7 7 3 2 2] "
    "n_buckets:[3 13 19 6 17 18 0 0 0 10 10 4]}}"
)


def test_sum_keeps_small_values_next_to_huge_ones():
    hs = [parse_histogram(s).histogram for s in SERIES]
    total, comp = hs[0], None
    plain = hs[0]
    for h in hs[1:]:
        total, comp, collision, reconciled = kahan_add(total, h, comp)
        assert not collision and not reconciled
        plain = add(plain, h).histogram
    expected = parse_histogram(EXPECTED).histogram
    assert promqltest_equal(expected, finish(total, comp), hint_set=False)
    assert not promqltest_equal(expected, plain, hint_set=False)  # 3.1 lost to 1e100


def test_kahan_add_matches_add_on_plain_values():
    a = fh(zt=0.01, zc=11, count=30, total=2.345, pos=[(-2, 2), (2, 3)], pb=[1, 0, 3, 4, 7])
    b = fh(zt=1, zc=17, count=21, total=1.234, pos=[(1, 2), (0, 3)], pb=[2, 3, 6, 2, 5])
    res = kahan_add(a, b, None)
    assert promqltest_equal(add(a, b).histogram, finish(res.histogram, res.compensation), False)
    nhcb_a = fh(schema=-53, count=10, total=100, pos=[(0, 3)], pb=[2, 3, 5], cv=[1, 2.5])
    nhcb_b = fh(schema=-53, count=8, total=80, pos=[(0, 4)], pb=[1, 2, 3, 2], cv=[1, 2, 3])
    res = kahan_add(nhcb_a, nhcb_b, None)
    assert res.nhcb_bounds_reconciled
    assert finish(res.histogram, res.compensation).positive() == [(0, 3.0), (1, 15.0)]
