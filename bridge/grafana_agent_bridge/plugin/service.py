"""The ``pluginv2`` calls Grafana makes on a datasource plugin, and their gRPC wiring.

QueryData answers panels and alert rules, CheckHealth the "Save & test" button, CallResource the
query editor's label and metric lookups, CollectMetrics Grafana's scrape of the plugin. Each call
reads the datasource settings Grafana sends with it, asks the configured Prometheus-compatible
server, and translates the answer. A failure is reported inside the answer (a per-refId error
with an HTTP-like status, an ERROR health, a resource status code) and never as a broken gRPC
call, because one failed refId must not hide the others from Grafana.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from grafana_agent_bridge.metrics import Registry
from grafana_agent_bridge.plugin import pluginv2_pb2 as pb
from grafana_agent_bridge.plugin.frames import (
    ResultError,
    exemplar_frame,
    frames_from_data,
    notices_from,
)
from grafana_agent_bridge.plugin.querymodel import (
    ParsedQuery,
    QueryModelError,
    format_seconds,
    parse_query,
)
from grafana_agent_bridge.plugin.upstream import (
    DatasourceSettings,
    Reply,
    SettingsError,
    Upstream,
    UpstreamError,
)

log = logging.getLogger(__name__)

HEALTH_OK_MESSAGE = "Successfully queried the Prometheus API."
HEALTH_ERROR_SUFFIX = " - There was an error returned querying the Prometheus API."
RESOURCE_PREFIX = "api/v1/"
QUERY_CONCURRENCY = 4
# Headers of alert evaluations worth passing to the server, so its logs can name the rule.
_FORWARDED_HEADERS = ("fromalert", "x-rule-", "x-grafana-org-id")


class PluginMetrics:
    """The plugin's own metrics, in the registry the plugin process made for them: Grafana
    collects that registry through CollectMetrics and serves it at /metrics/plugins/<id>."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.queries = registry.counter(
            "grafana_agent_bridge_plugin_queries_total",
            "Queries (refIds) answered, by outcome: ok, bad_query, upstream_error, "
            "internal_error.",
            ("outcome",),
        )
        self.query_seconds = registry.histogram(
            "grafana_agent_bridge_plugin_query_duration_seconds",
            "Time to answer one refId, the server's time included.",
        )
        self.health_checks = registry.counter(
            "grafana_agent_bridge_plugin_health_checks_total",
            "Health checks, by result.",
            ("status",),
        )
        self.resource_calls = registry.counter(
            "grafana_agent_bridge_plugin_resource_calls_total",
            "Metadata (resource) calls, by HTTP status returned to Grafana.",
            ("code",),
        )


class QueryError(Exception):
    """One refId failed: the text Grafana shows, the HTTP-like status and who is at fault."""

    def __init__(self, message: str, *, status: int, source: str = "downstream") -> None:
        super().__init__(message)
        self.status = status
        self.source = source


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Alerting headers (``FromAlert``, ``X-Rule-*``; ``http_``-prefixed or not) to pass on."""
    result: dict[str, str] = {}
    for key, value in headers.items():
        name = key[len("http_") :] if key.lower().startswith("http_") else key
        if name.lower().startswith(_FORWARDED_HEADERS):
            result[name] = value
    return result


def is_from_alert(headers: Mapping[str, str]) -> bool:
    """Whether Grafana's alerting sent the request (header ``FromAlert``, any case)."""
    return any(
        k.lower() in ("fromalert", "http_fromalert") and v.lower() == "true"
        for k, v in headers.items()
    )


def error_text(reply: Reply) -> str:
    """Grafana's rendering of a Prometheus error envelope: ``<errorType>: <error>``."""
    envelope = reply.envelope()
    if envelope is not None and envelope.get("status") == "error":
        return f"{envelope.get('errorType', '')}: {envelope.get('error', '')}"
    snippet = reply.body[:200].decode("utf-8", "replace")
    return f"unexpected answer from the server (HTTP {reply.status}): {snippet}"


def run_query(
    upstream: Upstream,
    query: ParsedQuery,
    headers: Mapping[str, str],
    *,
    from_alert: bool = False,
) -> list[bytes]:
    """Frames for one refId: the range and/or instant call, converted, plus exemplars."""
    frames: list[bytes] = []
    timeout = upstream.settings.query_timeout or None
    for call in query.requests(timeout=timeout):
        try:
            reply = upstream.call(call.endpoint, call.params, extra_headers=headers)
        except UpstreamError as exc:
            raise QueryError(str(exc), status=exc.status) from exc
        envelope = reply.envelope()
        if reply.status != 200 or envelope is None or envelope.get("status") != "success":
            status = reply.status if reply.status >= 400 else 502
            raise QueryError(error_text(reply), status=status)
        ranged = call.endpoint.endswith("query_range")
        executed = f"Expr: {query.expr}"
        if ranged:
            executed += f"\nStep: {format_seconds(query.step_ms / 1000)}s"
        try:
            frames += frames_from_data(
                query.ref_id,
                envelope.get("data"),
                legend_format=query.legend_format,
                step_ms=query.step_ms if ranged else 0,
                executed=executed,
                notices=notices_from(envelope),
            )
        except ResultError as exc:
            raise QueryError(f"cannot read the server's result: {exc}", status=502) from exc
    if query.exemplar and not from_alert:  # alert rules never ask for exemplars
        exemplars = fetch_exemplars(upstream, query, headers)
        if exemplars is not None:
            frames.append(exemplars)
    return frames


def fetch_exemplars(
    upstream: Upstream, query: ParsedQuery, headers: Mapping[str, str]
) -> bytes | None:
    """The exemplar frame, or None; as in Grafana, a failure here is logged, never shown."""
    call = query.exemplar_request()
    try:
        reply = upstream.call(call.endpoint, call.params, extra_headers=headers)
        envelope = reply.envelope()
        if reply.status != 200 or envelope is None or envelope.get("status") != "success":
            log.warning("exemplars for %s: %s", query.ref_id, error_text(reply))
            return None
        return exemplar_frame(query.ref_id, envelope.get("data"))
    except (UpstreamError, ResultError) as exc:
        log.warning("exemplars for %s: %s", query.ref_id, exc)
        return None


def query_data(request: pb.QueryDataRequest, metrics: PluginMetrics) -> pb.QueryDataResponse:
    """Answer every refId of a QueryData call, each with frames or its own error."""
    response = pb.QueryDataResponse()
    headers = dict(request.headers)
    extra_headers = forwarded_headers(headers)
    from_alert = is_from_alert(headers)
    settings: DatasourceSettings | None = None
    settings_error = ""
    try:
        settings = DatasourceSettings.from_proto(request.pluginContext.dataSourceInstanceSettings)
    except SettingsError as exc:
        settings_error = str(exc)
    queries = list(request.queries)

    def answer(query: pb.DataQuery) -> pb.DataResponse:
        return answer_query(
            query, settings, settings_error, extra_headers, from_alert, metrics=metrics
        )

    if len(queries) == 1:
        answers = [answer(queries[0])]
    else:  # a dashboard row sends many refIds; Grafana runs them concurrently too
        with ThreadPoolExecutor(max_workers=min(len(queries), QUERY_CONCURRENCY)) as pool:
            answers = list(pool.map(answer, queries))
    for query, out in zip(queries, answers, strict=True):
        response.responses[query.refId].CopyFrom(out)
    log.debug("QueryData: %d queries, alert=%s", len(queries), from_alert)
    return response


def answer_query(
    query: pb.DataQuery,
    settings: DatasourceSettings | None,
    settings_error: str,
    extra_headers: Mapping[str, str],
    from_alert: bool,
    *,
    metrics: PluginMetrics,
) -> pb.DataResponse:
    """One refId's answer: its frames, or its error with an HTTP-like status."""
    out = pb.DataResponse()
    started = time.monotonic()
    outcome = "ok"
    try:
        if settings is None:
            raise QueryError(settings_error, status=400)
        parsed = parse_query(
            ref_id=query.refId,
            query_json=query.json,
            from_ms=query.timeRange.fromEpochMS,
            to_ms=query.timeRange.toEpochMS,
            max_data_points=query.maxDataPoints,
            interval_ms=query.intervalMS,
            scrape_interval=settings.scrape_interval,
        )
        frames = run_query(Upstream(settings), parsed, extra_headers, from_alert=from_alert)
        out.frames.extend(frames)
        out.status = 200
    except QueryModelError as exc:
        outcome = "bad_query"
        out.error, out.status, out.errorSource = f"bad query: {exc}", 400, "downstream"
    except QueryError as exc:
        outcome = "bad_query" if 400 <= exc.status < 500 else "upstream_error"
        out.error, out.status, out.errorSource = str(exc), exc.status, exc.source
    except Exception as exc:  # a bug here must not fail the other refIds
        outcome = "internal_error"
        log.exception("query %s failed", query.refId)
        out.error, out.status, out.errorSource = f"internal error: {exc}", 500, "plugin"
    metrics.queries.inc(1, outcome)
    metrics.query_seconds.observe(time.monotonic() - started)
    return out


def check_health(request: pb.CheckHealthRequest, metrics: PluginMetrics) -> pb.CheckHealthResponse:
    """Grafana's health check, counted."""
    reply = _check_health_of(request)
    metrics.health_checks.inc(1, pb.CheckHealthResponse.HealthStatus.Name(reply.status).lower())
    return reply


def _check_health_of(request: pb.CheckHealthRequest) -> pb.CheckHealthResponse:
    """Grafana's health check: instant ``1+1`` at time 4 must give HTTP 200 and a success."""
    error = pb.CheckHealthResponse.ERROR
    try:
        settings = DatasourceSettings.from_proto(request.pluginContext.dataSourceInstanceSettings)
    except SettingsError as exc:
        return pb.CheckHealthResponse(status=error, message=str(exc) + HEALTH_ERROR_SUFFIX)
    upstream = Upstream(settings)
    try:
        reply = upstream.call("api/v1/query", {"query": "1+1", "time": "4"})
    except UpstreamError as exc:
        return pb.CheckHealthResponse(status=error, message=str(exc) + HEALTH_ERROR_SUFFIX)
    envelope = reply.envelope()
    if reply.status != 200:
        message = f"bad response with status {reply.status}"
        return pb.CheckHealthResponse(status=error, message=message + HEALTH_ERROR_SUFFIX)
    if envelope is None or envelope.get("status") == "error":
        return pb.CheckHealthResponse(
            status=error, message=error_text(reply) + HEALTH_ERROR_SUFFIX
        )
    details = json.dumps(_build_info_details(upstream)).encode()
    return pb.CheckHealthResponse(
        status=pb.CheckHealthResponse.OK, message=HEALTH_OK_MESSAGE, jsonDetails=details
    )


def _build_info_details(upstream: Upstream) -> dict[str, Any]:
    """Grafana's heuristics: a buildinfo with ``features`` means Mimir, otherwise Prometheus."""
    try:
        reply = upstream.call("api/v1/status/buildinfo", {}, method="GET")
    except UpstreamError:
        return {}
    envelope = reply.envelope() if reply.status == 200 else None
    data = envelope.get("data") if envelope else None
    if not isinstance(data, dict):
        return {}
    features = data.get("features")
    if features:
        return {"application": "Mimir", "features": {"rulerApiEnabled": True}}
    return {"application": "Prometheus", "features": {"rulerApiEnabled": False}}


def _json_error(status: int, error_type: str, message: str) -> pb.CallResourceResponse:
    body = json.dumps({"status": "error", "errorType": error_type, "error": message}).encode()
    return pb.CallResourceResponse(
        code=status,
        headers={"Content-Type": pb.StringList(values=["application/json"])},
        body=body,
    )


def call_resource(
    request: pb.CallResourceRequest, metrics: PluginMetrics
) -> pb.CallResourceResponse:
    """One metadata call, counted."""
    reply = _call_resource_of(request)
    metrics.resource_calls.inc(1, str(reply.code))
    return reply


def collect_metrics(
    _request: pb.CollectMetricsRequest, metrics: PluginMetrics
) -> pb.CollectMetricsResponse:
    """The plugin's own metrics in the Prometheus text format."""
    payload = pb.CollectMetricsResponse.Payload(prometheus=metrics.registry.expose().encode())
    return pb.CollectMetricsResponse(metrics=payload)


def _call_resource_of(request: pb.CallResourceRequest) -> pb.CallResourceResponse:
    """Pass one metadata call (labels, label values, series, metadata...) to the server.

    Grafana's rules apply: GET when the datasource is set to GET, otherwise the caller's method,
    and a POST the server answers with 400 or 405 is retried as GET.
    """
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in request.path):
        # CR/LF would end the request line to the server (http.client refuses such a URL).
        return _json_error(400, "bad_data", "resource path contains a control character")
    path = request.path.lstrip("/")
    segments = urllib.parse.unquote(path).split("/")
    if not path.startswith(RESOURCE_PREFIX) or ".." in segments or "." in segments:
        return _json_error(404, "not_found", f"unknown resource {request.path!r}")
    try:
        settings = DatasourceSettings.from_proto(request.pluginContext.dataSourceInstanceSettings)
    except SettingsError as exc:
        return _json_error(400, "bad_data", str(exc))
    params = urllib.parse.parse_qsl(urllib.parse.urlsplit(request.url).query, True)
    method = (request.method or "GET").upper()
    if method == "POST" and request.body:
        params += urllib.parse.parse_qsl(request.body.decode("utf-8", "replace"), True)
    if settings.http_method == "GET" or method not in ("GET", "POST"):
        method = "GET"
    upstream = Upstream(settings)
    try:
        reply = upstream.call(path, params, method=method)
        if method == "POST" and reply.status in (400, 405):
            reply = upstream.call(path, params, method="GET")
    except UpstreamError as exc:
        return _json_error(exc.status, "unavailable", str(exc))
    headers = {"Content-Type": pb.StringList(values=[reply.content_type or "application/json"])}
    return pb.CallResourceResponse(code=reply.status, headers=headers, body=reply.body)


# gRPC glue: the generic handlers the generated *_pb2_grpc module would otherwise provide.


def generic_handlers(metrics: PluginMetrics) -> list[grpc.GenericRpcHandler]:
    """Handlers for ``pluginv2.Data``, ``pluginv2.Diagnostics`` and ``pluginv2.Resource``,
    counting in ``metrics``."""

    def _query_data(request: pb.QueryDataRequest, _context: grpc.ServicerContext) -> Any:
        return query_data(request, metrics)

    def _check_health(request: pb.CheckHealthRequest, _context: grpc.ServicerContext) -> Any:
        return check_health(request, metrics)

    def _collect_metrics(request: pb.CollectMetricsRequest, _context: grpc.ServicerContext) -> Any:
        return collect_metrics(request, metrics)

    def _call_resource(
        request: pb.CallResourceRequest, _context: grpc.ServicerContext
    ) -> Iterator[pb.CallResourceResponse]:
        yield call_resource(request, metrics)

    return [
        grpc.method_handlers_generic_handler(
            "pluginv2.Data",
            {
                "QueryData": grpc.unary_unary_rpc_method_handler(
                    _query_data,
                    request_deserializer=pb.QueryDataRequest.FromString,
                    response_serializer=pb.QueryDataResponse.SerializeToString,
                )
            },
        ),
        grpc.method_handlers_generic_handler(
            "pluginv2.Diagnostics",
            {
                "CheckHealth": grpc.unary_unary_rpc_method_handler(
                    _check_health,
                    request_deserializer=pb.CheckHealthRequest.FromString,
                    response_serializer=pb.CheckHealthResponse.SerializeToString,
                ),
                "CollectMetrics": grpc.unary_unary_rpc_method_handler(
                    _collect_metrics,
                    request_deserializer=pb.CollectMetricsRequest.FromString,
                    response_serializer=pb.CollectMetricsResponse.SerializeToString,
                ),
            },
        ),
        grpc.method_handlers_generic_handler(
            "pluginv2.Resource",
            {
                "CallResource": grpc.unary_stream_rpc_method_handler(
                    _call_resource,
                    request_deserializer=pb.CallResourceRequest.FromString,
                    response_serializer=pb.CallResourceResponse.SerializeToString,
                )
            },
        ),
    ]
