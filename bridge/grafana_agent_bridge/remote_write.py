"""Prometheus remote-write 1.0: decoding what senders push to us, encoding what we forward.

The protobuf schema (``prometheus.WriteRequest`` of prompb, field numbers exact) is declared
in code, so no ``protoc`` step is needed. Decoding uses a wire-compatible variant of
``TimeSeries`` whose labels are kept as raw bytes: a sender repeats the same label set in every
request, so the raw bytes make a cheap cache key and each label set is parsed and validated once.

What a request may contain and what happens to it (the ingest contract):

- Body: protobuf, snappy *block* format. Wrong ``Content-Encoding``/``Content-Type``, or a
  2.0 message type here (2.0 is ``remote_write2``'s) → ``RemoteWriteError(415)``.
  Bad snappy or protobuf → ``RemoteWriteError(400)``; nothing of the request is kept.
  A body that would decode past ``DecodeLimits`` → ``RemoteWriteError(413)``, decided before
  it is decompressed or parsed (see ``decompress``).
- A series with invalid labels (no or empty ``__name__``, an empty label name, a repeated label
  name) or labels over a ``LabelLimits`` bound (count, name or value length) is rejected as a
  whole; the count is checked before any label is decoded. Labels with an empty value are
  dropped (an empty value means "absent" in Prometheus). Label order in the request does not
  matter.
- Samples must come in strictly ascending timestamp order within a series; one that does not is
  rejected ("out of order sample"). Native histograms are decoded and validated
  (``histogram.codec``, which also bounds the buckets of one histogram): an invalid one is
  rejected with the reason; valid ones join the series' float samples in timestamp order
  (``SeriesBatch.histograms``), and the store applies the float rules to both kinds.
- Series after the first ``max_series_per_request``, and from the series that would take the
  request over ``max_samples_per_request`` on, are rejected unread (one summary rejection).
- Everything valid is passed on; the rejections are returned so the HTTP layer can answer 400
  naming them while the valid part is stored.
"""

from __future__ import annotations

import itertools
import operator
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import cramjam
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from .decompress import BodyTooLargeError, decompress
from .histogram.codec import (
    HistogramDecodeError,
    HistogramSample,
    decode_histogram,
    encode_histogram,
)
from .histogram.model import FloatHistogram
from .labels import METRIC_NAME, LabelLimits, Labels, LabelViolation
from .storage import (
    Exemplar,
    MetricMetadata,
    Rejection,
    SeriesBatch,
    SeriesData,
)

METRIC_TYPES = (
    "unknown",
    "counter",
    "gauge",
    "histogram",
    "gaugehistogram",
    "summary",
    "info",
    "stateset",
)

_F = descriptor_pb2.FieldDescriptorProto


def proto_field(
    msg: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    ftype: descriptor_pb2.FieldDescriptorProto.Type.ValueType,
    *,
    repeated: bool = False,
    type_name: str = "",
) -> None:
    """Declare one field of a runtime protobuf schema (shared by the 1.0 and 2.0 decoders)."""
    f = msg.field.add()
    f.name, f.number, f.type = name, number, ftype
    f.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if type_name:
        f.type_name = type_name


def _build_schema(package: str, raw_labels: bool) -> descriptor_pb2.FileDescriptorProto:
    """The subset of prompb we need; ``raw_labels`` declares labels as bytes (wire-compatible)."""
    fd = descriptor_pb2.FileDescriptorProto(
        name=f"{package}.proto", package=package, syntax="proto3"
    )
    p = f".{package}."
    label = fd.message_type.add(name="Label")
    proto_field(label, "name", 1, _F.TYPE_STRING)
    proto_field(label, "value", 2, _F.TYPE_STRING)
    sample = fd.message_type.add(name="Sample")
    proto_field(sample, "value", 1, _F.TYPE_DOUBLE)
    proto_field(sample, "timestamp", 2, _F.TYPE_INT64)
    exemplar = fd.message_type.add(name="Exemplar")
    proto_field(exemplar, "labels", 1, _F.TYPE_MESSAGE, repeated=True, type_name=p + "Label")
    proto_field(exemplar, "value", 2, _F.TYPE_DOUBLE)
    proto_field(exemplar, "timestamp", 3, _F.TYPE_INT64)
    ts = fd.message_type.add(name="TimeSeries")
    if raw_labels:
        proto_field(ts, "labels", 1, _F.TYPE_BYTES, repeated=True)
    else:
        proto_field(ts, "labels", 1, _F.TYPE_MESSAGE, repeated=True, type_name=p + "Label")
    proto_field(ts, "samples", 2, _F.TYPE_MESSAGE, repeated=True, type_name=p + "Sample")
    proto_field(ts, "exemplars", 3, _F.TYPE_MESSAGE, repeated=True, type_name=p + "Exemplar")
    # Histograms stay raw bytes here; ``histogram.codec`` decodes and validates each.
    proto_field(ts, "histograms", 4, _F.TYPE_BYTES, repeated=True)
    meta = fd.message_type.add(name="MetricMetadata")
    proto_field(meta, "type", 1, _F.TYPE_INT32)
    proto_field(meta, "metric_family_name", 2, _F.TYPE_STRING)
    proto_field(meta, "help", 4, _F.TYPE_STRING)
    proto_field(meta, "unit", 5, _F.TYPE_STRING)
    req = fd.message_type.add(name="WriteRequest")
    proto_field(req, "timeseries", 1, _F.TYPE_MESSAGE, repeated=True, type_name=p + "TimeSeries")
    proto_field(req, "metadata", 3, _F.TYPE_MESSAGE, repeated=True, type_name=p + "MetricMetadata")
    if raw_labels:
        # Each series kept as its raw bytes: most are split and decoded without a parse.
        raw_req = fd.message_type.add(name="RawWriteRequest")
        proto_field(raw_req, "timeseries", 1, _F.TYPE_BYTES, repeated=True)
        proto_field(
            raw_req, "metadata", 3, _F.TYPE_MESSAGE, repeated=True, type_name=p + "MetricMetadata"
        )
    return fd


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_build_schema("prometheus", raw_labels=False))
_pool.Add(_build_schema("grafana_agent_bridge.fastdecode", raw_labels=True))

# Message classes built at run time: typed Any, since no generated stubs describe them.
WriteRequest: Any = message_factory.GetMessageClass(
    _pool.FindMessageTypeByName("prometheus.WriteRequest")
)
Label: Any = message_factory.GetMessageClass(_pool.FindMessageTypeByName("prometheus.Label"))
_RawWriteRequest: Any = message_factory.GetMessageClass(
    _pool.FindMessageTypeByName("grafana_agent_bridge.fastdecode.RawWriteRequest")
)
_FastWriteRequest: Any = message_factory.GetMessageClass(
    _pool.FindMessageTypeByName("grafana_agent_bridge.fastdecode.WriteRequest")
)
_RawTimeSeries: Any = message_factory.GetMessageClass(
    _pool.FindMessageTypeByName("grafana_agent_bridge.fastdecode.TimeSeries")
)


class RemoteWriteError(Exception):
    """The request as a whole cannot be accepted; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class RequestLimits:
    """Bounds on one remote-write request (0 = none). Prometheus and Grafana Agent send at
    most 2,000 samples per request by default (``max_samples_per_send``), so the defaults
    leave 50 times that as headroom while bounding the Python objects a single request can make."""

    max_series_per_request: int = 100_000
    max_samples_per_request: int = 1_000_000


@dataclass(frozen=True)
class DecodeLimits:
    """What decoding one request may cost (``ingest.max_decoded_bytes`` and
    ``ingest.max_decoded_elements``): at most ~60 bytes per element plus the decoded bytes."""

    max_decoded_bytes: int = 64 << 20
    max_decoded_elements: int = 2_000_000


@dataclass(frozen=True)
class HistogramSeries:
    """The valid native histogram samples of one series, in request order."""

    labels: Labels
    samples: list[HistogramSample]


@dataclass
class DecodedWrite:
    series: list[SeriesBatch] = field(default_factory=list)
    metadata: list[MetricMetadata] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    samples: int = 0
    """Samples in the request, float and histogram, valid or not (for counters)."""
    histograms: list[HistogramSeries] = field(default_factory=list)
    """Decoded, valid native histograms (also in ``series``, with their floats)."""
    histogram_budget: int = DecodeLimits().max_decoded_elements
    """Bytes of serialized histograms this request may still decode: every bucket costs at
    least a byte, so this bounds the Python objects the histograms of one request make
    (``ingest.max_decoded_elements``, as the element count bounds the other fields)."""


def check_headers(content_type: str | None, content_encoding: str | None) -> None:
    """Raise 415 unless the request is remote-write 1.0 in snappy block encoding."""
    ctype = (content_type or "").strip().lower()
    if ctype:
        media, _, params = ctype.partition(";")
        if media.strip() != "application/x-protobuf":
            raise RemoteWriteError(
                415, f"unsupported Content-Type {content_type!r}, expected application/x-protobuf"
            )
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "proto" and value.strip() not in ("prometheus.writerequest", ""):
                raise RemoteWriteError(
                    415,
                    f"unsupported remote-write message {value.strip()!r}: only remote-write 1.0 "
                    "(prometheus.WriteRequest) is supported",
                )
    if (content_encoding or "").strip().lower() != "snappy":
        raise RemoteWriteError(
            415, f"unsupported Content-Encoding {content_encoding!r}, expected snappy"
        )


_MAX_CACHED_KEY = 16 << 10
"""Label sets whose raw bytes exceed this are validated every time rather than cached: no
sender repeats such a set often, and caching it would let huge labels pin memory."""
_CACHE_BYTES = 64 << 20


LABEL_CACHE_ENTRIES = 200_000


class LabelCache:
    """Raw label bytes → validated label set (or why it is invalid), bounded in entries and
    bytes. A cache holds results for one ``LabelLimits``.

    An entry costs ~1.2 KB (the parsed tuples) unless the store indexes the same tuple for a
    live series, so ``limit`` is best kept near the number of series the store may hold.
    """

    def __init__(
        self, limit: int = LABEL_CACHE_ENTRIES, limits: LabelLimits | None = None
    ) -> None:
        self._limit = limit
        self.limits = limits or LabelLimits()
        self._cache: dict[bytes, Labels | LabelViolation] = {}
        self.lookup: Callable[[bytes], Labels | LabelViolation | None] = self._cache.get
        """The cached result for a labels section as ``labels_section`` encodes it, if any
        (the dict's own ``get``: one C call per series on the hot path)."""
        self._bytes = 0
        self._pairs: dict[bytes, tuple[str, str] | LabelViolation] = {}
        """Raw ``Label`` message -> its (name, value) pair, one object shared by every label set
        that holds it: a new series costs one dict lookup per label instead of a protobuf parse
        and two new strings, and the store keeps one copy of ``job="..."`` instead of one per
        series (about 2 KB per series of the node_exporter bench)."""
        self._pair_bytes = 0
        self._long: set[tuple[str, str]] = set()
        """Pairs whose name or value is over a length limit: only a label set holding one
        needs ``LabelLimits.check`` beyond the count (checked before any label is read)."""

    def get(self, raw: Sequence[bytes]) -> Labels | LabelViolation:
        too_many = self.limits.check_count(len(raw))
        if too_many is not None:
            return too_many  # before joining or decoding a single label
        key = labels_section(raw)
        hit = self._cache.get(key)
        if hit is None:
            hit = self.parse(raw)
            if len(key) > _MAX_CACHED_KEY:
                return hit
            if len(self._cache) >= self._limit or self._bytes + len(key) > _CACHE_BYTES:
                self._cache.clear()
                self._bytes = 0
            self._cache[key] = hit
            self._bytes += len(key)
        return hit

    def learn(self, section: bytes, raw: Sequence[bytes]) -> Labels | None:
        """Cache the labels ``raw`` under ``section``, the bytes they were parsed from (a
        labels-only ``TimeSeries``, however its fields are encoded), if they are valid, and
        return them: a new series' own leading bytes, so its samples decode on the fast path.
        None: invalid, or not cacheable (parsed on the slow path, which says why)."""
        if len(section) > _MAX_CACHED_KEY or self.limits.check_count(len(raw)) is not None:
            return None
        return self._keep(section, self.parse(raw))

    def _keep(self, section: bytes, labels: Labels | LabelViolation) -> Labels | None:
        if type(labels) is not tuple:
            return None
        if len(self._cache) >= self._limit or self._bytes + len(section) > _CACHE_BYTES:
            self._cache.clear()
            self._bytes = 0
        self._cache[section] = labels
        self._bytes += len(section)
        return labels

    def learn_many(self, sections: Sequence[bytes]) -> list[Labels | None]:
        """``learn`` for the labels sections of many new series (a sender's first requests),
        each parsed as a labels-only ``TimeSeries`` on its own.

        When they are laid out as senders lay them out (label fields under 128 bytes and
        nothing else), all of them are parsed at once, as the one ``TimeSeries`` their bytes
        joined make, and their labels looked up as one list: a protobuf message, a Python
        loop and a lookup call less per series. Any other layout goes section by section."""
        joined = b"".join(sections)
        ts = _RawTimeSeries()
        try:
            ts.ParseFromString(joined)
        except DecodeError:
            return [self._learn_one(section) for section in sections]
        raw: list[bytes] = list(ts.labels)
        ends = _label_ends(raw, sections, len(joined))
        if ends is None:
            return [self._learn_one(section) for section in sections]
        found = self._pairs_of(raw)
        max_labels = self.limits.max_labels_per_series or len(raw)
        valid = self._valid
        out: list[Labels | None] = []
        start = 0
        for section, end in zip(sections, ends):
            if end - start > max_labels or len(section) > _MAX_CACHED_KEY:
                out.append(None)
            else:
                labels = valid(found[start:end])
                out.append(labels if type(labels) is tuple else None)
            start = end
        self._keep_all(sections, out)
        return out

    def _keep_all(self, sections: Sequence[bytes], labels: list[Labels | None]) -> None:
        """``_keep`` for each section whose labels are not None, in order: one dict update
        when they all fit the bounds as they stand (so no ``_keep`` would start over),
        instead of a call and two bound checks per series."""
        # compress drops the None entries, which the types cannot see.
        kept = cast(
            "list[tuple[bytes, Labels]]", list(itertools.compress(zip(sections, labels), labels))
        )
        size = sum(map(len, itertools.compress(sections, labels)))
        if len(self._cache) + len(kept) <= self._limit and self._bytes + size <= _CACHE_BYTES:
            self._cache.update(kept)
            self._bytes += size
            return
        for section, valid in kept:
            self._keep(section, valid)

    def _learn_one(self, section: bytes) -> Labels | None:
        """``learn`` for one labels section, parsed on its own."""
        ts = _RawTimeSeries()
        try:
            ts.ParseFromString(section)
        except DecodeError:
            return None
        raw = list(ts.labels)
        # Labels and nothing else: a label field takes at least its bytes plus two, so when
        # that adds up to the whole section there is room for nothing else (the usual
        # encoding); otherwise the parsed fields say.
        if sum(map(len, raw)) + 2 * len(raw) != len(section) and (
            ts.samples or ts.exemplars or ts.histograms
        ):
            return None
        return self.learn(section, raw)

    def parse(self, raw: Sequence[bytes]) -> Labels | LabelViolation:
        """Validate the raw labels of one series into a label set of shared pairs."""
        return self._valid(self._pairs_of(raw))

    def _pairs_of(self, raw: Sequence[bytes]) -> list[Any]:
        """The pair of each raw label (or why it is invalid), in order."""
        get = self._pairs.get
        found: list[Any] = list(map(get, raw))
        if None not in found:
            return found
        # Labels not seen before (most of a sender's first request): each distinct one
        # parsed once, then all looked up again, without a Python step per label.
        for item in dict.fromkeys(itertools.compress(raw, map(operator.not_, found))):
            self._pair(item)
        found = list(map(get, raw))
        # What is still missing was not kept (invalid, too long, or the map started over).
        k = 0
        try:
            while True:
                k = found.index(None, k)
                found[k] = self._pair(raw[k])
                k += 1
        except ValueError:
            pass
        return found

    def _valid(self, found: list[Any]) -> Labels | LabelViolation:
        """The label set of one series' pairs (``_pairs_of``), or why it is refused."""
        # A LabelViolation among the pairs makes dict() raise TypeError, so the usual set
        # needs no other test.
        try:
            by_name = dict(found)
        except TypeError:
            by_name = {}
        if len(by_name) != len(found):
            return _first_problem(found)
        if not by_name.get(METRIC_NAME):
            return _invalid("missing metric name (__name__ label)")
        if "" in by_name.values():
            found = [p for p in found if p[1]]
        found.sort()
        labels: Labels = tuple(found)
        if self._long and not self._long.isdisjoint(labels):
            return self.limits.check(labels) or labels
        return labels

    def _pair(self, item: bytes) -> tuple[str, str] | LabelViolation:
        """Parse one raw label and remember it (names interned, so equal names are one
        object whatever pair they are in)."""
        lab = Label()
        try:
            lab.ParseFromString(item)
        except DecodeError:
            return _invalid("invalid label encoding")
        if not lab.name:
            return _invalid("empty label name")
        pair = (sys.intern(lab.name), lab.value)
        pairs = self._pairs
        if (
            len(pairs) >= self._limit
            or self._pair_bytes + len(item) > _CACHE_BYTES
            or len(self._long) >= self._limit
        ):
            pairs.clear()
            self._long.clear()
            self._pair_bytes = 0
        if self.limits.check((pair,)) is not None:
            self._long.add(pair)
        if len(item) <= _MAX_CACHED_KEY:
            pairs[item] = pair
            self._pair_bytes += len(item)
        return pair


_FIELD_HEADERS = [bytes((0x0A, n)) for n in range(0x80)]
"""The field-1 header of a label shorter than 128 bytes, by its length."""


def labels_section(raw: Sequence[bytes]) -> bytes:
    """The labels of a series encoded as the leading fields of its ``TimeSeries`` (field 1,
    minimal length varints): the cache key. A series whose bytes are such a section followed
    by one sample field therefore has exactly those labels and that one sample."""
    if max(map(len, raw), default=0) < 0x80:  # nearly always: joined without a Python loop
        headers = map(_FIELD_HEADERS.__getitem__, map(len, raw))
        return b"".join(itertools.chain.from_iterable(zip(headers, raw)))
    parts: list[bytes] = []
    for item in raw:
        n = len(item)
        if n < 0x80:
            parts.append(_FIELD_HEADERS[n])
        else:
            parts.append(b"\x0a" + varint(n))
        parts.append(item)
    return b"".join(parts)


def varint(n: int) -> bytes:
    """``n`` (non-negative) as a protobuf base-128 varint: for the few messages written by hand."""
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _invalid(why: str) -> LabelViolation:
    return LabelViolation("invalid_series", f"invalid series: {why}")


def _first_problem(got: Sequence[tuple[str, str] | LabelViolation]) -> LabelViolation:
    """Why the labels of a series are refused, the first problem in the order sent: an
    undecodable label, an empty name or a repeated name."""
    seen: set[str] = set()
    for pair in got:
        if isinstance(pair, LabelViolation):
            return pair
        name = pair[0]
        if name in seen:
            shown = name if len(name) <= 50 else name[:50] + "…"
            return _invalid(f"duplicate label name {shown!r}")
        seen.add(name)
    raise AssertionError("labels without a problem")


_default_cache = LabelCache()

# How much of a rejected series' labels the 400 answer repeats: enough to find the sender's
# series, bounded so that one huge label cannot blow up the error body.
_SHOWN_LABELS = 32
_SHOWN_CHARS = 128


def _shown_labels(raw: Sequence[bytes]) -> Labels:
    """The labels of an invalid series as sent (decodable ones only, bounded), so that the
    rejection names the series instead of ``{}``."""
    shown: list[tuple[str, str]] = []
    for item in raw[:_SHOWN_LABELS]:
        lab = Label()
        try:
            lab.ParseFromString(item)
        except DecodeError:
            continue
        shown.append((lab.name[:_SHOWN_CHARS], lab.value[:_SHOWN_CHARS]))
    return tuple(sorted(shown))


def _labels_of(pb_labels: Iterable[object]) -> Labels:
    return tuple(sorted((lab.name, lab.value) for lab in pb_labels if lab.value))  # type: ignore[attr-defined]


def decode_write_request(
    body: bytes,
    content_type: str | None = "application/x-protobuf",
    content_encoding: str | None = "snappy",
    *,
    cache: LabelCache | None = None,
    limits: RequestLimits | None = None,
    bounds: DecodeLimits | None = None,
) -> DecodedWrite:
    """Decode and validate a remote-write 1.0 request body (see the module docstring).

    Each series arrives as raw bytes. The common one (labels seen before, one sample) is
    split into its cached labels section and a sample field, and the samples of all such
    series are decoded together with numpy (``_split_known``). A write whose other series are
    each labels and one native histogram is split the same way (``_one_histogram_each``);
    any other write is parsed whole and its series validated one by one.
    """
    check_headers(content_type, content_encoding)
    bounds = bounds or DecodeLimits()
    try:
        raw = decompress(body, bounds.max_decoded_bytes, bounds.max_decoded_elements)
    except BodyTooLargeError as e:
        raise RemoteWriteError(413, str(e)) from None
    except ValueError as e:
        raise RemoteWriteError(400, f"invalid snappy block encoding: {e}") from None
    req = _RawWriteRequest()
    try:
        req.ParseFromString(raw)
    except DecodeError as e:
        raise RemoteWriteError(400, f"invalid protobuf WriteRequest: {e}") from None
    cache = cache or _default_cache
    out = DecodedWrite(histogram_budget=bounds.max_decoded_elements)
    missed: list[tuple[int, bytes]] = []
    known, misses = _split_known(req.timeseries, cache, missed)  # type: ignore[attr-defined]
    if missed:
        misses -= _learn_new(req.timeseries, known, cache, missed)  # type: ignore[attr-defined]
    if not misses:  # the steady state: every series known, one sample each
        kept = _within_limits([1] * len(known), limits or RequestLimits(), out)
        out.series = cast("list[SeriesBatch]", known[:kept])
        _decode_metadata(req.metadata, out)  # type: ignore[attr-defined]
        return out
    histograms = _one_histogram_each(req.timeseries, known, cache)  # type: ignore[attr-defined]
    if len(histograms) == misses:  # a scrape of native histograms: one sample or histogram each
        kept = _within_limits([1] * len(known), limits or RequestLimits(), out)
        for i, labels, item in histograms:
            if i < kept:
                hists = _decode_histograms(labels, [item], out)
                if hists:
                    known[i] = with_histograms(labels, _NO_TIMES, _NO_VALUES, hists)
        out.series = [b for b in known[:kept] if b is not None]
        _decode_metadata(req.metadata, out)  # type: ignore[attr-defined]
        return out
    # Some series need parsing: one parse of the whole request (as before the shortcut)
    # costs less than one per series when many are new, as in a sender's first requests.
    full = _FastWriteRequest()
    try:
        full.ParseFromString(raw)
    except DecodeError as e:
        raise RemoteWriteError(400, f"invalid protobuf WriteRequest: {e}") from None
    parsed: list[Any] = [
        hit if hit is not None else ts
        for hit, ts in zip(known, full.timeseries)  # type: ignore[attr-defined]
    ]
    counts = [
        1 if type(ts) is SeriesBatch else len(ts.samples) + len(ts.histograms) for ts in parsed
    ]
    singles: list[int] = []
    """Positions in ``out.series`` of new series with one float sample and nothing else,
    their sample in ``single_t``/``single_v``: one numpy conversion for all of them."""
    single_t: list[int] = []
    single_v: list[float] = []
    for ts in parsed[: _within_limits(counts, limits or RequestLimits(), out)]:
        if type(ts) is SeriesBatch:
            out.series.append(ts)
            continue
        samples = ts.samples
        n = len(samples)
        labels = cache.get(ts.labels)
        if isinstance(labels, LabelViolation):
            shown = _shown_labels(ts.labels)
            refused = max(n + len(ts.histograms), 1)
            out.rejections.append(Rejection(shown, None, labels.reason, labels.kind, refused))
            continue
        if n == 1 and not ts.exemplars and not ts.histograms:
            s = samples[0]
            singles.append(len(out.series))
            single_t.append(s.timestamp)
            single_v.append(s.value)
            out.series.append(SeriesBatch(labels, _NO_TIMES, _NO_VALUES, []))
            continue
        hists = _decode_histograms(labels, ts.histograms, out) if ts.histograms else []
        times = np.fromiter((s.timestamp for s in samples), dtype=np.int64, count=n)
        values = np.fromiter((s.value for s in samples), dtype=np.float64, count=n)
        if n > 1:
            times, values = _drop_unordered(labels, times, values, out.rejections)
        exemplars = [Exemplar(_labels_of(e.labels), e.value, e.timestamp) for e in ts.exemplars]
        if hists:
            out.series.append(with_histograms(labels, times, values, hists, exemplars))
        elif len(times) or exemplars:
            out.series.append(SeriesBatch(labels, times, values, exemplars))
    if singles:
        # Iterating a 2-D array yields its rows as 1-element views, made in C.
        rows = zip(
            singles,
            np.array(single_t, np.int64).reshape(-1, 1),
            np.array(single_v, np.float64).reshape(-1, 1),
        )
        series = out.series
        for i, t, v in rows:
            batch = series[i]
            batch.timestamps = t
            batch.values = v
    _decode_metadata(req.metadata, out)  # type: ignore[attr-defined]
    return out


_SHOWN_HISTOGRAM_ERRORS = 10


def with_histograms(
    labels: Labels,
    times: np.ndarray,
    values: np.ndarray,
    hists: Sequence[HistogramSample],
    exemplars: list[Exemplar] | None = None,
) -> SeriesBatch:
    """One series' float and histogram samples as one batch in timestamp order (floats first
    at an equal timestamp, as Prometheus appends them): the store's entry point for native
    histograms, shared by remote-write 1.0 and 2.0 and OTLP."""
    if len(hists) == 1 and not len(times):  # a scrape's one histogram: nothing to order
        (only,) = hists
        return SeriesBatch(
            labels,
            np.array([only.timestamp], np.int64),
            np.array([np.nan]),
            exemplars or [],
            histograms=[only.histogram],
            histogram_wire=[only.wire] if only.wire is not None else None,
        )
    ht = np.array([h.timestamp for h in hists], dtype=np.int64)
    all_t = np.concatenate([times.astype(np.int64, copy=False), ht])
    all_v = np.concatenate([values.astype(np.float64, copy=False), np.full(len(ht), np.nan)])
    kinds: list[FloatHistogram | None] = [None] * len(times) + [h.histogram for h in hists]
    wires: list[bytes | None] = [None] * len(times) + [h.wire for h in hists]
    order = np.argsort(all_t, kind="stable").tolist()
    return SeriesBatch(
        labels,
        all_t[order],
        all_v[order],
        exemplars or [],
        histograms=[kinds[i] for i in order],
        histogram_wire=[wires[i] for i in order] if any(wires) else None,
    )


def _decode_histograms(
    labels: Labels, raw: Sequence[bytes], out: DecodedWrite
) -> list[HistogramSample]:
    """Decode and validate a series' histograms: invalid ones are rejected with their reason
    (the first few one by one, the rest in a summary), valid ones returned."""
    kept: list[HistogramSample] = []
    invalid = 0
    for k, item in enumerate(raw):
        out.histogram_budget -= len(item)
        if out.histogram_budget < 0:
            rest = len(raw) - k
            reason = (
                f"{rest} native histograms over the request's bound on decoded histogram bytes "
                "(ingest.max_decoded_elements): refused; send smaller requests"
            )
            out.rejections.append(Rejection(labels, None, reason, "histogram_limit", rest))
            break
        try:
            kept.append(decode_histogram(item))
        except HistogramDecodeError as e:
            invalid += 1
            if invalid <= _SHOWN_HISTOGRAM_ERRORS:
                reason = f"invalid native histogram: {e}"
                out.rejections.append(Rejection(labels, None, reason, "invalid_histogram"))
    if invalid > _SHOWN_HISTOGRAM_ERRORS:
        more = invalid - _SHOWN_HISTOGRAM_ERRORS
        reason = f"{more} more invalid native histograms"
        out.rejections.append(Rejection(labels, None, reason, "invalid_histogram", more))
    if kept:
        out.histograms.append(HistogramSeries(labels, kept))
    return kept


def _decode_metadata(metadata: Iterable[Any], out: DecodedWrite) -> None:
    for m in metadata:
        if not m.metric_family_name:
            continue
        mtype = METRIC_TYPES[m.type] if 0 <= m.type < len(METRIC_TYPES) else "unknown"
        out.metadata.append(MetricMetadata(m.metric_family_name, mtype, m.help, m.unit))


# A one-sample series ends with ``0x12 <len> <Sample>``. A Sample with a value is
# ``0x09 <8-byte double> 0x10 <timestamp varint>`` (16 bytes); with value 0 (left out by
# proto3 encoders such as Prometheus's) ``0x10 <timestamp varint>`` (7 bytes). Millisecond
# timestamps of 1971..2109 are 6-byte varints; anything else takes the parsing path.
_WITH_VALUE = 16
_ZERO_VALUE = 7
_SHIFTS = np.arange(0, 42, 7, dtype=np.int64)
_NO_TIMES = np.empty(0, np.int64)
_NO_VALUES = np.empty(0, np.float64)


def _split_known(
    series: Sequence[bytes],
    cache: LabelCache,
    missed: list[tuple[int, bytes]] | None = None,
) -> tuple[list[SeriesBatch | None], int]:
    """For each raw series: its ``SeriesBatch`` when its bytes are a cached valid labels
    section followed by one sample field of a known shape, else None (parse it); and how
    many are None. ``missed`` collects (position, labels section) of the series of that
    shape whose labels section is not cached (``_learn_new``'s work).

    Sound whatever the sender wrote: a cache key is a complete encoding of valid labels
    (``labels_section``), so key + sample field parses as exactly those labels and one sample.
    """
    lookup = cache.lookup
    found: list[SeriesBatch | None] = [None] * len(series)
    slots = _Slots()
    with_value, zero_value = slots.where[_WITH_VALUE], slots.where[_ZERO_VALUE]
    with_tails, zero_tails = slots.tails[_WITH_VALUE], slots.tails[_ZERO_VALUE]
    for i, s in enumerate(series):
        cut = len(s) - _WITH_VALUE - 2
        if cut > 0 and s[cut] == 0x12 and s[cut + 1] == _WITH_VALUE:
            labels = lookup(section := s[:cut])
            if type(labels) is tuple:
                with_value.append((i, labels))
                with_tails.append(s[cut + 2 :])
            elif missed is not None:
                missed.append((i, section))
            continue
        cut = len(s) - _ZERO_VALUE - 2
        if cut > 0 and s[cut] == 0x12 and s[cut + 1] == _ZERO_VALUE:
            labels = lookup(section := s[:cut])
            if type(labels) is tuple:
                zero_value.append((i, labels))
                zero_tails.append(s[cut + 2 :])
            elif missed is not None:
                missed.append((i, section))
    return found, len(series) - slots.fill(found)


class _Slots:
    """One-sample series whose labels are known, by the width of their sample field: where
    they are in the request, their labels, and the sample field's bytes."""

    __slots__ = ("tails", "where")

    def __init__(self) -> None:
        self.where: dict[int, list[tuple[int, Labels]]] = {_WITH_VALUE: [], _ZERO_VALUE: []}
        self.tails: dict[int, list[bytes]] = {_WITH_VALUE: [], _ZERO_VALUE: []}

    def fill(self, found: list[SeriesBatch | None]) -> int:
        """Decode every sample field at once with numpy into ``found``; how many it filled
        (a field of an unusual encoding is left None, to be parsed)."""
        hits = 0
        for width, where in self.where.items():
            if not where:
                continue
            joined = b"".join(self.tails[width])
            rec = np.frombuffer(joined, dtype=np.uint8).reshape(len(where), width)
            if width == _WITH_VALUE:
                ok = (rec[:, 0] == 0x09) & (rec[:, 9] == 0x10)
                values = rec[:, 1:9].copy().view("<f8").reshape(-1)
            else:
                ok = rec[:, 0] == 0x10
                values = np.zeros(len(where), dtype=np.float64)
            varint = rec[:, width - 6 :]
            ok &= np.all(varint[:, :5] >= 0x80, axis=1) & (varint[:, 5] < 0x80)
            times = ((varint.astype(np.int64) & 0x7F) << _SHIFTS).sum(axis=1)
            # Iterating a 2-D array yields its rows as 1-element views, made in C.
            times, values = times.reshape(-1, 1), values.reshape(-1, 1)
            if ok.all():  # nearly always: no test per row
                for (i, labels), t, v in zip(where, times, values):
                    found[i] = SeriesBatch(labels, t, v, [])
                hits += len(where)
                continue
            for (i, labels), good, t, v in zip(where, ok.tolist(), times, values):
                if good:
                    found[i] = SeriesBatch(labels, t, v, [])
                    hits += 1
        return hits


def _learn_new(
    series: Sequence[bytes],
    known: list[SeriesBatch | None],
    cache: LabelCache,
    missed: Sequence[tuple[int, bytes]],
) -> int:
    """Decode the one-sample series ``_split_known`` missed (``missed``: their positions and
    labels sections, the bytes before the sample field) through the cache, filling ``known``
    in place; how many it decoded.

    A new series (a sender's first requests) is split as a known one is: its bytes before the
    trailing sample field are parsed as a ``TimeSeries`` on their own, and when that holds
    labels and nothing else, its valid labels are cached under exactly those bytes. Whatever
    their encoding, those bytes followed by one sample field parse as those labels and that
    sample, which is all the fast path needs. No whole-request parse, no cache key to build,
    and no second pass over the request: the labels just learned go straight to the decoding
    of the sample fields. The sections are learned all at once (``LabelCache.learn_many``).
    """
    slots = _Slots()
    where, tails = slots.where, slots.tails
    learned = cache.learn_many([section for _, section in missed])
    for (i, section), labels in zip(missed, learned):
        if labels is not None:
            s = series[i]
            cut = len(section)
            width = s[cut + 1]
            where[width].append((i, labels))
            tails[width].append(s[cut + 2 :])
    return slots.fill(known)


_UNBOUNDED_LABELS = 1 << 62


def _histogram_field(s: bytes, max_labels: int) -> tuple[int, int] | None:
    """Where the labels end and the serialized histogram starts in a raw ``TimeSeries`` that
    is at most ``max_labels`` label fields under 128 bytes and then one histogram field to its
    end (a scrape of a native histogram); None otherwise. The walk stops past ``max_labels``:
    a series with more labels is refused anyway, by the parsing path that counts them first."""
    pos, n = 0, len(s)
    while pos < n and s[pos] == 0x0A:
        size = s[pos + 1] if pos + 1 < n else 0x80
        if size >= 0x80 or max_labels <= 0:
            return None
        max_labels -= 1
        pos += 2 + size
    if pos + 2 >= n or s[pos] != 0x22:
        return None
    size, head = s[pos + 1], 2
    if size >= 0x80:  # two varint bytes: up to 16 KiB, room for any sane histogram
        if pos + 3 >= n or s[pos + 2] >= 0x80:
            return None
        size, head = (size & 0x7F) | s[pos + 2] << 7, 3
    return (pos, pos + head) if pos + head + size == n else None


def _one_histogram_each(
    series: Sequence[bytes], known: list[SeriesBatch | None], cache: LabelCache
) -> list[tuple[int, Labels, bytes]]:
    """For each series ``known`` lacks that is valid labels and one histogram field: its
    position, labels and serialized histogram (labels new to the cache are learned as
    ``_learn_new`` learns them). When that is every series ``known`` lacks, the request needs
    no whole parse. Sound for the reason ``_split_known`` is: a cached section followed by
    one histogram field parses as exactly those labels and that histogram."""
    lookup = cache.lookup
    max_labels = cache.limits.max_labels_per_series or _UNBOUNDED_LABELS
    found: list[tuple[int, Labels, bytes]] = []
    new: list[tuple[int, bytes, bytes]] = []
    for i, batch in enumerate(known):
        if batch is not None:
            continue
        s = series[i]
        where = _histogram_field(s, max_labels)
        if where is None or not where[0]:  # (no labels: parsing says why it is refused)
            return found
        cut, start = where
        labels = lookup(section := s[:cut])
        item = s[start:]
        if type(labels) is tuple:
            found.append((i, labels, item))
        else:
            new.append((i, section, item))
    if new:
        learned = cache.learn_many([section for _, section, _ in new])
        found += [(i, lb, item) for (i, _, item), lb in zip(new, learned) if lb is not None]
        found.sort()
    return found


def _label_ends(raw: Sequence[bytes], sections: Sequence[bytes], size: int) -> list[int] | None:
    """Where each of ``sections`` ends in ``raw``, the labels their bytes joined (``size``
    of them) parse to, when every label is a field of under 128 bytes and there is nothing
    else; else None.

    A label field takes at least its bytes plus two (tag, length), so when that adds up to
    the whole there is room for nothing else: the fields lie end to end, and a section whose
    end falls on a field's end holds exactly the fields before it, as it would parsed alone.
    """
    if not raw:
        return None
    lens = np.fromiter(map(len, raw), np.int64, len(raw))
    field_ends = np.cumsum(lens + 2)
    if int(field_ends[-1]) != size:
        return None
    section_ends = np.cumsum(np.fromiter(map(len, sections), np.int64, len(sections)))
    at = np.searchsorted(field_ends, section_ends)
    if not np.array_equal(field_ends[at], section_ends):
        return None
    return (at + 1).tolist()


def _within_limits(counts: Sequence[int], limits: RequestLimits, out: DecodedWrite) -> int:
    """How many leading series of the request (with ``counts`` samples each) fit ``limits``;
    one rejection for the rest."""
    total = len(counts)
    kept = total
    max_series, max_samples = limits.max_series_per_request, limits.max_samples_per_request
    if max_series and total > max_series:
        kept = max_series
    samples = 0
    for i in range(kept):
        n = counts[i]
        if max_samples and samples + n > max_samples:
            kept = i
            break
        samples += n
    rest = sum(counts[kept:])
    out.samples = samples + rest
    if kept == total:
        return kept
    if max_series and total > max_series and kept == max_series:
        reason = (
            f"request has {total} series, over the limit of {max_series} "
            f"(ingest.max_series_per_request): the last {total - kept} series ({rest} samples) "
            "refused"
        )
        kind = "series_per_request"
    else:
        reason = (
            f"request has {samples + rest} samples, over the limit of {max_samples} "
            f"(ingest.max_samples_per_request): the last {total - kept} series ({rest} samples) "
            "refused"
        )
        kind = "samples_per_request"
    out.rejections.append(Rejection((), None, reason, kind, max(rest, 1)))
    return kept


def _drop_unordered(
    labels: Labels,
    times: np.ndarray,
    values: np.ndarray,
    rejections: list[Rejection],
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the samples that extend a strictly ascending run; reject the others."""
    if np.all(times[1:] > times[:-1]):
        return times, values
    running_max = np.maximum.accumulate(times)
    keep = np.ones(len(times), dtype=bool)
    keep[1:] = times[1:] > running_max[:-1]
    for t in times[~keep][:10]:
        # Equal to the newest kept timestamp: a second sample for it; older: out of order.
        reason = "duplicate sample for timestamp" if t in running_max else "out of order sample"
        kind = "duplicate" if t in running_max else "out_of_order"
        rejections.append(Rejection(labels, int(t), reason, kind))
    if (~keep).sum() > 10:
        more = int((~keep).sum()) - 10
        rejections.append(
            Rejection(labels, None, f"{more} more out of order samples", "out_of_order", more)
        )
    return times[keep], values[keep]


def encode_write_request(
    series: Iterable[SeriesData | SeriesBatch],
    metadata: Iterable[MetricMetadata] = (),
    histograms: Iterable[HistogramSeries] = (),
) -> bytes:
    """A snappy-compressed remote-write 1.0 body for ``series`` (labels sent sorted), and
    for ``histograms``, each series' histograms in a TimeSeries of its own, in order (as
    integer histograms where they came as such, see ``histogram.codec.to_proto``)."""
    req = WriteRequest()
    for s in series:
        ts = req.timeseries.add()  # type: ignore[attr-defined]
        for name, value in s.labels:
            ts.labels.add(name=name, value=value)
        hists = s.histograms
        if hists is None:
            for t, v in zip(s.timestamps.tolist(), s.values.tolist()):
                ts.samples.add(value=v, timestamp=t)
        else:
            # Floats in ``samples``, native histograms in ``histograms`` (integer histograms
            # where the counts are whole, Prometheus's usual form), each in time order.
            for t, v, h in zip(s.timestamps.tolist(), s.values.tolist(), hists):
                if h is None:
                    ts.samples.add(value=v, timestamp=t)
                else:
                    ts.histograms.append(encode_histogram(HistogramSample(t, h, True)))
        for e in getattr(s, "exemplars", ()):
            ex = ts.exemplars.add(value=e.value, timestamp=e.timestamp)
            for name, value in e.labels:
                ex.labels.add(name=name, value=value)
    for hs in histograms:
        ts = req.timeseries.add()  # type: ignore[attr-defined]
        for name, value in hs.labels:
            ts.labels.add(name=name, value=value)
        ts.histograms.extend(encode_histogram(sample) for sample in hs.samples)
    for m in metadata:
        req.metadata.add(  # type: ignore[attr-defined]
            type=METRIC_TYPES.index(m.type) if m.type in METRIC_TYPES else 0,
            metric_family_name=m.metric_family_name,
            help=m.help,
            unit=m.unit,
        )
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


REMOTE_WRITE_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
"""The headers a remote-write 1.0 sender sends with every request."""
