"""Remote-write 1.0 ``prometheus.Histogram`` ↔ the model.

The message (``prompb/types.proto``, field numbers exact) is declared in code like the rest of
remote-write. A histogram is a float histogram if ``count_float`` is set, else an integer one
whose bucket counts come as deltas; both become a ``FloatHistogram`` (``integer`` remembers
which, so forwarding can send it back as it came).

Decoding follows what Prometheus's remote-write receiver accepts (``storage/remote``
``setCurrentHistogram``, ``Histogram.Validate``): schemas -9..52 and -53 are known, 9..52 are
reduced to 8, anything else is refused; spans must cover exactly the buckets sent, counts may
not be negative, an integer histogram's count must equal the sum of its buckets (or be at
least that when the sum is NaN). Sizes are checked before anything is expanded, so a hostile
span length costs nothing. Every refusal is a ``HistogramDecodeError`` whose message says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import accumulate
from operator import sub
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from .bounds import EXPONENTIAL_SCHEMA_MAX, is_known_schema
from .model import FloatHistogram, Hint, HistogramError, Span
from .ops import reduce_resolution

_F = descriptor_pb2.FieldDescriptorProto


def _schema() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(
        name="grafana_agent_bridge_histogram.proto", package="prometheus", syntax="proto3"
    )

    def field(msg: Any, name: str, number: int, ftype: Any, **kw: Any) -> None:
        f = msg.field.add(name=name, number=number, type=ftype)
        f.label = _F.LABEL_REPEATED if kw.get("repeated") else _F.LABEL_OPTIONAL
        if "type_name" in kw:
            f.type_name = kw["type_name"]
        if "oneof" in kw:
            f.oneof_index = kw["oneof"]

    span = fd.message_type.add(name="BucketSpan")
    field(span, "offset", 1, _F.TYPE_SINT32)
    field(span, "length", 2, _F.TYPE_UINT32)
    h = fd.message_type.add(name="Histogram")
    h.oneof_decl.add(name="count")
    h.oneof_decl.add(name="zero_count")
    field(h, "count_int", 1, _F.TYPE_UINT64, oneof=0)
    field(h, "count_float", 2, _F.TYPE_DOUBLE, oneof=0)
    field(h, "sum", 3, _F.TYPE_DOUBLE)
    field(h, "schema", 4, _F.TYPE_SINT32)
    field(h, "zero_threshold", 5, _F.TYPE_DOUBLE)
    field(h, "zero_count_int", 6, _F.TYPE_UINT64, oneof=1)
    field(h, "zero_count_float", 7, _F.TYPE_DOUBLE, oneof=1)
    for prefix, first in (("negative", 8), ("positive", 11)):
        field(
            h,
            f"{prefix}_spans",
            first,
            _F.TYPE_MESSAGE,
            repeated=True,
            type_name=".prometheus.BucketSpan",
        )
        field(h, f"{prefix}_deltas", first + 1, _F.TYPE_SINT64, repeated=True)
        field(h, f"{prefix}_counts", first + 2, _F.TYPE_DOUBLE, repeated=True)
    field(h, "reset_hint", 14, _F.TYPE_INT32)
    field(h, "timestamp", 15, _F.TYPE_INT64)
    field(h, "custom_values", 16, _F.TYPE_DOUBLE, repeated=True)
    return fd


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_schema())
HistogramProto: Any = message_factory.GetMessageClass(
    _pool.FindMessageTypeByName("prometheus.Histogram")
)


class HistogramDecodeError(ValueError):
    """A histogram the bridge refuses; the message is the reason given to the sender."""


@dataclass(frozen=True)
class HistogramLimits:
    """Bounds on one histogram. Prometheus clients default to at most 160 buckets and
    Prometheus's own NHCB conversion to a few dozen; these leave generous headroom while
    keeping one sample's cost bounded."""

    max_buckets: int = 16_384
    """Positive plus negative buckets (custom bounds count here too)."""
    max_spans: int = 16_384


_DEFAULT_LIMITS = HistogramLimits()
_HINTS = tuple(Hint)
"""The hints by wire value: indexing costs less than calling the enum, once per sample."""


@dataclass(frozen=True, slots=True)
class HistogramSample:
    """One decoded histogram sample; ``integer`` if it came as an integer histogram."""

    timestamp: int
    histogram: FloatHistogram
    integer: bool
    wire: bytes | None = field(default=None, compare=False, repr=False)
    """The serialized ``prometheus.Histogram`` an integer histogram was decoded from: the
    store logs it as it came instead of encoding it again (decoding it gives this sample's
    histogram again, so replay is unchanged). None for anything else."""


def _side(
    name: str, spans: Any, deltas: Any, counts: Any, integer: bool
) -> tuple[tuple[Span, ...], tuple[float, ...], int]:
    """Spans and absolute counts of one side; the integer total of its buckets."""
    if not spans and not deltas and not counts:  # usually the negative side
        return (), (), 0
    span_tuple = tuple([Span(s.offset, s.length) for s in spans])
    # As Prometheus's ToFloatHistogram/ToIntHistogram: the other kind's fields are ignored
    # (and a mismatch then shows as spans that do not cover the buckets).
    if not integer:
        return span_tuple, tuple(counts), 0
    absolute = list(accumulate(deltas))
    if absolute and min(absolute) < 0:
        i = next(k for k, c in enumerate(absolute) if c < 0)
        raise HistogramDecodeError(
            f"{name} side: bucket number {i + 1} has observation count of {absolute[i]}: "
            "histogram has a bucket whose observation count is negative"
        )
    return span_tuple, tuple(map(float, absolute)), sum(absolute)


def decode_histogram(raw: bytes, limits: HistogramLimits | None = None) -> HistogramSample:
    """Parse and validate one serialized ``prometheus.Histogram``."""
    limits = limits or _DEFAULT_LIMITS
    msg = HistogramProto()
    try:
        msg.ParseFromString(raw)
    except DecodeError as e:
        raise HistogramDecodeError(f"invalid protobuf Histogram: {e}") from None
    return from_proto(msg, limits, raw)


def from_proto(
    msg: Any, limits: HistogramLimits | None = None, raw: bytes | None = None
) -> HistogramSample:
    """Validate a parsed ``prometheus.Histogram`` message and convert it; ``raw``: the bytes
    it was parsed from (kept as ``wire`` for an integer histogram)."""
    limits = limits or _DEFAULT_LIMITS
    schema = msg.schema
    if not is_known_schema(schema):
        raise HistogramDecodeError(
            "histogram has an unknown schema, which must be between -9 and 52 for "
            f"exponential buckets, or -53 for custom buckets, got schema {schema}"
        )
    if raw is None or len(raw) > min(limits.max_buckets, limits.max_spans):
        # (Every bucket, bound and span takes a byte of the message at least: a message
        # no longer than both limits is within them without counting.)
        _check_sizes(msg, limits)
    integer = msg.WhichOneof("count") != "count_float"
    pos_spans, pos, pos_total = _side(
        "positive", msg.positive_spans, msg.positive_deltas, msg.positive_counts, integer
    )
    neg_spans, neg, neg_total = _side(
        "negative", msg.negative_spans, msg.negative_deltas, msg.negative_counts, integer
    )
    if integer:
        count, zero_count = float(msg.count_int), float(msg.zero_count_int)
    else:
        count, zero_count = msg.count_float, msg.zero_count_float
    hint_value = msg.reset_hint
    hint = _HINTS[hint_value] if 0 <= hint_value <= 3 else Hint.UNKNOWN
    h = FloatHistogram(  # positional: a frozen dataclass's keywords cost more, per sample
        schema,
        count,
        msg.sum,
        msg.zero_threshold,
        zero_count,
        pos_spans,
        pos,
        neg_spans,
        neg,
        tuple(msg.custom_values),
        hint,
    )
    try:
        if schema > EXPONENTIAL_SCHEMA_MAX:
            # A newer sender's finer schema: Prometheus keeps it at the finest it knows.
            _check_layout(h)
            h = reduce_resolution(h, EXPONENTIAL_SCHEMA_MAX)
        h.validate()
    except (HistogramError, ValueError) as e:
        raise HistogramDecodeError(str(e)) from None
    if integer:
        in_buckets = pos_total + neg_total + msg.zero_count_int
        if math.isnan(msg.sum):
            if in_buckets > msg.count_int:
                raise HistogramDecodeError(
                    f"{in_buckets} observations found in buckets, but the Count field is "
                    f"{msg.count_int}: histogram's observation count should be at least the "
                    "number of observations found in the buckets"
                )
        elif in_buckets != msg.count_int:
            raise HistogramDecodeError(
                f"{in_buckets} observations found in buckets, but the Count field is "
                f"{msg.count_int}: histogram's observation count should equal the number of "
                "observations found in the buckets (in absence of NaN)"
            )
    return HistogramSample(msg.timestamp, h, integer, raw if integer else None)


def _check_sizes(msg: Any, limits: HistogramLimits) -> None:
    n_buckets = (
        len(msg.positive_deltas)
        + len(msg.positive_counts)
        + len(msg.negative_deltas)
        + len(msg.negative_counts)
    )
    n_spans = len(msg.positive_spans) + len(msg.negative_spans)
    if n_buckets + len(msg.custom_values) > limits.max_buckets:
        raise HistogramDecodeError(
            f"histogram has {n_buckets} buckets and {len(msg.custom_values)} custom bounds, "
            f"over the limit of {limits.max_buckets}"
        )
    if n_spans > limits.max_spans:
        raise HistogramDecodeError(
            f"histogram has {n_spans} spans, over the limit of {limits.max_spans}"
        )


def _check_layout(h: FloatHistogram) -> None:
    """Spans against buckets, before a schema reduction walks them."""
    for side, spans, buckets in (
        ("positive", h.positive_spans, h.positive_buckets),
        ("negative", h.negative_spans, h.negative_buckets),
    ):
        if sum(s.length for s in spans) != len(buckets) or any(s.offset < 0 for s in spans[1:]):
            raise HistogramDecodeError(
                f"{side} side: histogram spans specify different number of buckets than "
                "provided, or a span has a negative offset"
            )


def _integral(v: float) -> bool:
    return math.isfinite(v) and v >= 0 and v == int(v) and v < 2**63


def _all_integral(counts: tuple[float, ...]) -> bool:
    """``_integral`` for every count, with the loop in C (``is_integer`` is False for NaN and
    the infinities; the range is then two comparisons)."""
    if not counts:
        return True
    try:
        if not all(map(float.is_integer, counts)):
            return False
    except TypeError:  # a count built as an int (tests, ops that keep ints) is no float
        return all(map(_integral, counts))
    return min(counts) >= 0 and max(counts) < 2**63


def _deltas(buckets: tuple[float, ...]) -> list[int]:
    """Whole-number absolute counts as the wire's deltas (first count, then differences)."""
    ints = list(map(int, buckets))
    return list(map(sub, ints, [0, *ints[:-1]]))


def to_proto(sample: HistogramSample) -> Any:
    """The ``prometheus.Histogram`` message for a sample: an integer histogram (deltas) if it
    came as one and its counts are still whole numbers, else a float histogram."""
    h = sample.histogram
    msg = HistogramProto()
    integer = (
        sample.integer
        and _integral(h.count)
        and _integral(h.zero_count)
        and _all_integral(h.positive_buckets)
        and _all_integral(h.negative_buckets)
    )
    if integer:
        msg.count_int = int(h.count)
        msg.zero_count_int = int(h.zero_count)
    else:
        msg.count_float = h.count
        msg.zero_count_float = h.zero_count
    msg.sum = h.sum
    msg.schema = h.schema
    msg.zero_threshold = h.zero_threshold
    for spans, target in (
        (h.negative_spans, msg.negative_spans),
        (h.positive_spans, msg.positive_spans),
    ):
        for s in spans:
            target.add(offset=s.offset, length=s.length)
    if integer:
        msg.negative_deltas.extend(_deltas(h.negative_buckets))
        msg.positive_deltas.extend(_deltas(h.positive_buckets))
    else:
        msg.negative_counts.extend(h.negative_buckets)
        msg.positive_counts.extend(h.positive_buckets)
    msg.reset_hint = int(h.hint)
    msg.timestamp = sample.timestamp
    msg.custom_values.extend(h.custom_values)
    return msg


def encode_histogram(sample: HistogramSample) -> bytes:
    """The serialized ``prometheus.Histogram`` for ``sample`` (to put in a TimeSeries)."""
    return to_proto(sample).SerializeToString()
