"""Functions of counters and gauges over range windows: ``rate``, ``increase``, ``delta``,
``irate``, ``idelta``, ``changes``, ``resets``, ``deriv``, ``predict_linear`` and
``double_exponential_smoothing`` (``holt_winters``).

The ones dashboards run over many series and steps are vectorised over all windows at once;
the rest evaluate window by window with the exact arithmetic Prometheus uses.
"""

from __future__ import annotations

import numpy as np

from ..context import EvalContext
from ..errors import EvaluationError
from ..selection import window_reduce
from ..values import F64, I64, Matrix, Value, Vector
from . import histrange as hr
from .common import Call, FuncImpl, metric_name, padded_windows, per_window, quote, range_result

_COUNTER_SUFFIXES = ("_total", "_sum", "_count", "_bucket")


def _extrapolated(ctx: EvalContext, call: Call, *, counter: bool, rate: bool) -> Vector:
    m = call.matrix(0)
    lo, hi = m.lo, m.hi
    cnt = hi - lo
    ok = cnt >= 2
    if counter:
        rows = np.flatnonzero(ok.any(axis=1))
        for name in sorted({metric_name(m.labels[i]) for i in rows}):
            if name and not name.endswith(_COUNTER_SUFFIXES):
                ctx.info(
                    "PromQL info: metric might not be a counter, name does not end in "
                    f"_total/_sum/_count/_bucket: {quote(name)}"
                )
    if not ok.any():
        return Vector.empty(m.nsteps)
    resets = _reset_column(m) if counter else None
    res = np.empty(lo.shape)
    # Row blocks of ~64 k cells: each of the ~25 element-wise passes below then runs on
    # arrays that stay in the CPU cache, about twice as fast over 10 k series x 150 steps as
    # whole-matrix passes; every cell's arithmetic is unchanged.
    rows = max(1, _BLOCK_CELLS // max(1, m.nsteps))
    for a in range(0, lo.shape[0], rows):
        ctx.check()
        b = a + rows
        res[a:b] = _extrapolate_rows(m, lo[a:b], hi[a:b], resets, counter=counter, rate=rate)
    return range_result(m, res, ok)


_BLOCK_CELLS = 65_536


def _extrapolate_rows(
    m: Matrix,
    lo: I64,
    hi: I64,
    resets: tuple[I64, F64] | None,
    *,
    counter: bool,
    rate: bool,
) -> F64:
    """Prometheus's ``extrapolatedRate`` for the windows ``[lo, hi)`` of some rows."""
    cnt = hi - lo
    # Cells without two samples compute garbage (indices clipped into range), then are masked.
    n = len(m.vals)
    first_i = np.minimum(lo, n - 1)
    last_i = np.maximum(hi - 1, 0)
    first = m.vals[first_i]
    res = m.vals[last_i] - first
    if resets is not None:
        res += _reset_corrections(resets, lo, hi)
    with np.errstate(all="ignore"):
        first_t = m.ts[first_i]
        last_t = m.ts[last_i]
        # Seconds: from the window start to the first sample, last sample to the window end.
        to_start = (first_t - (m.window_end - m.range_ms)[None, :]) / 1000.0
        to_end = (m.window_end[None, :] - last_t) / 1000.0
        sampled = (last_t - first_t) / 1000.0
        avg = sampled / np.maximum(cnt - 1, 1)
        threshold = avg * 1.1
        half = avg * 0.5
        np.copyto(to_start, half, where=to_start >= threshold)
        if counter:
            to_zero = sampled * (first / res)
            np.copyto(to_start, to_zero, where=(res > 0) & (first >= 0) & (to_zero < to_start))
        np.copyto(to_end, half, where=to_end >= threshold)
        factor = (sampled + to_start + to_end) / sampled
        if rate:
            factor /= m.range_ms / 1000.0
        res *= factor
    return res


def _reset_column(m: Matrix) -> tuple[I64, F64] | None:
    """Where counters reset, over all samples: the running count of resets (``c[k]``: resets
    before sample ``k``) and the value just before each reset (0 elsewhere); None if no
    sample is below its predecessor."""
    prev = np.r_[0.0, m.vals[:-1]]
    drop = m.vals < prev
    drop[m.offsets[:-1][np.diff(m.offsets) > 0]] = False
    if not drop.any():
        return None
    return np.r_[0, np.cumsum(drop)], np.where(drop, prev, 0.0)


def _reset_corrections(resets: tuple[I64, F64] | None, lo: I64, hi: I64) -> F64:
    """Per window, the sum of the values just before each counter reset inside it."""
    out = np.zeros(lo.shape)
    if resets is None:
        return out
    c, corr = resets
    # Count resets per window exactly (integers); sum values only where there are any.
    lo1 = np.minimum(lo + 1, hi)
    has = (c[hi] - c[lo1]) > 0
    if has.any():
        out[has] = window_reduce(np.add, corr, lo1[has], hi[has], 0.0)
    return out


def f_rate(ctx: EvalContext, call: Call) -> Value:
    return _extrapolated(ctx, call, counter=True, rate=True)


def f_increase(ctx: EvalContext, call: Call) -> Value:
    return _extrapolated(ctx, call, counter=True, rate=False)


def f_delta(ctx: EvalContext, call: Call) -> Value:
    return _extrapolated(ctx, call, counter=False, rate=False)


def _instant_delta(ctx: EvalContext, call: Call, *, rate: bool) -> Vector:
    m = call.matrix(0)
    ok = (m.hi - m.lo) >= 2
    if not ok.any():
        return Vector.empty(m.nsteps)
    li = np.where(ok, m.hi - 1, 0)
    pi = np.where(ok, m.hi - 2, 0)
    last, prev = m.vals[li], m.vals[pi]
    with np.errstate(all="ignore"):
        if rate:
            res = np.where(last < prev, last, last - prev)
            dt = (m.ts[li] - m.ts[pi]) / 1000.0
            res = res / dt
        else:
            res = last - prev
    return range_result(m, res, ok)


def f_irate(ctx: EvalContext, call: Call) -> Value:
    return _instant_delta(ctx, call, rate=True)


def f_idelta(ctx: EvalContext, call: Call) -> Value:
    return _instant_delta(ctx, call, rate=False)


def _transitions(ctx: EvalContext, call: Call, kind: str) -> Vector:
    m = call.matrix(0)
    cnt = m.hi - m.lo
    ok = cnt >= 1
    v = m.vals
    if len(v):
        prev = np.r_[v[0], v[:-1]]
        with np.errstate(invalid="ignore"):
            ind = (v != prev) & ~(np.isnan(v) & np.isnan(prev)) if kind == "changes" else v < prev
        ind[m.offsets[:-1][np.diff(m.offsets) > 0]] = False
        c = np.r_[0, np.cumsum(ind.astype(np.int64))]
        res = (c[m.hi] - c[np.minimum(m.lo + 1, m.hi)]).astype(np.float64)
    else:
        res = np.zeros(m.lo.shape)
    return range_result(m, res, ok)


def f_changes(ctx: EvalContext, call: Call) -> Value:
    return _transitions(ctx, call, "changes")


def f_resets(ctx: EvalContext, call: Call) -> Value:
    return _transitions(ctx, call, "resets")


def _linreg_rows(t: I64, v: F64, mask: np.ndarray, intercept: I64) -> tuple[F64, F64]:
    """Prometheus's ``linearRegression`` for every row: (slope, intercept at ``intercept``)."""
    n = mask.sum(axis=1).astype(np.float64)
    x = np.where(mask, (t - intercept[:, None]) / 1000.0, 0.0)
    y = np.where(mask, v, 0.0)
    sx = x.sum(axis=1)
    sy = y.sum(axis=1)
    sxy = (x * y).sum(axis=1)
    sxx = (x * x).sum(axis=1)
    cov = sxy - sx * sy / n
    var = sxx - sx * sx / n
    slope = cov / var
    icpt = sy / n - slope * sx / n
    first = v[:, 0]
    const = ((v == first[:, None]) | ~mask).all(axis=1)
    inf = np.isinf(first)
    slope = np.where(const, np.where(inf, np.nan, 0.0), slope)
    icpt = np.where(const, np.where(inf, np.nan, first), icpt)
    return slope, icpt


def f_deriv(ctx: EvalContext, call: Call) -> Value:
    m = call.matrix(0)
    res = np.zeros(m.lo.shape)
    ok = np.zeros(m.lo.shape, dtype=bool)
    for ss, jj, t, v, mask in padded_windows(ctx, m, 2):
        res[ss, jj] = _linreg_rows(t, v, mask, t[:, 0])[0]
        ok[ss, jj] = True
    return range_result(m, res, ok)


def f_predict_linear(ctx: EvalContext, call: Call) -> Value:
    m = call.matrix(0)
    dur = call.scalar(1)
    res = np.zeros(m.lo.shape)
    ok = np.zeros(m.lo.shape, dtype=bool)
    for ss, jj, t, v, mask in padded_windows(ctx, m, 2):
        slope, icpt = _linreg_rows(t, v, mask, call.times[jj])
        res[ss, jj] = icpt + slope * dur[jj]
        ok[ss, jj] = True
    return range_result(m, res, ok)


def f_double_exponential_smoothing(ctx: EvalContext, call: Call) -> Value:
    m = call.matrix(0)
    sf = call.scalar(1)
    tf = call.scalar(2)

    def fn(ts: I64, v: F64, j: int) -> float | None:
        s, t = float(sf[j]), float(tf[j])
        if not (0 < s < 1):
            raise EvaluationError(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {s:f}")
        if not (0 < t < 1):
            raise EvaluationError(f"invalid trend factor. Expected: 0 < tf < 1, got: {t:f}")
        xs = v.tolist()
        if len(xs) < 2:
            return None
        s0, s1 = 0.0, xs[0]
        b = xs[1] - xs[0]
        for i in range(1, len(xs)):
            x = s * xs[i]
            if i - 1 != 0:
                b = t * (s1 - s0) + (1 - t) * b
            y = (1 - s) * (s1 + b)
            s0, s1 = s1, x + y
        return s1

    res, ok = per_window(m, fn, ctx)
    return range_result(m, res, ok)


FUNCTIONS: dict[str, FuncImpl] = {
    "rate": f_rate,
    "increase": f_increase,
    "delta": f_delta,
    "irate": f_irate,
    "idelta": f_idelta,
    "changes": f_changes,
    "resets": f_resets,
    "deriv": f_deriv,
    "predict_linear": f_predict_linear,
    "holt_winters": f_double_exponential_smoothing,
    "double_exponential_smoothing": f_double_exponential_smoothing,
}


def _with_histograms() -> None:
    """Give every range function here its native-histogram rule (see ``histrange``)."""
    cells = {
        "rate": hr.c_rate,
        "increase": hr.c_increase,
        "delta": hr.c_delta,
        "irate": hr.c_irate,
        "idelta": hr.c_idelta,
        "changes": hr.c_changes,
        "resets": hr.c_resets,
    }
    for name, impl in list(FUNCTIONS.items()):
        cell = cells.get(name) or hr.floats_ignoring(impl)
        FUNCTIONS[name] = hr.with_histograms(impl, cell)


_with_histograms()
