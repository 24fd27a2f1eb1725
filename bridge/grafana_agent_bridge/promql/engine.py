"""The PromQL evaluator: walks the ``promql-parser`` AST and evaluates every node for all steps.

Each node is evaluated once for the whole array of evaluation times (one element for an
instant query, one per step for a range query), which is what makes range queries cost about
as much as instant ones. Semantics follow Prometheus 3.x: left-open range and lookback
windows, staleness markers, ``@``/``offset`` anchoring, subqueries aligned to absolute time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import cast

import numpy as np
import promql_parser as pp

from ..labels import Labels, Matcher
from ..storage import Querier, SeriesData, stale_mask
from .errors import (
    EvaluationError,
    ParseError,
    PromQLError,
    QueryCanceledError,
    QueryTimeoutError,
    TooManySamplesError,
)
from .parser import at_kind, dt_ms, expr_type, parse, selector_matcher_sets, td_ms
from .querytext import TextLimits
from .selection import Flat
from .values import I64, Matrix, Scalar, String, Value, Vector, drop_name

DEFAULT_MAX_MEMORY_BYTES = 1 << 30
CELL_BYTES = 64
"""Peak bytes the evaluator holds per cell (one series at one step) of a dense series x steps
result while building it: window bounds, the picked values, timestamps and masks, and their
temporaries (measured on instant selectors and subqueries; numpy allocates them all at once)."""
SAMPLE_BYTES = 48
"""Bytes per loaded sample: the store's arrays, their concatenation and the window keys."""


@dataclass
class QueryResult:
    """What a query returned, in the shapes the HTTP API encodes directly.

    vector: ``list[tuple[Labels, int, float]]``; matrix: ``list[SeriesData]`` sorted by labels;
    scalar: ``(t_ms, value)``; string: ``(t_ms, str)``.
    """

    result_type: str
    value: object
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)


class Evaluator:
    """State of one query evaluation: limits, the query's own start/end, annotations."""

    def __init__(
        self,
        querier: Querier,
        *,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        lookback_ms: int,
        max_samples: int,
        deadline: float,
        default_subquery_step_ms: int,
        cancel: threading.Event | None = None,
        max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    ) -> None:
        self.querier = querier
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.step_ms = step_ms
        self.lookback_ms = lookback_ms
        self.max_samples = max_samples
        self.deadline = deadline
        self.default_subquery_step_ms = default_subquery_step_ms
        self.cancel = cancel
        self.samples = 0
        self.max_memory_bytes = max_memory_bytes
        self.memory_bytes = 0
        """Estimated bytes of the arrays built so far; never decreases (a conservative bound of
        the peak, since intermediate results live until the node that uses them returns)."""
        self.default_at_ms: int | None = None
        """Anchor for selectors and subqueries without ``@`` (not inside an anchored subquery):
        upstream's test harness re-runs queries this way to check ``@`` handling."""
        self.warnings: list[str] = []
        self.infos: list[str] = []

    # -- bookkeeping ---------------------------------------------------------------------------

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise QueryCanceledError()
        if time.monotonic() > self.deadline:
            raise QueryTimeoutError()

    def count_samples(self, n: int) -> None:
        self.samples += n
        if self.samples > self.max_samples:
            raise TooManySamplesError()

    def reserve_bytes(self, n: int) -> None:
        """Charge ``n`` bytes to the query's memory budget before allocating them."""
        self.memory_bytes += n
        if self.memory_bytes > self.max_memory_bytes:
            raise TooManySamplesError(
                "query processing would load too many samples into memory in query execution "
                f"(estimated {self.memory_bytes >> 20} MiB, over query.max_memory "
                f"{self.max_memory_bytes >> 20} MiB)"
            )

    def reserve_cells(self, rows: int, steps: int) -> None:
        """Charge a dense ``rows x steps`` result (and its temporaries) before building it."""
        self.reserve_bytes(rows * steps * CELL_BYTES)

    def warn(self, msg: str) -> None:
        if msg not in self.warnings:
            self.warnings.append(msg)

    def info(self, msg: str) -> None:
        if msg not in self.infos:
            self.infos.append(msg)

    # -- dispatch -------------------------------------------------------------------------------

    def eval(self, node: pp.Expr, times: I64) -> Value:
        self.check()
        if isinstance(node, pp.NumberLiteral):
            return Scalar(np.full(len(times), float(node.val)))
        if isinstance(node, pp.StringLiteral):
            return String(node.val)
        if isinstance(node, pp.ParenExpr):
            return self.eval(node.expr, times)
        if isinstance(node, pp.UnaryExpr):
            v = self.eval(node.expr, times)
            if isinstance(v, Scalar):
                return Scalar(-v.values)
            if isinstance(v, Vector):
                from .binops import merge_rows

                return merge_rows(
                    self, [drop_name(lb) for lb in v.labels], -v.values, v.present.copy()
                )
            raise EvaluationError("unary minus on a non-numeric value")
        if isinstance(node, pp.VectorSelector):
            return self.vector_selector(node, times)
        if isinstance(node, pp.MatrixSelector):
            return self.matrix_selector(node, times)
        if isinstance(node, pp.SubqueryExpr):
            return self.subquery(node, times)
        if isinstance(node, pp.Call):
            from .functions import call

            return cast(Value, call(self, node, times))
        if isinstance(node, pp.AggregateExpr):
            from .aggregations import aggregate

            return aggregate(self, node, times)
        if isinstance(node, pp.BinaryExpr):
            from .binops import binary

            return binary(self, node, times)
        raise EvaluationError(f"unsupported expression {type(node).__name__}")

    # -- selectors -----------------------------------------------------------------------------

    def at_time(self, at: pp.AtModifier | None) -> int | None:
        if at is None:
            return None
        kind = at_kind(at)
        if kind == "Start":
            return self.start_ms
        if kind == "End":
            return self.end_ms
        assert at.at is not None
        return dt_ms(at.at)

    def anchors(self, at: pp.AtModifier | None, offset: timedelta | None, times: I64) -> I64:
        """The right edge of each step's window: eval time (or the ``@`` time) minus offset."""
        at_ms = self.at_time(at) if at is not None else self.default_at_ms
        base = times if at_ms is None else np.full(len(times), at_ms, dtype=np.int64)
        return base - td_ms(offset)

    def matcher_sets(self, vs: pp.VectorSelector) -> list[list[Matcher]]:
        return selector_matcher_sets(vs)

    def select(self, vs: pp.VectorSelector, mint: int, maxt: int) -> list[SeriesData]:
        return self.select_sets(self.matcher_sets(vs), mint, maxt)

    def select_sets(self, sets: list[list[Matcher]], mint: int, maxt: int) -> list[SeriesData]:
        if len(sets) == 1:
            out = list(self.querier.select(sets[0], mint, maxt))
        else:
            seen: dict[Labels, SeriesData] = {}
            for ms in sets:
                self.check()  # one store call per alternative
                for s in self.querier.select(ms, mint, maxt):
                    seen.setdefault(s.labels, s)
            out = list(seen.values())
        loaded = sum(len(s.timestamps) for s in out)
        self.count_samples(loaded)
        self.reserve_bytes(loaded * SAMPLE_BYTES)  # before they are concatenated and keyed
        self.check()
        return out

    def vector_selector(self, vs: pp.VectorSelector, times: I64) -> Vector:
        ends = self.anchors(vs.at, vs.offset, times)
        return self.instant_vector(self.matcher_sets(vs), ends)

    def instant_vector(self, matcher_sets: list[list[Matcher]], ends: I64) -> Vector:
        """The latest sample of every matching series in ``(end - lookback, end]``, per step."""
        if len(ends) == 0:
            return Vector.empty(0)
        mint = int(ends.min()) - self.lookback_ms + 1
        flat = Flat(self.select_sets(matcher_sets, mint, int(ends.max())))
        self.count_samples(len(flat) * len(ends))  # the dense series x steps result
        self.reserve_cells(len(flat), len(ends))
        lo, hi = flat.windows(ends, self.lookback_ms)
        has = hi > lo
        last = np.where(has, hi - 1, 0)
        if len(flat.vals):
            vals = flat.vals[last]
            sts = flat.ts[last]
            present = has & ~stale_mask(vals)
        else:
            vals = np.zeros(lo.shape)
            sts = np.zeros(lo.shape, dtype=np.int64)
            present = np.zeros(lo.shape, dtype=bool)
        keep = present.any(axis=1)
        if not keep.all():
            idx = np.nonzero(keep)[0]
            return Vector(
                [flat.labels[i] for i in idx], vals[idx], present[idx], sample_ts=sts[idx]
            )
        return Vector(flat.labels, vals, present, sample_ts=sts)

    def matrix_selector(self, ms: pp.MatrixSelector, times: I64) -> Matrix:
        vs = ms.vector_selector
        rng = td_ms(ms.range)
        ends = self.anchors(vs.at, vs.offset, times)
        if len(ends) == 0:
            raise EvaluationError("empty evaluation")
        flat = Flat(self.select(vs, int(ends.min()) - rng + 1, int(ends.max())), drop_stale=True)
        self.reserve_cells(len(flat), len(ends))
        lo, hi = flat.windows(ends, rng)
        return Matrix(flat.labels, flat.ts, flat.vals, flat.offsets, lo, hi, rng, ends)

    def subquery(self, sq: pp.SubqueryExpr, times: I64) -> Matrix:
        rng = td_ms(sq.range)
        step = td_ms(sq.step) if sq.step is not None else 0
        if step <= 0:
            step = self.default_subquery_step_ms
        ends = self.anchors(sq.at, sq.offset, times)
        first = int(ends.min()) - rng
        start = (first // step) * step
        if start <= first:
            start += step
        last = int(ends.max())
        # The inner steps, and at least one row over them, are charged before ``arange``: a
        # range of a day at 1ms steps is 86 million of them.
        self.reserve_cells(1, max(0, (last - start) // step + 1))
        self.check()
        inner_times = np.arange(start, last + 1, step, dtype=np.int64)
        if len(inner_times) == 0:
            inner: Value = Vector.empty(0)
        else:
            outer_default = self.default_at_ms
            if sq.at is not None or outer_default is not None:
                self.default_at_ms = None  # selectors inside an anchored subquery are not
            try:
                inner = self.eval(sq.expr, inner_times)
            finally:
                self.default_at_ms = outer_default
        if isinstance(inner, Scalar):
            inner = Vector([()], inner.values[None, :], np.ones((1, len(inner_times)), bool))
        if not isinstance(inner, Vector):
            raise EvaluationError("subquery is only allowed on instant vector")
        # The inner result becomes samples again (flattened, then keyed for the windows).
        self.reserve_bytes(int(np.count_nonzero(inner.present)) * SAMPLE_BYTES)
        ts_parts, val_parts, labels = [], [], []
        for i, lb in enumerate(inner.labels):
            p = inner.present[i]
            if not p.any():
                continue
            labels.append(lb)
            ts_parts.append(inner_times[p])
            val_parts.append(inner.values[i][p])
        flat = Flat.from_arrays(labels, ts_parts, val_parts)
        lo, hi = flat.windows(ends, rng)
        return Matrix(flat.labels, flat.ts, flat.vals, flat.offsets, lo, hi, rng, ends)


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
    ) -> None:
        self.querier = querier
        self.lookback_delta_ms = lookback_delta_ms
        self.max_samples = max_samples
        self.timeout_s = timeout_s
        self.default_subquery_step_ms = default_subquery_step_ms
        self.max_memory_bytes = max_memory_bytes
        self.text_limits = text_limits or TextLimits()

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
    ) -> Evaluator:
        lb = self.lookback_delta_ms if lookback is None or lookback <= 0 else lookback
        ev = Evaluator(
            self.querier,
            start_ms=start,
            end_ms=end,
            step_ms=step,
            lookback_ms=lb,
            max_samples=self.max_samples,
            deadline=started + (timeout if timeout is not None else self.timeout_s),
            default_subquery_step_ms=self.default_subquery_step_ms,
            cancel=cancel,
            max_memory_bytes=self.max_memory_bytes,
        )
        ev.check()  # parsing counts against the timeout too
        return ev

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
        expr = self.parse(query)
        ev = self._evaluator(
            start=time_ms,
            end=time_ms,
            step=0,
            lookback=lookback_delta_ms,
            timeout=timeout_s,
            cancel=cancel,
            started=started,
        )
        ev.default_at_ms = default_at_ms
        times = np.array([time_ms], dtype=np.int64)
        val = _guard(lambda: ev.eval(expr, times))
        if isinstance(val, Scalar):
            return QueryResult("scalar", (time_ms, float(val.values[0])), ev.warnings, ev.infos)
        if isinstance(val, String):
            return QueryResult("string", (time_ms, val.value), ev.warnings, ev.infos)
        if isinstance(val, Matrix):
            out = []
            for i, lb in enumerate(val.labels):
                lo, hi = int(val.lo[i, 0]), int(val.hi[i, 0])
                if hi > lo:
                    out.append(SeriesData(lb, val.ts[lo:hi].copy(), val.vals[lo:hi].copy()))
            out.sort(key=lambda s: s.labels)
            return QueryResult("matrix", out, ev.warnings, ev.infos)
        vec = [
            (lb, time_ms, float(val.values[i, 0]))
            for i, lb in enumerate(val.labels)
            if val.present[i, 0]
        ]
        return QueryResult("vector", vec, ev.warnings, ev.infos)

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
        expr = self.parse(query)
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
        )
        times = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
        val = _guard(lambda: ev.eval(expr, times))
        if isinstance(val, Scalar):
            out = [SeriesData((), times.copy(), val.values.astype(np.float64))]
            return QueryResult("matrix", out, ev.warnings, ev.infos)
        if not isinstance(val, Vector):
            raise EvaluationError("range query must return a vector or scalar")
        series = []
        for i, lb in enumerate(val.labels):
            p = val.present[i]
            if p.any():
                series.append(SeriesData(lb, times[p], val.values[i][p]))
        series.sort(key=lambda s: s.labels)
        ev.count_samples(sum(len(s.timestamps) for s in series))
        return QueryResult("matrix", series, ev.warnings, ev.infos)


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
