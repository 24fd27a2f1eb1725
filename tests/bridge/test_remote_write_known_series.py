"""The decoder's shortcut for series whose labels it has seen (one cached labels section plus
one sample field, decoded with numpy) must give exactly what full parsing gives."""

import cramjam
import numpy as np
import pytest

from grafana_agent_bridge import remote_write
from grafana_agent_bridge.decompress import count_element_tags
from grafana_agent_bridge.labels import LabelLimits, Labels
from grafana_agent_bridge.remote_write import (
    DecodedWrite,
    LabelCache,
    RequestLimits,
    WriteRequest,
    decode_write_request,
    varint,
)

T0 = 1_700_000_000_000  # ms: a 6-byte varint, the shape the shortcut decodes


def body(series: list[tuple[list[tuple[str, str]], list[tuple[int, float]]]]) -> bytes:
    req = WriteRequest()
    for labels, samples in series:
        ts = req.timeseries.add()
        for name, value in labels:
            ts.labels.add(name=name, value=value)
        for t, v in samples:
            ts.samples.add(timestamp=t, value=v)
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


def as_plain(got: DecodedWrite) -> list[tuple[object, list[int], list[float]]]:
    return [(s.labels, s.timestamps.tolist(), s.values.tolist()) for s in got.series]


UP = [("__name__", "up"), ("job", "node")]
LOAD = [("instance", "h1"), ("__name__", "load1")]  # unsorted, as a sender may send them
EMPTY = [("__name__", "free"), ("zone", "")]  # an empty value: dropped


def test_known_series_decode_as_a_fresh_parse_does() -> None:
    cache = LabelCache()
    first = body([(UP, [(T0, 1.0)]), (LOAD, [(T0, 0.5)]), (EMPTY, [(T0, 3.0)])])
    decode_write_request(first, cache=cache)
    # Second request: every series known; values with and without the value field (0.0 is
    # left out by proto3), negative, NaN-free, and one series with two samples.
    values = [(UP, [(T0 + 15_000, 0.0)]), (LOAD, [(T0 + 15_000, -2.5e300)])]
    values.append((EMPTY, [(T0 + 15_000, 7.0), (T0 + 30_000, 8.0)]))
    second = body(values)
    warm = decode_write_request(second, cache=cache)
    cold = decode_write_request(second, cache=LabelCache())
    assert warm.rejections == cold.rejections == []
    assert as_plain(warm) == as_plain(cold)
    assert as_plain(warm)[0] == ((("__name__", "up"), ("job", "node")), [T0 + 15_000], [0.0])
    assert as_plain(warm)[1][2] == [-2.5e300]
    assert warm.samples == cold.samples == 4
    # The shortcut took the one-sample series; only the two-sample one was parsed.
    raw = remote_write._RawWriteRequest()
    raw.ParseFromString(bytes(cramjam.snappy.decompress_raw(second)))
    assert remote_write._split_known(raw.timeseries, cache)[1] == 1


def test_timestamps_outside_the_fixed_shape_still_decode() -> None:
    cache = LabelCache()
    for t in (5, T0, 1 << 45, -1000):
        got = decode_write_request(body([(UP, [(t, 1.5)])]), cache=cache)
        assert as_plain(got) == [((("__name__", "up"), ("job", "node")), [t], [1.5])]


def test_a_known_invalid_series_is_still_rejected_naming_its_labels() -> None:
    cache = LabelCache(limits=LabelLimits(max_label_value_length=4))
    bad = [("__name__", "m"), ("host", "too-long")]
    for _ in range(2):
        got = decode_write_request(body([(bad, [(T0, 1.0)]), (UP, [(T0, 1.0)])]), cache=cache)
        assert [r.kind for r in got.rejections] == ["label_value_length"]
        assert got.rejections[0].labels == (("__name__", "m"), ("host", "too-long"))
        assert [s.labels for s in got.series] == [(("__name__", "up"), ("job", "node"))]


def test_request_limits_hold_when_every_series_is_known() -> None:
    cache = LabelCache()
    series = [([("__name__", f"m{i}")], [(T0, float(i))]) for i in range(5)]
    decode_write_request(body(series), cache=cache)
    got = decode_write_request(body(series), cache=cache, limits=RequestLimits(3, 0))
    assert [s.labels[0][1] for s in got.series] == ["m0", "m1", "m2"]
    assert [r.kind for r in got.rejections] == ["series_per_request"]
    assert got.samples == 5
    got = decode_write_request(body(series), cache=cache, limits=RequestLimits(0, 2))
    assert len(got.series) == 2 and got.rejections[0].kind == "samples_per_request"


def test_order_of_known_and_new_series_is_kept() -> None:
    cache = LabelCache()
    decode_write_request(body([(UP, [(T0, 1.0)])]), cache=cache)
    new = [("__name__", "new")]
    got = decode_write_request(
        body([(new, [(T0, 2.0)]), (UP, [(T0 + 1, 3.0)]), (new, [(T0 + 2, 4.0)])]), cache=cache
    )
    assert [(s.labels[0][1], s.values.tolist()) for s in got.series] == [
        ("new", [2.0]),
        ("up", [3.0]),
        ("new", [4.0]),
    ]


def test_a_sample_field_hidden_in_a_label_value_is_not_mistaken_for_one() -> None:
    cache = LabelCache()
    # The value ends with bytes shaped like a sample field; its labels are new, so parsed.
    fake = "x" + "\x12\x07\x10" + "\x01" * 6
    labels = [("__name__", "m"), ("v", fake)]
    decode_write_request(body([([("__name__", "m")], [(T0, 1.0)])]), cache=cache)
    got = decode_write_request(body([(labels, [(T0, 9.0)])]), cache=cache)
    assert as_plain(got) == [((("__name__", "m"), ("v", fake)), [T0], [9.0])]
    assert np.isfinite(got.series[0].values).all()


def test_element_tags_are_counted_exactly_across_pieces() -> None:
    data = np.random.default_rng(3).integers(0, 256, (1 << 20) + 12345, dtype=np.uint8)
    expected = int(np.isin(data, [0x0A, 0x12, 0x1A, 0x22, 0x2A]).sum())
    assert count_element_tags(memoryview(data.tobytes())) == expected


def _field(number: int, payload: bytes, *, padded: bool = False) -> bytes:
    """A length-delimited field; ``padded`` writes its length as a needlessly long varint
    (valid protobuf that no usual encoder writes)."""
    size = varint(len(payload))
    if padded:
        size = bytes([size[0] | 0x80, 0x00]) if len(size) == 1 else size
    return bytes([number << 3 | 2]) + size + payload


def _label(name: str, value: str) -> bytes:
    return _field(1, name.encode()) + _field(2, value.encode())


def _sample(t: int, v: float) -> bytes:
    return b"\x09" + np.float64(v).tobytes() + b"\x10" + varint(t)


def _raw_body(*series: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(b"".join(_field(1, s) for s in series)))


def test_new_series_decode_as_a_fresh_parse_does_however_they_are_encoded() -> None:
    """The first request of a sender (every series new) takes the shortcut too, but only
    where the bytes before the last sample really are nothing but labels."""
    up = _field(1, _label("__name__", "up")) + _field(1, _label("job", "node"))
    padded = _field(1, _label("__name__", "up"), padded=True) + _field(1, _label("job", "x"))
    two = up + _field(2, _sample(T0, 1.0))  # a sample before the last one
    with_exemplar = _field(1, _label("__name__", "ex")) + _field(
        3, _field(1, _label("trace_id", "abc")) + b"\x11" + np.float64(0.25).tobytes()
    )
    series = [
        up + _field(2, _sample(T0, 1.0)),
        padded + _field(2, _sample(T0, 2.0)),
        two + _field(2, _sample(T0 + 15_000, 3.0)),
        with_exemplar + _field(2, _sample(T0, 4.0)),
    ]
    cache = LabelCache()
    for _ in range(2):  # new, then known
        got = decode_write_request(_raw_body(*series), cache=cache)
        assert got.rejections == []
        assert as_plain(got) == [
            ((("__name__", "up"), ("job", "node")), [T0], [1.0]),
            ((("__name__", "up"), ("job", "x")), [T0], [2.0]),
            ((("__name__", "up"), ("job", "node")), [T0, T0 + 15_000], [1.0, 3.0]),
            ((("__name__", "ex"),), [T0], [4.0]),
        ]
        assert [(e.labels, e.value) for e in got.series[3].exemplars] == [
            ((("trace_id", "abc"),), 0.25)
        ]
    # Known now: all but the two-sample and the exemplar series took the shortcut.
    raw = remote_write._RawWriteRequest()
    raw.ParseFromString(bytes(cramjam.snappy.decompress_raw(_raw_body(*series))))
    assert remote_write._split_known(raw.timeseries, cache)[1] == 2


def test_a_label_repeated_across_series_is_held_once() -> None:
    """Label pairs are shared between the label sets of a request (and of the store): the
    memory of a series is its own tuple, not a copy of every ``job="..."``."""
    series = [([("__name__", f"m{i}"), ("job", "node-exporter")], [(T0, 1.0)]) for i in range(3)]
    got = decode_write_request(body(series), cache=LabelCache())
    jobs = [s.labels[1] for s in got.series]
    assert jobs[0] == ("job", "node-exporter")
    assert jobs[0] is jobs[1] is jobs[2]


def test_a_long_label_is_refused_in_every_series_that_holds_it() -> None:
    cache = LabelCache(limits=LabelLimits(max_label_value_length=8))
    long = ("host", "a-very-long-host")
    for i in range(3):
        got = decode_write_request(
            body([([("__name__", f"m{i}"), long], [(T0, 1.0)]), (UP, [(T0, 1.0)])]),
            cache=cache,
        )
        assert [r.kind for r in got.rejections] == ["label_value_length"]
        assert [s.labels for s in got.series] == [(("__name__", "up"), ("job", "node"))]


def test_new_series_decode_whole_even_when_the_cache_cannot_hold_them() -> None:
    """A sender's first request decodes completely and in order whether or not its label
    sets stay cached while the request is decoded (a one-entry cache forgets each at once),
    and an invalid new series repeated in it is refused each time."""
    bad = [("job", "no-name")]
    series = [([("__name__", f"m{i}"), ("job", "node")], [(T0 + i, float(i))]) for i in range(4)]
    series[1:1] = [(bad, [(T0, 1.0)]), (bad, [(T0, 2.0)])]
    want = decode_write_request(body(series), cache=LabelCache())
    got = decode_write_request(body(series), cache=LabelCache(limit=1))
    assert as_plain(got) == as_plain(want)
    assert [s.values.tolist() for s in got.series] == [[0.0], [1.0], [2.0], [3.0]]
    assert [r.kind for r in got.rejections] == ["invalid_series", "invalid_series"]


def _one_by_one(
    series: list[tuple[list[tuple[str, str]], list[tuple[int, float]]]], limits: LabelLimits
) -> tuple[list[Labels], list[tuple[Labels, str]]]:
    got = [decode_write_request(body([s]), cache=LabelCache(limits=limits)) for s in series]
    return (
        [s.labels for g in got for s in g.series],
        [(r.labels, r.kind) for g in got for r in g.rejections],
    )


def test_a_first_request_learns_its_series_together_as_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The new series of a request are learned in one go (one parse of all their labels
    sections): each valid one gets the label set, each invalid one the rejection, that it
    gets decoded alone, in request order, without the one-by-one fallback."""
    limits = LabelLimits(max_labels_per_series=4)
    job = ("job", "node")
    series = [
        ([("__name__", "up"), job], [(T0, 1.0)]),
        ([job, ("__name__", "load1"), ("cpu", "0")], [(T0, 2.0)]),  # unsorted
        ([("__name__", "up"), ("job", "node"), ("job", "again")], [(T0, 3.0)]),  # repeated name
        ([job, ("cpu", "1")], [(T0, 4.0)]),  # no metric name
        ([("__name__", "free"), ("zone", ""), job], [(T0, 5.0)]),  # empty value: dropped
        ([("__name__", "m"), ("a", "1"), ("b", "2"), ("c", "3"), job], [(T0, 6.0)]),  # 5 labels
        ([("__name__", ""), job], [(T0, 7.0)]),  # empty metric name
        ([("__name__", "up"), job], [(T0, 1.0)]),  # the first one again
    ]

    def no_fallback(self: LabelCache, section: bytes) -> None:
        raise AssertionError("learned one by one")

    monkeypatch.setattr(LabelCache, "_learn_one", no_fallback)
    got = decode_write_request(body(series), cache=LabelCache(limits=limits))
    monkeypatch.undo()
    want_labels, want_rejections = _one_by_one(series, limits)
    assert [s.labels for s in got.series] == want_labels
    assert [s.values.tolist() for s in got.series] == [[1.0], [2.0], [5.0], [1.0]]
    assert [(r.labels, r.kind) for r in got.rejections] == want_rejections
    assert [k for _, k in want_rejections] == [
        "invalid_series",
        "invalid_series",
        "labels_per_series",
        "invalid_series",
    ]


def test_new_series_with_a_long_label_are_learned_one_by_one_alike() -> None:
    """A label of 128 bytes or more (a longer field header) leaves the joined parse to the
    one-by-one one, with the same outcome."""
    limits = LabelLimits()
    series = [
        ([("__name__", "up"), ("job", "node")], [(T0, 1.0)]),
        ([("__name__", "info"), ("version", "v" * 300)], [(T0, 2.0)]),
        ([("__name__", "up"), ("job", "x"), ("job", "y")], [(T0, 3.0)]),
    ]
    got = decode_write_request(body(series), cache=LabelCache(limits=limits))
    want_labels, want_rejections = _one_by_one(series, limits)
    assert [s.labels for s in got.series] == want_labels
    assert len(want_labels) == 2 and want_labels[1][1] == ("version", "v" * 300)
    assert [(r.labels, r.kind) for r in got.rejections] == want_rejections


@pytest.mark.parametrize(
    ("limit", "max_bytes"), [(1, 1000), (3, 1000), (5, 1000), (6, 1000), (100, 1000), (100, 12)]
)
def test_learned_label_sets_are_cached_as_if_kept_one_at_a_time(
    monkeypatch: pytest.MonkeyPatch, limit: int, max_bytes: int
) -> None:
    """``learn_many`` caches a request's new label sets in one update when they fit the
    cache's bounds (entries and bytes), else one by one: the cache ends up the same either
    way, starting over where one-by-one keeping would."""
    monkeypatch.setattr(remote_write, "_CACHE_BYTES", max_bytes)
    sections = [bytes([i]) * (i + 1) for i in range(5)]
    labels: list[Labels | None] = [(("__name__", f"m{i}"),) for i in range(5)]
    labels[2] = None  # invalid: never cached
    bulk, single = LabelCache(limit=limit), LabelCache(limit=limit)
    for cache in (bulk, single):
        cache._keep(b"old", (("__name__", "old"),))
    bulk._keep_all(sections, labels)
    for section, valid in zip(sections, labels):
        if valid is not None:
            single._keep(section, valid)
    assert list(bulk._cache.items()) == list(single._cache.items())
    assert bulk._bytes == single._bytes


def _histogram_request(rng: np.random.Generator, n: int, k: int, shapes: int = 12) -> bytes:
    """A write of ``n`` series, mostly one native histogram each (as a scrape sends them),
    some with a float sample, an exemplar, a second histogram, a broken histogram, a long
    label or no labels: every shape the histogram shortcut must either take exactly as full
    parsing would, or leave to it."""
    from grafana_agent_bridge.histogram.codec import HistogramSample, encode_histogram
    from grafana_agent_bridge.histogram.model import FloatHistogram, Span

    req = WriteRequest()
    for i in range(n):
        ts = req.timeseries.add()
        shape = int(rng.integers(0, shapes))
        if shape != 11:  # 11: no labels at all
            ts.labels.add(name="__name__", value="lat")
            ts.labels.add(name="i", value=str(i % 7) + ("x" * 130 if shape == 10 else ""))
        width = int(rng.choice([3, 20, 70]))  # 70 buckets: a two-byte length field
        counts = rng.integers(0, 9, width).astype(float)
        integer = shape != 1
        if not integer:
            counts = counts + 0.5
        if shape == 2:
            counts[0] = -1.0  # refused: a negative bucket
        h = FloatHistogram(
            schema=int(rng.choice([0, 3, 8, 10])),
            count=float(counts.sum()),
            sum=float(rng.random()),
            positive_spans=(Span(-3, width),),
            positive_buckets=tuple(counts.tolist()),
        )
        t = T0 + k * 15_000
        item = encode_histogram(HistogramSample(t, h, integer))
        if shape == 2 and i % 2:
            item = b"\x0a\xff\xff\xff"  # not a protobuf message at all
        ts.histograms.append(item)
        if shape == 3:
            ts.samples.add(timestamp=t - 1, value=1.5)
        if shape == 4:
            ex = ts.exemplars.add(value=1.0, timestamp=t)
            ex.labels.add(name="trace_id", value="abc")
        if shape == 5:
            ts.histograms.append(encode_histogram(HistogramSample(t + 1, h, integer)))
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


def _everything(got: DecodedWrite) -> object:
    series = [
        (s.labels, s.timestamps.tolist(), s.values.tobytes(), s.histograms, s.histogram_wire)
        for s in got.series
    ]
    return series, got.rejections, got.samples, got.histograms


@pytest.mark.parametrize("seed", range(6))
def test_histogram_scrapes_decode_as_a_fresh_parse_does(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(seed)
    limits = RequestLimits(max_series_per_request=0 if seed % 2 else 25)
    warm = LabelCache()
    real = remote_write._one_histogram_each
    whole: list[bool] = []

    def spy(series, known, cache):  # type: ignore[no-untyped-def]
        found = real(series, known, cache)
        whole.append(len(found) == known.count(None))
        return found

    for k in range(6):
        # Every other write holds only shapes the shortcut takes whole (scrapes, float
        # histograms, refused ones); the others hold some that it must leave to parsing.
        body_k = _histogram_request(rng, 40, k, shapes=3 if k % 2 else 12)
        with monkeypatch.context() as m:
            m.setattr(remote_write, "_one_histogram_each", lambda *a: [])  # full parse only
            want = decode_write_request(body_k, cache=LabelCache(), limits=limits)
        with monkeypatch.context() as m:
            m.setattr(remote_write, "_one_histogram_each", spy)
            got = decode_write_request(body_k, cache=warm, limits=limits)
        assert _everything(got) == _everything(want)
    assert sum(whole) >= 3  # the shortcut took whole writes, not only handed them on


def test_a_scrape_of_histograms_takes_the_shortcut_whole() -> None:
    """Known and new label sets, one histogram each, no other field: no whole parse."""
    rng = np.random.default_rng(7)
    cache = LabelCache()
    req = WriteRequest.FromString(
        bytes(cramjam.snappy.decompress_raw(_histogram_request(rng, 30, 0)))
    )
    plain = WriteRequest()
    for ts in req.timeseries:
        simple = len(ts.labels) == 2 and len(ts.labels[1].value) < 100
        if simple and not ts.samples and not ts.exemplars and len(ts.histograms) == 1:
            plain.timeseries.append(ts)
    raw = plain.SerializeToString()
    series = remote_write._RawWriteRequest.FromString(raw).timeseries
    known: list[object] = [None] * len(series)
    found = remote_write._one_histogram_each(series, known, cache)  # type: ignore[arg-type]
    assert len(found) == len(series) > 10
    assert [i for i, _, _ in found] == list(range(len(series)))


def test_mangled_histogram_writes_decode_alike_with_and_without_the_shortcut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hostile bytes inside a series (the outer parse leaves them raw): flipped, cut or
    inserted bytes give the shortcut and full parsing the same answer, an error or a result."""
    rng = np.random.default_rng(11)
    clean = bytes(cramjam.snappy.decompress_raw(_histogram_request(rng, 6, 0, shapes=3)))
    real = remote_write._one_histogram_each

    def decode(raw: bytes, shortcut: bool) -> object:
        with monkeypatch.context() as m:
            if not shortcut:
                m.setattr(remote_write, "_one_histogram_each", lambda *a: [])
            try:
                got = decode_write_request(
                    bytes(cramjam.snappy.compress_raw(raw)), cache=LabelCache()
                )
            except remote_write.RemoteWriteError as e:
                return ("error", e.status)
        return _everything(got)

    for _ in range(400):
        raw = bytearray(clean)
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.integers(0, len(raw)))
            op = int(rng.integers(0, 3))
            if op == 0:
                raw[at] = int(rng.integers(0, 256))
            elif op == 1:
                del raw[at : at + int(rng.integers(1, 4))]
            else:
                raw[at:at] = bytes(rng.integers(0, 256, int(rng.integers(1, 4))).tolist())
        assert decode(bytes(raw), True) == decode(bytes(raw), False)
    assert real is remote_write._one_histogram_each


def test_the_shortcut_stops_walking_labels_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A series with more labels than allowed is not walked label by label to its end (a
    hostile write of many tiny labels): it goes to parsing, which counts and refuses it."""
    from grafana_agent_bridge.histogram.codec import HistogramSample, encode_histogram
    from grafana_agent_bridge.histogram.model import FloatHistogram, Span

    h = FloatHistogram(count=3.0, positive_spans=(Span(0, 1),), positive_buckets=(3.0,))
    req = WriteRequest()
    for n_labels in (3, 6):
        ts = req.timeseries.add()
        ts.labels.add(name="__name__", value="lat")
        for k in range(n_labels - 1):
            ts.labels.add(name=f"l{k}", value="v")
        ts.histograms.append(encode_histogram(HistogramSample(T0, h, True)))
    raw = req.SerializeToString()
    series = remote_write._RawWriteRequest.FromString(raw).timeseries
    for s, limit in ((series[0], 3), (series[1], 6)):
        where = remote_write._histogram_field(s, limit)
        assert where is not None and where[0] > 0 and where[1] == where[0] + 2  # a short one
    assert remote_write._histogram_field(series[1], 3) is None
    limits = LabelLimits(max_labels_per_series=3)
    body_ = bytes(cramjam.snappy.compress_raw(raw))
    got = decode_write_request(body_, cache=LabelCache(limits=limits))
    with monkeypatch.context() as m:
        m.setattr(remote_write, "_one_histogram_each", lambda *a: [])
        want = decode_write_request(body_, cache=LabelCache(limits=limits))
    assert _everything(got) == _everything(want)
    assert [r.kind for r in got.rejections] == ["labels_per_series"]
    assert len(got.series) == 1
