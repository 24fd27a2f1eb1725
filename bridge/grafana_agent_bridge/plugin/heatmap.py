"""Native histogram results as the ``heatmap-cells`` frames Grafana's heatmap panel draws.

Grafana's own Prometheus datasource (``pkg/promlib/converter``) turns every series of a
``vector`` or ``matrix`` result that carries a ``histogram`` / ``histograms`` key into one frame
of type ``heatmap-cells`` with one row per bucket of every sample, in this field order:

- ``xMax``: the sample's time (the cell ends there), a time field, truncated to ms;
- ``yMin`` / ``yMax``: the bucket's lower and upper bound (float64); ``yMin`` carries the
  series labels (and the legend's display name), being the field Grafana decorates;
- ``count``: the bucket's count (float64);
- ``yLayout``: the bucket's boundary rule (int8) as Prometheus's JSON gives it: 0 upper bound
  inclusive, 1 lower inclusive, 2 neither, 3 both (the zero bucket).

The histogram's ``count`` and ``sum`` are not shown, and buckets are rows exactly as the API
lists them (populated ones only, lowest first), so an empty histogram adds no row. A series
that holds floats as well as histograms becomes only its heatmap, as in Grafana; this plugin
says so in a notice rather than dropping the floats silently. Instant and range results have
the same layout: an instant one has one time in ``xMax``. The frame meta is the type only
(no dataplane ``typeVersion``: alerting cannot use these frames), plus what every frame of
the answer gets (executed query on the first one, notices).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

HEATMAP_CELLS = "heatmap-cells"
X_MAX, Y_MIN, Y_MAX, COUNT, Y_LAYOUT = "xMax", "yMin", "yMax", "count", "yLayout"
BOUNDARY_RULES = range(4)
NS_PER_MS = 1_000_000


class HistogramResultError(ValueError):
    """A native histogram sample that is not in Prometheus's JSON form."""


@dataclass(frozen=True)
class Cell:
    """One bucket of one sample: a row of the frame."""

    time_ms: int
    rule: int
    lower: float
    upper: float
    count: float


@dataclass
class HistogramSeries:
    """One series of a result that carries native histograms, as heatmap cells."""

    labels: dict[str, str]
    cells: list[Cell] = field(default_factory=list)
    dropped_floats: int = 0
    """Float samples of the same series, which the heatmap does not show."""


def has_histograms(entry: Mapping[str, object]) -> bool:
    return "histogram" in entry or "histograms" in entry


def histogram_series(
    labels: dict[str, str], entry: Mapping[str, object], result_type: str
) -> HistogramSeries:
    """The cells of a result entry with histograms (``histogram`` for a vector, ``histograms``
    for a matrix; Grafana reads either key in either result type, and so does this)."""
    series = HistogramSeries(labels)
    if "histogram" in entry:
        series.cells += _cells(entry["histogram"])
    samples = entry.get("histograms", [])
    if not isinstance(samples, list):
        raise HistogramResultError(f"{result_type} histograms are not a list")
    for sample in samples:
        series.cells += _cells(sample)
    floats = entry.get("values")
    if isinstance(floats, list):
        series.dropped_floats += len(floats)
    if entry.get("value") is not None:
        series.dropped_floats += 1
    return series


def _number(value: object, what: str) -> float:
    if not isinstance(value, str):
        raise HistogramResultError(f"histogram {what} {value!r} is not a string")
    try:
        return float(value)
    except ValueError as exc:
        raise HistogramResultError(f"histogram {what} {value!r} is not a number") from exc


def _cells(sample: object) -> list[Cell]:
    """``[<seconds>, {"count", "sum", "buckets": [[rule, "lower", "upper", "count"], ...]}]``."""
    if not isinstance(sample, list) or len(sample) != 2:
        raise HistogramResultError(f"histogram sample {sample!r} is not a [time, histogram] pair")
    when, body = sample
    if isinstance(when, bool) or not isinstance(when, int | float) or not math.isfinite(when):
        raise HistogramResultError(f"histogram sample time {when!r} is not a number")
    if not isinstance(body, dict):
        raise HistogramResultError("histogram is not an object")
    time_ms = int(when * 1000)  # Grafana's timeFromFloat: truncated to ms
    buckets = body.get("buckets", [])
    if not isinstance(buckets, list):
        raise HistogramResultError("histogram buckets are not a list")
    cells = []
    for bucket in buckets:
        if not isinstance(bucket, list) or len(bucket) != 4:
            raise HistogramResultError(f"histogram bucket {bucket!r} is not 4 elements")
        rule, lower, upper, count = bucket
        if isinstance(rule, bool) or not isinstance(rule, int) or rule not in BOUNDARY_RULES:
            raise HistogramResultError(f"histogram boundary rule {rule!r} is not 0 to 3")
        cells.append(
            Cell(
                time_ms,
                rule,
                _number(lower, "lower bound"),
                _number(upper, "upper bound"),
                _number(count, "bucket count"),
            )
        )
    return cells


def heatmap_fields(
    series: HistogramSeries, *, display_name: str = "", step_ms: int = 0
) -> list[tuple[pa.Field, pa.Array]]:
    """The five fields of a series' frame, with Grafana's field metadata: the series labels
    and display name on ``yMin``, the step as the interval of the time field."""
    cells = series.cells
    times = pa.array([c.time_ms * NS_PER_MS for c in cells], type=pa.timestamp("ns"))
    time_meta = {"name": X_MAX}
    if step_ms:
        time_meta["config"] = json.dumps({"interval": step_ms}, separators=(",", ":"))
    y_min_meta = {
        "name": Y_MIN,
        "labels": json.dumps(series.labels, sort_keys=True, separators=(",", ":")),
    }
    if display_name:
        y_min_meta["config"] = json.dumps(
            {"displayNameFromDS": display_name}, separators=(",", ":")
        )
    columns = [
        (X_MAX, times, time_meta),
        (Y_MIN, pa.array([c.lower for c in cells], type=pa.float64()), y_min_meta),
        (Y_MAX, pa.array([c.upper for c in cells], type=pa.float64()), {"name": Y_MAX}),
        (COUNT, pa.array([c.count for c in cells], type=pa.float64()), {"name": COUNT}),
        (Y_LAYOUT, pa.array([c.rule for c in cells], type=pa.int8()), {"name": Y_LAYOUT}),
    ]
    return [
        (pa.field(name, array.type, nullable=False, metadata=meta), array)
        for name, array, meta in columns
    ]


def heatmap_meta(*, executed: str = "", notices: Sequence[Mapping[str, str]] = ()) -> dict:
    meta: dict[str, object] = {"type": HEATMAP_CELLS}
    if executed:
        meta["executedQueryString"] = executed
    if notices:
        meta["notices"] = list(notices)
    return meta


def dropped_floats_notice(series: Sequence[HistogramSeries]) -> str | None:
    """The warning for float samples a heatmap hides, or None."""
    dropped = sum(s.dropped_floats for s in series)
    if not dropped:
        return None
    return (
        f"{dropped} float samples of series that also hold native histograms are not shown "
        "(their series is drawn as a heatmap)"
    )
