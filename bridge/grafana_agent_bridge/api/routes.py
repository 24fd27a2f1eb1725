"""Every method and path the bridge answers, in one table (``bridge_routes``).

Adding a route is one line in ``bridge_routes``: a helper for the kind of route and the
endpoint it calls. The helpers carry each kind's rules, so a new line inherits them:

- ``read(path, endpoint)``: the Prometheus read API. GET or form POST (at most
  ``MAX_FORM_BYTES``), the query bearer token, open only while serving.
- ``ingest(path, endpoint, max_body)``: a push of samples (remote write, OTLP). POST only,
  clients in ``ingest.allowed_networks``, one of ``max_concurrent_writes`` slots while the
  body is read and decoded, at most ``max_body`` bytes (``ingest.max_body_bytes``); open while
  draining too, so the endpoint can answer 503 after reading the body (the connection stays
  usable, the refusal is counted).
- ``plain(path, endpoint)``: health, readiness, ``/metrics``: GET, no token, any phase.

For example, the OTLP/HTTP metrics receiver on both of its usual paths (Prometheus 3.x's and
the OTLP default)::

    ingest("/api/v1/otlp/v1/metrics", e.otlp, e.max_body_bytes),
    ingest("/v1/metrics", e.otlp, e.max_body_bytes),

where ``Endpoints.otlp(request)`` is written like ``Endpoints.write`` (the receiver object is
given to ``BridgeHTTPServer.attach`` by the daemon once the store is open). Content negotiation
between versions of a protocol on one path (remote write 1.0 and 2.0) is the endpoint's
business: it reads ``Request.content_type`` and ``Request.headers``. Anything else about a
route is a ``Route`` field (``router``). ``RouteTable`` refuses a table where two routes
answer the same method on the same path.

The shared query slots (``MAX_CONCURRENT_QUERIES``) are not a route property: a query's wait for
one counts against its own ``timeout`` parameter, known only once its parameters are read and
checked, so ``QueryAPI`` takes the slot in one step after that (a malformed request never
waits in the queue).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..lifecycle import Lifecycle, Phase
from ..metrics import Registry
from . import encoding
from .otlp import OTLPMetricsAPI
from .otlp import unavailable as otlp_unavailable
from .params import Params
from .query import QueryAPI, Response, ok
from .router import (
    ALL_PHASES,
    SERVING,
    Body,
    Endpoint,
    Refusal,
    Request,
    Route,
    RouteTable,
    call,
)
from .write import WriteAPI, unavailable

MAX_FORM_BYTES = 8 << 20
"""Largest form-encoded query body; a PromQL query is never near this."""

PLAIN_TEXT = "text/plain; charset=utf-8"


@dataclass
class Endpoints:
    """What the routes call. The read and write APIs exist once the store is open; until then
    the routes that need them are closed (``open_in``) and never call them."""

    lifecycle: Lifecycle
    registry: Registry
    index_text: Callable[[], str]
    query_api: QueryAPI | None = None
    write_api: WriteAPI | None = None
    otlp_api: OTLPMetricsAPI | None = None
    max_body_bytes: int = 32 << 20

    def query(self) -> QueryAPI:
        assert self.query_api is not None, "read routes are open only while serving"
        return self.query_api

    def write(self, request: Request) -> Response:
        if self.write_api is None:  # a stop while the store was still opening
            return unavailable("the bridge is shutting down")
        return self.write_api.handle(request.body, request.content_type, request.content_encoding)

    def otlp(self, request: Request) -> Response:
        if self.otlp_api is None:  # a stop while the store was still opening
            return otlp_unavailable(request.content_type, "the bridge is shutting down")
        return self.otlp_api.handle(request.body, request.content_type, request.content_encoding)

    def healthy(self, _request: Request) -> Response:
        """Alive: every phase but stopped (starting and draining included, as in Prometheus)."""
        if self.lifecycle.phase is Phase.STOPPED:
            return Response(503, b"Service Unavailable\n", PLAIN_TEXT)
        return Response(200, b"Grafana Agent Bridge is Healthy.\n", PLAIN_TEXT)

    def ready(self, _request: Request) -> Response:
        if self.lifecycle.serving:
            return Response(200, b"Grafana Agent Bridge is Ready.\n", PLAIN_TEXT)
        return Response(503, b"Service Unavailable\n", PLAIN_TEXT)

    def metrics(self, _request: Request) -> Response:
        return Response(
            200, self.registry.expose().encode(), "text/plain; version=0.0.4; charset=utf-8"
        )

    def index(self, _request: Request) -> Response:
        return Response(200, self.index_text().encode(), PLAIN_TEXT)


def read(path: str, endpoint: Endpoint, *, label: str = "", watch: bool = False) -> Route:
    return Route(
        ("GET", "POST"),
        path,
        endpoint,
        label=label,
        auth=True,
        open_in=SERVING,
        body=Body.FORM,
        max_body=MAX_FORM_BYTES,
        watch_disconnect=watch,
    )


def ingest(path: str, endpoint: Endpoint, max_body: int) -> Route:
    return Route(
        ("POST",),
        path,
        endpoint,
        write_allow_list=True,
        open_in=frozenset({Phase.SERVING, Phase.DRAINING}),
        write_slot=True,
        body=Body.RAW,
        max_body=max_body,
    )


def plain(path: str, endpoint: Endpoint) -> Route:
    return Route(("GET",), path, endpoint, open_in=ALL_PHASES)


def _unknown_api(request: Request) -> Response:
    return Response(404, encoding.error("not_found", f"unknown API path {request.path}"))


def _empty(data: object) -> Endpoint:
    return lambda _r: ok(data)


def bridge_routes(e: Endpoints) -> RouteTable:
    q = e.query
    return RouteTable(
        [
            ingest("/api/v1/write", e.write, e.max_body_bytes),
            ingest("/api/v1/otlp/v1/metrics", e.otlp, e.max_body_bytes),
            ingest("/v1/metrics", e.otlp, e.max_body_bytes),
            read("/api/v1/query", lambda r: q().query(r.params), watch=True),
            read("/api/v1/query_range", lambda r: q().query_range(r.params), watch=True),
            read("/api/v1/series", lambda r: q().series(r.params)),
            read("/api/v1/labels", lambda r: q().labels(r.params)),
            read(
                "/api/v1/label/{name}/values",
                lambda r: q().label_values(r.args["name"], r.params),
                label="/api/v1/label/:name/values",
            ),
            read("/api/v1/metadata", lambda r: q().metadata(r.params)),
            read("/api/v1/query_exemplars", lambda r: q().query_exemplars(r.params)),
            read("/api/v1/format_query", lambda r: q().format_query(r.params)),
            read("/api/v1/status/buildinfo", lambda r: q().buildinfo(r.params)),
            read("/api/v1/status/config", lambda r: q().status_config(r.params)),
            read("/api/v1/status/flags", lambda r: q().status_flags(r.params)),
            read("/api/v1/status/runtimeinfo", lambda r: q().runtimeinfo(r.params)),
            read("/api/v1/rules", _empty({"groups": []})),
            read("/api/v1/alerts", _empty({"alerts": []})),
            read("/api/v1/targets", _empty({"activeTargets": [], "droppedTargets": []})),
            # An unknown read path: 404, but 405 to a POST so that Grafana retries it as GET.
            Route(("GET",), "/api/v1/*", _unknown_api, label="other", auth=True, open_in=SERVING),
            plain("/-/healthy", e.healthy),
            plain("/-/ready", e.ready),
            plain("/metrics", e.metrics),
            plain("/", e.index),
        ]
    )


def answer(query_api: QueryAPI, path: str, params: Params, method: str = "GET") -> Response:
    """One read-API request answered without HTTP (tests, tools), through the same table and
    endpoints as over HTTP; the transport's checks (token, phase, body) are not made."""
    e = Endpoints(Lifecycle(Phase.SERVING), Registry(), str, query_api=query_api)
    found = bridge_routes(e).find(method, path)
    if isinstance(found, Refusal):
        return found.response
    return call(found.route, Request(method, path, params, found.args))
