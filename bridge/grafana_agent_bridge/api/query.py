"""The read side of the Prometheus HTTP API (``/api/v1/query`` and friends).

Each endpoint takes the merged request ``Params`` and returns a ``Response`` whose body is
Prometheus's JSON envelope, errors included, because Grafana reads the JSON whatever the HTTP
status and shows ``"<errorType>: <error>"`` to the user.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..config.units import PROMETHEUS_COMPAT_VERSION
from ..labels import Labels, Matcher
from ..metrics import Registry
from ..promql import Engine
from ..promql.errors import PromQLError
from ..storage import Querier
from . import encoding
from .encoding import RawJSON
from .params import (
    ApiError,
    Params,
    bad_data,
    duration_param,
    limit_param,
    range_params,
    time_param,
    unescape_label_name,
    window_params,
)
from .selectors import format_promql, parse_matches, query_selectors

TRUNCATED_WARNING = "results truncated due to limit"
SLOW_QUERY_S = 2.0
MAX_CONCURRENT_QUERIES = 4
"""Queries evaluated at once; more wait their turn (within their timeout). Evaluation holds the
GIL most of the time, so more would not finish sooner, only hold more memory at once. The
metadata endpoints (series, labels, label values, metadata, exemplars) take the same slots."""

log = logging.getLogger(__name__)


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def ok(data: object, warnings: Sequence[str] = (), infos: Sequence[str] = ()) -> Response:
    return Response(200, encoding.success(data, warnings, infos))


def fail(err: ApiError) -> Response:
    status = err.status or encoding.ERROR_STATUS.get(err.error_type, 500)
    return Response(status, encoding.error(err.error_type, err.message))


class Deadline:
    """When a metadata request must end: checked between the store calls it makes."""

    def __init__(self, at: float, cancel: threading.Event | None) -> None:
        self.at = at
        self.cancel = cancel

    def check(self, what: str) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise ApiError("canceled", f"query was canceled in {what}")
        if time.monotonic() > self.at:
            raise ApiError("timeout", f"query timed out in {what}")

    def each(self, items: Iterable[list[Matcher]], what: str) -> Iterator[list[Matcher]]:
        """``items``, checking the deadline before each (each costs one store call)."""
        for item in items:
            self.check(what)
            yield item


class QueryAPI:
    """Endpoint functions over an engine and a querier, plus the read-only status pages.

    Each takes the request's ``Params`` and returns a ``Response`` or raises ``ApiError``;
    which path calls which is the route table's business (``routes``).
    """

    def __init__(
        self,
        engine: Engine,
        querier: Querier,
        *,
        timeout_s: float = 120.0,
        max_points_per_series: int = 11_000,
        config_yaml: Callable[[], str] = lambda: "",
        flags: Callable[[], dict[str, str]] = dict,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        max_concurrent_queries: int = MAX_CONCURRENT_QUERIES,
        registry: Registry | None = None,
    ) -> None:
        """``registry`` receives the query metrics (a private one when not given)."""
        self.engine = engine
        self.querier = querier
        self.timeout_s = timeout_s
        self.max_points = max_points_per_series
        self._config_yaml = config_yaml
        self._flags = flags
        self._now_ms = now_ms
        self._slots = threading.BoundedSemaphore(max_concurrent_queries)
        registry = registry or Registry()
        self._queries = registry.counter(
            "bridge_queries_total",
            "PromQL queries answered, by kind and outcome.",
            ("kind", "outcome"),
        )
        self._query_seconds = registry.histogram(
            "bridge_query_duration_seconds", "Wall time of PromQL queries.", ("kind",)
        )

    # --- queries ------------------------------------------------------------------------

    def _query_options(self, params: Params) -> dict[str, Any]:
        timeout_s = self.timeout_s
        timeout_ms = duration_param(params, "timeout")
        if timeout_ms is not None and timeout_ms > 0:
            timeout_s = min(timeout_s, timeout_ms / 1000.0)
        opts: dict[str, Any] = {"timeout_s": timeout_s, "cancel": params.cancel}
        lookback = duration_param(params, "lookback_delta")
        if lookback is not None and lookback > 0:
            opts["lookback_delta_ms"] = int(lookback)
        return opts

    def _acquire_slot(self, kind: str, timeout_s: float) -> None:
        """Take one of the query slots that PromQL and metadata requests share, or answer
        Prometheus's queue timeout when none frees up within ``timeout_s``."""
        if not self._slots.acquire(timeout=timeout_s):
            self._queries.inc(1, kind, "timeout")
            raise ApiError("timeout", "query timed out in query queue")

    def _run(
        self, kind: str, query: str, fn: Callable[[float], Any], limit: int, timeout_s: float
    ) -> Response:
        """Evaluate ``fn(seconds left)`` in a query slot; the wait for the slot counts against
        the query's timeout, as in Prometheus."""
        started = time.perf_counter()
        self._acquire_slot(kind, timeout_s)
        try:
            result = fn(max(0.0, timeout_s - (time.perf_counter() - started)))
        except PromQLError as e:
            self._queries.inc(1, kind, e.error_type)
            message = str(e)
            if e.error_type == "bad_data" and not message.startswith("invalid parameter"):
                message = f'invalid parameter "query": {message}'
            raise ApiError(e.error_type, message) from None
        finally:
            self._slots.release()
            elapsed = time.perf_counter() - started
            self._query_seconds.observe(elapsed, kind)
            if elapsed >= SLOW_QUERY_S:  # what an operator wants to know about first
                log.info("slow %s query took %.1fs: %s", kind, elapsed, query[:500])
        self._queries.inc(1, kind, "success")
        rtype: str = result.result_type
        value = result.value
        warnings = list(result.warnings)
        if limit and rtype in ("vector", "matrix") and len(value) > limit:
            value = value[:limit]
            warnings.append(TRUNCATED_WARNING)
        data = RawJSON(encoding.result_json(rtype, value))
        return ok(data, warnings, list(result.infos))

    def query(self, params: Params) -> Response:
        t = time_param(params, "time", self._now_ms())
        opts = self._query_options(params)
        limit = limit_param(params)
        q = params.get("query")
        return self._run(
            "instant",
            q,
            lambda left: self.engine.instant(q, t, **{**opts, "timeout_s": left}),
            limit,
            opts["timeout_s"],
        )

    def query_range(self, params: Params) -> Response:
        span = range_params(params, self.max_points)
        opts = self._query_options(params)
        limit = limit_param(params)
        q = params.get("query")
        return self._run(
            "range",
            q,
            lambda left: self.engine.range(
                q, span.start_ms, span.end_ms, span.step_ms, **{**opts, "timeout_s": left}
            ),
            limit,
            opts["timeout_s"],
        )

    # --- metadata -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _metadata_slot(self, params: Params) -> Iterator[Deadline]:
        """A query slot and a deadline for a metadata request: without them, a request with
        hundreds of ``match[]`` selectors walked the store for minutes, as many at once as
        clients sent. The wait for the slot counts against the timeout."""
        deadline = Deadline(time.monotonic() + self.timeout_s, params.cancel)
        self._acquire_slot("metadata", self.timeout_s)
        try:
            yield deadline
        except ApiError as e:
            self._queries.inc(1, "metadata", e.error_type)
            raise
        finally:
            self._slots.release()
        self._queries.inc(1, "metadata", "success")

    def series(self, params: Params) -> Response:
        matches = params.getall("match[]")
        if not matches:
            raise bad_data("no match[] parameter provided")
        sets = parse_matches(matches, self.engine.text_limits)
        start, end = window_params(params)
        limit = limit_param(params)
        found: set[Labels] = set()
        with self._metadata_slot(params) as deadline:
            for ms in deadline.each(sets, "series"):
                found.update(self.querier.series(ms, start, end))
        out = sorted(found)
        warnings = []
        if limit and len(out) > limit:
            out = out[:limit]
            warnings.append(TRUNCATED_WARNING)
        return ok([dict(lb) for lb in out], warnings)

    def _matcher_sets(self, params: Params) -> list[list[Matcher]]:
        matches = params.getall("match[]")
        return parse_matches(matches, self.engine.text_limits) if matches else [[]]

    def labels(self, params: Params) -> Response:
        sets = self._matcher_sets(params)
        start, end = window_params(params)
        limit = limit_param(params)
        names: set[str] = set()
        with self._metadata_slot(params) as deadline:
            for ms in deadline.each(sets, "label names"):
                names.update(self.querier.label_names(ms, start, end))
        return self._limited(sorted(names), limit)

    def label_values(self, raw_name: str, params: Params) -> Response:
        name = unescape_label_name(raw_name)
        if not name:
            raise bad_data(f"invalid label name: {raw_name!r}")
        sets = self._matcher_sets(params)
        start, end = window_params(params)
        limit = limit_param(params)
        values: set[str] = set()
        with self._metadata_slot(params) as deadline:
            for ms in deadline.each(sets, "label values"):
                values.update(self.querier.label_values(name, ms, start, end))
        return self._limited(sorted(values), limit)

    @staticmethod
    def _limited(items: list[str], limit: int) -> Response:
        if limit and len(items) > limit:
            return ok(items[:limit], [TRUNCATED_WARNING])
        return ok(items)

    def metadata(self, params: Params) -> Response:
        limit = limit_param(params)
        per_metric = 0
        if params.has("limit_per_metric"):
            text = params.get("limit_per_metric")
            try:
                per_metric = int(text)
            except ValueError:
                raise bad_data(
                    f'invalid parameter "limit_per_metric": cannot parse "{text}" to a valid int'
                ) from None
        metric = params.get("metric")
        out: dict[str, list[dict[str, str]]] = {}
        with self._metadata_slot(params) as deadline:
            families = sorted(self.querier.metadata().items())
            for family, items in families:
                if metric and family != metric:
                    continue
                if limit and len(out) >= limit:
                    break
                deadline.check("metadata")
                unique: list[dict[str, str]] = []
                for m in items:
                    entry = {"type": m.type, "help": m.help, "unit": m.unit}
                    if entry not in unique:
                        unique.append(entry)
                if per_metric > 0:
                    unique = unique[:per_metric]
                out[family] = unique
        return ok(out)

    def query_exemplars(self, params: Params) -> Response:
        start, end = window_params(params)
        sets = query_selectors(params.get("query"), self.engine.text_limits)
        seen: dict[Labels, list] = {}
        with self._metadata_slot(params) as deadline:
            for ms in deadline.each(sets, "exemplars"):
                for labels, exemplars in self.querier.exemplars(ms, start, end):
                    seen.setdefault(labels, exemplars)
        groups = sorted(seen.items())
        return ok(RawJSON(encoding.exemplars_json(groups)))

    def format_query(self, params: Params) -> Response:
        """The query pretty-printed (Grafana's query editor "Format query" action)."""
        return ok(format_promql(params.get("query"), self.engine.text_limits))

    # --- status -------------------------------------------------------------------------

    def buildinfo(self, _params: Params) -> Response:
        # No ``features``: Grafana then treats the bridge as Prometheus (of this version), not
        # Mimir. The charm tells Grafana the same version (``src/bridge_units.py``).
        return ok(
            {
                "version": PROMETHEUS_COMPAT_VERSION,
                "revision": f"grafana-agent-bridge-{__version__}",
                "branch": "main",
                "buildUser": "grafana-agent-bridge",
                "buildDate": "",
                "goVersion": "python",
            }
        )

    def status_config(self, _params: Params) -> Response:
        return ok({"yaml": self._config_yaml()})

    def status_flags(self, _params: Params) -> Response:
        return ok(self._flags())

    def runtimeinfo(self, _params: Params) -> Response:
        return ok({"goroutineCount": threading.active_count(), "GOMAXPROCS": 0})
