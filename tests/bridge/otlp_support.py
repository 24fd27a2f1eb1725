"""Building OTLP metrics requests for tests with the published opentelemetry-proto messages."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

T0_NS = 1_700_000_000_000_000_000
CUMULATIVE = m.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = m.AGGREGATION_TEMPORALITY_DELTA


def attrs(**values: object) -> list[KeyValue]:
    """Attributes from keyword arguments; dots in names are written as ``__`` is awkward, so
    pass a dict through ``attrs(**{"service.name": "x"})``."""
    out = []
    for key, value in values.items():
        if isinstance(value, bool):
            v = AnyValue(bool_value=value)
        elif isinstance(value, int):
            v = AnyValue(int_value=value)
        elif isinstance(value, float):
            v = AnyValue(double_value=value)
        else:
            v = AnyValue(string_value=str(value))
        out.append(KeyValue(key=key, value=v))
    return out


def request(
    metrics: list[Any],
    resource: dict[str, object] | None = None,
    scope: str = "my.lib",
    scope_version: str = "1.0",
) -> Any:
    req: Any = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend(
        attrs(**(resource if resource is not None else {"service.name": "svc"}))
    )
    sm = rm.scope_metrics.add()
    sm.scope.name = scope
    sm.scope.version = scope_version
    sm.metrics.extend(metrics)
    return req


def gauge(name: str, value: float, t_ns: int = T0_NS, unit: str = "", **labels: object) -> Any:
    metric = m.Metric(name=name, unit=unit)
    metric.gauge.data_points.add(as_double=value, time_unix_nano=t_ns).attributes.extend(
        attrs(**labels)
    )
    return metric


def counter(
    name: str,
    value: float,
    t_ns: int = T0_NS,
    unit: str = "",
    monotonic: bool = True,
    temporality: int = CUMULATIVE,
    **labels: object,
) -> Any:
    metric = m.Metric(name=name, unit=unit)
    metric.sum.is_monotonic = monotonic
    metric.sum.aggregation_temporality = temporality
    point = metric.sum.data_points.add(as_double=value, time_unix_nano=t_ns)
    point.attributes.extend(attrs(**labels))
    return metric


def histogram(
    name: str,
    bounds: list[float],
    counts: list[int],
    total: float | None,
    t_ns: int = T0_NS,
    unit: str = "",
    temporality: int = CUMULATIVE,
) -> Any:
    metric = m.Metric(name=name, unit=unit)
    metric.histogram.aggregation_temporality = temporality
    point = metric.histogram.data_points.add(
        time_unix_nano=t_ns, count=sum(counts), explicit_bounds=bounds, bucket_counts=counts
    )
    if total is not None:
        point.sum = total
    return metric
