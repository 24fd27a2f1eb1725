"""Generate the remote-write 2.0 golden vectors: request bodies built with the published schema.

The schema is ``io.prometheus.write.v2`` as published in Prometheus's
``prompb/io/prometheus/write/v2/types.proto`` (package, message and field names and numbers as
there), declared here with protobuf's runtime descriptors, independently of the bridge's
decoder. Each vector is ``<name>.bin`` (the snappy-compressed body a sender would POST) and
``<name>.json`` (what a receiver must make of it). Run from the repository root:

    python tests/bridge/rw2_vectors/generate.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cramjam
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

HERE = Path(__file__).resolve().parent
F = descriptor_pb2.FieldDescriptorProto
PKG = "io.prometheus.write.v2"
T0 = 1_700_000_000_000


def _add(
    msg: Any,
    name: str,
    number: int,
    ftype: int,
    repeated: bool = False,
    ref: str = "",
    oneof: int | None = None,
) -> None:
    f = msg.field.add(name=name, number=number, type=ftype)
    f.label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
    if ref:
        f.type_name = f".{PKG}.{ref}"
    if oneof is not None:
        f.oneof_index = oneof


def published_schema() -> descriptor_pb2.FileDescriptorProto:
    """types.proto of io.prometheus.write.v2 (gogoproto options left out: they do not change
    the wire format)."""
    fd = descriptor_pb2.FileDescriptorProto(
        name="io/prometheus/write/v2/types.proto", package=PKG, syntax="proto3"
    )
    req = fd.message_type.add(name="Request")
    req.reserved_range.add(start=1, end=4)
    _add(req, "symbols", 4, F.TYPE_STRING, repeated=True)
    _add(req, "timeseries", 5, F.TYPE_MESSAGE, repeated=True, ref="TimeSeries")
    ts = fd.message_type.add(name="TimeSeries")
    _add(ts, "labels_refs", 1, F.TYPE_UINT32, repeated=True)
    _add(ts, "samples", 2, F.TYPE_MESSAGE, repeated=True, ref="Sample")
    _add(ts, "histograms", 3, F.TYPE_MESSAGE, repeated=True, ref="Histogram")
    _add(ts, "exemplars", 4, F.TYPE_MESSAGE, repeated=True, ref="Exemplar")
    _add(ts, "metadata", 5, F.TYPE_MESSAGE, ref="Metadata")
    _add(ts, "created_timestamp", 6, F.TYPE_INT64)
    ex = fd.message_type.add(name="Exemplar")
    _add(ex, "labels_refs", 1, F.TYPE_UINT32, repeated=True)
    _add(ex, "value", 2, F.TYPE_DOUBLE)
    _add(ex, "timestamp", 3, F.TYPE_INT64)
    sample = fd.message_type.add(name="Sample")
    _add(sample, "value", 1, F.TYPE_DOUBLE)
    _add(sample, "timestamp", 2, F.TYPE_INT64)
    meta = fd.message_type.add(name="Metadata")
    mtype = meta.enum_type.add(name="MetricType")
    for i, n in enumerate(
        [
            "UNSPECIFIED",
            "COUNTER",
            "GAUGE",
            "HISTOGRAM",
            "GAUGEHISTOGRAM",
            "SUMMARY",
            "INFO",
            "STATESET",
        ]
    ):
        mtype.value.add(name=f"METRIC_TYPE_{n}", number=i)
    _add(meta, "type", 1, F.TYPE_ENUM, ref="Metadata.MetricType")
    _add(meta, "help_ref", 3, F.TYPE_UINT32)
    _add(meta, "unit_ref", 4, F.TYPE_UINT32)
    h = fd.message_type.add(name="Histogram")
    hint = h.enum_type.add(name="ResetHint")
    for i, n in enumerate(["UNSPECIFIED", "YES", "NO", "GAUGE"]):
        hint.value.add(name=f"RESET_HINT_{n}", number=i)
    h.oneof_decl.add(name="count")
    h.oneof_decl.add(name="zero_count")
    _add(h, "count_int", 1, F.TYPE_UINT64, oneof=0)
    _add(h, "count_float", 2, F.TYPE_DOUBLE, oneof=0)
    _add(h, "sum", 3, F.TYPE_DOUBLE)
    _add(h, "schema", 4, F.TYPE_SINT32)
    _add(h, "zero_threshold", 5, F.TYPE_DOUBLE)
    _add(h, "zero_count_int", 6, F.TYPE_UINT64, oneof=1)
    _add(h, "zero_count_float", 7, F.TYPE_DOUBLE, oneof=1)
    _add(h, "negative_spans", 8, F.TYPE_MESSAGE, repeated=True, ref="BucketSpan")
    _add(h, "negative_deltas", 9, F.TYPE_SINT64, repeated=True)
    _add(h, "negative_counts", 10, F.TYPE_DOUBLE, repeated=True)
    _add(h, "positive_spans", 11, F.TYPE_MESSAGE, repeated=True, ref="BucketSpan")
    _add(h, "positive_deltas", 12, F.TYPE_SINT64, repeated=True)
    _add(h, "positive_counts", 13, F.TYPE_DOUBLE, repeated=True)
    _add(h, "reset_hint", 14, F.TYPE_ENUM, ref="Histogram.ResetHint")
    _add(h, "timestamp", 15, F.TYPE_INT64)
    _add(h, "custom_values", 16, F.TYPE_DOUBLE, repeated=True)
    span = fd.message_type.add(name="BucketSpan")
    _add(span, "offset", 1, F.TYPE_SINT32)
    _add(span, "length", 2, F.TYPE_UINT32)
    return fd


def request_class() -> Any:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(published_schema())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PKG}.Request"))


class Symbols:
    """A symbol table that starts with "" as the spec requires."""

    def __init__(self) -> None:
        self.table = [""]

    def ref(self, text: str) -> int:
        if text not in self.table:
            self.table.append(text)
        return self.table.index(text)

    def refs(self, labels: dict[str, str]) -> list[int]:
        out: list[int] = []
        for name in sorted(labels):
            out += [self.ref(name), self.ref(labels[name])]
        return out


def basic() -> tuple[Any, dict[str, Any]]:
    """Two series with samples, metadata, an exemplar and a created timestamp."""
    req = request_class()()
    sym = Symbols()
    a = req.timeseries.add(
        labels_refs=sym.refs({"__name__": "http_requests_total", "job": "api", "code": "200"}),
        created_timestamp=T0 - 60_000,
    )
    a.samples.add(value=10, timestamp=T0)
    a.samples.add(value=12, timestamp=T0 + 15_000)
    a.exemplars.add(
        labels_refs=sym.refs({"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}),
        value=1,
        timestamp=T0 + 15_000,
    )
    a.metadata.type = 1
    a.metadata.help_ref = sym.ref("Requests served.")
    a.metadata.unit_ref = 0
    b = req.timeseries.add(labels_refs=sym.refs({"__name__": "temperature", "room": "lab"}))
    b.samples.add(value=21.5, timestamp=T0)
    b.metadata.type = 2
    b.metadata.help_ref = sym.ref("Room temperature.")
    b.metadata.unit_ref = sym.ref("celsius")
    req.symbols.extend(sym.table)
    return req, {
        "status": 204,
        "written": {"samples": 3, "histograms": 0, "exemplars": 1},
        "series": {
            '{__name__="http_requests_total", code="200", job="api"}': [
                [T0, 10],
                [T0 + 15000, 12],
            ],
            '{__name__="temperature", room="lab"}': [[T0, 21.5]],
        },
        "exemplars": {
            '{__name__="http_requests_total", code="200", job="api"}': [
                [{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}, 1, T0 + 15000]
            ]
        },
        "metadata": {
            "http_requests_total": ["counter", "Requests served.", ""],
            "temperature": ["gauge", "Room temperature.", "celsius"],
        },
    }


def native_histogram() -> tuple[Any, dict[str, Any]]:
    """A native histogram series next to a float series: both stored."""
    req = request_class()()
    sym = Symbols()
    h = req.timeseries.add(labels_refs=sym.refs({"__name__": "latency_seconds", "job": "api"}))
    hist = h.histograms.add(
        count_int=5, sum=2.5, schema=1, zero_threshold=1e-128, zero_count_int=1, timestamp=T0
    )
    hist.positive_spans.add(offset=0, length=2)
    hist.positive_deltas.extend([2, 0])
    h.metadata.type = 3
    f = req.timeseries.add(labels_refs=sym.refs({"__name__": "up", "job": "api"}))
    f.samples.add(value=1, timestamp=T0)
    req.symbols.extend(sym.table)
    return req, {
        "status": 204,
        "written": {"samples": 1, "histograms": 1, "exemplars": 0},
        "series": {'{__name__="up", job="api"}': [[T0, 1]]},
        "exemplars": {},
        "metadata": {"latency_seconds": ["histogram", "", ""]},
    }


def bad_first_symbol() -> tuple[Any, dict[str, Any]]:
    req = request_class()()
    req.symbols.extend(["__name__", "up"])
    req.timeseries.add(labels_refs=[0, 1]).samples.add(value=1, timestamp=T0)
    return req, {
        "status": 400,
        "error": "symbols[0] must be the empty string",
        "written": {"samples": 0, "histograms": 0, "exemplars": 0},
        "series": {},
        "exemplars": {},
        "metadata": {},
    }


def bad_refs() -> tuple[Any, dict[str, Any]]:
    """A reference past the symbol table and an odd labels_refs: those series refused, the
    valid one stored (a 2.0 partial write)."""
    req = request_class()()
    sym = Symbols()
    good = sym.refs({"__name__": "up", "job": "ok"})
    req.timeseries.add(labels_refs=good).samples.add(value=1, timestamp=T0)
    req.timeseries.add(labels_refs=[good[0], 99]).samples.add(value=2, timestamp=T0)
    req.timeseries.add(labels_refs=good[:3]).samples.add(value=3, timestamp=T0)
    req.symbols.extend(sym.table)
    return req, {
        "status": 400,
        "error": "outside the symbols table",
        "error_also": "odd labels_refs length 3",
        "written": {"samples": 1, "histograms": 0, "exemplars": 0},
        "series": {'{__name__="up", job="ok"}': [[T0, 1]]},
        "exemplars": {},
        "metadata": {},
    }


VECTORS = {
    "basic": basic,
    "native_histogram": native_histogram,
    "bad_first_symbol": bad_first_symbol,
    "bad_refs": bad_refs,
}


def main() -> None:
    for name, build in VECTORS.items():
        req, expected = build()
        body = bytes(cramjam.snappy.compress_raw(req.SerializeToString()))
        (HERE / f"{name}.bin").write_bytes(body)
        (HERE / f"{name}.json").write_text(json.dumps(expected, indent=2) + "\n")


if __name__ == "__main__":
    main()
