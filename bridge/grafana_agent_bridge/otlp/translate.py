"""OTLP metrics to Prometheus series, as Prometheus 3.x's OTLP receiver translates them.

Each rule follows ``storage/remote/otlptranslator/prometheusremotewrite`` of Prometheus 3.x
(``metrics_to_prw.go``, ``helper.go``, ``number_data_points.go``) with the names of
``prometheus/otlptranslator`` (see ``naming``):

- Gauges and non-monotonic sums are gauges; monotonic sums are counters (``_total``); sums,
  histograms and exponential histograms must be cumulative: another temporality is refused
  ("invalid temporality and type combination"), delta only accepted (values as sent) with
  ``otlp.allow_delta_temporality``, as Prometheus's ``AllowDeltaTemporality``.
- Histograms are classic: ``_bucket{le}`` cumulative counts with ``le="+Inf"`` equal to the
  count, ``_count``, and ``_sum`` only when the point has a sum.
- Summaries are ``_sum``, ``_count`` and the name with a ``quantile`` label per quantile.
- Exponential histograms are native histograms (``exphist``), stored as histogram samples
  (``SeriesBatch.histograms``); a point with no native form is refused for its reason.
- Labels: point attributes (names sanitised, values of colliding names joined with ``;`` in
  key order), then promoted resource attributes not already present, then scope metadata
  (``otel_scope_name``/``_version``/``_schema_url`` and ``otel_scope_<attr>``) when
  ``otlp.promote_scope_metadata``, then ``job`` (``service.namespace/service.name``) and
  ``instance`` (``service.instance.id``), then ``__name__`` and ``le``/``quantile``.
- ``target_info`` (value 1) carries the resource attributes other than ``service.name``,
  ``service.namespace`` and ``service.instance.id``, with ``job``/``instance``, from the
  earliest to the latest point of the resource every half lookback delta; it is left out when
  the resource has no other attribute or neither ``job`` nor ``instance``.
- A point flagged ``NoRecordedValue`` becomes a stale marker (every series it makes).
- Times: nanoseconds to milliseconds by integer division; the start time is not stored (as
  Prometheus without ``ExportCreatedMetric``).
- Exemplars: ``trace_id``/``span_id`` in hex, then the filtered attributes unless that takes
  the exemplar past 128 characters; on a sum's series, or on the first bucket series whose
  ``le`` is at least the exemplar's value.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..histogram.model import FloatHistogram
from ..labels import METRIC_NAME, Labels
from ..storage import STALE_NAN, Exemplar, MetricMetadata, Rejection, SeriesBatch
from .exphist import ConversionError, to_native
from .naming import InvalidNameError, Kind, Namer

SERVICE_NAME = "service.name"
SERVICE_NAMESPACE = "service.namespace"
SERVICE_INSTANCE_ID = "service.instance.id"
IDENTIFYING = (SERVICE_NAMESPACE, SERVICE_NAME, SERVICE_INSTANCE_ID)
TARGET_INFO = "target_info"
MAX_EXEMPLAR_RUNES = 128
MAX_TARGET_INFO_SAMPLES = 64
"""Prometheus writes a ``target_info`` sample every half lookback delta between a resource's
earliest and latest point, however far apart a sender puts them; here only the last 64 of
those (2h40m at the default lookback) are written, so one request cannot make millions."""
MAX_ERRORS = 8
"""Distinct problems described in the partial-success message (all are counted)."""

NO_RECORDED_VALUE = 1
TEMPORALITY_DELTA = 1
TEMPORALITY_CUMULATIVE = 2
_TEMPORALITY_NAMES = {0: "unspecified", 1: "delta", 2: "cumulative"}


@dataclass(frozen=True)
class Settings:
    """The ``otlp`` configuration section, as Prometheus's ``otlp`` block."""

    namer: Namer = field(default_factory=Namer)
    promote_resource_attributes: frozenset[str] = frozenset()
    promote_all_resource_attributes: bool = False
    ignore_resource_attributes: frozenset[str] = frozenset()
    keep_identifying_resource_attributes: bool = False
    promote_scope_metadata: bool = False
    allow_delta_temporality: bool = False
    lookback_delta_ms: int = 300_000
    max_samples: int = 0
    """Samples one request may produce (``ingest.max_samples_per_request``; 0: no limit);
    the points that would exceed it are refused."""


@dataclass
class _Series:
    times: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    points: list[int] = field(default_factory=list)
    exemplars: list[Exemplar] = field(default_factory=list)
    hists: list[FloatHistogram | None] = field(default_factory=list)
    """The native histogram of each sample (None for a float)."""


@dataclass
class Translation:
    """What a request becomes: series for ``Appender.append``, metadata, and the points
    refused (by id) with the reasons."""

    series: list[SeriesBatch] = field(default_factory=list)
    metadata: list[MetricMetadata] = field(default_factory=list)
    rejected: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    unmapped: int = 0
    """Points refused by store summaries that no longer name their series."""
    points: int = 0
    samples: int = 0
    point_of: dict[tuple[Labels, int], int] = field(default_factory=dict)
    points_of: dict[Labels, list[int]] = field(default_factory=dict)

    def refuse(self, points: Iterable[int], reason: str) -> None:
        self.rejected.update(points)
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS and reason not in self.errors:
            self.errors.append(reason)

    def store_rejections(self, rejections: Sequence[Rejection]) -> None:
        """Count the points behind samples the store refused (exemplar problems keep their
        sample, so they are reported but refuse no point)."""
        for r in rejections:
            reason = f"{r.reason} ({r.kind})"
            if r.kind.startswith("exemplar"):
                self.refuse((), reason)
            elif r.timestamp is not None and (r.labels, r.timestamp) in self.point_of:
                self.refuse((self.point_of[(r.labels, r.timestamp)],), reason)
            elif r.labels in self.points_of:
                self.refuse(self.points_of[r.labels], reason)
            else:  # a summary entry of the store's: no labels left to map back
                self.unmapped += r.count
                self.refuse((), reason)

    @property
    def rejected_points(self) -> int:
        return len(self.rejected) + self.unmapped


def any_value_str(value: Any) -> str:
    """An attribute value as pdata's ``Value.AsString`` writes it."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return _es6_float(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind in ("array_value", "kvlist_value"):
        return json.dumps(_raw(value), separators=(",", ":"), sort_keys=True)
    return ""


def _raw(value: Any) -> object:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_raw(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _raw(kv.value) for kv in value.kvlist_value.values}
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value if math.isfinite(value.double_value) else None
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None


def _es6_float(v: float) -> str:
    """Go's ``float64AsString`` in pdata: positional unless tiny or huge (ES6 style)."""
    if math.isnan(v) or math.isinf(v):
        return repr(v)
    a = abs(v)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        mantissa, _, exponent = repr(v).partition("e")
        return f"{mantissa.removesuffix('.0')}e{int(exponent):+d}"
    return format_float(v)


def format_float(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)``: shortest digits, never an exponent
    (how ``le`` and ``quantile`` values are written)."""
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if math.isnan(v):
        return "NaN"
    return np.format_float_positional(v, trim="-")


def _ms(nanos: int) -> int:
    return nanos // 1_000_000


class _Resource:
    """What a resource contributes to every series of it: ``job``, ``instance``, promoted
    attributes, and the attributes of its ``target_info``."""

    def __init__(self, resource: Any, settings: Settings) -> None:
        attrs = [(kv.key, any_value_str(kv.value)) for kv in resource.attributes]
        self.attrs = attrs
        found = dict(attrs)
        self.job: str | None = None
        if SERVICE_NAME in found:
            self.job = found[SERVICE_NAME]
            if SERVICE_NAMESPACE in found:
                self.job = f"{found[SERVICE_NAMESPACE]}/{self.job}"
        self.instance = found.get(SERVICE_INSTANCE_ID)
        if settings.promote_all_resource_attributes:
            promoted = [(k, v) for k, v in attrs if k not in settings.ignore_resource_attributes]
        else:
            promoted = [(k, v) for k, v in attrs if k in settings.promote_resource_attributes]
        self.promoted = sorted(promoted, key=lambda kv: kv[0])


@dataclass(frozen=True)
class _Scope:
    name: str
    version: str
    schema_url: str
    attrs: tuple[tuple[str, str], ...]


@dataclass
class _Point:
    """What every sample of one data point shares."""

    base: dict[str, str]
    t: int
    stale: bool
    pid: int | None
    """The data point's number in the request (None: ``target_info``, made by no point)."""

    def value(self, v: float) -> float:
        return STALE_NAN if self.stale else v


class _Builder:
    """Samples of one request gathered by label set."""

    def __init__(self, out: Translation) -> None:
        self.out = out
        self.acc: dict[Labels, _Series] = {}

    def add(
        self,
        p: _Point,
        name: str,
        v: float,
        extra: tuple[str, str] | None = None,
        hist: FloatHistogram | None = None,
    ) -> _Series:
        labels = dict(p.base)
        if extra is not None:
            labels[extra[0]] = extra[1]
        labels[METRIC_NAME] = name
        key: Labels = tuple(sorted((n, val) for n, val in labels.items() if val))
        series = self.acc.get(key)
        if series is None:
            series = self.acc[key] = _Series()
        series.times.append(p.t)
        series.values.append(p.value(v) if hist is None else math.nan)
        series.hists.append(hist)
        series.points.append(-1 if p.pid is None else p.pid)
        self.out.samples += 1
        return series

    def finish(self) -> None:
        """Each series' samples in time order; a second sample for a timestamp is dropped,
        and refused when its value differs (the store would refuse it the same way)."""
        out = self.out
        for labels, s in self.acc.items():
            order = sorted(range(len(s.times)), key=lambda i: s.times[i])
            times: list[int] = []
            values: list[float] = []
            hists: list[FloatHistogram | None] = []
            for i in order:
                t, v, pid, h = s.times[i], s.values[i], s.points[i], s.hists[i]
                if times and times[-1] == t:
                    same = _bits(v) == _bits(values[-1]) and h == hists[-1]
                    if not same and pid >= 0:
                        out.refuse((pid,), f"duplicate sample for timestamp {t} in one request")
                    continue
                times.append(t)
                values.append(v)
                hists.append(h)
                if pid >= 0:
                    out.point_of[(labels, t)] = pid
            out.points_of[labels] = [p for p in s.points if p >= 0]
            out.series.append(
                SeriesBatch(
                    labels,
                    np.array(times, dtype=np.int64),
                    np.array(values, dtype=np.float64),
                    sorted(s.exemplars, key=lambda e: e.timestamp),
                    histograms=hists if any(h is not None for h in hists) else None,
                )
            )


def _bits(v: float) -> bytes:
    return np.float64(v).tobytes()


class Translator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.namer = settings.namer

    def translate(self, request: Any) -> Translation:
        out = Translation()
        build = _Builder(out)
        next_point = 0
        for rm in request.resource_metrics:
            resource = _Resource(rm.resource, self.settings)
            times: list[int] = []
            for sm in rm.scope_metrics:
                scope = _Scope(
                    sm.scope.name,
                    sm.scope.version,
                    sm.schema_url,
                    tuple((kv.key, any_value_str(kv.value)) for kv in sm.scope.attributes),
                )
                for metric in sm.metrics:
                    kind_field = metric.WhichOneof("data")
                    points = list(getattr(metric, kind_field).data_points) if kind_field else []
                    ids = range(next_point, next_point + len(points))
                    next_point += len(points)
                    out.points += len(points)
                    if points:
                        stamps = [p.time_unix_nano for p in points]
                        times += (min(stamps), max(stamps))
                    self._metric(build, metric, points, ids, (resource, scope))
            if times:
                self._target_info(build, resource, min(times), max(times))
        build.finish()
        return out

    # --- one metric ---------------------------------------------------------------------------

    def _metric(
        self,
        build: _Builder,
        metric: Any,
        points: list[Any],
        ids: range,
        where: tuple[_Resource, _Scope],
    ) -> None:
        out = build.out
        name = metric.name
        kind_field = metric.WhichOneof("data")
        if kind_field is None:
            out.refuse((), f"metric {name[:64]!r} has no data (unsupported metric type)")
            return
        if not points:
            out.refuse((), f"empty data points. {name[:64]} is dropped")
            return
        data = getattr(metric, kind_field)
        kind = _kind(kind_field, data)
        if kind_field in ("sum", "histogram", "exponential_histogram"):
            temporality = data.aggregation_temporality
            allowed = temporality == TEMPORALITY_CUMULATIVE or (
                self.settings.allow_delta_temporality and temporality == TEMPORALITY_DELTA
            )
            if not allowed:
                shown = _TEMPORALITY_NAMES.get(temporality, str(temporality))
                out.refuse(
                    ids,
                    f"invalid temporality and type combination for metric {name[:64]!r}: "
                    f"{shown} temporality is not accepted (otlp.allow_delta_temporality)",
                )
                return
        try:
            family = self.namer.metric(name, metric.unit, kind)
        except InvalidNameError as e:
            out.refuse(ids, str(e))
            return
        out.metadata.append(
            MetricMetadata(family, _prom_type(kind), metric.description, metric.unit)
        )
        resource, scope = where
        limit = self.settings.max_samples
        for pid, point in zip(ids, points):
            if limit and out.samples >= limit:
                out.refuse(
                    (pid,),
                    f"the request makes more than {limit} samples "
                    "(ingest.max_samples_per_request): the rest refused",
                )
                continue
            try:
                base = self._labels(resource, point.attributes, scope)
            except InvalidNameError as e:
                out.refuse((pid,), f"metric {family[:64]!r}: {e}")
                continue
            p = _Point(base, _ms(point.time_unix_nano), bool(point.flags & NO_RECORDED_VALUE), pid)
            if kind_field == "gauge":
                build.add(p, family, _number(point))
            elif kind_field == "sum":  # Prometheus keeps exemplars of sums, not of gauges
                build.add(p, family, _number(point)).exemplars.extend(_exemplars(point.exemplars))
            elif kind_field == "histogram":
                self._histogram(build, point, family, p)
            elif kind is Kind.EXPONENTIAL_HISTOGRAM:
                try:
                    h = to_native(point, data.aggregation_temporality)
                except ConversionError as e:
                    out.refuse((pid,), f"exponential histogram {name[:64]!r}: {e}")
                    continue
                build.add(p, family, math.nan, hist=h)
            else:
                self._summary(build, point, family, p)

    @staticmethod
    def _histogram(build: _Builder, point: Any, family: str, p: _Point) -> None:
        """``addHistogramDataPoints``: classic buckets, cumulative, ``+Inf`` = count."""
        if point.HasField("sum"):
            build.add(p, family + "_sum", point.sum)
        count = float(point.count)
        build.add(p, family + "_count", count)
        buckets: list[tuple[float, _Series]] = []
        cumulative = 0
        for bound, n in zip(point.explicit_bounds, point.bucket_counts):
            cumulative += n
            s = build.add(p, family + "_bucket", float(cumulative), ("le", format_float(bound)))
            buckets.append((bound, s))
        buckets.append((math.inf, build.add(p, family + "_bucket", count, ("le", "+Inf"))))
        buckets.sort(key=lambda b: b[0])
        for ex in _exemplars(point.exemplars):
            for bound, s in buckets:
                if ex.value <= bound:
                    s.exemplars.append(ex)
                    break

    @staticmethod
    def _summary(build: _Builder, point: Any, family: str, p: _Point) -> None:
        """``addSummaryDataPoints``."""
        build.add(p, family + "_sum", point.sum)
        build.add(p, family + "_count", float(point.count))
        for q in point.quantile_values:
            build.add(p, family, q.value, ("quantile", format_float(q.quantile)))

    # --- labels -------------------------------------------------------------------------------

    def _labels(
        self, resource: _Resource, attributes: Iterable[Any], scope: _Scope | None
    ) -> dict[str, str]:
        """``createAttributes``: the labels every series of a point shares."""
        pairs = [(kv.key, any_value_str(kv.value)) for kv in attributes]
        return self._merge(resource, sorted(pairs, key=lambda kv: kv[0]), scope, promote=True)

    def _merge(
        self,
        resource: _Resource,
        pairs: list[tuple[str, str]],
        scope: _Scope | None,
        *,
        promote: bool,
    ) -> dict[str, str]:
        label = self.namer.label
        out: dict[str, str] = {}
        for key, value in pairs:
            name = label(key)
            out[name] = out[name] + ";" + value if name in out else value
        for key, value in resource.promoted if promote else ():
            out.setdefault(label(key), value)
        if scope is not None and self.settings.promote_scope_metadata and scope.name:
            out["otel_scope_name"] = scope.name
            out["otel_scope_version"] = scope.version
            out["otel_scope_schema_url"] = scope.schema_url
            for key, value in scope.attrs:
                out[label("otel_scope_" + key)] = value
        if resource.job is not None:
            out["job"] = resource.job
        if resource.instance is not None:
            out["instance"] = resource.instance
        return out

    def _target_info(
        self, build: _Builder, resource: _Resource, earliest: int, latest: int
    ) -> None:
        """``addResourceTargetInfo``."""
        if not any(k not in IDENTIFYING for k, _ in resource.attrs):
            return  # only job and instance: target_info would say nothing
        ignore = () if self.settings.keep_identifying_resource_attributes else IDENTIFYING
        pairs = sorted(
            ((k, v) for k, v in resource.attrs if k not in ignore), key=lambda kv: kv[0]
        )
        try:  # Prometheus promotes no attribute onto target_info
            labels = self._merge(resource, pairs, None, promote=False)
        except InvalidNameError as e:
            build.out.refuse((), f"target_info: {e}")
            return
        if "job" not in labels and "instance" not in labels:
            return
        interval = max(self.settings.lookback_delta_ms // 2, 1)
        start, end = _ms(earliest), _ms(latest)
        steps = (end - start + interval - 1) // interval  # samples before ``end``
        first = max(0, steps - MAX_TARGET_INFO_SAMPLES + 1)
        for t in [start + k * interval for k in range(first, steps)] + [end]:
            build.add(_Point(labels, t, False, None), TARGET_INFO, 1.0)


def _exemplars(exemplars: Iterable[Any]) -> list[Exemplar]:
    """``getPromExemplars``."""
    result: list[Exemplar] = []
    for e in exemplars:
        value = float(e.as_int) if e.WhichOneof("value") == "as_int" else e.as_double
        labels: list[tuple[str, str]] = []
        runes = 0
        if any(e.trace_id):
            labels.append(("trace_id", e.trace_id.hex()))
            runes += len("trace_id") + 2 * len(e.trace_id)
        if any(e.span_id):
            labels.append(("span_id", e.span_id.hex()))
            runes += len("span_id") + 2 * len(e.span_id)
        extra = [(kv.key, any_value_str(kv.value)) for kv in e.filtered_attributes]
        runes += sum(len(k) + len(v) for k, v in extra)
        if runes <= MAX_EXEMPLAR_RUNES:
            labels.extend(extra)
        kept = tuple(sorted((k, v) for k, v in labels if v))
        result.append(Exemplar(kept, value, _ms(e.time_unix_nano)))
    return result


def _number(point: Any) -> float:
    return float(point.as_int) if point.WhichOneof("value") == "as_int" else point.as_double


def _kind(kind_field: str, data: Any) -> Kind:
    if kind_field == "gauge":
        return Kind.GAUGE
    if kind_field == "sum":
        return Kind.MONOTONIC_COUNTER if data.is_monotonic else Kind.NON_MONOTONIC_COUNTER
    if kind_field == "histogram":
        return Kind.HISTOGRAM
    if kind_field == "exponential_histogram":
        return Kind.EXPONENTIAL_HISTOGRAM
    return Kind.SUMMARY


def _prom_type(kind: Kind) -> str:
    """``otelMetricTypeToPromMetricType``."""
    return {
        Kind.GAUGE: "gauge",
        Kind.MONOTONIC_COUNTER: "counter",
        Kind.NON_MONOTONIC_COUNTER: "gauge",
        Kind.HISTOGRAM: "histogram",
        Kind.EXPONENTIAL_HISTOGRAM: "histogram",
        Kind.SUMMARY: "summary",
    }[kind]
