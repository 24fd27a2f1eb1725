"""The PromQL engine's front: a query's text and times in, a ``QueryResult`` out.

``Engine`` holds the limits the daemon configures; each query gets a fresh ``EvalContext``
(its deadline, budget and annotations) and ``Evaluator``, and its result is converted to
the shapes the HTTP API encodes. Unexpected failures become ``internal`` PromQL errors so a
bug in an operator never takes the daemon down.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import promql_parser as pp

from ..histogram.model import FloatHistogram
from ..labels import Labels
from ..storage import Querier, SeriesData
from .context import DEFAULT_MAX_MEMORY_BYTES, EvalContext
from .errors import EvaluationError, ParseError, PromQLError, TooManySamplesError
from .evaluator import Evaluator
from .parser import expr_type, parse, parse_with_trims
from .querytext import TextLimits
from .values import (
    DELAYED_NAME_REMOVAL,
    Matrix,
    Scalar,
    String,
    Value,
    Vector,
    finish_names,
    is_marked,
    merge_rows,
)

PARSE_CACHE_SIZE = 512
"""Parsed queries kept per engine: dashboards send the same few texts again and again (only
their times change), and parsing with its text checks was a fifth of a small query's time."""
PARSE_CACHE_MAX_CHARS = 16 << 10
"""Longer texts are parsed each time, so the cache holds at most a few MiB."""


@dataclass
class QueryResult:
    """What a query returned, in the shapes the HTTP API encodes directly.

    vector: ``list[tuple[Labels, int, float | FloatHistogram]]``;
    matrix: ``list[SeriesData]`` sorted by labels;
    scalar: ``(t_ms, value)``; string: ``(t_ms, str)``.
    """

    result_type: str
    value: object
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)


class Engine:
    """Evaluates PromQL against a ``Querier`` with Prometheus 3.x semantics."""

    def __init__(
        self,
        querier: Querier,
        *,
        lookback_delta_ms: int = 300_000,
        max_samples: int = 50_000_000,
        timeout_s: float = 120.0,
        default_subquery_step_ms: int = 60_000,
        max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
        text_limits: TextLimits | None = None,
        delayed_name_removal: bool = False,
    ) -> None:
        self.delayed_name_removal = delayed_name_removal
        """Prometheus's ``EnableDelayedNameRemoval`` (off in production there, on in its test
        engine): operations that drop ``__name__`` only mark the series, and names go from
        the final result, so e.g. ``label_replace(rate(x[5m]), "n", "$1", "__name__",
        "(.*)")`` still sees the name."""
        self.querier = querier
        self.lookback_delta_ms = lookback_delta_ms
        self.max_samples = max_samples
        self.timeout_s = timeout_s
        self.default_subquery_step_ms = default_subquery_step_ms
        self.max_memory_bytes = max_memory_bytes
        self.text_limits = text_limits or TextLimits()
        self._parse_cached = functools.lru_cache(maxsize=PARSE_CACHE_SIZE)(self._parse_query)

    def parse_query(self, query: str) -> tuple[pp.Expr, dict[str, str]]:
        """``query`` parsed, with the stand-ins of its trim operators (``parse_with_trims``).

        Recently parsed texts come from a cache (failures are not kept; the evaluator only
        reads the tree, so one tree serves any number of queries, concurrent ones included).
        """
        if len(query) > PARSE_CACHE_MAX_CHARS:
            return self._parse_query(query)
        expr, trims = self._parse_cached(query)
        return expr, dict(trims) if trims else trims

    def _parse_query(self, query: str) -> tuple[pp.Expr, dict[str, str]]:
        return parse_with_trims(query, self.text_limits)

    def parse(self, query: str) -> pp.Expr:
        """``query`` parsed under this engine's length and nesting limits."""
        return parse(query, self.text_limits)

    def _evaluator(
        self,
        *,
        start: int,
        end: int,
        step: int,
        lookback: int | None,
        timeout: float | None,
        cancel: threading.Event | None,
        started: float,
        default_at_ms: int | None = None,
        trims: dict[str, str] | None = None,
    ) -> Evaluator:
        lb = self.lookback_delta_ms if lookback is None or lookback <= 0 else lookback
        ctx = EvalContext(
            start_ms=start,
            end_ms=end,
            step_ms=step,
            max_samples=self.max_samples,
            deadline=started + (timeout if timeout is not None else self.timeout_s),
            cancel=cancel,
            max_memory_bytes=self.max_memory_bytes,
        )
        ctx.check()  # parsing counts against the timeout too
        return Evaluator(
            self.querier,
            ctx,
            lookback_ms=lb,
            default_subquery_step_ms=self.default_subquery_step_ms,
            default_at_ms=default_at_ms,
            trims=trims,
        )

    def _evaluate(self, ev: Evaluator, expr: pp.Expr, times: np.ndarray) -> Value:
        token = DELAYED_NAME_REMOVAL.set(self.delayed_name_removal)
        try:
            return _finish_names(_guard(lambda: ev.eval(expr, times)))
        finally:
            DELAYED_NAME_REMOVAL.reset(token)

    def instant(
        self,
        query: str,
        time_ms: int,
        *,
        lookback_delta_ms: int | None = None,
        timeout_s: float | None = None,
        cancel: threading.Event | None = None,
        default_at_ms: int | None = None,
    ) -> QueryResult:
        """Evaluate at ``time_ms``. ``default_at_ms`` (a testing aid) anchors every selector
        and subquery without ``@`` as if it had ``@ default_at_ms``."""
        started = time.monotonic()
        expr, trims = self.parse_query(query)
        ev = self._evaluator(
            start=time_ms,
            end=time_ms,
            step=0,
            lookback=lookback_delta_ms,
            timeout=timeout_s,
            cancel=cancel,
            started=started,
            default_at_ms=default_at_ms,
            trims=trims,
        )
        times = np.array([time_ms], dtype=np.int64)
        val = self._evaluate(ev, expr, times)
        if isinstance(val, Scalar):
            return QueryResult(
                "scalar", (time_ms, float(val.values[0])), ev.ctx.warnings, ev.ctx.infos
            )
        if isinstance(val, String):
            return QueryResult("string", (time_ms, val.value), ev.ctx.warnings, ev.ctx.infos)
        if isinstance(val, Matrix):
            out = []
            for i, lb in enumerate(val.labels):
                lo, hi = int(val.lo[i, 0]), int(val.hi[i, 0])
                if hi > lo:
                    hs = None if val.hvals is None else list(val.hvals[lo:hi])
                    if hs is not None and all(h is None for h in hs):
                        hs = None
                    out.append(
                        SeriesData(
                            finish_names(lb), val.ts[lo:hi].copy(), val.vals[lo:hi].copy(), hs
                        )
                    )
            out.sort(key=lambda s: s.labels)
            if any(a.labels == b.labels for a, b in pairwise(out)):
                raise EvaluationError("vector cannot contain metrics with the same labelset")
            return QueryResult("matrix", out, ev.ctx.warnings, ev.ctx.infos)
        hists = val.hists
        vec: list[tuple[Labels, int, float | FloatHistogram]] = [
            (
                lb,
                time_ms,
                hists[i, 0]
                if hists is not None and hists[i, 0] is not None
                else float(val.values[i, 0]),
            )
            for i, lb in enumerate(val.labels)
            if val.present[i, 0]
        ]
        return QueryResult("vector", vec, ev.ctx.warnings, ev.ctx.infos)

    def range(
        self,
        query: str,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        *,
        lookback_delta_ms: int | None = None,
        timeout_s: float | None = None,
        cancel: threading.Event | None = None,
    ) -> QueryResult:
        if step_ms <= 0:
            raise ParseError("zero or negative query resolution step widths are not accepted")
        if end_ms < start_ms:
            raise ParseError("end timestamp must not be before start time")
        started = time.monotonic()
        expr, trims = self.parse_query(query)
        kind = expr_type(expr)
        if kind not in ("vector", "scalar"):
            label = {"matrix": "range vector", "string": "string"}[kind]
            raise ParseError(
                f'invalid expression type "{label}" for range query, '
                "must be Scalar or instant Vector"
            )
        ev = self._evaluator(
            start=start_ms,
            end=end_ms,
            step=step_ms,
            lookback=lookback_delta_ms,
            timeout=timeout_s,
            cancel=cancel,
            started=started,
            trims=trims,
        )
        times = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
        val = self._evaluate(ev, expr, times)
        if isinstance(val, Scalar):
            out = [SeriesData((), times.copy(), val.values.astype(np.float64))]
            return QueryResult("matrix", out, ev.ctx.warnings, ev.ctx.infos)
        if not isinstance(val, Vector):
            raise EvaluationError("range query must return a vector or scalar")
        series = []
        for i, lb in enumerate(val.labels):
            p = val.present[i]
            if p.any():
                hs = None
                if val.hists is not None:
                    hs = list(val.hists[i][p])
                    if all(h is None for h in hs):
                        hs = None
                series.append(SeriesData(lb, times[p], val.values[i][p], hs))
        series.sort(key=lambda s: s.labels)
        ev.ctx.count_samples(sum(len(s.timestamps) for s in series))
        return QueryResult("matrix", series, ev.ctx.warnings, ev.ctx.infos)


def _finish_names(val: Value) -> Value:
    """The result with marked series' names removed (``cleanupMetricLabels``): series that
    now share their labels are merged, or, where they meet at a step, an error."""
    if not isinstance(val, Vector) or not any(is_marked(lb) for lb in val.labels):
        return val
    return merge_rows(
        [finish_names(lb) for lb in val.labels], val.values, val.present, hists=val.hists
    )


def _guard(fn: Callable[[], Value]) -> Value:
    """Run an evaluation, turning unexpected exceptions into ``internal`` PromQL errors."""
    try:
        # IEEE results (NaN, +-Inf) are PromQL's semantics, not warnings worth logging.
        with np.errstate(all="ignore"):
            return fn()
    except PromQLError:
        raise
    except RecursionError:
        raise EvaluationError("query is too deeply nested") from None
    except MemoryError:
        raise TooManySamplesError() from None
    except Exception as e:  # a bug in the engine must not take the daemon down
        err = PromQLError(f"internal error evaluating query: {type(e).__name__}: {e}")
        raise err from e
