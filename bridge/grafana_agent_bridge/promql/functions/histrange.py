"""Range functions over windows that hold native histograms (``promql/functions.go``).

Most windows hold floats only; those keep the vectorised float paths, run on the range
vector with its histogram samples removed. Every window that holds a histogram is then
computed here, sample by sample, with the mixed float/histogram rules of Prometheus 3.x:
``rate``-like and ``sum``/``avg_over_time`` drop a mixed window with a warning, the
float-only ``*_over_time`` ignore the histograms with an info, ``count``/``last``/``first``/
``present_over_time``, ``changes`` and ``resets`` take both kinds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import pairwise

import numpy as np

from ...histogram.kahan import mean_histograms, sum_histograms
from ...histogram.model import FloatHistogram
from ...histogram.notes import Note
from ...histogram.ops import detect_reset, div, equals, mul
from ...histogram.rate import histogram_increase, histogram_instant_delta
from ..context import EvalContext
from ..values import F64, I64, Matrix, Scalar, Value, Vector, drop_name, hist_mask, merge_rows
from .common import Call, FuncImpl, metric_name, quote

Cell = float | FloatHistogram | None


class Window:
    """One window's samples, floats and histograms apart (each ascending by time)."""

    __slots__ = ("end", "fts", "fvs", "hhs", "hts", "j", "m", "name", "s", "ts")

    def __init__(self, m: Matrix, s: int, j: int, a: int, b: int) -> None:
        assert m.hvals is not None
        hs = m.hvals[a:b]
        hm = hist_mask(hs)
        self.m = m
        self.s, self.j = s, j
        self.ts: I64 = m.ts[a:b]
        self.fts: I64 = self.ts[~hm]
        self.fvs: F64 = m.vals[a:b][~hm]
        self.hts: I64 = self.ts[hm]
        self.hhs: list[FloatHistogram] = list(hs[hm])
        self.end = int(m.window_end[j])
        self.name = metric_name(m.labels[s])

    def merged(self) -> list[tuple[int, float | FloatHistogram]]:
        pairs: list[tuple[int, float | FloatHistogram]] = list(
            zip(self.fts.tolist(), self.fvs.tolist())
        )
        pairs += list(zip(self.hts.tolist(), self.hhs))
        pairs.sort(key=lambda p: p[0])
        return pairs


CellFn = Callable[[EvalContext, Window, Call], Cell]


def mixed_warning(name: str) -> str:
    return (
        f"PromQL warning: encountered a mix of histograms and floats for metric name {quote(name)}"
    )


def ignored_info(name: str) -> str:
    return (
        "PromQL info: ignored histograms in a range containing both floats and histograms "
        f"for metric name {quote(name)}"
    )


def report(ctx: EvalContext, notes: frozenset[Note] | set[Note], name: str) -> None:
    for n in notes:
        msg = n.message(name)
        if n.is_warning:
            ctx.warn(msg)
        else:
            ctx.info(msg)


def float_only(m: Matrix) -> Matrix:
    """``m`` without its histogram samples (windows re-indexed)."""
    assert m.hvals is not None
    keep = ~hist_mask(m.hvals)
    kept = np.r_[0, np.cumsum(keep)].astype(np.int64)
    return Matrix(
        m.labels,
        m.ts[keep],
        m.vals[keep],
        kept[m.offsets],
        kept[m.lo],
        kept[m.hi],
        m.range_ms,
        m.window_end,
        None,
    )


def with_histograms(
    float_impl: FuncImpl, cell: CellFn, *, arg: int = 0, keep_name: bool = False
) -> FuncImpl:
    """``float_impl`` for float-only windows, ``cell`` for every window with a histogram."""

    def impl(ctx: EvalContext, call: Call) -> Value:
        m = call.args[arg]
        if not isinstance(m, Matrix) or m.hvals is None:
            return float_impl(ctx, call)
        args = list(call.args)
        args[arg] = float_only(m)
        fres = float_impl(ctx, Call(args, call.times, call.exprs))
        assert isinstance(fres, Vector)
        nser, nsteps = m.lo.shape
        labels = [lb if keep_name else drop_name(lb) for lb in m.labels]
        out_v = np.zeros((nser, nsteps))
        out_p = np.zeros((nser, nsteps), dtype=bool)
        out_h = np.full((nser, nsteps), None, dtype=object)
        rows = {lb: i for i, lb in enumerate(fres.labels)}
        hm = hist_mask(m.hvals)
        c = np.r_[0, np.cumsum(hm)]
        nh = c[m.hi] - c[m.lo]
        for s in range(nser):
            r = rows.get(labels[s])
            if r is not None:
                # Only this series' float windows: a merged row may hold another's steps.
                own = (m.hi[s] > m.lo[s]) & (nh[s] == 0)
                out_v[s] = np.where(own, fres.values[r], 0.0)
                out_p[s] = own & fres.present[r]
                if fres.hists is not None:
                    out_h[s] = np.where(own, fres.hists[r], None)
            for j in np.flatnonzero(nh[s] > 0):
                ctx.check()
                w = Window(m, s, int(j), int(m.lo[s, j]), int(m.hi[s, j]))
                res = cell(ctx, w, call)
                if res is None:
                    continue
                out_p[s, j] = True
                if isinstance(res, FloatHistogram):
                    out_h[s, j] = res
                    out_v[s, j] = math.nan
                else:
                    out_v[s, j] = res
        keep = out_p.any(axis=1)
        idx = np.flatnonzero(keep)
        return merge_rows([labels[i] for i in idx], out_v[idx], out_p[idx], hists=out_h[idx])

    return impl


# -- the cells ---------------------------------------------------------------------------------


def _extrapolated(ctx: EvalContext, w: Window, *, counter: bool, rate: bool) -> Cell:
    if len(w.fts):
        ctx.warn(mixed_warning(w.name))
        return None
    if len(w.hhs) < 2:
        return None
    h, notes = histogram_increase(w.hhs, counter)
    report(ctx, notes, w.name)
    if h is None:
        return None
    first_t, last_t = int(w.hts[0]), int(w.hts[-1])
    range_start = w.end - w.m.range_ms
    to_start = (first_t - range_start) / 1000.0
    to_end = (w.end - last_t) / 1000.0
    sampled = (last_t - first_t) / 1000.0
    avg = sampled / (len(w.hhs) - 1)
    threshold = avg * 1.1
    if to_start >= threshold:
        to_start = avg / 2
    if counter and h.count > 0 and w.hhs[0].count >= 0:
        to_zero = sampled * (w.hhs[0].count / h.count)
        to_start = min(to_start, to_zero)
    if to_end >= threshold:
        to_end = avg / 2
    factor = (sampled + to_start + to_end) / sampled if sampled else 1.0
    if rate:
        factor /= w.m.range_ms / 1000.0
    return mul(h, factor)


def c_rate(ctx: EvalContext, w: Window, call: Call) -> Cell:
    return _extrapolated(ctx, w, counter=True, rate=True)


def c_increase(ctx: EvalContext, w: Window, call: Call) -> Cell:
    return _extrapolated(ctx, w, counter=True, rate=False)


def c_delta(ctx: EvalContext, w: Window, call: Call) -> Cell:
    return _extrapolated(ctx, w, counter=False, rate=False)


def _instant(ctx: EvalContext, w: Window, *, rate: bool) -> Cell:
    pairs = w.merged()
    if len(pairs) < 2:
        return None
    (t0, a), (t1, b) = pairs[-2], pairs[-1]
    if isinstance(a, FloatHistogram) != isinstance(b, FloatHistogram):
        ctx.warn(mixed_warning(w.name))
        return None
    if not isinstance(a, FloatHistogram) or not isinstance(b, FloatHistogram):
        fa, fb = float(a), float(b)  # type: ignore[arg-type]
        res = fb if rate and fb < fa else fb - fa
        if rate:
            return res / ((t1 - t0) / 1000.0) if t1 != t0 else None
        return res
    h, notes = histogram_instant_delta(a, b, rate)
    report(ctx, notes, w.name)
    if h is None:
        return None
    if rate:
        secs = (t1 - t0) / 1000.0
        if secs == 0:
            return None
        h = div(h, secs)
    return h


def c_irate(ctx: EvalContext, w: Window, call: Call) -> Cell:
    return _instant(ctx, w, rate=True)


def c_idelta(ctx: EvalContext, w: Window, call: Call) -> Cell:
    return _instant(ctx, w, rate=False)


def c_changes(ctx: EvalContext, w: Window, call: Call) -> Cell:
    pairs = w.merged()
    n = 0
    for (_, a), (_, b) in pairwise(pairs):
        ha, hb = isinstance(a, FloatHistogram), isinstance(b, FloatHistogram)
        if ha != hb:
            n += 1
        elif ha and hb:
            n += not equals(b, a)  # type: ignore[arg-type]
        elif a != b and not (math.isnan(a) and math.isnan(b)):  # type: ignore[arg-type]
            n += 1
    return float(n)


def c_resets(ctx: EvalContext, w: Window, call: Call) -> Cell:
    pairs = w.merged()
    n = 0
    for (_, a), (_, b) in pairwise(pairs):
        ha, hb = isinstance(a, FloatHistogram), isinstance(b, FloatHistogram)
        if ha and hb:
            n += detect_reset(b, a)  # type: ignore[arg-type]
        elif ha != hb or float(b) < float(a):  # type: ignore[arg-type]
            n += 1
    return float(n)


def _sum_like(ctx: EvalContext, w: Window, mean: bool) -> Cell:
    if len(w.fts):
        ctx.warn(mixed_warning(w.name))
        return None
    h, notes = (mean_histograms if mean else sum_histograms)(w.hhs)
    report(ctx, notes, w.name)
    return h


def c_sum_over_time(ctx: EvalContext, w: Window, call: Call) -> Cell:
    return _sum_like(ctx, w, False)


def c_avg_over_time(ctx: EvalContext, w: Window, call: Call) -> Cell:
    return _sum_like(ctx, w, True)


def c_count_over_time(ctx: EvalContext, w: Window, call: Call) -> Cell:
    return float(len(w.ts))


def c_present_over_time(ctx: EvalContext, w: Window, call: Call) -> Cell:
    return 1.0


def c_last_over_time(ctx: EvalContext, w: Window, call: Call) -> Cell:
    return w.merged()[-1][1]


def c_first_over_time(ctx: EvalContext, w: Window, call: Call) -> Cell:
    return w.merged()[0][1]


def c_ts_of_last(ctx: EvalContext, w: Window, call: Call) -> Cell:
    return int(w.ts[-1]) / 1000.0


def c_ts_of_first(ctx: EvalContext, w: Window, call: Call) -> Cell:
    return int(w.ts[0]) / 1000.0


def floats_ignoring(float_impl: FuncImpl, *, arg: int = 0) -> CellFn:
    """A float-only function on a window with histograms: the floats alone (with an info
    that histograms were ignored), nothing if there are none."""

    def cell(ctx: EvalContext, w: Window, call: Call) -> Cell:
        if not len(w.fts):
            return None
        ctx.info(ignored_info(w.name))
        # The window's floats as a one-series, one-step range vector.
        sub = Matrix(
            [w.m.labels[w.s]],
            w.fts,
            w.fvs,
            np.array([0, len(w.fts)], dtype=np.int64),
            np.array([[0]], dtype=np.int64),
            np.array([[len(w.fts)]], dtype=np.int64),
            w.m.range_ms,
            np.array([w.end], dtype=np.int64),
        )
        args = [sub if k == arg else _one_step(a, w) for k, a in enumerate(call.args)]
        res = float_impl(ctx, Call(args, call.times[w.j : w.j + 1], call.exprs))
        if isinstance(res, Vector) and len(res.labels) and res.present[0, 0]:
            return float(res.values[0, 0])
        return None

    return cell


def _one_step(a: Value, w: Window) -> Value:
    if isinstance(a, Scalar):
        return Scalar(a.values[w.j : w.j + 1])
    return a
