"""Compensated histogram sums (``FloatHistogram.KahanAdd``), checked against the corpus's
``sum(histogram_sum)`` case of native_histograms.test, whose ±1e100 sums defeat plain
addition."""

from __future__ import annotations

from histogram_helpers import fh

from grafana_agent_bridge.histogram.kahan import finish, kahan_add, mean_histograms, sum_histograms
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


# native_histograms.test "histogram_avg_incremental": counts near the float64 limit overflow a
# direct sum, so the mean switches to incremental calculation.
AVG_INCREMENTAL = [
    (
        "{{schema:0 count:1.7976931348623157e+308 sum:5.30921651659898 z_bucket:1.78264e50 "
        "z_bucket_w:0.001 buckets:[1.78264E+50 1.78264E+215 1.78264E+219 3363.5121756487] "
        "n_buckets:[1178.20696291113 731.697776280323 715.201503759399 1386.11378876781 "
        "855.572553278132]}}"
    ),
    (
        "{{schema:0 count:1e308 sum:0.961118537914768 z_bucket:0.76342771 z_bucket_w:0.001 "
        "buckets:[0.76342771 0.76342771 0.76342771 195.70084087969] n_buckets:[421.30382970055 0 "
        "450441.779]}}"
    ),
    (
        "{{schema:0 count:1e-6 sum:1.62091361305318 z_bucket:1.9592258 z_bucket_w:0.001 "
        "buckets:[1.9592258 1.9592258 1.9592258 1135.74692279] n_buckets:[0 4504.41779 "
        "588.599358265103 40.3760942760943]}}"
    ),
    (
        "{{schema:0 count:1e-6 sum:0.865089463758091 z_bucket:7.69805412 z_bucket_w:0.001 "
        "buckets:[2.258E+220 2.258E+220 2.3757689E+217 1078.68071312804] "
        "n_buckets:[349.905284031261 0 0 0.161173466838949 588.599358]}}"
    ),
    (
        "{{schema:0 count:1e-6 sum:0.323055185914577 z_bucket:458.90154 z_bucket_w:0.001 "
        "buckets:[7.69805412 7.69805412 2.258E+220 3173.28218135701]}}"
    ),
    (
        "{{schema:0 count:1e-6 sum:0.951811357687154 z_bucket:1.78264e50 z_bucket_w:0.001 "
        "buckets:[458.90154 458.90154 7.69805412 2178.35] n_buckets:[2054.92644438789 "
        "844.560108898123]}}"
    ),
    (
        "{{schema:0 count:1e-6 sum:0 z_bucket:5 z_bucket_w:0.001 buckets:[0 0 1.78264E+219 "
        "376.770478890989]}}"
    ),
    (
        "{{schema:0 count:1e-6 sum:0 z_bucket:0 z_bucket_w:0.001 buckets:[0 0 458.90154 250325.5] "
        "n_buckets:[0 0.0000000011353 0 608.697257]}}"
    ),
]
AVG_INCREMENTAL_EXPECTED = (
    "{{schema:0 count:3.497116418577895e+307 sum:1.2539005843658437 z_bucket:4.4566e49 "
    "z_bucket_w:0.001 buckets:[2.8225e+219 2.822522283e+219 3.271129711125e+219 "
    "32728.442914086805] n_buckets:[500.5428151288539 760.0844593974477 56468.19748275306 "
    "254.4185391888429 180.5214889097665]}}"
)


def test_mean_switches_to_incremental_on_overflow():
    hs = [parse_histogram(s).histogram for s in AVG_INCREMENTAL]
    got, notes = mean_histograms(hs)
    assert got is not None and notes == frozenset()
    want = parse_histogram(AVG_INCREMENTAL_EXPECTED).histogram
    assert promqltest_equal(want, got, hint_set=False), got.test_expression()


def test_mean_and_sum_of_the_histogram_sum_series():
    """native_histograms.test: avg(histogram_sum) and sum(histogram_sum)."""
    hs = [parse_histogram(s).histogram for s in SERIES]
    want = parse_histogram(
        "{{schema:0 count:26.75 sum:1.1 z_bucket:4.25 z_bucket_w:0.001 "
        "buckets:[1.25 3.5 1.75 1.75 0.75 0.5 0.5] "
        "n_buckets:[0.75 3.25 4.75 1.5 4.25 4.5 0 0 0 2.5 2.5 1]}}"
    ).histogram
    got, _ = mean_histograms(hs)
    assert got is not None and promqltest_equal(want, got, hint_set=False)
    total, _ = sum_histograms(hs)
    assert total is not None
    assert promqltest_equal(parse_histogram(EXPECTED).histogram, total, hint_set=False)


def test_stats_view_sets_hints_that_make_aggregations_warn():
    """native_histograms.test: histogram_count(sum_over_time(reset{timing="late"}[5m])) warns
    about conflicting counter resets: the stats iterator marks the second sample not_reset and
    the fourth reset (its count went down), and sums to 7."""
    from grafana_agent_bridge.histogram.notation import HistogramPoint, expand_series_values
    from grafana_agent_bridge.histogram.notes import Note
    from grafana_agent_bridge.histogram.statsview import stats_view

    values = expand_series_values(
        "{{schema:0 sum:1 count:0 buckets:[1 1 1]}} {{schema:0 sum:1 count:2 buckets:[1 1 1]}} "
        "{{schema:0 sum:1 count:3 buckets:[1 1 1]}}  {{schema:0 sum:1 count:2 buckets:[1 1 1]}}"
    )
    hs = [v.histogram for v in values if isinstance(v, HistogramPoint)]
    view = stats_view(hs)
    assert [h.hint.name for h in view] == ["UNKNOWN", "NOT_RESET", "NOT_RESET", "RESET"]
    assert all(not h.positive_buckets for h in view)
    total, notes = sum_histograms(view)
    assert total is not None and total.count == 7
    assert notes == {Note.COUNTER_RESET_COLLISION_AGG}
