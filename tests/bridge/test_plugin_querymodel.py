"""Grafana's step, alignment and variable rules, as the plugin applies them to each query.

The expected values are worked out by hand from Grafana's rules (facts §A2): a plugin that got
them wrong would show different points than Grafana's built-in prometheus datasource.
"""

import pytest

from grafana_agent_bridge.plugin.querymodel import (
    QueryModelError,
    align_time,
    calculate_step_ms,
    format_interval,
    format_seconds,
    format_time_ms,
    go_duration,
    interpolate,
    parse_interval_ms,
    parse_query,
    round_interval,
)

MIN = 60_000
HOUR = 3_600_000
DAY = 24 * HOUR


@pytest.mark.parametrize(
    ("interval", "rounded"),
    [
        (1, 1),
        (10, 1),
        (11, 10),
        (900, 1000),
        (1500, 1000),
        (1501, 2000),
        (13_000, 15_000),
        (21_600, 20_000),
        (235_636, 300_000),
        (86_400_000, 43_200_000),
        (604_800_000, 86_400_000),
        (3_628_799_999, 2_592_000_000),
        (3_628_800_000, 31_536_000_000),
    ],
)
def test_round_interval_uses_grafanas_table(interval, rounded):
    assert round_interval(interval) == rounded


def step(range_ms, *, max_points=0, interval="", interval_ms=0, factor=0, scrape=""):
    return calculate_step_ms(
        range_ms=range_ms,
        max_data_points=max_points,
        query_interval=interval,
        interval_ms=interval_ms,
        interval_factor=factor,
        scrape_interval=scrape,
    )


def test_alert_rule_defaults_give_one_second_steps():
    # Alert queries: intervalMs=1000, maxDataPoints=43200; 10 minutes -> 600 points per series.
    assert step(10 * MIN, max_points=43200, interval_ms=1000) == 1000


def test_dashboard_step_is_rounded_and_bounded_by_scrape_interval():
    assert step(6 * HOUR, max_points=1000) == 20_000  # 21.6 s rounds to 20 s
    assert step(HOUR, max_points=1000) == 15_000  # 3.6 s < default minimum 15 s
    assert step(HOUR, max_points=1000, scrape="30s") == 30_000
    assert step(HOUR, max_points=1000, interval="1m") == 60_000  # the query's min step wins
    assert step(HOUR, max_points=1000, interval="1m", interval_ms=1000) == 60_000


def test_step_never_exceeds_11000_points_per_series():
    assert step(30 * DAY, max_points=100_000, interval_ms=1) == 300_000
    assert (30 * DAY) // step(30 * DAY, max_points=100_000, interval_ms=1) <= 11_000


def test_interval_factor_multiplies_the_step():
    assert step(HOUR, max_points=1000, factor=3) == 45_000


def test_rate_interval_as_min_step_gives_the_rate_interval():
    # max(step + scrape, 4 x scrape) with the 15 s default scrape interval.
    assert step(HOUR, max_points=1000, interval="$__rate_interval") == 60_000
    assert step(6 * HOUR, max_points=100, interval="$__rate_interval", scrape="1m") == 6 * MIN


def test_align_floors_to_a_multiple_of_the_step():
    assert align_time(1_700_000_007_123, 15_000) == 1_699_999_995_000
    assert align_time(1_700_000_010_000, 15_000) == 1_700_000_010_000
    # With a UTC offset the multiples are counted in local time.
    assert align_time(1_700_000_007_123, DAY, 3600) == 1_699_916_400_000
    assert (1_699_916_400_000 + 3_600_000) % DAY == 0


def test_go_and_grafana_duration_formats():
    assert format_interval(1000) == "1s"
    assert format_interval(90_000) == "1m"
    assert format_interval(500) == "500ms"
    assert format_interval(2 * DAY) == "2d"
    assert go_duration(60_000) == "1m0s"
    assert go_duration(3_723_500) == "1h2m3.5s"
    assert go_duration(250) == "250ms"
    assert format_seconds(15.0) == "15"
    assert format_seconds(0.001) == "0.001"
    assert format_seconds(60.0) == "60"
    assert format_time_ms(1_700_000_000_000) == "1700000000"
    assert format_time_ms(1_700_000_000_500) == "1700000000.5"
    assert format_time_ms(1_700_000_000_007) == "1700000000.007"


def test_parse_interval_accepts_grafana_forms():
    assert parse_interval_ms("15") == 15_000
    assert parse_interval_ms("1m30s") == 90_000
    assert parse_interval_ms(">10s") == 10_000
    assert parse_interval_ms("2d") == 2 * DAY
    assert parse_interval_ms("1m0s") == 60_000
    assert parse_interval_ms("250ms") == 250
    for bad in ("", "abc", "10x", "1m garbage"):
        with pytest.raises(QueryModelError):
            parse_interval_ms(bad)


def test_interpolation_replaces_every_time_variable():
    expr = (
        "rate(x[$__rate_interval]) + rate(x[${__interval}]) + $__interval_ms"
        " + $__range_s + $__range_ms + y[$__range] + $__rate_interval_ms"
    )
    out = interpolate(
        expr,
        step_ms=1000,
        query_interval_ms=1000,
        requested_min_step="",
        scrape_interval="",
        range_ms=600_000,
    )
    assert out == ("rate(x[1m0s]) + rate(x[1s]) + 1000 + 600 + 600000 + y[600s] + 60000")


def test_parse_query_defaults_to_range_and_builds_grafanas_calls():
    query = parse_query(
        ref_id="A",
        query_json=b'{"expr": "up", "intervalMs": 1000}',
        from_ms=1_700_000_000_250,
        to_ms=1_700_000_600_750,
        max_data_points=43200,
        interval_ms=1000,
        scrape_interval="",
    )
    assert (query.range, query.instant) == (True, False)
    (call,) = query.requests()
    assert call.endpoint == "api/v1/query_range"
    assert call.params == {
        "query": "up",
        "start": "1700000000",
        "end": "1700000600",
        "step": "1",
    }


def test_parse_query_instant_uses_the_unaligned_end_and_timeout():
    query = parse_query(
        ref_id="A",
        query_json=b'{"expr": "up", "instant": true, "range": false}',
        from_ms=1_700_000_000_000,
        to_ms=1_700_000_600_750,
        max_data_points=43200,
        interval_ms=1000,
        scrape_interval="",
    )
    (call,) = query.requests(timeout="30s")
    assert call.endpoint == "api/v1/query"
    assert call.params == {"query": "up", "time": "1700000600.75", "timeout": "30s"}


def test_parse_query_with_both_flags_makes_both_calls():
    query = parse_query(
        ref_id="A",
        query_json=b'{"expr": "up", "instant": true, "range": true}',
        from_ms=0,
        to_ms=60_000,
        max_data_points=100,
        interval_ms=1000,
        scrape_interval="",
    )
    assert [c.endpoint for c in query.requests()] == ["api/v1/query_range", "api/v1/query"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not valid"),
        (b"[1]", "must be an object"),
        (b"{}", "no expr"),
        (b'{"expr": "  "}', "no expr"),
        (b'{"expr": "up", "interval": "soon"}', "invalid interval"),
        (b'{"expr": "up", "intervalFactor": "x"}', "must be a number"),
    ],
)
def test_bad_query_models_are_rejected_with_a_reason(body, message):
    with pytest.raises(QueryModelError, match=message):
        parse_query(
            ref_id="A",
            query_json=body,
            from_ms=0,
            to_ms=60_000,
            max_data_points=100,
            interval_ms=1000,
            scrape_interval="",
        )


def test_browser_utc_offset_is_ignored_like_current_grafana():
    def start_for(model: bytes) -> str:
        query = parse_query(
            ref_id="A",
            query_json=model,
            from_ms=1_700_000_007_123,
            to_ms=1_700_086_407_123,
            max_data_points=2,
            interval_ms=1000,
            scrape_interval="",
        )
        assert query.step_ms == DAY
        return query.requests()[0].params["start"]

    utc_midnight = str(1_700_000_007_123 // DAY * DAY // 1000)
    assert start_for(b'{"expr": "up", "interval": "1d", "utcOffsetSec": 3600}') == utc_midnight
    shifted = start_for(b'{"expr": "up", "interval": "1d", "utcOffsetSecDoNotUse": 3600}')
    assert int(shifted) == int(utc_midnight) - 3600
