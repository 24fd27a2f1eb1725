"""Remote-write ``prometheus.Histogram`` decode/encode, with Prometheus's receiver rules
(``storage/remote/codec.go`` ``setCurrentHistogram``, ``model/histogram`` ``Validate``)."""

from __future__ import annotations

import math

import pytest
from histogram_helpers import fh

from grafana_agent_bridge.histogram.codec import (
    HistogramDecodeError,
    HistogramLimits,
    HistogramProto,
    HistogramSample,
    decode_histogram,
    encode_histogram,
)
from grafana_agent_bridge.histogram.model import STALE_NAN, Hint, same_bits, stale_histogram
from grafana_agent_bridge.histogram.ops import equals


def int_histogram(**kw) -> bytes:
    msg = HistogramProto(
        count_int=kw.get("count", 12),
        sum=kw.get("sum", 18.4),
        schema=kw.get("schema", 1),
        zero_threshold=kw.get("zt", 0.0 if kw.get("schema") == -53 else 0.001),
        zero_count_int=kw.get("zero", 2),
        reset_hint=kw.get("hint", 0),
        timestamp=1_700_000_000_000,
    )
    for off, n in kw.get("pos", [(0, 2), (1, 2)]):
        msg.positive_spans.add(offset=off, length=n)
    msg.positive_deltas.extend(kw.get("deltas", [1, 1, -1, 0]))  # 1 2 1 1
    for off, n in kw.get("neg", [(0, 1)]):
        msg.negative_spans.add(offset=off, length=n)
    msg.negative_deltas.extend(kw.get("ndeltas", [5]))
    msg.custom_values.extend(kw.get("cv", []))
    return msg.SerializeToString()


def test_integer_histogram_deltas_become_absolute_counts():
    s = decode_histogram(int_histogram())
    assert s.integer and s.timestamp == 1_700_000_000_000
    want = fh(
        schema=1,
        zt=0.001,
        zc=2,
        count=12,
        total=18.4,
        pos=[(0, 2), (1, 2)],
        pb=[1, 2, 1, 1],
        neg=[(0, 1)],
        nb=[5],
    )
    assert equals(s.histogram, want)


def test_float_histogram_and_hint():
    msg = HistogramProto(count_float=3.5, sum=2, schema=0, zero_count_float=0.5, reset_hint=3)
    msg.positive_spans.add(offset=-1, length=2)
    msg.positive_counts.extend([1.5, 1.5])
    s = decode_histogram(msg.SerializeToString())
    assert not s.integer
    assert s.histogram.hint == Hint.GAUGE
    assert s.histogram.positive() == [(-1, 1.5), (0, 1.5)]
    assert s.histogram.zero_count == 0.5


def test_custom_buckets_histogram():
    raw = int_histogram(
        schema=-53,
        count=4,
        zero=0,
        neg=[],
        ndeltas=[],
        pos=[(0, 3)],
        deltas=[1, 1, -1],
        cv=[0.1, 1],
    )
    h = decode_histogram(raw).histogram
    assert h.custom_values == (0.1, 1)
    assert h.positive_buckets == (1, 2, 1)


def test_finer_schema_is_reduced_to_8():
    """Schemas 9..52 are known: Prometheus reduces them to 8 (setCurrentHistogram)."""
    raw = int_histogram(
        schema=9, count=5, zero=0, neg=[], ndeltas=[], pos=[(1, 4)], deltas=[1, 1, -1, 0]
    )
    h = decode_histogram(raw).histogram
    assert h.schema == 8
    # Indices 1..4 of schema 9 fall in 1, 1, 2, 2 of schema 8 (targetIdx).
    assert h.positive() == [(1, 3.0), (2, 2.0)]


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"schema": 53}, "unknown schema"),
        ({"schema": -10}, "unknown schema"),
        ({"schema": -7}, "invalid schema"),
        ({"count": 13}, "should equal the number of observations"),
        ({"deltas": [1, 1, -3, 0]}, "observation count is negative"),
        ({"pos": [(0, 2), (1, 3)]}, "spans need 5 buckets, have 4"),
        ({"pos": [(0, 2), (-1, 2)]}, "offset is negative"),
        ({"schema": 1, "cv": [1, 2]}, "must not have custom bounds"),
        (
            {"schema": -53, "cv": [1], "neg": [], "ndeltas": [], "zero": 0, "count": 5},
            "custom bounds are too few",
        ),
        (
            {"schema": -53, "cv": [2, 1], "neg": [], "ndeltas": [], "zero": 0, "count": 5},
            "strictly increasing",
        ),
        ({"schema": -53, "cv": [1, 2, 3, 4, 5]}, "zero count"),
    ],
)
def test_invalid_histograms_are_refused_with_a_reason(kw, reason):
    with pytest.raises(HistogramDecodeError, match=reason):
        decode_histogram(int_histogram(**kw))


def test_nan_sum_allows_more_count_than_buckets():
    """NaN observations count but sit in no bucket (Histogram.Validate)."""
    s = decode_histogram(int_histogram(count=15, sum=math.nan))
    assert s.histogram.count == 15
    with pytest.raises(HistogramDecodeError, match="at least the number"):
        decode_histogram(int_histogram(count=10, sum=math.nan))


def test_sizes_are_bounded_before_expansion():
    with pytest.raises(HistogramDecodeError, match="over the limit"):
        decode_histogram(int_histogram(), HistogramLimits(max_buckets=3))
    # A span claiming 4 billion buckets costs nothing: refused on the count check.
    with pytest.raises(HistogramDecodeError, match="spans need"):
        decode_histogram(int_histogram(pos=[(0, 4_000_000_000)]))
    with pytest.raises(HistogramDecodeError, match="invalid protobuf"):
        decode_histogram(b"\xff\xff\xff")


@pytest.mark.parametrize("buckets", [1, 5, 40])
def test_the_size_bound_is_the_same_whether_counted_or_implied_by_the_length(buckets):
    """A message no longer than the limits is within them without counting (each bucket and
    span takes a byte at least); at and around the limits the answer is the counted one."""
    total = buckets * (buckets + 1) // 2  # deltas of 1: counts 1, 2, ..., buckets
    raw = int_histogram(
        pos=[(0, buckets)], deltas=[1] * buckets, count=total, neg=[], ndeltas=[], zero=0
    )
    for limit in (buckets - 1, buckets, len(raw) - 1, len(raw), len(raw) + 1):
        limits = HistogramLimits(max_buckets=limit, max_spans=limit)
        if buckets <= limit:
            assert decode_histogram(raw, limits).histogram.count == total
        else:
            with pytest.raises(HistogramDecodeError, match="over the limit"):
                decode_histogram(raw, limits)


def test_round_trip_integer_and_float():
    s = decode_histogram(int_histogram())
    raw = encode_histogram(s)
    back = decode_histogram(raw)
    assert back.integer and equals(back.histogram, s.histogram)
    assert back.timestamp == s.timestamp
    halves = HistogramSample(5, fh(count=1.5, total=1, pos=[(0, 1)], pb=[1.5]), integer=True)
    again = decode_histogram(encode_histogram(halves))
    assert not again.integer and again.histogram.positive_buckets == (1.5,)


def test_stale_marker_round_trips():
    raw = encode_histogram(HistogramSample(7, stale_histogram(), integer=True))
    s = decode_histogram(raw)
    assert s.histogram.is_stale and same_bits(s.histogram.sum, STALE_NAN)


def test_hostile_bytes_get_a_clear_error_or_a_valid_histogram():
    """Random and mutated bodies never raise anything but HistogramDecodeError, and whatever
    is accepted is valid."""
    import random

    rng = random.Random(12)
    seeds = [
        int_histogram(),
        int_histogram(schema=9, count=5, zero=0, neg=[], ndeltas=[], pos=[(1, 4)],
                      deltas=[1, 1, -1, 0]),
        int_histogram(schema=-53, count=4, zero=0, neg=[], ndeltas=[], pos=[(0, 3)],
                      deltas=[1, 1, -1], cv=[0.1, 1]),
    ]  # fmt: skip
    accepted = 0
    for i in range(3000):
        if i % 3 == 0:
            raw = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        else:
            raw = bytearray(rng.choice(seeds))
            for _ in range(rng.randrange(1, 4)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            raw = bytes(raw)
        try:
            s = decode_histogram(raw)
        except HistogramDecodeError as e:
            assert str(e)
            continue
        s.histogram.validate()
        accepted += 1
    assert accepted > 10  # the mutations do not only produce garbage
