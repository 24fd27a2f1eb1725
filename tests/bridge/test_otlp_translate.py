"""OTLP → Prometheus translation rules; each test names the Prometheus 3.x source it follows
(``prometheus/otlptranslator`` for names, ``storage/remote/otlptranslator/
prometheusremotewrite`` for series)."""

from __future__ import annotations

import math

import pytest
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

from grafana_agent_bridge.otlp.naming import InvalidNameError, Kind, Namer
from grafana_agent_bridge.otlp.translate import Settings, Translation, Translator, format_float
from grafana_agent_bridge.storage import is_stale_nan
from tests.bridge.otlp_support import (
    DELTA,
    T0_NS,
    attrs,
    counter,
    gauge,
    histogram,
    request,
)

T0_MS = T0_NS // 1_000_000


def translate(req: object, **settings: object) -> Translation:
    return Translator(Settings(**settings)).translate(req)  # type: ignore[arg-type]


def by_name(t: Translation) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for s in t.series:
        labels = dict(s.labels)
        out.setdefault(labels["__name__"], []).append(labels)
    return out


def values(t: Translation, name: str, **labels: str) -> list[float]:
    for s in t.series:
        d = dict(s.labels)
        if d["__name__"] == name and all(d.get(k) == v for k, v in labels.items()):
            return s.values.tolist()
    raise KeyError(name)


# --- names: otlptranslator metric_namer.go (normalizeName, UnderscoreEscapingWithSuffixes) ---


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        # unitMap: s → seconds; dots and other invalid characters split the name into tokens
        (
            "http.server.request.duration",
            "s",
            Kind.HISTOGRAM,
            "http_server_request_duration_seconds",
        ),
        # _total appended to monotonic counters, an existing "total" token moved to the end
        ("requests.total.count", "", Kind.MONOTONIC_COUNTER, "requests_count_total"),
        # unit "1": no unit word; _ratio only for gauges
        ("cpu.utilization", "1", Kind.GAUGE, "cpu_utilization_ratio"),
        ("errors", "1", Kind.MONOTONIC_COUNTER, "errors_total"),
        # annotations in braces are no unit
        ("http.requests", "{request}", Kind.MONOTONIC_COUNTER, "http_requests_total"),
        # per-unit: By/s → bytes_per_second (perUnitMap s → second)
        ("net.io", "By/s", Kind.GAUGE, "net_io_bytes_per_second"),
        # a unit word already a token of the name is not repeated (addUnitTokens)
        ("memory.bytes", "By", Kind.GAUGE, "memory_bytes"),
        # an unknown unit is used as it is (cleaned)
        ("queue.len", "items", Kind.GAUGE, "queue_len_items"),
        # non-monotonic sums are gauges for naming: no _total
        ("active.conns", "", Kind.NON_MONOTONIC_COUNTER, "active_conns"),
        # a leading digit gets an underscore
        ("2xx.responses", "", Kind.GAUGE, "_2xx_responses"),
        # runs of invalid characters and underscores collapse (FieldsFunc on non [a-zA-Z0-9:])
        ("a__b..c", "", Kind.GAUGE, "a_b_c"),
        # colons are kept
        ("ns:metric", "ms", Kind.GAUGE, "ns:metric_milliseconds"),
    ],
)
def test_metric_names_with_suffixes(name: str, unit: str, kind: Kind, expected: str) -> None:
    assert Namer().metric(name, unit, kind) == expected


def test_metric_names_without_suffixes_keep_underscores() -> None:
    # buildCompliantMetricName, WithMetricSuffixes false: split on invalid chars but "_"
    namer = Namer("UnderscoreEscapingWithoutSuffixes")
    assert namer.metric("http.requests", "s", Kind.MONOTONIC_COUNTER) == "http_requests"
    assert namer.metric("a__b", "", Kind.GAUGE) == "a__b"


def test_utf8_strategies_keep_names() -> None:
    # buildMetricName (UTF8Allowed): the name as sent, suffixes trimmed and re-appended
    with_suffixes = Namer("NoUTF8EscapingWithSuffixes")
    assert (
        with_suffixes.metric("http.requests", "By/s", Kind.MONOTONIC_COUNTER)
        == "http.requests_bytes_per_second_total"
    )
    assert with_suffixes.metric("cpu.util_ratio", "1", Kind.GAUGE) == "cpu.util_ratio"
    assert with_suffixes.label("http.method") == "http.method"
    plain = Namer("NoTranslation")
    assert plain.metric("http.requests", "s", Kind.MONOTONIC_COUNTER) == "http.requests"


def test_names_that_escape_to_nothing_are_errors() -> None:
    # buildCompliantMetricName: empty or underscore-only results are errors
    with pytest.raises(InvalidNameError):
        Namer().metric("...", "", Kind.GAUGE)
    with pytest.raises(InvalidNameError):
        Namer().label("...")


@pytest.mark.parametrize(
    ("attribute", "label"),
    [
        ("http.method", "http_method"),  # invalid characters to "_"
        ("123abc", "key_123abc"),  # leading digit: key_ prefix
        ("a..b__c", "a_b_c"),  # runs collapsed (sanitizeLabelName)
        ("__reserved.x__", "__reserved_x__"),  # reserved names keep their outer "__"
        ("_private", "_private"),  # UnderscoreLabelSanitization is off by default
        ("Grüße", "Gr_e"),  # non-ASCII letters are invalid
    ],
)
def test_label_names(attribute: str, label: str) -> None:
    # otlptranslator label_namer.go LabelNamer.Build
    assert Namer().label(attribute) == label


# --- series: prometheusremotewrite ---------------------------------------------------------


def test_job_instance_and_target_info() -> None:
    # helper.go createAttributes: job = service.namespace/service.name, instance =
    # service.instance.id; addResourceTargetInfo: the other resource attributes
    t = translate(
        request(
            [gauge("g", 1)],
            resource={
                "service.name": "api",
                "service.namespace": "shop",
                "service.instance.id": "i-1",
                "host.name": "h1",
                "os.type": "linux",
            },
        )
    )
    names = by_name(t)
    assert names["g"] == [{"__name__": "g", "job": "shop/api", "instance": "i-1"}]
    assert names["target_info"] == [
        {
            "__name__": "target_info",
            "job": "shop/api",
            "instance": "i-1",
            "host_name": "h1",
            "os_type": "linux",
        }
    ]
    assert values(t, "target_info") == [1.0]


def test_target_info_left_out_without_other_attributes_or_identity() -> None:
    # addResourceTargetInfo: nothing but job/instance → none; no job nor instance → none
    assert "target_info" not in by_name(translate(request([gauge("g", 1)])))
    t = translate(request([gauge("g", 1)], resource={"host.name": "h"}))
    assert "target_info" not in by_name(t)
    assert by_name(t)["g"] == [{"__name__": "g"}]


def test_target_info_every_half_lookback_between_earliest_and_latest() -> None:
    # addResourceTargetInfo: samples from the earliest to the latest point every
    # LookbackDelta/2, and one at the latest
    minute = 60 * 10**9
    t = translate(
        request(
            [gauge("g", 1, T0_NS), gauge("h", 1, T0_NS + 6 * minute)],
            resource={"service.name": "s", "host.name": "h"},
        )
    )
    (info,) = [s for s in t.series if dict(s.labels)["__name__"] == "target_info"]
    step = 150_000
    assert info.timestamps.tolist() == [T0_MS, T0_MS + step, T0_MS + 2 * step, T0_MS + 360_000]


def test_keep_identifying_resource_attributes() -> None:
    t = translate(
        request([gauge("g", 1)], resource={"service.name": "s", "host.name": "h"}),
        keep_identifying_resource_attributes=True,
    )
    assert by_name(t)["target_info"][0]["service_name"] == "s"


def test_promoted_resource_attributes() -> None:
    # PromoteResourceAttributes: copied onto every series unless a point attribute has the name
    resource = {"service.name": "s", "host.name": "h", "cloud.region": "eu"}
    t = translate(
        request([gauge("g", 1), gauge("k", 1, cloud_region="point")], resource=resource),
        promote_resource_attributes=frozenset({"host.name", "cloud.region"}),
    )
    assert by_name(t)["g"][0] == {
        "__name__": "g",
        "job": "s",
        "host_name": "h",
        "cloud_region": "eu",
    }
    assert by_name(t)["k"][0]["cloud_region"] == "point"
    everything = translate(
        request([gauge("g", 1)], resource=resource),
        promote_all_resource_attributes=True,
        ignore_resource_attributes=frozenset({"cloud.region"}),
    )
    assert by_name(everything)["g"][0] == {
        "__name__": "g",
        "job": "s",
        "host_name": "h",
        "service_name": "s",
    }


def test_scope_labels_only_when_promoted() -> None:
    # Settings.PromoteScopeMetadata (Prometheus's otlp.promote_scope_metadata, default false)
    req = request([gauge("g", 1)], scope="io.lib", scope_version="2.1")
    req.resource_metrics[0].scope_metrics[0].scope.attributes.extend(attrs(team="x"))
    assert set(by_name(translate(req))["g"][0]) == {"__name__", "job"}
    labels = by_name(translate(req, promote_scope_metadata=True))["g"][0]
    assert labels["otel_scope_name"] == "io.lib"
    assert labels["otel_scope_version"] == "2.1"
    assert labels["otel_scope_team"] == "x"
    assert "otel_scope_schema_url" not in labels  # empty values are no labels


def test_colliding_attribute_names_are_joined_in_key_order() -> None:
    # createAttributes: attributes sorted by key, values of names that sanitise alike joined
    metric = gauge("g", 1)
    metric.gauge.data_points[0].attributes.extend(attrs(**{"a.b": "2", "a_b": "1"}))
    assert by_name(translate(request([metric])))["g"][0]["a_b"] == "2;1"


def test_service_attributes_override_point_labels() -> None:
    # createAttributes: job and instance are set after the point's attributes
    t = translate(request([gauge("g", 1, job="mine")]))
    assert by_name(t)["g"][0]["job"] == "svc"


def test_attribute_values_as_pdata_strings() -> None:
    # pcommon Value.AsString: ints in decimal, bools lower case, doubles positional
    t = translate(request([gauge("g", 1, n=3, ok=True, x=0.25)]))
    labels = by_name(t)["g"][0]
    assert (labels["n"], labels["ok"], labels["x"]) == ("3", "true", "0.25")


def test_counters_and_gauges() -> None:
    # metrics_to_prw.go: monotonic cumulative sums → counters, non-monotonic → gauges
    t = translate(
        request(
            [
                counter("hits", 5, unit="1"),
                counter("queue", 3, monotonic=False),
                gauge("temp", 21.5, unit="Cel"),
            ]
        )
    )
    assert values(t, "hits_total") == [5.0]
    assert values(t, "queue") == [3.0]
    assert values(t, "temp_celsius") == [21.5]
    types = {md.metric_family_name: md.type for md in t.metadata}
    assert types == {"hits_total": "counter", "queue": "gauge", "temp_celsius": "gauge"}


def test_int_values_and_nanosecond_times() -> None:
    # number_data_points.go: as_int → float; convertTimeStamp: ns / 1e6
    metric = m.Metric(name="g")
    metric.gauge.data_points.add(as_int=7, time_unix_nano=T0_NS + 1_999_999)
    (s,) = translate(request([metric])).series
    assert s.values.tolist() == [7.0] and s.timestamps.tolist() == [T0_MS + 1]


def test_histogram_as_classic_buckets() -> None:
    # helper.go addHistogramDataPoints: cumulative _bucket{le}, +Inf = count, _count, _sum
    t = translate(request([histogram("lat", [0.5, 1, 2.5], [1, 2, 3, 4], 9.5, unit="s")]))
    assert values(t, "lat_seconds_bucket", le="0.5") == [1.0]
    assert values(t, "lat_seconds_bucket", le="1") == [3.0]
    assert values(t, "lat_seconds_bucket", le="2.5") == [6.0]
    assert values(t, "lat_seconds_bucket", le="+Inf") == [10.0]
    assert values(t, "lat_seconds_count") == [10.0]
    assert values(t, "lat_seconds_sum") == [9.5]


def test_histogram_without_sum_has_no_sum_series() -> None:
    # addHistogramDataPoints: "If the sum is unset, ... the _sum metric point should be omitted"
    t = translate(request([histogram("lat", [1], [1, 1], None)]))
    assert "lat_sum" not in by_name(t) and "lat_count" in by_name(t)


def test_summary() -> None:
    # addSummaryDataPoints: _sum, _count, and {quantile}
    metric = m.Metric(name="rpc.latency", unit="ms")
    point = metric.summary.data_points.add(time_unix_nano=T0_NS, count=4, sum=10)
    point.quantile_values.add(quantile=0.5, value=2)
    point.quantile_values.add(quantile=0.99, value=5)
    t = translate(request([metric]))
    assert values(t, "rpc_latency_milliseconds", quantile="0.5") == [2.0]
    assert values(t, "rpc_latency_milliseconds", quantile="0.99") == [5.0]
    assert values(t, "rpc_latency_milliseconds_count") == [4.0]
    assert values(t, "rpc_latency_milliseconds_sum") == [10.0]
    assert t.metadata[0].type == "summary"


def test_no_recorded_value_is_a_stale_marker() -> None:
    # NoRecordedValue flag → value.StaleNaN, on every series of the point
    g = gauge("g", 1)
    g.gauge.data_points[0].flags = m.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    h = histogram("h", [1], [1, 1], 2)
    h.histogram.data_points[0].flags = m.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    t = translate(request([g, h]))
    assert all(is_stale_nan(v) for s in t.series for v in s.values.tolist())
    assert len(t.series) == 5


def test_delta_temporality_refused_unless_allowed() -> None:
    # metrics_to_prw.go FromMetrics: "invalid temporality and type combination" unless
    # AllowDeltaTemporality
    req = request([counter("d", 2, temporality=DELTA), gauge("g", 1)])
    t = translate(req)
    assert "d_total" not in by_name(t) and "g" in by_name(t)
    assert t.rejected_points == 1
    assert "invalid temporality" in t.errors[0] and "otlp.allow_delta_temporality" in t.errors[0]
    allowed = translate(req, allow_delta_temporality=True)
    assert values(allowed, "d_total") == [2.0] and allowed.rejected_points == 0


def test_unspecified_temporality_refused() -> None:
    t = translate(request([counter("c", 1, temporality=0)]))
    assert t.rejected_points == 1 and not t.series


def test_exponential_histograms_become_native_histogram_samples() -> None:
    metric = m.Metric(name="eh")
    metric.exponential_histogram.aggregation_temporality = m.AGGREGATION_TEMPORALITY_CUMULATIVE
    metric.exponential_histogram.data_points.add(time_unix_nano=T0_NS, count=1, scale=2)
    metric.exponential_histogram.data_points.add(
        time_unix_nano=T0_NS + 1_000_000_000, count=3, scale=2, zero_count=3
    )
    t = translate(request([metric, gauge("g", 1)]))
    assert t.rejected_points == 0
    (hist_series,) = [s for s in t.series if dict(s.labels)["__name__"] == "eh"]
    assert hist_series.timestamps.tolist() == [T0_NS // 1_000_000, T0_NS // 1_000_000 + 1000]
    assert hist_series.histograms is not None
    assert [h.count for h in hist_series.histograms if h is not None] == [1.0, 3.0]
    assert hist_series.histograms[1] is not None and hist_series.histograms[1].schema == 2
    (g,) = [s for s in t.series if dict(s.labels)["__name__"] == "g"]
    assert g.histograms is None and g.values.tolist() == [1.0]


def test_empty_metric_reported_not_counted() -> None:
    # FromMetrics: "empty data points. %s is dropped"
    t = translate(request([m.Metric(name="nothing"), gauge("g", 1)]))
    assert t.rejected_points == 0 and any("nothing" in e for e in t.errors)


def test_exemplars_of_sums_and_histogram_buckets() -> None:
    # getPromExemplars: trace_id/span_id hex labels; addExemplars: first bucket with le >= value
    c = counter("c", 1)
    ex = c.sum.data_points[0].exemplars.add(
        as_double=1, time_unix_nano=T0_NS, trace_id=bytes(range(16)), span_id=bytes(range(8))
    )
    ex.filtered_attributes.extend(attrs(user="u1"))
    h = histogram("h", [1, 5], [0, 1, 0], 3)
    h.histogram.data_points[0].exemplars.add(as_double=3, time_unix_nano=T0_NS)
    h.histogram.data_points[0].exemplars.add(as_int=10, time_unix_nano=T0_NS + 10**6)
    t = translate(request([c, h]))
    ex_of = {tuple(sorted(dict(s.labels).items())): s.exemplars for s in t.series}
    (counter_ex,) = next(v for k, v in ex_of.items() if ("__name__", "c_total") in k)
    assert dict(counter_ex.labels) == {
        "trace_id": "000102030405060708090a0b0c0d0e0f",
        "span_id": "0001020304050607",
        "user": "u1",
    }
    five = next(v for k, v in ex_of.items() if ("le", "5") in k)
    inf = next(v for k, v in ex_of.items() if ("le", "+Inf") in k)
    assert [e.value for e in five] == [3.0] and [e.value for e in inf] == [10.0]


def test_exemplar_attributes_dropped_past_128_characters() -> None:
    # getPromExemplars: filtered attributes only if the exemplar stays within maxExemplarRunes
    c = counter("c", 1)
    ex = c.sum.data_points[0].exemplars.add(as_double=1, time_unix_nano=T0_NS, trace_id=b"\1" * 16)
    ex.filtered_attributes.extend(attrs(big="x" * 100))
    (e,) = translate(request([c])).series[0].exemplars
    assert [n for n, _ in e.labels] == ["trace_id"]


def test_sample_limit_refuses_the_rest() -> None:
    t = translate(request([gauge(f"g{i}", i) for i in range(5)]), max_samples=3)
    assert len(t.series) == 3 and t.rejected_points == 2
    assert "ingest.max_samples_per_request" in t.errors[0]


def test_duplicate_timestamp_with_other_value_refused() -> None:
    t = translate(request([gauge("g", 1), gauge("g", 2)]))
    assert values(t, "g") == [1.0] and t.rejected_points == 1


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.5, "0.5"),
        (1e-5, "0.00001"),
        (1e21, "1000000000000000000000"),
        (math.inf, "+Inf"),
        (-2.5, "-2.5"),
    ],
)
def test_le_and_quantile_format(value: float, text: str) -> None:
    # strconv.FormatFloat(v, 'f', -1, 64)
    assert format_float(value) == text


def test_unconvertible_exponential_histogram_refused_for_its_reason() -> None:
    # exponentialToNativeHistogram: "Scale must be >= -4"
    metric = m.Metric(name="eh")
    metric.exponential_histogram.aggregation_temporality = m.AGGREGATION_TEMPORALITY_CUMULATIVE
    metric.exponential_histogram.data_points.add(time_unix_nano=T0_NS, count=1, scale=-5)
    t = translate(request([metric]))
    assert t.rejected_points == 1 and "scale must be >= -4" in t.errors[0]
