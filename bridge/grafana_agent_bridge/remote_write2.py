"""Prometheus remote-write 2.0 (``io.prometheus.write.v2.Request``): decoding what senders push.

A 2.0 request names every string once in a symbol table; series, exemplars and metadata refer
to it by index. The schema (``prompb/io/prometheus/write/v2/types.proto``, field numbers
exact) is declared in code, like remote write 1.0's. What happens to a request (following
Prometheus 3.x's ``storage/remote/write_handler.go``, ``writeV2``, and the 2.0 spec):

- ``symbols[0]`` must be the empty string (the spec's MUST): otherwise the whole request is a
  400 naming it, nothing stored.
- A series whose ``labels_refs`` has an odd length or a reference outside the symbol table, or
  whose labels are invalid (no ``__name__``, an empty or repeated name), is rejected as a whole
  (400 listing it, the other series stored: 2.0's partial write).
- Samples are stored as in 1.0 (ascending timestamps within a series); exemplars take their
  labels from the symbol table (a bad reference rejects that exemplar only); metadata (type,
  help and unit references) is kept for the series' metric name.
- Native histograms (the same message as 1.0's) are decoded and validated by
  ``histogram.codec`` as 1.0's are, and stored with the series' floats (``with_histograms``).
- ``created_timestamp`` is read and not stored, as Prometheus does without its
  ``created-timestamp-zero-ingestion`` feature.

The answer carries ``X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written`` in every
case (see ``api.write``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import cramjam
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from .decompress import ELEMENT_TAGS, BodyTooLargeError, decompress
from .histogram.codec import HistogramSample, encode_histogram
from .labels import METRIC_NAME, LabelLimits, Labels
from .remote_write import (
    METRIC_TYPES,
    DecodedWrite,
    DecodeLimits,
    RemoteWriteError,
    RequestLimits,
    _decode_histograms,  # pyright: ignore[reportPrivateUsage]
    _drop_unordered,  # pyright: ignore[reportPrivateUsage]
    _within_limits,  # pyright: ignore[reportPrivateUsage]
    proto_field,
    with_histograms,
)
from .storage import Exemplar, MetricMetadata, Rejection, SeriesBatch, SeriesData

V2_PROTO = "io.prometheus.write.v2.request"
"""The ``proto`` parameter of a 2.0 ``Content-Type`` (compared in lower case)."""

_V2_TAGS = ELEMENT_TAGS + b"\x42\x5a"
"""Length-delimited tags that start an element decoding allocates: fields 1-5 (series, samples,
histograms, exemplars, metadata, symbols) and the histogram bucket spans (fields 8 and 11)."""

_F = descriptor_pb2.FieldDescriptorProto


def _schema() -> descriptor_pb2.FileDescriptorProto:
    package = "grafana_agent_bridge.writev2"
    p = f".{package}."
    fd = descriptor_pb2.FileDescriptorProto(
        name="grafana_agent_bridge/writev2.proto", package=package, syntax="proto3"
    )
    req = fd.message_type.add(name="Request")
    proto_field(req, "symbols", 4, _F.TYPE_STRING, repeated=True)
    proto_field(req, "timeseries", 5, _F.TYPE_MESSAGE, repeated=True, type_name=p + "TimeSeries")
    ts = fd.message_type.add(name="TimeSeries")
    proto_field(ts, "labels_refs", 1, _F.TYPE_UINT32, repeated=True)
    proto_field(ts, "samples", 2, _F.TYPE_MESSAGE, repeated=True, type_name=p + "Sample")
    # Same wire format as 1.0's prometheus.Histogram: kept as bytes for ``histogram.codec``.
    proto_field(ts, "histograms", 3, _F.TYPE_BYTES, repeated=True)
    proto_field(ts, "exemplars", 4, _F.TYPE_MESSAGE, repeated=True, type_name=p + "Exemplar")
    proto_field(ts, "metadata", 5, _F.TYPE_MESSAGE, type_name=p + "Metadata")
    proto_field(ts, "created_timestamp", 6, _F.TYPE_INT64)
    ex = fd.message_type.add(name="Exemplar")
    proto_field(ex, "labels_refs", 1, _F.TYPE_UINT32, repeated=True)
    proto_field(ex, "value", 2, _F.TYPE_DOUBLE)
    proto_field(ex, "timestamp", 3, _F.TYPE_INT64)
    sample = fd.message_type.add(name="Sample")
    proto_field(sample, "value", 1, _F.TYPE_DOUBLE)
    proto_field(sample, "timestamp", 2, _F.TYPE_INT64)
    meta = fd.message_type.add(name="Metadata")
    proto_field(meta, "type", 1, _F.TYPE_INT32)  # the MetricType enum, read as its number
    proto_field(meta, "help_ref", 3, _F.TYPE_UINT32)
    proto_field(meta, "unit_ref", 4, _F.TYPE_UINT32)
    return fd


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_schema())
RequestV2: Any = message_factory.GetMessageClass(
    _pool.FindMessageTypeByName("grafana_agent_bridge.writev2.Request")
)


def is_v2(content_type: str | None) -> bool:
    """Whether ``Content-Type`` names the 2.0 message (``proto=...write.v2.Request``)."""
    media, _, params = (content_type or "").lower().partition(";")
    if media.strip() != "application/x-protobuf":
        return False
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.strip() == "proto" and value.strip().strip('"') == V2_PROTO:
            return True
    return False


@dataclass
class DecodedWriteV2(DecodedWrite):
    exemplars: int = 0
    """Exemplars in the request, valid or not."""


def _clip(text: str, n: int = 64) -> str:
    return text if len(text) <= n else text[:n] + "…"


def _labels(
    refs: Sequence[int], symbols: Sequence[str], limits: LabelLimits
) -> tuple[Labels, str | None, str]:
    """The label set ``refs`` names, or why it cannot be used (reason, rejection kind)."""
    if len(refs) % 2:
        return (), f"invalid series: odd labels_refs length {len(refs)}", "invalid_series"
    too_many = limits.check_count(len(refs) // 2)
    if too_many is not None:
        return (), too_many.reason, too_many.kind
    size = len(symbols)
    pairs: dict[str, str] = {}
    for i in range(0, len(refs), 2):
        name_ref, value_ref = refs[i], refs[i + 1]
        if name_ref >= size or value_ref >= size:
            return (
                tuple(sorted(pairs.items())),
                f"invalid series: labels_refs[{i}:{i + 2}] = {name_ref}, {value_ref} outside "
                f"the symbols table (size {size})",
                "invalid_series",
            )
        name, value = symbols[name_ref], symbols[value_ref]
        if not name:
            return (), "invalid series: empty label name", "invalid_series"
        if name in pairs:
            return (), f"invalid series: duplicate label name {_clip(name)!r}", "invalid_series"
        pairs[name] = value
    labels = tuple(sorted((n, v) for n, v in pairs.items() if v))
    if not pairs.get(METRIC_NAME):
        return labels, "invalid series: missing metric name (__name__ label)", "invalid_series"
    problem = limits.check(labels)
    if problem is not None:
        return labels, problem.reason, problem.kind
    return labels, None, ""


def decode_write_request_v2(
    body: bytes,
    content_encoding: str | None = "snappy",
    *,
    label_limits: LabelLimits | None = None,
    limits: RequestLimits | None = None,
    bounds: DecodeLimits | None = None,
) -> DecodedWriteV2:
    """Decode and validate a remote-write 2.0 body (see the module docstring)."""
    encoding = (content_encoding or "").strip().lower()
    if encoding != "snappy":  # the 2.0 spec: senders MUST send snappy and say so
        raise RemoteWriteError(
            415, f"unsupported Content-Encoding {_clip(encoding, 40)!r}, expected snappy"
        )
    bounds = bounds or DecodeLimits()
    label_limits = label_limits or LabelLimits()
    try:
        raw = decompress(body, bounds.max_decoded_bytes, bounds.max_decoded_elements, _V2_TAGS)
    except BodyTooLargeError as e:
        raise RemoteWriteError(413, str(e)) from None
    except ValueError as e:
        raise RemoteWriteError(400, f"invalid snappy block encoding: {e}") from None
    req = RequestV2()
    try:
        req.ParseFromString(raw)
    except DecodeError as e:
        raise RemoteWriteError(
            400, f"invalid protobuf io.prometheus.write.v2.Request: {e}"
        ) from None
    symbols: Sequence[str] = req.symbols
    if symbols and symbols[0] != "":
        raise RemoteWriteError(
            400,
            f"invalid symbols table: symbols[0] must be the empty string, got "
            f"{_clip(symbols[0])!r}",
        )
    out = DecodedWriteV2(histogram_budget=bounds.max_decoded_elements)
    series: Sequence[Any] = req.timeseries
    counts = [len(ts.samples) + len(ts.histograms) for ts in series]
    kept = _within_limits(counts, limits or RequestLimits(), out)
    metadata: dict[str, MetricMetadata] = {}
    for ts in series[:kept]:
        labels, problem, kind = _labels(ts.labels_refs, symbols, label_limits)
        n = len(ts.samples) + len(ts.histograms)
        if problem is not None:
            out.rejections.append(Rejection(labels, None, problem, kind, max(n, 1)))
            continue
        hists = _decode_histograms(labels, ts.histograms, out) if ts.histograms else []
        samples = ts.samples
        times = np.fromiter((s.timestamp for s in samples), dtype=np.int64, count=len(samples))
        values = np.fromiter((s.value for s in samples), dtype=np.float64, count=len(samples))
        if len(times) > 1:
            times, values = _drop_unordered(labels, times, values, out.rejections)
        exemplars = _exemplars(ts.exemplars, symbols, labels, out)
        if hists:
            out.series.append(with_histograms(labels, times, values, hists, exemplars))
        elif len(times) or exemplars:
            out.series.append(SeriesBatch(labels, times, values, exemplars))
        meta = _metadata(ts, symbols, dict(labels)[METRIC_NAME])
        if meta is not None:
            metadata[meta.metric_family_name] = meta
    out.metadata = list(metadata.values())
    return out


def _exemplars(
    exemplars: Sequence[Any], symbols: Sequence[str], series: Labels, out: DecodedWriteV2
) -> list[Exemplar]:
    kept: list[Exemplar] = []
    size = len(symbols)
    for e in exemplars:
        out.exemplars += 1
        refs: list[int] = list(e.labels_refs)
        if len(refs) % 2 or any(r >= size for r in refs):
            out.rejections.append(
                Rejection(
                    series,
                    e.timestamp,
                    f"invalid exemplar: labels_refs of length {len(refs)} with references "
                    f"outside the symbols table (size {size}) or unpaired",
                    "invalid_exemplar",
                )
            )
            continue
        labels = tuple(
            sorted(
                (symbols[refs[i]], symbols[refs[i + 1]])
                for i in range(0, len(refs), 2)
                if symbols[refs[i + 1]]
            )
        )
        kept.append(Exemplar(labels, e.value, e.timestamp))
    return kept


def _metadata(ts: Any, symbols: Sequence[str], name: str) -> MetricMetadata | None:
    """The series' metadata (kept under its metric name), or None when it says nothing or
    refers outside the symbol table (metadata never fails a write, as in Prometheus)."""
    m = ts.metadata
    size = len(symbols)
    help_ref, unit_ref = int(m.help_ref), int(m.unit_ref)
    if help_ref >= size or unit_ref >= size:
        return None
    help_text, unit = symbols[help_ref], symbols[unit_ref]
    mtype = METRIC_TYPES[m.type] if 0 <= m.type < len(METRIC_TYPES) else "unknown"
    if mtype == "unknown" and not help_text and not unit:
        return None
    return MetricMetadata(name, mtype, help_text, unit)


_TYPE_NUMBERS = {name: i for i, name in enumerate(METRIC_TYPES)}


def encode_write_request_v2(
    series: Iterable[SeriesData | SeriesBatch], metadata: Iterable[MetricMetadata] = ()
) -> bytes:
    """A snappy-compressed remote-write 2.0 body for ``series`` (labels sorted, strings in one
    symbol table that starts with ""); each series carries the metadata of its metric name."""
    symbols: dict[str, int] = {"": 0}

    def ref(text: str) -> int:
        found = symbols.get(text)
        if found is None:
            found = symbols[text] = len(symbols)
        return found

    def refs(labels: Labels) -> list[int]:
        return [r for name, value in labels for r in (ref(name), ref(value))]

    by_name = {m.metric_family_name: m for m in metadata}
    req = RequestV2()
    for s in series:
        ts = req.timeseries.add(labels_refs=refs(s.labels))
        hists = s.histograms or [None] * len(s.timestamps)
        for t, v, h in zip(s.timestamps.tolist(), s.values.tolist(), hists):
            if h is None:
                ts.samples.add(value=v, timestamp=t)
            else:  # 2.0's Histogram is 1.0's message
                ts.histograms.append(encode_histogram(HistogramSample(t, h, True)))
        for e in getattr(s, "exemplars", ()):
            ts.exemplars.add(labels_refs=refs(e.labels), value=e.value, timestamp=e.timestamp)
        meta = by_name.get(dict(s.labels).get(METRIC_NAME, ""))
        if meta is not None:
            ts.metadata.type = _TYPE_NUMBERS.get(meta.type, 0)
            ts.metadata.help_ref = ref(meta.help)
            ts.metadata.unit_ref = ref(meta.unit)
    req.symbols.extend(symbols)  # dicts keep insertion order: index i is the i-th symbol
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


REMOTE_WRITE_V2_HEADERS = {
    "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "2.0.0",
}
"""The headers a remote-write 2.0 sender sends with every request."""
