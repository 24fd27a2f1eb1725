"""The PromQL evaluator: walks the ``promql-parser`` AST and evaluates every node for all steps.

Each node is evaluated once for the whole array of evaluation times (one element for an
instant query, one per step for a range query), which is what makes range queries cost about
as much as instant ones. Semantics follow Prometheus 3.x: left-open range and lookback
windows, staleness markers, ``@``/``offset`` anchoring, subqueries aligned to absolute time.

The evaluator alone selects data and evaluates sub-expressions; it hands the operators
(``functions``, ``aggregations``, ``binops``) values and an ``EvalContext``, so none of them
imports this module.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import promql_parser as pp

from ..histogram.model import FloatHistogram, Hint
from ..histogram.statsview import stats_view
from ..labels import Labels, Matcher
from ..storage import Querier, SeriesData, stale_mask
from . import functions
from .aggregations import PARAM_OPS, aggregate, aggregation_param, grouping
from .binops import binary, negate
from .context import HISTOGRAM_SAMPLE_BYTES, SAMPLE_BYTES, EvalContext
from .errors import EvaluationError
from .info import info_matchers, join_info
from .parser import at_kind, dt_ms, selector_matcher_sets, td_ms
from .selection import Flat
from .values import I64, Matrix, Scalar, String, Value, Vector, hist_mask, kept, where_hist

_HISTOGRAM_AWARE = frozenset(
    {
        "histogram_quantile",
        "histogram_quantiles",
        "histogram_fraction",
        "histogram_count",
        "histogram_sum",
        "histogram_avg",
        "histogram_stddev",
        "histogram_stdvar",
        "label_replace",
        "label_join",
        "timestamp",
        "absent",
        "sort_by_label",
        "sort_by_label_desc",
    }
)
"""Functions that take native histograms in an instant vector argument; every other one works
on float samples only, so Prometheus drops the histogram samples of its arguments."""


_SORTS = frozenset({"sort", "sort_desc", "sort_by_label", "sort_by_label_desc"})


def _floats_only(v: Value) -> Value:
    if not isinstance(v, Vector) or v.hists is None:
        return v
    present = v.float_present()
    keep = present.any(axis=1)
    return Vector(
        kept(v.labels, keep),
        v.values[keep],
        present[keep],
        sample_ts=None if v.sample_ts is None else v.sample_ts[keep],
    )


_STATS_FUNCTIONS = frozenset({"histogram_count", "histogram_sum", "histogram_avg"})
_BUCKET_FUNCTIONS = frozenset({"histogram_quantile", "histogram_quantiles", "histogram_fraction"})


def _stats_view_column(hs: list[FloatHistogram | None]) -> list[FloatHistogram | None]:
    idx = [i for i, h in enumerate(hs) if h is not None]
    viewed = stats_view([h for h in hs if h is not None])
    out: list[FloatHistogram | None] = list(hs)
    for i, h in zip(idx, viewed, strict=True):
        out[i] = h
    return out


def _no_repeated_resets(hs: np.ndarray) -> np.ndarray:
    """A subquery's histograms with ``reset``/``not_reset`` hints made ``unknown``: a
    subquery may skip the sample of a reset or repeat it, so only detection from the
    buckets is trusted, as for floats (``promql/engine.go``)."""
    out = hs.copy()
    for k, h in enumerate(hs):
        if h is not None and h.hint in (Hint.RESET, Hint.NOT_RESET):
            out[k] = replace(h, hint=Hint.UNKNOWN)
    return out


class Evaluator:
    """One query's walk of the syntax tree: selection from the querier, and the operators."""

    def __init__(
        self,
        querier: Querier,
        ctx: EvalContext,
        *,
        lookback_ms: int,
        default_subquery_step_ms: int,
        default_at_ms: int | None = None,
        trims: dict[str, str] | None = None,
    ) -> None:
        self._stats = 0
        self._stats_blocked = 0
        """Inside ``histogram_count``/``sum``/``avg`` (and no subquery, quantile or trim in
        between), selectors read histograms as Prometheus's stats iterator does
        (``detectHistogramStatsDecoding``): buckets dropped, unknown hints set from reset
        detection."""
        self.trims = trims or {}
        """Comparison operators that stand in for trim operators (``parse_with_trims``)."""
        self.querier = querier
        self.ctx = ctx
        self.lookback_ms = lookback_ms
        self.default_subquery_step_ms = default_subquery_step_ms
        self.default_at_ms = default_at_ms
        """Anchor for selectors and subqueries without ``@`` (not inside an anchored subquery):
        upstream's test harness re-runs queries this way to check ``@`` handling."""

    # -- dispatch -------------------------------------------------------------------------------

    def eval(self, node: pp.Expr, times: I64) -> Value:
        """The value of ``node`` at every one of ``times``: operands first, then the operator."""
        self.ctx.check()
        if isinstance(node, pp.NumberLiteral):
            return Scalar(np.full(len(times), float(node.val)))
        if isinstance(node, pp.StringLiteral):
            return String(node.val)
        if isinstance(node, pp.ParenExpr):
            return self.eval(node.expr, times)
        if isinstance(node, pp.UnaryExpr):
            return negate(self.eval(node.expr, times))
        if isinstance(node, pp.VectorSelector):
            return self.vector_selector(node, times)
        if isinstance(node, pp.MatrixSelector):
            return self.matrix_selector(node, times)
        if isinstance(node, pp.SubqueryExpr):
            return self.subquery(node, times)
        if isinstance(node, pp.Call):
            return self.call(node, times)
        if isinstance(node, pp.AggregateExpr):
            return self.aggregate(node, times)
        if isinstance(node, pp.BinaryExpr):
            op = str(node.op)
            op = self.trims.get(op, op)
            trim = op in ("</", ">/")  # trimming needs the buckets
            self._stats_blocked += trim
            try:
                lhs = self.eval(node.lhs, times)
                rhs = self.eval(node.rhs, times)
            finally:
                self._stats_blocked -= trim
            return binary(op, node.modifier, lhs, rhs, self.ctx)
        raise EvaluationError(f"unsupported expression {type(node).__name__}")

    def call(self, node: pp.Call, times: I64) -> Value:
        name = node.func.name
        exprs = list(node.args)
        if name == "info":
            v = self.eval(exprs[0], times)
            if not isinstance(v, Vector):
                raise EvaluationError("expected instant vector argument")
            name_m, data_m = info_matchers(exprs[1] if len(exprs) > 1 else None)
            return join_info(v, self.instant_vector([name_m], times), name_m, data_m)
        fn = functions.lookup(name)  # before the arguments: an unsupported one costs nothing
        if name in _SORTS and self.ctx.start_ms != self.ctx.end_ms:
            # A range query's result is ordered by labels whatever the expression does.
            self.ctx.warn(
                "PromQL warning: sort is ineffective for range queries since results are always"
                " ordered by labels"
            )
        stats = name in _STATS_FUNCTIONS
        blocks = name in _BUCKET_FUNCTIONS
        self._stats += stats
        self._stats_blocked += blocks
        try:
            args = [self.eval(a, times) for a in exprs]
        finally:
            self._stats -= stats
            self._stats_blocked -= blocks
        if name not in _HISTOGRAM_AWARE:
            args = [_floats_only(a) for a in args]
        return fn(self.ctx, functions.Call(args, times, exprs))

    def aggregate(self, node: pp.AggregateExpr, times: I64) -> Vector:
        op = str(node.op)
        value = None
        if node.param is not None and op in PARAM_OPS:
            value = self.eval(node.param, times)
        param = aggregation_param(op, value)
        vec = self.eval(node.expr, times)
        without, names = grouping(node.modifier)
        return aggregate(self.ctx, op, vec, param, without=without, names=names, nsteps=len(times))

    # -- selectors -----------------------------------------------------------------------------

    def at_time(self, at: pp.AtModifier | None) -> int | None:
        if at is None:
            return None
        kind = at_kind(at)
        if kind == "Start":
            return self.ctx.start_ms
        if kind == "End":
            return self.ctx.end_ms
        assert at.at is not None
        return dt_ms(at.at)

    def anchors(self, at: pp.AtModifier | None, offset: timedelta | None, times: I64) -> I64:
        """The right edge of each step's window: eval time (or the ``@`` time) minus offset."""
        at_ms = self.at_time(at) if at is not None else self.default_at_ms
        base = times if at_ms is None else np.full(len(times), at_ms, dtype=np.int64)
        return base - td_ms(offset)

    def select(self, vs: pp.VectorSelector, mint: int, maxt: int) -> list[SeriesData]:
        return self.select_sets(selector_matcher_sets(vs), mint, maxt)

    def select_sets(self, sets: list[list[Matcher]], mint: int, maxt: int) -> list[SeriesData]:
        """The series matching any of ``sets``, in label order, each label set once."""
        if len(sets) == 1:
            out = list(self.querier.select(sets[0], mint, maxt))
        else:
            seen: dict[Labels, SeriesData] = {}
            for ms in sets:
                self.ctx.check()  # one store call per alternative
                for s in self.querier.select(ms, mint, maxt):
                    seen.setdefault(s.labels, s)
            out = sorted(seen.values(), key=lambda s: s.labels)
        if self._stats and not self._stats_blocked:
            out = [
                s
                if s.histograms is None
                else replace(s, histograms=_stats_view_column(s.histograms))
                for s in out
            ]
        loaded = hists = 0
        for s in out:
            loaded += len(s.timestamps)
            if s.histograms is not None:
                hists += len(s.histograms)
        self.ctx.count_samples(loaded)
        self.ctx.reserve_bytes(loaded * SAMPLE_BYTES)  # before they are concatenated and keyed
        if hists:
            # Histogram samples are Python objects with their buckets: far heavier.
            self.ctx.reserve_bytes(hists * HISTOGRAM_SAMPLE_BYTES)
        self.ctx.check()
        return out

    def vector_selector(self, vs: pp.VectorSelector, times: I64) -> Vector:
        ends = self.anchors(vs.at, vs.offset, times)
        return self.instant_vector(selector_matcher_sets(vs), ends)

    def instant_vector(self, matcher_sets: list[list[Matcher]], ends: I64) -> Vector:
        """The latest sample of every matching series in ``(end - lookback, end]``, per step."""
        if len(ends) == 0:
            return Vector.empty(0)
        mint = int(ends.min()) - self.lookback_ms + 1
        flat = Flat(self.select_sets(matcher_sets, mint, int(ends.max())), ordered=True)
        self.ctx.count_samples(len(flat) * len(ends))  # the dense series x steps result
        self.ctx.reserve_cells(len(flat), len(ends))
        lo, hi = flat.windows(ends, self.lookback_ms)
        has = hi > lo
        last = np.where(has, hi - 1, 0)
        hists = None
        if len(flat.vals):
            vals = flat.vals[last]
            sts = flat.ts[last]
            present = has & ~stale_mask(vals)
            if flat.hvals is not None:
                hists = where_hist(present, flat.hvals[last])
                if not hist_mask(hists).any():
                    hists = None
        else:
            vals = np.zeros(lo.shape)
            sts = np.zeros(lo.shape, dtype=np.int64)
            present = np.zeros(lo.shape, dtype=bool)
        keep = present.any(axis=1)
        if not keep.all():
            idx = np.nonzero(keep)[0]
            return Vector(
                [flat.labels[i] for i in idx],
                vals[idx],
                present[idx],
                sample_ts=sts[idx],
                hists=None if hists is None else hists[idx],
            )
        return Vector(flat.labels, vals, present, sample_ts=sts, hists=hists)

    def matrix_selector(self, ms: pp.MatrixSelector, times: I64) -> Matrix:
        vs = ms.vector_selector
        rng = td_ms(ms.range)
        ends = self.anchors(vs.at, vs.offset, times)
        if len(ends) == 0:
            raise EvaluationError("empty evaluation")
        flat = Flat(
            self.select(vs, int(ends.min()) - rng + 1, int(ends.max())),
            drop_stale=True,
            ordered=True,
        )
        self.ctx.reserve_cells(len(flat), len(ends))
        lo, hi = flat.windows(ends, rng)
        return Matrix(flat.labels, flat.ts, flat.vals, flat.offsets, lo, hi, rng, ends, flat.hvals)

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
        self.ctx.reserve_cells(1, max(0, (last - start) // step + 1))
        self.ctx.check()
        inner_times = np.arange(start, last + 1, step, dtype=np.int64)
        if len(inner_times) == 0:
            inner: Value = Vector.empty(0)
        else:
            outer_default = self.default_at_ms
            if sq.at is not None or outer_default is not None:
                self.default_at_ms = None  # selectors inside an anchored subquery are not
            self._stats_blocked += 1  # counter resets need the buckets
            try:
                inner = self.eval(sq.expr, inner_times)
            finally:
                self.default_at_ms = outer_default
                self._stats_blocked -= 1
        if isinstance(inner, Scalar):
            inner = Vector([()], inner.values[None, :], np.ones((1, len(inner_times)), bool))
        if not isinstance(inner, Vector):
            raise EvaluationError("subquery is only allowed on instant vector")
        # The inner result becomes samples again (flattened, then keyed for the windows).
        self.ctx.reserve_bytes(int(np.count_nonzero(inner.present)) * SAMPLE_BYTES)
        ts_parts, val_parts, labels = [], [], []
        h_parts: list[np.ndarray] = []
        for i, lb in enumerate(inner.labels):
            p = inner.present[i]
            if not p.any():
                continue
            labels.append(lb)
            ts_parts.append(inner_times[p])
            val_parts.append(inner.values[i][p])
            if inner.hists is not None:
                h_parts.append(_no_repeated_resets(inner.hists[i][p]))
        flat = Flat.from_arrays(
            labels, ts_parts, val_parts, h_parts if inner.hists is not None else None
        )
        lo, hi = flat.windows(ends, rng)
        return Matrix(flat.labels, flat.ts, flat.vals, flat.offsets, lo, hi, rng, ends, flat.hvals)
