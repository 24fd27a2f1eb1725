"""Grafana data frames, in the Arrow IPC file format, from Prometheus API results.

Grafana decodes each frame with Arrow's *file* reader and fails the whole QueryData call if one
frame has a type it does not know, so the encoding here sticks to what Grafana's SDK writes:
timestamp('ns') without a timezone, float64 values, string/JSON metadata. Results take the
dataplane shapes that Grafana alerting accepts without a "long to wide" conversion: a range query
gives ``timeseries-multi`` frames (Time + one value field per frame, labels on the field), an
instant query ``numeric-multi`` frames (one value per series), both with typeVersion [0, 1].
A series of native histograms becomes a ``heatmap-cells`` frame, as Grafana's own Prometheus
datasource makes it (``heatmap.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from .heatmap import (
    HistogramResultError,
    HistogramSeries,
    dropped_floats_notice,
    has_histograms,
    heatmap_fields,
    heatmap_meta,
    histogram_series,
)

TYPE_VERSION = (0, 1)
TIMESERIES_MULTI = "timeseries-multi"
NUMERIC_MULTI = "numeric-multi"
TIME_FIELD = "Time"
VALUE_FIELD = "Value"
NS_PER_MS = 1_000_000

_LEGEND_TEMPLATE = re.compile(r"\{\{\s*(.+?)\s*\}\}")
_FRAME_TYPE_BY_RESULT = {
    "matrix": TIMESERIES_MULTI,
    "vector": NUMERIC_MULTI,
    "scalar": NUMERIC_MULTI,
}


class ResultError(ValueError):
    """The server's answer is not a Prometheus result Grafana could display."""


@dataclass(frozen=True)
class Notice:
    """A frame notice: Grafana shows it beside the panel (``warning``, ``info`` or ``error``)."""

    severity: str
    text: str


@dataclass
class Series:
    """One series of a result: its labels and samples (ms timestamps, float values)."""

    labels: dict[str, str]
    times_ms: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


def encode_frame(
    ref_id: str,
    fields: Sequence[tuple[pa.Field, pa.Array]],
    *,
    meta: Mapping[str, object] | None = None,
    name: str = "",
) -> bytes:
    """One frame as an Arrow IPC file: ``name``, ``refId`` and ``meta`` in the schema metadata."""
    metadata = {"name": name, "refId": ref_id}
    if meta is not None:
        metadata["meta"] = json.dumps(meta, separators=(",", ":"))
    schema = pa.schema([f for f, _ in fields], metadata=metadata)
    batch = pa.record_batch([a for _, a in fields], schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def frame_meta(
    frame_type: str | None,
    result_type: str,
    *,
    executed: str = "",
    notices: Sequence[Notice] = (),
) -> dict[str, object]:
    """FrameMeta JSON: the dataplane type, Prometheus's result type, notices, the query run."""
    meta: dict[str, object] = {}
    if frame_type:
        meta["type"] = frame_type
        meta["typeVersion"] = list(TYPE_VERSION)
    meta["custom"] = {"resultType": result_type}
    if executed:
        meta["executedQueryString"] = executed
    if notices:
        meta["notices"] = [{"severity": n.severity, "text": n.text} for n in notices]
    return meta


def legend(legend_format: str, labels: Mapping[str, str]) -> str:
    """Render a Grafana legend template (``{{instance}} cpu``); "" means Grafana's default."""
    if not legend_format or legend_format == "__auto":
        return ""
    return _LEGEND_TEMPLATE.sub(lambda m: labels.get(m.group(1), ""), legend_format)


def series_frame(
    ref_id: str,
    series: Series,
    frame_type: str,
    result_type: str,
    *,
    legend_format: str = "",
    step_ms: int = 0,
    executed: str = "",
    notices: Sequence[Notice] = (),
) -> bytes:
    """A Time + Value frame for one series; the value field carries the labels."""
    config: dict[str, object] = {}
    display = legend(legend_format, series.labels)
    if display:
        config["displayNameFromDS"] = display
    if step_ms and frame_type == TIMESERIES_MULTI:
        config["interval"] = step_ms
    value_name = series.labels.get("__name__") or VALUE_FIELD
    value_meta = {
        "name": value_name,
        "labels": json.dumps(series.labels, sort_keys=True, separators=(",", ":")),
    }
    if config:
        value_meta["config"] = json.dumps(config, separators=(",", ":"))
    times = pa.array([t * NS_PER_MS for t in series.times_ms], type=pa.timestamp("ns"))
    values = pa.array(series.values, type=pa.float64())
    fields = [
        (pa.field(TIME_FIELD, times.type, nullable=False, metadata={"name": TIME_FIELD}), times),
        (pa.field(value_name, values.type, nullable=False, metadata=value_meta), values),
    ]
    meta = frame_meta(frame_type, result_type, executed=executed, notices=notices)
    return encode_frame(ref_id, fields, meta=meta)


def empty_frame(
    ref_id: str,
    frame_type: str | None,
    result_type: str,
    *,
    executed: str = "",
    notices: Sequence[Notice] = (),
) -> bytes:
    """A frame with no fields: Grafana's "no data", which alerting turns into the NoData state."""
    meta = frame_meta(frame_type, result_type, executed=executed, notices=notices)
    return encode_frame(ref_id, [], meta=meta)


def string_frame(ref_id: str, time_ms: int, text: str, *, executed: str = "") -> bytes:
    """A PromQL string result: shown in tables, not usable by alerting (no numeric field)."""
    times = pa.array([time_ms * NS_PER_MS], type=pa.timestamp("ns"))
    values = pa.array([text], type=pa.string())
    fields = [
        (pa.field(TIME_FIELD, times.type, nullable=False, metadata={"name": TIME_FIELD}), times),
        (
            pa.field(VALUE_FIELD, values.type, nullable=False, metadata={"name": VALUE_FIELD}),
            values,
        ),
    ]
    return encode_frame(ref_id, fields, meta=frame_meta(None, "string", executed=executed))


def exemplar_frame(ref_id: str, data: object) -> bytes | None:
    """All exemplars of a ``query_exemplars`` answer as one frame named ``exemplar``.

    Time and Value, then one string column per label (series labels and exemplar labels, "" where
    absent): the form Grafana's panels draw as exemplar markers and link to traces from.
    """
    if not isinstance(data, list):
        raise ResultError("exemplar data is not a list")
    rows: list[tuple[int, float, dict[str, str]]] = []
    for group in data:
        if not isinstance(group, dict):
            raise ResultError("exemplar group is not an object")
        series_labels = _string_map(group.get("seriesLabels", {}), "seriesLabels")
        exemplars = group.get("exemplars", [])
        if not isinstance(exemplars, list):
            raise ResultError("exemplars is not a list")
        for exemplar in exemplars:
            if not isinstance(exemplar, dict):
                raise ResultError("exemplar is not an object")
            time_ms, value = parse_sample([exemplar.get("timestamp"), exemplar.get("value")])
            labels = {**series_labels, **_string_map(exemplar.get("labels", {}), "labels")}
            rows.append((time_ms, value, labels))
    if not rows:
        return None
    rows.sort(key=lambda row: row[0])
    names = sorted({name for _, _, labels in rows for name in labels})
    times = pa.array([row[0] * NS_PER_MS for row in rows], type=pa.timestamp("ns"))
    values = pa.array([row[1] for row in rows], type=pa.float64())
    fields = [
        (pa.field(TIME_FIELD, times.type, nullable=False, metadata={"name": TIME_FIELD}), times),
        (
            pa.field(VALUE_FIELD, values.type, nullable=False, metadata={"name": VALUE_FIELD}),
            values,
        ),
    ]
    for name in names:
        column = pa.array([row[2].get(name, "") for row in rows], type=pa.string())
        fields.append(
            (pa.field(name, pa.string(), nullable=False, metadata={"name": name}), column)
        )
    return encode_frame(ref_id, fields, meta=frame_meta(None, "exemplar"), name="exemplar")


def _string_map(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ResultError(f"{what} must map label names to string values")
    return dict(value)


def parse_sample(sample: object) -> tuple[int, float]:
    """``[<seconds>, "<value>"]`` -> (ms, value); the time is truncated to ms as Grafana does."""
    if not isinstance(sample, list) or len(sample) != 2:
        raise ResultError(f"sample {sample!r} is not a [time, value] pair")
    when, value = sample
    if isinstance(when, bool) or not isinstance(when, int | float):
        raise ResultError(f"sample time {when!r} is not a number")
    if not isinstance(value, str):
        raise ResultError(f"sample value {value!r} is not a string")
    try:
        number = float(value)
    except ValueError as exc:
        raise ResultError(f"sample value {value!r} is not a number") from exc
    return int(when * 1000), number


def _metric(entry: Mapping[str, object]) -> dict[str, str]:
    return _string_map(entry.get("metric", {}), "series metric")


def parse_series(
    result_type: str, result: object
) -> tuple[list[Series | HistogramSeries], list[Notice]]:
    """The series of a ``matrix`` or ``vector`` result, in order, checked for shape and unique
    labels: float series, and native-histogram series (``HistogramSeries``)."""
    if not isinstance(result, list):
        raise ResultError(f"{result_type} result is not a list")
    all_series: list[Series | HistogramSeries] = []
    seen: set[tuple[tuple[str, str], ...]] = set()
    for entry in result:
        if not isinstance(entry, dict):
            raise ResultError(f"{result_type} entry is not an object")
        labels = _metric(entry)
        key = tuple(sorted(labels.items()))
        if key in seen:
            raise ResultError(f"duplicate series {labels} in the result")
        seen.add(key)
        if has_histograms(entry):
            try:
                all_series.append(histogram_series(labels, entry, result_type))
            except HistogramResultError as exc:
                raise ResultError(str(exc)) from exc
            continue
        series = Series(labels)
        samples = entry.get("values" if result_type == "matrix" else "value")
        if samples is None:
            samples = []
        if result_type == "vector":
            samples = [samples]
        if not isinstance(samples, list):
            raise ResultError(f"{result_type} samples are not a list")
        for sample in samples:
            time_ms, value = parse_sample(sample)
            series.times_ms.append(time_ms)
            series.values.append(value)
        all_series.append(series)
    notices: list[Notice] = []
    dropped = dropped_floats_notice([s for s in all_series if isinstance(s, HistogramSeries)])
    if dropped:
        notices.append(Notice("warning", dropped))
    return all_series, notices


def heatmap_frame(
    ref_id: str,
    series: HistogramSeries,
    *,
    legend_format: str = "",
    step_ms: int = 0,
    executed: str = "",
    notices: Sequence[Notice] = (),
) -> bytes:
    """A ``heatmap-cells`` frame for one native-histogram series."""
    fields = heatmap_fields(
        series, display_name=legend(legend_format, series.labels), step_ms=step_ms
    )
    meta = heatmap_meta(
        executed=executed, notices=[{"severity": n.severity, "text": n.text} for n in notices]
    )
    return encode_frame(ref_id, fields, meta=meta)


def notices_from(envelope: Mapping[str, object]) -> list[Notice]:
    """The server's ``warnings`` and ``infos`` as frame notices."""
    notices: list[Notice] = []
    for key, severity in (("warnings", "warning"), ("infos", "info")):
        items = envelope.get(key)
        if isinstance(items, list):
            notices.extend(Notice(severity, item) for item in items if isinstance(item, str))
    return notices


def frames_from_data(
    ref_id: str,
    data: object,
    *,
    legend_format: str = "",
    step_ms: int = 0,
    executed: str = "",
    notices: Sequence[Notice] = (),
) -> list[bytes]:
    """All frames for the ``data`` of a successful query or query_range answer."""
    if not isinstance(data, dict):
        raise ResultError("data is not an object")
    result_type = data.get("resultType")
    result = data.get("result")
    if result_type == "string":
        if not isinstance(result, list) or len(result) != 2 or not isinstance(result[1], str):
            raise ResultError("string result is not a [time, string] pair")
        time_ms, _ = parse_sample([result[0], "0"])
        return [string_frame(ref_id, time_ms, result[1], executed=executed)]
    if result_type == "scalar":
        time_ms, value = parse_sample(result)
        series_list: list[Series | HistogramSeries] = [Series({}, [time_ms], [value])]
        extra: list[Notice] = []
    elif result_type in ("matrix", "vector"):
        series_list, extra = parse_series(result_type, result)
    else:
        raise ResultError(f"unknown result type: {result_type}")
    frame_type = _FRAME_TYPE_BY_RESULT[result_type]
    all_notices = [*notices, *extra]
    if not series_list:
        return [
            empty_frame(ref_id, frame_type, result_type, executed=executed, notices=all_notices)
        ]
    frames = []
    for index, series in enumerate(series_list):
        first = executed if index == 0 else ""
        if isinstance(series, HistogramSeries):
            frames.append(
                heatmap_frame(
                    ref_id,
                    series,
                    legend_format=legend_format,
                    step_ms=step_ms,
                    executed=first,
                    notices=all_notices,
                )
            )
            continue
        frames.append(
            series_frame(
                ref_id,
                series,
                frame_type,
                result_type,
                legend_format=legend_format,
                step_ms=step_ms,
                executed=first,
                notices=all_notices,
            )
        )
    return frames
