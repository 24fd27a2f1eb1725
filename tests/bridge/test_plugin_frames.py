"""Arrow frames built from Prometheus results, decoded the way Grafana decodes them."""

import json
import math

import pyarrow as pa
import pytest

from grafana_agent_bridge.plugin.frames import (
    Notice,
    ResultError,
    exemplar_frame,
    frames_from_data,
    legend,
    notices_from,
)


def decode(frame: bytes) -> tuple[pa.Table, dict]:
    assert frame[:6] == b"ARROW1"  # the IPC *file* format; Grafana's reader rejects streams
    table = pa.ipc.open_file(pa.BufferReader(frame)).read_all()
    meta = table.schema.metadata or {}
    return table, {k.decode(): v.decode() for k, v in meta.items()}


def field_labels(table: pa.Table, index: int) -> dict:
    return json.loads(table.schema.field(index).metadata[b"labels"])


MATRIX = {
    "resultType": "matrix",
    "result": [
        {
            "metric": {"__name__": "temp", "room": "hall"},
            "values": [[1700000000, "1.5"], [1700000015.123, "NaN"], [1700000030, "+Inf"]],
        },
        {"metric": {"__name__": "temp", "room": "kitchen"}, "values": [[1700000000, "-Inf"]]},
    ],
}


def test_range_result_becomes_timeseries_multi_frames():
    frames = frames_from_data("A", MATRIX, step_ms=15000, executed="Expr: temp\nStep: 15s")
    assert len(frames) == 2
    table, meta = decode(frames[0])
    assert meta["refId"] == "A"
    assert meta["name"] == ""
    frame_meta = json.loads(meta["meta"])
    assert frame_meta["type"] == "timeseries-multi"
    assert frame_meta["typeVersion"] == [0, 1]
    assert frame_meta["custom"] == {"resultType": "matrix"}
    assert frame_meta["executedQueryString"] == "Expr: temp\nStep: 15s"
    assert table.schema.field(0).type == pa.timestamp("ns")
    assert table.schema.field(0).type.tz is None
    assert table.schema.field(1).type == pa.float64()
    assert table.column_names == ["Time", "temp"]
    ns = table.column(0).cast(pa.int64()).to_pylist()
    assert ns == [1700000000_000_000_000, 1700000015_123_000_000, 1700000030_000_000_000]
    values = table.column(1).to_pylist()
    assert values[0] == 1.5
    assert math.isnan(values[1])
    assert values[2] == math.inf
    assert field_labels(table, 1) == {"__name__": "temp", "room": "hall"}
    assert json.loads(table.schema.field(1).metadata[b"config"]) == {"interval": 15000}
    second, _ = decode(frames[1])
    assert second.column(1).to_pylist() == [-math.inf]


def test_instant_result_becomes_numeric_multi_frames_with_one_row():
    vector = {
        "resultType": "vector",
        "result": [
            {"metric": {"room": "hall"}, "value": [1700000000.5, "3"]},
            {"metric": {"room": "kitchen"}, "value": [1700000000.5, "4.25"]},
        ],
    }
    frames = frames_from_data("B", vector)
    assert len(frames) == 2
    for frame, room, value in zip(frames, ("hall", "kitchen"), (3.0, 4.25), strict=True):
        table, meta = decode(frame)
        assert json.loads(meta["meta"])["type"] == "numeric-multi"
        assert json.loads(meta["meta"])["typeVersion"] == [0, 1]
        assert table.num_rows == 1
        assert table.column_names == ["Time", "Value"]  # no __name__: the field is "Value"
        assert table.column(1).to_pylist() == [value]
        assert field_labels(table, 1) == {"room": room}


def test_scalar_result_is_one_unlabelled_number():
    (frame,) = frames_from_data("C", {"resultType": "scalar", "result": [4, "2"]})
    table, meta = decode(frame)
    assert json.loads(meta["meta"])["type"] == "numeric-multi"
    assert table.column(1).to_pylist() == [2.0]
    assert field_labels(table, 1) == {}


def test_empty_result_is_one_frame_without_fields_so_alerting_sees_no_data():
    for result_type, frame_type in (("vector", "numeric-multi"), ("matrix", "timeseries-multi")):
        (frame,) = frames_from_data("A", {"resultType": result_type, "result": []})
        table, meta = decode(frame)
        assert table.num_columns == 0
        assert json.loads(meta["meta"])["type"] == frame_type


def test_string_result_is_a_string_frame_without_dataplane_type():
    (frame,) = frames_from_data("S", {"resultType": "string", "result": [5, "hello"]})
    table, meta = decode(frame)
    assert "type" not in json.loads(meta["meta"])
    assert table.column(1).to_pylist() == ["hello"]


def test_legend_format_becomes_the_display_name():
    frames = frames_from_data("A", MATRIX, legend_format="{{room}} ({{ __name__ }}){{nope}}")
    table, _ = decode(frames[1])
    config = json.loads(table.schema.field(1).metadata[b"config"])
    assert config["displayNameFromDS"] == "kitchen (temp)"
    assert legend("__auto", {"a": "b"}) == ""


def test_warnings_and_infos_become_notices_on_every_frame():
    notices = notices_from({"warnings": ["partial data"], "infos": ["note"], "other": 1})
    assert notices == [Notice("warning", "partial data"), Notice("info", "note")]
    for frame in frames_from_data("A", MATRIX, notices=notices):
        _, meta = decode(frame)
        assert json.loads(meta["meta"])["notices"] == [
            {"severity": "warning", "text": "partial data"},
            {"severity": "info", "text": "note"},
        ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"resultType": "streams", "result": []}, "unknown result type"),
        ({"resultType": "vector", "result": {}}, "not a list"),
        ({"resultType": "vector", "result": [{"metric": {}, "value": [1, 2]}]}, "not a string"),
        ({"resultType": "vector", "result": [{"metric": {}, "value": ["1", "2"]}]}, "not a num"),
        ({"resultType": "vector", "result": [{"metric": {}, "value": [1, "x"]}]}, "not a num"),
        ({"resultType": "vector", "result": [{"metric": {"a": 1}, "value": [1, "1"]}]}, "map"),
        (
            {
                "resultType": "vector",
                "result": [{"metric": {"a": "1"}, "value": [1, "1"]}] * 2,
            },
            "duplicate series",
        ),
        ({"resultType": "string", "result": [1, 2]}, "string result"),
        ("nope", "not an object"),
    ],
)
def test_malformed_results_are_rejected(data, message):
    with pytest.raises(ResultError, match=message):
        frames_from_data("A", data)


def test_exemplars_become_one_frame_with_a_column_per_label():
    data = [
        {
            "seriesLabels": {"__name__": "rpc_seconds", "job": "api"},
            "exemplars": [
                {"labels": {"trace_id": "b"}, "value": "0.5", "timestamp": 1700000001.5},
                {"labels": {"span_id": "s"}, "value": "2", "timestamp": 1700000000},
            ],
        }
    ]
    table, meta = decode(exemplar_frame("A", data))
    assert meta["name"] == "exemplar"
    assert json.loads(meta["meta"])["custom"] == {"resultType": "exemplar"}
    assert table.column_names == ["Time", "Value", "__name__", "job", "span_id", "trace_id"]
    assert table.column("Value").to_pylist() == [2.0, 0.5]  # sorted by time
    assert table.column("trace_id").to_pylist() == ["", "b"]
    assert exemplar_frame("A", []) is None
    with pytest.raises(ResultError):
        exemplar_frame("A", [{"seriesLabels": {}, "exemplars": [{"value": 1}]}])
