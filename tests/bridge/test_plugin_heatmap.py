"""Native histogram results become the heatmap-cells frames Grafana's heatmap panel draws.

The results are written by the bridge's own API encoder from histograms, so the frames are
checked against the JSON the plugin really receives; the expected cells are the histograms'
buckets (Prometheus's boundary rules), worked out by hand.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from histogram_helpers import fh

from grafana_agent_bridge.api.encoding import format_value
from grafana_agent_bridge.histogram.jsonenc import histogram_json
from grafana_agent_bridge.histogram.model import FloatHistogram
from grafana_agent_bridge.plugin.frames import Notice, ResultError, frames_from_data

FIELDS = ["xMax", "yMin", "yMax", "count", "yLayout"]
T = 1_700_000_000  # s
UPPER, LOWER, BOTH = 0, 1, 3  # boundary rules: which bucket ends are inclusive


def sample(t: float, h: FloatHistogram) -> list[object]:
    return [t, json.loads(histogram_json(h, format_value))]


def decode(frame: bytes) -> tuple[pa.Table, dict, dict]:
    table = pa.ipc.open_file(pa.BufferReader(frame)).read_all()
    schema_meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    return table, schema_meta, json.loads(schema_meta["meta"])


def cells(table: pa.Table) -> list[tuple[int, float, float, float, int]]:
    """(ms, yMin, yMax, count, yLayout) per row."""
    ms = [ns // 1_000_000 for ns in table.column("xMax").cast(pa.int64()).to_pylist()]
    cols = [table.column(n).to_pylist() for n in FIELDS[1:]]
    return list(zip(ms, *cols))


def labels_of(table: pa.Table) -> dict[str, str]:
    return json.loads(table.schema.field("yMin").metadata[b"labels"])


# Schema 0: buckets (0.5, 1], (1, 2], (2, 4]; the zero bucket [-0.001, 0.001].
EXPO = fh(schema=0, count=9, total=12, zt=0.001, zc=1, pos=[(0, 3)], pb=[1, 2, 3])
NEG = fh(schema=0, count=5, total=-4, neg=[(1, 2)], nb=[2, 3])  # [-2, -1), [-4, -2)
NHCB = fh(schema=-53, count=6, total=3, pos=[(0, 3)], pb=[1, 2, 3], cv=[0.1, 1])
EMPTY = fh(schema=0, count=0, total=0)


def test_instant_histograms_are_one_heatmap_frame_per_series_one_row_per_bucket() -> None:
    data = {
        "resultType": "vector",
        "result": [
            {"metric": {"__name__": "lat", "job": "a"}, "histogram": sample(T + 0.5, EXPO)},
            {"metric": {"__name__": "lat", "job": "b"}, "histogram": sample(T + 0.5, NEG)},
        ],
    }
    first, second = frames_from_data("A", data, executed="Expr: lat")
    table, schema_meta, meta = decode(first)
    assert schema_meta["refId"] == "A" and schema_meta["name"] == ""
    assert meta == {"type": "heatmap-cells", "executedQueryString": "Expr: lat"}
    assert table.column_names == FIELDS
    schema = table.schema
    assert schema.field("xMax").type == pa.timestamp("ns") and schema.field("xMax").type.tz is None
    assert [schema.field(n).type for n in FIELDS[1:]] == [pa.float64()] * 3 + [pa.int8()]
    assert labels_of(table) == {"__name__": "lat", "job": "a"}
    t = T * 1000 + 500
    assert cells(table) == [
        (t, -0.001, 0.001, 1.0, BOTH),  # the zero bucket, closed
        (t, 0.5, 1.0, 1.0, UPPER),
        (t, 1.0, 2.0, 2.0, UPPER),
        (t, 2.0, 4.0, 3.0, UPPER),
    ]
    table, _, meta = decode(second)
    assert "executedQueryString" not in meta
    assert labels_of(table) == {"__name__": "lat", "job": "b"}
    # Negative buckets are [lower, upper): lowest first.
    assert cells(table) == [(t, -4.0, -2.0, 3.0, LOWER), (t, -2.0, -1.0, 2.0, LOWER)]


def test_range_histograms_give_every_bucket_of_every_step() -> None:
    later = fh(schema=0, count=4, total=5, pos=[(1, 1)], pb=[4])
    data = {
        "resultType": "matrix",
        "result": [
            {
                "metric": {"__name__": "lat"},
                "histograms": [sample(T, EXPO), sample(T + 15, later), sample(T + 30, EMPTY)],
            }
        ],
    }
    (frame,) = frames_from_data("B", data, step_ms=15_000)
    table, _, meta = decode(frame)
    assert meta["type"] == "heatmap-cells" and "typeVersion" not in meta
    assert json.loads(table.schema.field("xMax").metadata[b"config"]) == {"interval": 15000}
    rows = cells(table)
    assert [r[0] for r in rows] == [T * 1000] * 4 + [(T + 15) * 1000]  # an empty one adds none
    assert rows[-1] == ((T + 15) * 1000, 1.0, 2.0, 4.0, UPPER)


def test_custom_buckets_keep_their_bounds_the_first_closed() -> None:
    data = {"resultType": "vector", "result": [{"metric": {}, "histogram": sample(T, NHCB)}]}
    (frame,) = frames_from_data("A", data)
    table, _, _ = decode(frame)
    inf = float("inf")
    ms = T * 1000
    assert cells(table) == [
        (ms, -inf, 0.1, 1.0, BOTH),
        (ms, 0.1, 1.0, 2.0, UPPER),
        (ms, 1.0, inf, 3.0, UPPER),
    ]
    assert labels_of(table) == {}


def test_float_and_histogram_series_keep_their_order_and_their_own_frames() -> None:
    data = {
        "resultType": "matrix",
        "result": [
            {"metric": {"s": "1"}, "values": [[T, "1"]]},
            {"metric": {"s": "2"}, "histograms": [sample(T, NEG)]},
            {"metric": {"s": "3"}, "values": [[T, "3"]]},
        ],
    }
    frames = [decode(f) for f in frames_from_data("A", data, executed="x")]
    assert [m["type"] for _, _, m in frames] == [
        "timeseries-multi",
        "heatmap-cells",
        "timeseries-multi",
    ]
    assert [m.get("executedQueryString") for _, _, m in frames] == ["x", None, None]


def test_a_series_with_floats_and_histograms_is_drawn_as_its_heatmap_with_a_warning() -> None:
    """Grafana keeps only the heatmap of such a series; the plugin also says so."""
    data = {
        "resultType": "matrix",
        "result": [
            {
                "metric": {"__name__": "m"},
                "values": [[T, "1"], [T + 15, "2"]],
                "histograms": [sample(T + 30, NEG)],
            }
        ],
    }
    given = [Notice("info", "from the server")]
    (frame,) = frames_from_data("A", data, notices=given)
    table, _, meta = decode(frame)
    assert meta["type"] == "heatmap-cells"
    assert {r[0] for r in cells(table)} == {(T + 30) * 1000}
    assert meta["notices"][0] == {"severity": "info", "text": "from the server"}
    assert meta["notices"][1]["severity"] == "warning"
    assert "2 float samples" in meta["notices"][1]["text"]


def test_the_legend_names_the_heatmap_on_its_labelled_field() -> None:
    data = {
        "resultType": "vector",
        "result": [{"metric": {"job": "api"}, "histogram": sample(T, EXPO)}],
    }
    (frame,) = frames_from_data("A", data, legend_format="{{job}} latency")
    table, _, _ = decode(frame)
    config = json.loads(table.schema.field("yMin").metadata[b"config"])
    assert config == {"displayNameFromDS": "api latency"}


@pytest.mark.parametrize(
    ("histogram", "message"),
    [
        ([T], "pair"),
        (["x", {}], "time"),
        ([T, []], "not an object"),
        ([T, {"buckets": {}}], "not a list"),
        ([T, {"buckets": [[0, "1", "2"]]}], "4 elements"),
        ([T, {"buckets": [[7, "1", "2", "3"]]}], "rule"),
        ([T, {"buckets": [[0, 1, "2", "3"]]}], "not a string"),
        ([T, {"buckets": [[0, "1", "2", "many"]]}], "not a number"),
    ],
)
def test_malformed_histograms_are_rejected(histogram: object, message: str) -> None:
    data = {"resultType": "vector", "result": [{"metric": {}, "histogram": histogram}]}
    with pytest.raises(ResultError, match=message):
        frames_from_data("A", data)
