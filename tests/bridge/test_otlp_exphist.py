"""OTLP exponential histogram → native histogram conversion, following Prometheus 3.x's
``prometheusremotewrite/histograms.go`` (``exponentialToNativeHistogram``,
``convertBucketsLayout``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

from grafana_agent_bridge.histogram.model import Hint, Span
from grafana_agent_bridge.otlp.exphist import ConversionError, buckets_layout, to_native

CUMULATIVE, DELTA = 2, 1


def point(
    scale: int, offset: int, counts: list[int], **kw: object
) -> m.ExponentialHistogramDataPoint:
    p = m.ExponentialHistogramDataPoint(scale=scale, count=sum(counts), **kw)  # type: ignore[arg-type]
    p.positive.offset = offset
    p.positive.bucket_counts.extend(counts)
    return p


def test_layout_consecutive_buckets_index_shifted_by_one() -> None:
    # OTLP bucket i is (base^i, base^(i+1)], native bucket i+1 is the same range
    assert buckets_layout([1, 2, 3], 0, 0) == ((Span(1, 3),), (1.0, 2.0, 3.0))
    assert buckets_layout([4], -3, 0) == ((Span(-2, 1),), (4.0,))


def test_layout_gaps_of_up_to_two_are_empty_buckets_longer_start_a_span() -> None:
    # the constant 2 of client_golang's makeBuckets, as convertBucketsLayout uses it
    assert buckets_layout([1, 0, 0, 2], 0, 0) == ((Span(1, 4),), (1.0, 0.0, 0.0, 2.0))
    assert buckets_layout([1, 0, 0, 0, 2], 0, 0) == ((Span(1, 1), Span(3, 1)), (1.0, 2.0))


def test_layout_leaves_out_empty_buckets_at_the_ends() -> None:
    assert buckets_layout([0, 0, 5, 0], 0, 0) == ((Span(3, 1),), (5.0,))
    assert buckets_layout([0, 0], 4, 0) == ((), ())


def test_merged_count_after_empty_buckets_lands_in_its_own_bucket() -> None:
    # OTLP indexes 2 and 3 at scale 9 are native index 2 at schema 8 ((i >> 1) + 1); the
    # empty OTLP bucket 1 before them must not pull the count down to native index 1.
    assert buckets_layout([0, 1, 0], 1, 1) == ((Span(2, 1),), (1.0,))


def test_scale_above_8_merges_buckets() -> None:
    # scale 9 → schema 8: pairs of OTLP buckets (i >> 1) merge; index i>>1 + 1
    h = to_native(point(9, 0, [1, 2, 3, 4]), CUMULATIVE)
    assert h.schema == 8
    assert h.positive_spans == (Span(1, 2),) and h.positive_buckets == (3.0, 7.0)
    h = to_native(point(10, 1, [1, 1, 1, 1]), CUMULATIVE)  # indexes 1..4 >> 2 = 0,0,0,1
    assert h.positive_spans == (Span(1, 2),) and h.positive_buckets == (3.0, 1.0)


def test_scale_below_minus_4_cannot_be_converted() -> None:
    with pytest.raises(ConversionError, match="scale must be >= -4"):
        to_native(point(-5, 0, [1]), CUMULATIVE)


def test_fields_zero_bucket_hint_sum_and_stale() -> None:
    p = point(2, 0, [1], zero_count=3, sum=4.5)
    p.count = 4
    p.negative.offset = -1
    p.negative.bucket_counts.extend([2])
    h = to_native(p, CUMULATIVE)
    assert (h.count, h.sum, h.zero_count, h.zero_threshold) == (4.0, 4.5, 3.0, 1e-128)
    assert h.negative_spans == (Span(0, 1),) and h.negative_buckets == (2.0,)
    assert h.hint == Hint.UNKNOWN
    assert to_native(p, DELTA).hint == Hint.GAUGE
    assert to_native(point(0, 0, [1]), CUMULATIVE).sum == 0.0  # no sum sent
    stale = point(0, 0, [1], flags=m.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK)
    assert to_native(stale, CUMULATIVE).is_stale


@settings(max_examples=200, deadline=None)
@given(
    scale=st.integers(-4, 12),
    offset=st.integers(-30, 30),  # bounds stay finite at scale -4
    counts=st.lists(st.integers(0, 5), min_size=1, max_size=30),
)
def test_every_observation_lands_in_the_native_bucket_covering_it(
    scale: int, offset: int, counts: list[int]
) -> None:
    # Independent of the layout code: OTLP bucket i covers (2^(i*2^-scale), 2^((i+1)*2^-scale)],
    # so its count must be in the native bucket (model bounds) whose range contains it.
    h = to_native(point(scale, offset, counts), CUMULATIVE)
    h.validate()
    assert sum(h.positive_buckets) == sum(counts)
    native = [h.bucket(i, c, True) for i, c in h.positive()]
    expected: dict[float, int] = {}
    for i, n in enumerate(counts):
        if n == 0:
            continue
        upper = 2 ** ((offset + i + 1) * 2.0**-scale)
        (b,) = [
            b for b in native if b.lower < upper * (1 - 1e-9) and upper <= b.upper * (1 + 1e-9)
        ]
        expected[b.upper] = expected.get(b.upper, 0) + n
    assert {b.upper: b.count for b in native if b.count} == expected
