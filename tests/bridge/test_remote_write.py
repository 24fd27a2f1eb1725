"""The remote-write 1.0 codec: what senders may send and what the bridge keeps of it."""

import struct

import cramjam
import numpy as np
import pytest

from grafana_agent_bridge.remote_write import (
    RemoteWriteError,
    WriteRequest,
    check_headers,
    decode_write_request,
    encode_write_request,
)
from grafana_agent_bridge.storage import STALE_NAN, MetricMetadata, SeriesBatch, stale_mask


def batch(labels, times, values):
    return SeriesBatch(
        tuple(sorted(labels.items())),
        np.array(times, dtype=np.int64),
        np.array(values, dtype=np.float64),
    )


def test_round_trip_keeps_samples_stale_markers_and_metadata():
    sent = [batch({"__name__": "up", "job": "node"}, [1000, 2000, 3000], [1.0, 0.5, STALE_NAN])]
    body = encode_write_request(sent, [MetricMetadata("up", "gauge", "is it up", "")])
    got = decode_write_request(body)
    assert got.rejections == []
    assert got.series[0].labels == (("__name__", "up"), ("job", "node"))
    assert got.series[0].timestamps.tolist() == [1000, 2000, 3000]
    assert stale_mask(got.series[0].values).tolist() == [False, False, True]
    assert got.metadata == [MetricMetadata("up", "gauge", "is it up", "")]


def test_body_is_snappy_block_format_not_framed():
    body = encode_write_request([batch({"__name__": "a"}, [1], [1.0])])
    req = WriteRequest()
    req.ParseFromString(bytes(cramjam.snappy.decompress_raw(body)))
    assert req.timeseries[0].labels[0].name == "__name__"
    framed = bytes(cramjam.snappy.compress(bytes(cramjam.snappy.decompress_raw(body))))
    with pytest.raises(RemoteWriteError) as e:
        decode_write_request(framed)
    assert e.value.status == 400


def test_unsorted_labels_are_sorted_and_empty_values_dropped():
    req = WriteRequest()
    ts = req.timeseries.add()
    for name, value in [("zone", "a"), ("__name__", "m"), ("empty", "")]:
        ts.labels.add(name=name, value=value)
    ts.samples.add(value=1.0, timestamp=5)
    got = decode_write_request(bytes(cramjam.snappy.compress_raw(req.SerializeToString())))
    assert got.series[0].labels == (("__name__", "m"), ("zone", "a"))


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ([("job", "x")], "missing metric name"),
        ([("__name__", "m"), ("", "v")], "empty label name"),
        ([("__name__", "m"), ("a", "1"), ("a", "2")], "duplicate label name"),
    ],
)
def test_invalid_series_rejected_valid_ones_kept(labels, reason):
    req = WriteRequest()
    bad = req.timeseries.add()
    for name, value in labels:
        bad.labels.add(name=name, value=value)
    bad.samples.add(value=1.0, timestamp=1)
    good = req.timeseries.add()
    good.labels.add(name="__name__", value="ok")
    good.samples.add(value=2.0, timestamp=1)
    got = decode_write_request(bytes(cramjam.snappy.compress_raw(req.SerializeToString())))
    assert [s.labels for s in got.series] == [(("__name__", "ok"),)]
    assert len(got.rejections) == 1
    assert reason in got.rejections[0].reason


def test_a_series_without_a_metric_name_is_reported_with_its_labels():
    """The 400 names the offending series by the labels it was sent with, not as ``{}``."""
    req = WriteRequest()
    bad = req.timeseries.add()
    bad.labels.add(name="job", value="node")
    bad.labels.add(name="instance", value="db1:9100")
    bad.labels.add(name="huge", value="x" * 100_000)
    bad.samples.add(value=1.0, timestamp=1)
    got = decode_write_request(bytes(cramjam.snappy.compress_raw(req.SerializeToString())))
    (rejection,) = got.rejections
    shown = dict(rejection.labels)
    assert shown["job"] == "node" and shown["instance"] == "db1:9100"
    assert 0 < len(shown["huge"]) <= 128  # bounded: the error body repeats it
    assert "missing metric name" in rejection.reason


def test_out_of_order_and_duplicate_samples_within_a_series_are_rejected():
    got = decode_write_request(
        encode_write_request([batch({"__name__": "x"}, [3, 2, 4, 4, 5], [1, 2, 3, 9, 5])])
    )
    assert got.series[0].timestamps.tolist() == [3, 4, 5]
    reasons = sorted((r.timestamp, r.reason) for r in got.rejections)
    assert reasons == [(2, "out of order sample"), (4, "duplicate sample for timestamp")]


def test_native_histograms_are_kept_with_their_series():
    req = WriteRequest()
    ts = req.timeseries.add()
    ts.labels.add(name="__name__", value="h")
    # TimeSeries field 4 (histograms): one Histogram holding only sum=1.5 (field 3, double).
    hist = b"\x19" + struct.pack("<d", 1.5)
    series = ts.SerializeToString() + b"\x22" + bytes([len(hist)]) + hist
    body = b"\x0a" + bytes([len(series)]) + series
    got = decode_write_request(bytes(cramjam.snappy.compress_raw(body)))
    assert not got.rejections
    (series,) = got.series
    assert series.histograms is not None and series.histograms[0] is not None
    assert series.histograms[0].sum == 1.5


@pytest.mark.parametrize(
    ("ctype", "encoding"),
    [
        ("application/json", "snappy"),
        ("application/x-protobuf", "gzip"),
        ("application/x-protobuf", None),
        ("application/x-protobuf;proto=io.prometheus.write.v2.Request", "snappy"),
    ],
)
def test_wrong_content_type_or_encoding_is_415(ctype, encoding):
    with pytest.raises(RemoteWriteError) as e:
        check_headers(ctype, encoding)
    assert e.value.status == 415


def test_v1_content_type_variants_accepted():
    check_headers("application/x-protobuf", "snappy")
    check_headers("application/x-protobuf;proto=prometheus.WriteRequest", "snappy")
    check_headers(None, "snappy")


@pytest.mark.parametrize("body", [b"", b"\x00", b"not snappy at all", b"\xff" * 40])
def test_garbage_bodies_are_400_never_a_crash(body):
    try:
        got = decode_write_request(body)
    except RemoteWriteError as e:
        assert e.status == 400
    else:
        assert got.series == []


def test_bad_protobuf_inside_valid_snappy_is_400():
    with pytest.raises(RemoteWriteError) as e:
        decode_write_request(bytes(cramjam.snappy.compress_raw(b"\x0a\xff\xff\xff")))
    assert e.value.status == 400


def _series_with_histograms(name: str, value: float, histograms: list[bytes]) -> bytes:
    """A TimeSeries with one float sample and raw ``histograms`` (field 4)."""
    req = WriteRequest()
    ts = req.timeseries.add()
    ts.labels.add(name="__name__", value=name)
    ts.samples.add(value=value, timestamp=1000)
    raw = ts.SerializeToString()
    for h in histograms:
        raw += b"\x22" + bytes([len(h)]) + h
    return b"\x0a" + bytes([len(raw)]) + raw


def test_histograms_are_decoded_and_validated_and_floats_kept():
    from grafana_agent_bridge.histogram.codec import HistogramProto

    good = HistogramProto(count_int=3, sum=2.0, schema=0, timestamp=1000)
    good.positive_spans.add(offset=0, length=2)
    good.positive_deltas.extend([1, 1])  # counts 1 and 2
    bad = HistogramProto(count_int=3, sum=2.0, schema=0, timestamp=2000)
    bad.positive_spans.add(offset=0, length=3)  # three buckets claimed, two sent
    bad.positive_deltas.extend([1, 1])
    body = _series_with_histograms(
        "mixed", 7.0, [good.SerializeToString(), bad.SerializeToString()]
    )
    got = decode_write_request(bytes(cramjam.snappy.compress_raw(body)))
    # The float sample is never lost; the valid histogram joins it in timestamp order.
    assert 7.0 in got.series[0].values.tolist()
    assert got.samples == 3
    (series,) = got.histograms
    assert series.labels == (("__name__", "mixed"),)
    (sample,) = series.samples
    assert sample.timestamp == 1000 and sample.histogram.positive_buckets == (1.0, 2.0)
    kinds = sorted((r.kind, r.count) for r in got.rejections)
    assert kinds == [("invalid_histogram", 1)]
    invalid = next(r for r in got.rejections if r.kind == "invalid_histogram")
    assert "spans need 3 buckets, have 2" in invalid.reason


def test_histograms_are_encoded_for_forwarding_and_decode_back():
    from grafana_agent_bridge.histogram.codec import HistogramSample
    from grafana_agent_bridge.histogram.model import FloatHistogram, Span
    from grafana_agent_bridge.remote_write import HistogramSeries

    h = FloatHistogram(count=3, sum=2.5, positive_spans=(Span(0, 2),), positive_buckets=(1, 2))
    half = FloatHistogram(count=1.5, sum=1, positive_spans=(Span(0, 1),), positive_buckets=(1.5,))
    labels = (("__name__", "fwd_h"), ("job", "x"))
    sent = HistogramSeries(
        labels, [HistogramSample(1000, h, True), HistogramSample(2000, half, False)]
    )
    body = encode_write_request([], histograms=[sent])
    got = decode_write_request(body)
    (series,) = got.histograms
    assert series.labels == labels
    assert [(s.timestamp, s.integer, s.histogram) for s in series.samples] == [
        (1000, True, h),
        (2000, False, half),
    ]


def test_histogram_bytes_of_a_request_are_bounded_and_its_floats_kept():
    from grafana_agent_bridge.histogram.codec import HistogramProto
    from grafana_agent_bridge.remote_write import DecodeLimits

    hists = []
    for k in range(10):
        h = HistogramProto(count_int=100, sum=2.0, schema=0, timestamp=2000 + k)
        h.positive_spans.add(offset=0, length=100)
        h.positive_deltas.extend([1] + [0] * 99)
        hists.append(h.SerializeToString())
    req = WriteRequest()
    ts = req.timeseries.add()
    ts.labels.add(name="__name__", value="big")
    ts.samples.add(value=7.0, timestamp=1000)
    ts.histograms.extend(hists)
    body = req.SerializeToString()
    per = len(hists[0])
    got = decode_write_request(
        bytes(cramjam.snappy.compress_raw(body)), bounds=DecodeLimits(max_decoded_elements=3 * per)
    )
    (series,) = got.series
    assert 7.0 in series.values.tolist()  # the float sample is kept
    assert series.histograms is not None and sum(h is not None for h in series.histograms) == 3
    (limit,) = [r for r in got.rejections if r.kind == "histogram_limit"]
    assert limit.count == 7 and "max_decoded_elements" in limit.reason
