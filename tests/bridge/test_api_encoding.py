"""The Prometheus API's encodings that Grafana's parser depends on, and its parameter syntax."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from grafana_agent_bridge.api import encoding
from grafana_agent_bridge.api.params import (
    Params,
    parse_duration_ms,
    parse_time,
    unescape_label_name,
)
from grafana_agent_bridge.storage import STALE_NAN, Exemplar, SeriesData


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (2.0, "2"),
        (0.1, "0.1"),
        (-1.5, "-1.5"),
        (0.0, "0"),
        (-0.0, "-0"),
        (1e-6, "0.000001"),
        (1.5e-6, "0.0000015"),
        (1e-7, "1e-07"),
        (-2.5e-9, "-2.5e-09"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.2345e22, "1.2345e+22"),
        (123456789.123, "123456789.123"),
        (2.0**53, "9007199254740992"),
        (1 / 3, "0.3333333333333333"),
        (math.nan, "NaN"),
        (STALE_NAN, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_values_follow_go_append_float(value: float, text: str) -> None:
    assert encoding.format_value(value) == text


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (4000, "4"),
        (1500, "1.5"),
        (1_700_000_000_123, "1700000000.123"),
        (10, "0.01"),
        (-1500, "-1.5"),
        (-10, "-0.01"),
        (0, "0"),
    ],
)
def test_timestamps_are_seconds_with_at_most_three_decimals(ms: int, text: str) -> None:
    assert encoding.format_timestamp(ms) == text
    assert round(float(text) * 1000) == ms


def test_result_bodies_are_valid_json_with_string_values() -> None:
    vec = encoding.result_json("vector", [((("__name__", "up"), ("job", "a")), 4000, 1.0)])
    assert json.loads(vec) == {
        "resultType": "vector",
        "result": [{"metric": {"__name__": "up", "job": "a"}, "value": [4, "1"]}],
    }
    series = SeriesData(
        (("a", 'q"uote\\'),), np.array([1000, 2500], np.int64), np.array([math.inf, 0.5])
    )
    mat = json.loads(encoding.result_json("matrix", [series]))
    assert mat["result"] == [{"metric": {"a": 'q"uote\\'}, "values": [[1, "+Inf"], [2.5, "0.5"]]}]
    assert json.loads(encoding.result_json("scalar", (4000, 2.0))) == {
        "resultType": "scalar",
        "result": [4, "2"],
    }
    assert json.loads(encoding.result_json("string", (4000, 'a"b')))["result"] == [4, 'a"b']
    ex = json.loads(
        encoding.exemplars_json([((("__name__", "x"),), [Exemplar((("t", "1"),), 6.0, 1234)])])
    )
    assert ex == [
        {
            "seriesLabels": {"__name__": "x"},
            "exemplars": [{"labels": {"t": "1"}, "value": "6", "timestamp": 1.234}],
        }
    ]


def test_envelope_omits_empty_warnings_and_keeps_given_ones() -> None:
    assert json.loads(encoding.success([])) == {"status": "success", "data": []}
    body = json.loads(encoding.success([], warnings=["w"], infos=["i"]))
    assert body["warnings"] == ["w"] and body["infos"] == ["i"]
    err = json.loads(encoding.error("bad_data", "boom"))
    assert err == {"status": "error", "errorType": "bad_data", "error": "boom"}


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("4", 4000),
        ("1700000000.5", 1_700_000_000_500),
        ("1700000000.1234", 1_700_000_000_123),
        ("1700000000.9996", 1_700_000_001_000),
        ("-1.5", -1500),
        ("1700000000000", 1_700_000_000_000_000),  # Grafana's exemplar probe sends ms
        ("2023-11-14T22:13:20Z", 1_700_000_000_000),
        ("2023-11-14T22:13:20.25Z", 1_700_000_000_250),
        ("2023-11-15T00:13:20+02:00", 1_700_000_000_000),
    ],
)
def test_time_parsing(text: str, ms: int) -> None:
    assert parse_time(text) == ms


@pytest.mark.parametrize("text", ["", "abc", "NaN", "Inf", "2023-13-01T00:00:00Z"])
def test_bad_times_are_rejected_with_prometheus_wording(text: str) -> None:
    with pytest.raises(ValueError, match=f'cannot parse "{text}" to a valid timestamp'):
        parse_time(text)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("15", 15000.0),
        ("0.5", 500.0),
        ("1m", 60000.0),
        ("1h30m", 5_400_000.0),
        ("100ms", 100.0),
        ("1d", 86_400_000.0),
        ("0", 0.0),
    ],
)
def test_duration_parsing(text: str, ms: float) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "1x", "m", "1e400"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="cannot parse"):
        parse_duration_ms(text)


def test_params_merge_body_and_query_and_repeat_match() -> None:
    p = Params("match[]=b&time=2&x=", "match[]=a&query=up")
    assert p.getall("match[]") == ["a", "b"]
    assert p.get("query") == "up" and p.get("time") == "2"
    assert not p.has("x") and not p.has("missing")


@pytest.mark.parametrize(
    ("query", "name", "value"),
    [
        ("query=rate%28up%5B5m%5D%29", "query", "rate(up[5m])"),
        ("query=sum+by+%28job%29+%28up%29", "query", "sum by (job) (up)"),  # + is a space
        ("query=a%2Bb", "query", "a+b"),
        ("query=%7Bjob%3D%22%C3%A9%22%7D", "query", '{job="\u00e9"}'),  # UTF-8 escapes
        ("query=%FF", "query", "\ufffd"),  # bad UTF-8 replaced (as parse_qs did), not an error
        ("query=50%", "query", "50%"),  # a bad escape is left as it is
        ("a=1&&query=x=y", "query", "x=y"),  # empty pieces skipped, the first = splits
        ("match%5B%5D=up", "match[]", "up"),
        ("query", "query", ""),  # a name without = has a blank value
    ],
)
def test_params_decode_form_escapes_like_url_forms(query: str, name: str, value: str) -> None:
    assert Params(query).getall(name) == [value]


@pytest.mark.parametrize(
    ("escaped", "name"),
    [
        ("job", "job"),
        ("U__my_2e_label", "my.label"),
        ("U__a__b", "a_b"),
        ("U__smile_1f600_", "smile\U0001f600"),
        ("U__bad_zz_", "U__bad_zz_"),
        ("U__unterminated_41", "U__unterminated_41"),
    ],
)
def test_utf8_label_name_unescaping(escaped: str, name: str) -> None:
    assert unescape_label_name(escaped) == name


def test_matrix_fast_path_formats_exactly_like_format_value() -> None:
    rng = np.random.default_rng(7)
    tricky = [
        0.0,
        -0.0,
        1.0,
        1e16,
        1e-5,
        1e-7,
        1e21,
        1e20,
        math.nan,
        math.inf,
        -math.inf,
        123.0,
        -5.0,
        2.5e-300,
        1.7976931348623157e308,
        0.1,
        1 / 3,
        STALE_NAN,
    ]
    values = tricky + list(rng.uniform(-1, 1, 5000) * 10.0 ** rng.integers(-320, 300, 5000))
    data = json.loads(
        encoding.matrix_json(
            [SeriesData((), np.arange(len(values), dtype=np.int64), np.array(values))]
        )
    )
    assert [v for _, v in data[0]["values"]] == [encoding.format_value(x) for x in values]


@pytest.mark.parametrize(
    "values",
    [
        [0.0, 1.0, -5.0, 123456789.0, 2.0**53 - 1, -(2.0**53 - 1)],  # the integer path
        [3.0, -0.0, 7.0],  # Go writes "-0"
        [1.0, 2.0**53, 1e16, 1e21, 2.0**70],  # whole, beyond exact: shortest digits
        [1.0, 2.0, math.nan, math.inf],
        [4.0, 4.5],
    ],
)
def test_whole_number_series_format_exactly_like_format_value(values: list[float]) -> None:
    # Byte and packet counts are whole numbers; they are written on a faster path.
    data = json.loads(
        encoding.matrix_json(
            [SeriesData((), np.arange(len(values), dtype=np.int64), np.array(values))]
        )
    )
    assert [v for _, v in data[0]["values"]] == [encoding.format_value(x) for x in values]


def test_matrix_pairs_are_each_timestamp_and_value_text_whatever_the_steps() -> None:
    """Series of one answer share their steps' texts: series with other steps (gaps, times
    off whole seconds, before 1970, none at all) must still get their own, pair by pair."""
    rng = np.random.default_rng(5)
    grid = np.arange(-3_000, 60_000, 1_500, dtype=np.int64)
    series = []
    for i in range(40):
        keep = rng.random(len(grid)) < (1.0 if i % 3 == 0 else 0.6)
        ts = grid[keep] if i % 4 else grid[keep] // 1000 * 1000
        vals = rng.uniform(-1e3, 1e3, len(ts)).round(int(rng.integers(0, 6)))
        series.append(SeriesData((("i", str(i)),), ts, vals))
    series.append(SeriesData((("i", "none"),), np.zeros(0, dtype=np.int64), np.zeros(0)))
    text = encoding.matrix_json(series)
    for s, got in zip(series, json.loads(text), strict=True):
        want = ",".join(
            f'[{encoding.format_timestamp(t)},"{encoding.format_value(v)}"]'
            for t, v in zip(s.timestamps.tolist(), s.values.tolist())
        )
        start = text.index(json.dumps(dict(s.labels), separators=(",", ":")))
        assert text[start:].split('"values":[', 1)[1].startswith(want + "]")
        assert len(got["values"]) == len(s.timestamps)
