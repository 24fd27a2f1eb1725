"""Algebraic properties the histogram operations must keep whatever the layout, on random
histograms (hypothesis): what Prometheus's operations guarantee by construction."""

from __future__ import annotations

import itertools
import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from grafana_agent_bridge.histogram.bounds import exponential_bound
from grafana_agent_bridge.histogram.codec import (
    HistogramSample,
    decode_histogram,
    encode_histogram,
)
from grafana_agent_bridge.histogram.kahan import finish, kahan_add
from grafana_agent_bridge.histogram.model import FloatHistogram, Span, collapse
from grafana_agent_bridge.histogram.ops import (
    add,
    compact,
    detect_reset,
    equals,
    promqltest_equal,
    reduce_resolution,
    sub,
)
from grafana_agent_bridge.histogram.stats import histogram_fraction, histogram_quantile

counts = st.integers(min_value=0, max_value=50).map(float)


@st.composite
def histograms(draw: st.DrawFn, schema: int | None = None) -> FloatHistogram:
    s = draw(st.integers(-2, 3)) if schema is None else schema
    threshold = draw(st.sampled_from([0.0, 0.001, 0.25]))
    # Buckets outside the zero bucket only, as a valid sender produces them.
    outside = st.integers(-8, 8).filter(lambda i: exponential_bound(i - 1, s) >= threshold)
    pos = draw(st.dictionaries(outside, counts, max_size=8))
    neg = draw(st.dictionaries(outside, counts, max_size=5))
    zero = draw(counts)
    pos_spans, pos_b = collapse(sorted(pos.items()))
    neg_spans, neg_b = collapse(sorted(neg.items()))
    return FloatHistogram(
        schema=s,
        count=zero + sum(pos_b) + sum(neg_b),
        sum=draw(st.integers(-100, 100).map(float)),
        zero_threshold=threshold,
        zero_count=zero,
        positive_spans=pos_spans,
        positive_buckets=pos_b,
        negative_spans=neg_spans,
        negative_buckets=neg_b,
    )


def total(h: FloatHistogram) -> float:
    return h.zero_count + sum(h.positive_buckets) + sum(h.negative_buckets)


@settings(max_examples=80, deadline=None)
@given(histograms(), histograms())
def test_add_keeps_counts_and_sub_undoes_it(a: FloatHistogram, b: FloatHistogram) -> None:
    # With different schemas and a zero threshold inside a coarse bucket, Prometheus counts a
    # bucket both in the widened zero bucket and in the merged one (addBuckets checks the
    # threshold after reducing the resolution); leave that quirk out.
    assume(a.schema == b.schema or a.zero_threshold == b.zero_threshold == 0)
    s = add(a, b).histogram
    assert s.count == a.count + b.count
    assert total(s) == total(a) + total(b)  # whole counts: exact
    back = sub(s, b).histogram
    # Back to a, possibly at a coarser schema and with a wider zero bucket.
    assert back.count == a.count and total(back) == total(a)
    assert s.schema == min(a.schema, b.schema)
    if a.schema == b.schema and a.zero_threshold == b.zero_threshold:
        assert detect_reset(s, a) is False  # adding observations is no counter reset


@settings(max_examples=80, deadline=None)
@given(histograms(), histograms())
def test_kahan_add_equals_add_on_whole_counts(a: FloatHistogram, b: FloatHistogram) -> None:
    r = kahan_add(a, b, None)
    assert promqltest_equal(add(a, b).histogram, finish(r.histogram, r.compensation), False)


@settings(max_examples=80, deadline=None)
@given(histograms(schema=3), st.integers(-4, 2))
def test_reduce_resolution_keeps_every_observation(h: FloatHistogram, target: int) -> None:
    r = reduce_resolution(h, target)
    assert total(r) == total(h) and r.count == h.count
    # Each boundary of the coarser schema is one of the finer one, so fractions agree there.
    if h.count:
        for bound in (1.0, exponential_bound(1, target), exponential_bound(-1, target)):
            assert (
                math.isclose(
                    histogram_fraction(-math.inf, bound, r)[0],
                    histogram_fraction(-math.inf, bound, h)[0],
                    rel_tol=1e-12,
                    abs_tol=1e-12,
                )
                or h.zero_threshold > 0
            )


@settings(max_examples=80, deadline=None)
@given(histograms())
def test_quantile_is_monotonic_and_inverts_fraction(h: FloatHistogram) -> None:
    if h.count == 0 or (h.zero_count and not h.zero_threshold):
        return  # no observations, or some in a zero bucket of width 0: nothing to invert
    qs = [histogram_quantile(q / 10, h)[0] for q in range(11)]
    assert all(a <= b or math.isnan(a) for a, b in itertools.pairwise(qs))
    for q in (0.1, 0.5, 0.9):
        v = histogram_quantile(q, h)[0]
        if math.isfinite(v):
            assert math.isclose(histogram_fraction(-math.inf, v, h)[0], q, abs_tol=1e-9)


@settings(max_examples=80, deadline=None)
@given(histograms(), st.booleans())
def test_codec_round_trip(h: FloatHistogram, integer: bool) -> None:
    back = decode_histogram(encode_histogram(HistogramSample(42, h, integer)))
    assert back.timestamp == 42 and equals(back.histogram, h)


@settings(max_examples=100, deadline=None)
@given(histograms())
def test_compact_is_idempotent_and_keeps_populated_buckets(h: FloatHistogram) -> None:
    c = compact(h, 0)
    assert equals(compact(c, 0), c)
    assert [p for p in h.positive() if p[1]] == c.positive()
    assert all(s.length > 0 for s in c.positive_spans)
    assert c.positive_spans == () or all(isinstance(s, Span) for s in c.positive_spans)
