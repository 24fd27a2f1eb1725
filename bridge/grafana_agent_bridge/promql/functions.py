"""PromQL functions on float samples.

The functions dashboards run over many series and steps (``rate``, ``increase``, ``delta``,
``irate``, the cheap ``*_over_time``, ``changes``/``resets``) are vectorised over all windows
at once; the rest evaluate window by window with the exact arithmetic Prometheus uses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import promql_parser as pp

from .. import regex as promql_regex
from ..labels import METRIC_NAME, Labels, Matcher, MatchType, is_valid_label_name
from .aggregations import format_float, kahan_sum, quantile, quantile_sorted
from .binops import merge_rows
from .errors import EvaluationError
from .selection import window_reduce
from .values import F64, I64, Matrix, Scalar, String, Value, Vector, drop_name

if TYPE_CHECKING:
    from .engine import Evaluator

Args = list[Any]
FuncImpl = Callable[["Evaluator", Args, I64], Value]

_COUNTER_SUFFIXES = ("_total", "_sum", "_count", "_bucket")


def call(ev: Evaluator, node: pp.Call, times: I64) -> Value:
    name = node.func.name
    args = list(node.args)
    fn = _FUNCS.get(name)
    if fn is None:
        raise EvaluationError(f"function {name}() is not supported")
    return fn(ev, args, times)


# --- helpers -----------------------------------------------------------------------------------


def _vec(ev: Evaluator, node: pp.Expr, times: I64) -> Vector:
    v = ev.eval(node, times)
    if not isinstance(v, Vector):
        raise EvaluationError("expected instant vector argument")
    return v


def _scalar(ev: Evaluator, node: pp.Expr, times: I64) -> F64:
    v = ev.eval(node, times)
    if not isinstance(v, Scalar):
        raise EvaluationError("expected scalar argument")
    return v.values


def _str(ev: Evaluator, node: pp.Expr, times: I64) -> str:
    v = ev.eval(node, times)
    if not isinstance(v, String):
        raise EvaluationError("expected string argument")
    return v.value


def _mat(ev: Evaluator, node: pp.Expr, times: I64) -> Matrix:
    v = ev.eval(node, times)
    if not isinstance(v, Matrix):
        raise EvaluationError("expected range vector argument")
    return v


def _result(
    ev: Evaluator, m: Matrix, vals: F64, present: np.ndarray, *, keep_name: bool = False
) -> Vector:
    keep = present.any(axis=1)
    if keep.all():
        labels = m.labels if keep_name else [drop_name(lb) for lb in m.labels]
        return merge_rows(ev, labels, vals, present)
    idx = np.flatnonzero(keep)
    labels = [m.labels[i] if keep_name else drop_name(m.labels[i]) for i in idx]
    return merge_rows(ev, labels, vals[idx], present[idx])


def _per_window(
    m: Matrix, fn: Callable[[I64, F64, int], float | None], ev: object = None
) -> tuple[F64, np.ndarray]:
    """``fn(timestamps, values, step)`` for every non-empty window: the exact but slow path."""
    nser, nsteps = m.lo.shape
    out = np.zeros((nser, nsteps))
    pres = np.zeros((nser, nsteps), dtype=bool)
    check = getattr(ev, "check", None)
    for s in range(nser):
        for j in range(nsteps):
            if check is not None and j % 64 == 0:
                check()  # a long Python loop must still honour the timeout and cancellation
            a, b = int(m.lo[s, j]), int(m.hi[s, j])
            if b <= a:
                continue
            r = fn(m.ts[a:b], m.vals[a:b], j)
            if r is not None:
                out[s, j] = r
                pres[s, j] = True
    return out, pres


def _name(lb: Labels) -> str:
    for n, v in lb:
        if n == METRIC_NAME:
            return v
    return ""


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- counters and gauges over windows -----------------------------------------------------------


def _extrapolated(ev: Evaluator, args: Args, times: I64, *, counter: bool, rate: bool) -> Vector:
    m = _mat(ev, args[0], times)
    lo, hi = m.lo, m.hi
    cnt = hi - lo
    ok = cnt >= 2
    if counter:
        rows = np.flatnonzero(ok.any(axis=1))
        for name in sorted({_name(m.labels[i]) for i in rows}):
            if name and not name.endswith(_COUNTER_SUFFIXES):
                ev.info(
                    "PromQL info: metric might not be a counter, name does not end in "
                    f"_total/_sum/_count/_bucket: {_q(name)}"
                )
    if not ok.any():
        return Vector.empty(m.nsteps)
    # Cells without two samples compute garbage (indices clipped into range), then are masked.
    n = len(m.vals)
    first_i = np.minimum(lo, n - 1)
    last_i = np.maximum(hi - 1, 0)
    first = m.vals[first_i]
    result = m.vals[last_i] - first
    if counter:
        result += _reset_corrections(m, lo, hi)
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
            to_zero = sampled * (first / result)
            np.copyto(to_start, to_zero, where=(result > 0) & (first >= 0) & (to_zero < to_start))
        np.copyto(to_end, half, where=to_end >= threshold)
        factor = (sampled + to_start + to_end) / sampled
        if rate:
            factor /= m.range_ms / 1000.0
        result *= factor
    return _result(ev, m, result, ok)


def _reset_corrections(m: Matrix, lo: I64, hi: I64) -> F64:
    """Per window, the sum of the values just before each counter reset inside it."""
    prev = np.r_[0.0, m.vals[:-1]]
    drop = m.vals < prev
    drop[m.offsets[:-1][np.diff(m.offsets) > 0]] = False
    if not drop.any():
        return np.zeros(lo.shape)
    # Count resets per window exactly (integers); sum values only where there are any.
    c = np.r_[0, np.cumsum(drop)]
    lo1 = np.minimum(lo + 1, hi)
    has = (c[hi] - c[lo1]) > 0
    out = np.zeros(lo.shape)
    if has.any():
        corr = np.where(drop, prev, 0.0)
        out[has] = window_reduce(np.add, corr, lo1[has], hi[has], 0.0)
    return out


def f_rate(ev: Evaluator, args: Args, times: I64) -> Value:
    return _extrapolated(ev, args, times, counter=True, rate=True)


def f_increase(ev: Evaluator, args: Args, times: I64) -> Value:
    return _extrapolated(ev, args, times, counter=True, rate=False)


def f_delta(ev: Evaluator, args: Args, times: I64) -> Value:
    return _extrapolated(ev, args, times, counter=False, rate=False)


def _instant_delta(ev: Evaluator, args: Args, times: I64, *, rate: bool) -> Vector:
    m = _mat(ev, args[0], times)
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
    return _result(ev, m, res, ok)


def f_irate(ev: Evaluator, args: Args, times: I64) -> Value:
    return _instant_delta(ev, args, times, rate=True)


def f_idelta(ev: Evaluator, args: Args, times: I64) -> Value:
    return _instant_delta(ev, args, times, rate=False)


def _transitions(ev: Evaluator, args: Args, times: I64, kind: str) -> Vector:
    m = _mat(ev, args[0], times)
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
    return _result(ev, m, res, ok)


def f_changes(ev: Evaluator, args: Args, times: I64) -> Value:
    return _transitions(ev, args, times, "changes")


def f_resets(ev: Evaluator, args: Args, times: I64) -> Value:
    return _transitions(ev, args, times, "resets")


# --- *_over_time ---------------------------------------------------------------------------------


def _over_time(kind: str) -> FuncImpl:
    def fn(ev: Evaluator, args: Args, times: I64) -> Value:
        m = _mat(ev, args[0], times)
        cnt = m.hi - m.lo
        ok = cnt > 0
        keep_name = False
        with np.errstate(all="ignore"):
            if kind == "count":
                res = cnt.astype(np.float64)
            elif kind == "present":
                res = np.ones(cnt.shape)
            elif kind == "sum":
                res = _sum_windows(m)
            elif kind == "avg":
                res = _avg_windows(m)
            elif kind == "min":
                res = window_reduce(np.fmin, m.vals, m.lo, m.hi, np.nan)
            elif kind == "max":
                res = window_reduce(np.fmax, m.vals, m.lo, m.hi, np.nan)
            elif kind in ("last", "first"):
                idx = np.where(ok, m.hi - 1 if kind == "last" else m.lo, 0)
                res = m.vals[idx] if len(m.vals) else np.zeros(cnt.shape)
                keep_name = True
            elif kind in ("ts_of_last", "ts_of_first"):
                idx = np.where(ok, m.hi - 1 if kind == "ts_of_last" else m.lo, 0)
                res = (m.ts[idx] / 1000.0) if len(m.ts) else np.zeros(cnt.shape)
            elif kind in ("stdvar", "stddev"):
                res, ok = _variance_windows(ev, m)
                if kind == "stddev":
                    res = np.sqrt(res)
            else:
                res, ok = _per_window(m, _WINDOW_FNS[kind], ev)
        return _result(ev, m, res, ok, keep_name=keep_name)

    return fn


def _sum_windows(m: Matrix) -> F64:
    """Window sums; windows whose sum cancels (small next to the sum of magnitudes) are redone
    with Kahan summation as Prometheus does."""
    with np.errstate(all="ignore"):
        res = window_reduce(np.add, m.vals, m.lo, m.hi, 0.0)
        mags = window_reduce(np.add, np.abs(m.vals), m.lo, m.hi, 0.0)
        cnt = m.hi - m.lo
        risky = (mags * cnt * 2.3e-16 > np.abs(res) * 1e-9) & np.isfinite(mags) & (cnt > 1)
    for s, j in zip(*np.nonzero(risky)):
        a, b = int(m.lo[s, j]), int(m.hi[s, j])
        res[s, j] = kahan_sum(m.vals[a:b].tolist())
    return res


def _avg_windows(m: Matrix) -> F64:
    cnt = np.maximum(m.hi - m.lo, 1)
    with np.errstate(all="ignore"):
        res = _sum_windows(m) / cnt
        over = np.isinf(res)
        if over.any():
            res2, _ = _per_window(m, lambda ts, v, j: _incremental_mean(v))
            res = np.where(over, res2, res)
    return res


def _incremental_mean(v: F64) -> float:
    if np.isinf(v).any():
        return float(np.sum(v)) / len(v)
    mean = 0.0
    for i, x in enumerate(v.tolist()):
        mean += (x - mean) / (i + 1)
    return mean


def _ts_of(kind: str) -> Callable[[I64, F64, int], float | None]:
    def fn(ts: I64, v: F64, j: int) -> float | None:
        best = None
        for i, x in enumerate(v.tolist()):
            if best is None or (
                (x > v[best] if kind == "max" else x < v[best]) or math.isnan(v[best])
            ):
                if math.isnan(x) and best is not None:
                    continue
                best = i
            elif (x == v[best]) and kind in ("max", "min"):
                best = i
        assert best is not None
        return float(ts[best]) / 1000.0

    return fn


def _mad(ts: I64, v: F64, j: int) -> float | None:
    med = float(np.median(v))
    return float(np.median(np.abs(v - med)))


_WINDOW_FNS: dict[str, Callable[[I64, F64, int], float | None]] = {
    "mad": _mad,
    "ts_of_max": _ts_of("max"),
    "ts_of_min": _ts_of("min"),
}


def f_quantile_over_time(ev: Evaluator, args: Args, times: I64) -> Value:
    q = _scalar(ev, args[0], times)
    m = _mat(ev, args[1], times)
    bad = (q < 0) | (q > 1) | np.isnan(q)
    if bad.any() and (m.hi > m.lo).any():
        ev.warn(
            "PromQL warning: quantile value should be between 0 and 1, got "
            + format_float(float(q[bad][0]))
        )
    res = np.zeros(m.lo.shape)
    ok = np.zeros(m.lo.shape, dtype=bool)
    for ss, jj, _, v, mask in _padded_windows(ev, m, 1):
        n = mask.sum(axis=1)
        srt = np.sort(np.where(mask, v, np.inf), axis=1)
        res[ss, jj] = quantile_sorted(srt, n, q[jj])
        ok[ss, jj] = True
        nan = (np.isnan(v) & mask).any(axis=1)
        for k in np.flatnonzero(nan):  # NaN sorts first in Prometheus: the exact path
            res[ss[k], jj[k]] = quantile(float(q[jj[k]]), v[k][mask[k]].tolist())
    return _result(ev, m, res, ok)


def f_absent_over_time(ev: Evaluator, args: Args, times: I64) -> Value:
    m = _mat(ev, args[0], times)
    any_p = np.zeros(len(times), dtype=bool)
    if m.labels:
        any_p = np.asarray((m.hi > m.lo).any(axis=0), dtype=bool)
    return _absent_result(args[0], ~any_p)


def _padded_windows(
    ev: Evaluator, m: Matrix, min_count: int
) -> Iterator[tuple[I64, I64, I64, F64, np.ndarray]]:
    """Windows with at least ``min_count`` samples, in chunks, as padded 2-D arrays:
    (series index, step index, timestamps, values, mask). This runs per-window statistics as
    numpy reductions along rows instead of a Python loop per window."""
    cnt = m.hi - m.lo
    rows, cols = np.nonzero(cnt >= min_count)
    if not len(rows):
        return
    longest = int(cnt[rows, cols].max())
    chunk = max(1, 2_000_000 // longest)
    for a in range(0, len(rows), chunk):
        ev.check()
        ss, jj = rows[a : a + chunk], cols[a : a + chunk]
        lo = m.lo[ss, jj]
        ln = cnt[ss, jj]
        width = np.arange(int(ln.max()))
        mask = width[None, :] < ln[:, None]
        idx = np.where(mask, lo[:, None] + width[None, :], lo[:, None])
        yield ss, jj, m.ts[idx], m.vals[idx], mask


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


def f_deriv(ev: Evaluator, args: Args, times: I64) -> Value:
    m = _mat(ev, args[0], times)
    res = np.zeros(m.lo.shape)
    ok = np.zeros(m.lo.shape, dtype=bool)
    for ss, jj, t, v, mask in _padded_windows(ev, m, 2):
        res[ss, jj] = _linreg_rows(t, v, mask, t[:, 0])[0]
        ok[ss, jj] = True
    return _result(ev, m, res, ok)


def f_predict_linear(ev: Evaluator, args: Args, times: I64) -> Value:
    m = _mat(ev, args[0], times)
    dur = _scalar(ev, args[1], times)
    res = np.zeros(m.lo.shape)
    ok = np.zeros(m.lo.shape, dtype=bool)
    for ss, jj, t, v, mask in _padded_windows(ev, m, 2):
        slope, icpt = _linreg_rows(t, v, mask, times[jj])
        res[ss, jj] = icpt + slope * dur[jj]
        ok[ss, jj] = True
    return _result(ev, m, res, ok)


def _variance_windows(ev: Evaluator, m: Matrix) -> tuple[F64, np.ndarray]:
    """Population variance per window (exactly 0 when all values are equal, like upstream's
    incremental algorithm)."""
    res = np.zeros(m.lo.shape)
    ok = np.zeros(m.lo.shape, dtype=bool)
    for ss, jj, _, v, mask in _padded_windows(ev, m, 1):
        n = mask.sum(axis=1)
        y = np.where(mask, v, 0.0)
        mean = y.sum(axis=1) / n
        var = np.where(mask, (v - mean[:, None]) ** 2, 0.0).sum(axis=1) / n
        const = ((v == v[:, :1]) | ~mask).all(axis=1) & np.isfinite(v[:, 0])
        res[ss, jj] = np.where(const, 0.0, var)
        ok[ss, jj] = True
    return res, ok


def f_double_exponential_smoothing(ev: Evaluator, args: Args, times: I64) -> Value:
    m = _mat(ev, args[0], times)
    sf = _scalar(ev, args[1], times)
    tf = _scalar(ev, args[2], times)

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

    res, ok = _per_window(m, fn, ev)
    return _result(ev, m, res, ok)


# --- instant-vector math ---------------------------------------------------------------------


def _elementwise(f: Callable[[F64], F64]) -> FuncImpl:
    def fn(ev: Evaluator, args: Args, times: I64) -> Value:
        v = _vec(ev, args[0], times)
        with np.errstate(all="ignore"):
            vals = f(v.values)
        return merge_rows(ev, [drop_name(lb) for lb in v.labels], vals, v.present.copy())

    return fn


def _sgn(x: F64) -> F64:
    return np.where(np.isnan(x), x, np.sign(x))


def f_round(ev: Evaluator, args: Args, times: I64) -> Value:
    v = _vec(ev, args[0], times)
    to = _scalar(ev, args[1], times) if len(args) > 1 else np.ones(len(times))
    with np.errstate(all="ignore"):
        inv = 1.0 / to
        vals = np.floor(v.values * inv[None, :] + 0.5) / inv[None, :]
    return merge_rows(ev, [drop_name(lb) for lb in v.labels], vals, v.present.copy())


def f_clamp(ev: Evaluator, args: Args, times: I64) -> Value:
    v = _vec(ev, args[0], times)
    lo = _scalar(ev, args[1], times)
    hi = _scalar(ev, args[2], times)
    present = v.present & ~(hi < lo)[None, :]
    vals = np.minimum(np.maximum(v.values, lo[None, :]), hi[None, :])
    return merge_rows(ev, [drop_name(lb) for lb in v.labels], vals, present)


def f_clamp_min(ev: Evaluator, args: Args, times: I64) -> Value:
    v = _vec(ev, args[0], times)
    lo = _scalar(ev, args[1], times)
    vals = np.maximum(v.values, lo[None, :])
    return merge_rows(ev, [drop_name(lb) for lb in v.labels], vals, v.present.copy())


def f_clamp_max(ev: Evaluator, args: Args, times: I64) -> Value:
    v = _vec(ev, args[0], times)
    hi = _scalar(ev, args[1], times)
    vals = np.minimum(v.values, hi[None, :])
    return merge_rows(ev, [drop_name(lb) for lb in v.labels], vals, v.present.copy())


def f_timestamp(ev: Evaluator, args: Args, times: I64) -> Value:
    v = _vec(ev, args[0], times)
    if v.sample_ts is not None:
        vals = v.sample_ts / 1000.0
    else:
        vals = np.broadcast_to(times / 1000.0, v.values.shape).copy()
    return merge_rows(ev, [drop_name(lb) for lb in v.labels], vals, v.present.copy())


def f_time(ev: Evaluator, args: Args, times: I64) -> Value:
    return Scalar(times / 1000.0)


def f_pi(ev: Evaluator, args: Args, times: I64) -> Value:
    return Scalar(np.full(len(times), math.pi))


def f_vector(ev: Evaluator, args: Args, times: I64) -> Value:
    s = _scalar(ev, args[0], times)
    return Vector([()], s[None, :].copy(), np.ones((1, len(times)), dtype=bool))


def f_scalar(ev: Evaluator, args: Args, times: I64) -> Value:
    v = _vec(ev, args[0], times)
    out = np.full(len(times), np.nan)
    if v.labels:
        cnt = v.present.sum(axis=0)
        one = cnt == 1
        if one.any():
            row = np.argmax(v.present, axis=0)
            out = np.where(one, v.values[row, np.arange(len(times))], np.nan)
    return Scalar(out)


def _date_fn(kind: str) -> FuncImpl:
    def fn(ev: Evaluator, args: Args, times: I64) -> Value:
        if args:
            v = _vec(ev, args[0], times)
        else:
            v = Vector([()], (times / 1000.0)[None, :], np.ones((1, len(times)), dtype=bool))
        vals = v.values
        finite = np.isfinite(vals)
        secs = np.where(finite, np.floor(np.where(finite, vals, 0)), 0).astype(np.int64)
        dt = secs.astype("datetime64[s]")
        years = dt.astype("datetime64[Y]")
        months = dt.astype("datetime64[M]")
        days = dt.astype("datetime64[D]")
        if kind == "year":
            out = years.astype(np.int64) + 1970
        elif kind == "month":
            out = months.astype(np.int64) % 12 + 1
        elif kind == "day_of_month":
            out = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
        elif kind == "day_of_year":
            out = (days - years.astype("datetime64[D]")).astype(np.int64) + 1
        elif kind == "day_of_week":
            out = (days.astype(np.int64) + 4) % 7
        elif kind == "hour":
            out = (secs // 3600) % 24
        elif kind == "minute":
            out = (secs // 60) % 60
        elif kind == "days_in_month":
            nxt = (months + 1).astype("datetime64[D]")
            out = (nxt - months.astype("datetime64[D]")).astype(np.int64)
        else:
            raise EvaluationError(kind)
        res = np.where(finite, out.astype(np.float64), np.nan)
        return merge_rows(ev, [drop_name(lb) for lb in v.labels], res, v.present.copy())

    return fn


# --- labels ------------------------------------------------------------------------------------


_TEMPLATE = re.compile(r"\$(?:\$|\{([a-zA-Z0-9_]*)\}|([a-zA-Z0-9_]+))")


def expand_template(template: str, groups: Sequence[str | None], names: Mapping[str, int]) -> str:
    """Go's ``Regexp.ExpandString``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``.

    ``groups`` are the match's groups from 0 (``None`` when a group did not take part);
    ``names`` maps group names to their numbers. Unknown groups expand to nothing.
    """

    def rep(t: re.Match[str]) -> str:
        if t.group(0) == "$$":
            return "$"
        name = t.group(1) if t.group(1) is not None else t.group(2)
        if name is None or name == "":
            return ""
        index = int(name) if name.isdigit() else names.get(name, -1)
        if 0 <= index < len(groups):
            return groups[index] or ""
        return ""

    out = []
    pos = 0
    for t in _TEMPLATE.finditer(template):
        if t.group(0) == "${}" or (
            t.group(1) is None and t.group(2) is None and t.group(0) != "$$"
        ):
            continue
        out.append(template[pos : t.start()])
        out.append(rep(t))
        pos = t.end()
    out.append(template[pos:])
    return "".join(out)


def _set_label(lb: Labels, name: str, value: str) -> Labels:
    d = dict(lb)
    if value:
        d[name] = value
    else:
        d.pop(name, None)
    return tuple(sorted(d.items()))


def f_label_replace(ev: Evaluator, args: Args, times: I64) -> Value:
    v = _vec(ev, args[0], times)
    dst = _str(ev, args[1], times)
    repl = _str(ev, args[2], times)
    src = _str(ev, args[3], times)
    pattern = _str(ev, args[4], times)
    try:
        rx = promql_regex.Regex(pattern)
    except promql_regex.RegexError as e:
        raise EvaluationError(
            f"invalid regular expression in label_replace(): {pattern}: {e}"
        ) from None
    if not is_valid_label_name(dst):
        raise EvaluationError(f"invalid destination label name in label_replace(): {dst}")
    labels = []
    for lb in v.labels:
        ev.check()  # a deadline inside the per-series regex loop
        groups = rx.groups_of(dict(lb).get(src, ""))
        labels.append(
            lb if groups is None else _set_label(lb, dst, expand_template(repl, groups, rx.names))
        )
    return merge_rows(ev, labels, v.values, v.present)


def f_label_join(ev: Evaluator, args: Args, times: I64) -> Value:
    v = _vec(ev, args[0], times)
    dst = _str(ev, args[1], times)
    sep = _str(ev, args[2], times)
    srcs = [_str(ev, a, times) for a in args[3:]]
    if not is_valid_label_name(dst):
        raise EvaluationError(f"invalid destination label name in label_join(): {dst}")
    labels = []
    for lb in v.labels:
        d = dict(lb)
        labels.append(_set_label(lb, dst, sep.join(d.get(s, "") for s in srcs)))
    return merge_rows(ev, labels, v.values, v.present)


# --- ordering ------------------------------------------------------------------------------------


def _sorter(desc: bool) -> FuncImpl:
    def fn(ev: Evaluator, args: Args, times: I64) -> Value:
        v = _vec(ev, args[0], times)
        if len(times) != 1 or not v.labels:
            return Vector(v.labels, v.values, v.present)  # order only matters for instant
        vals = v.values[:, 0]
        nan = np.isnan(vals)
        key = -vals if desc else vals
        order = np.lexsort((np.where(nan, 0, key), nan))
        return Vector([v.labels[i] for i in order], v.values[order], v.present[order])

    return fn


def _natural_key(s: str) -> list[object]:
    return [(0, int(p), p) if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", s) if p]


def _sort_by_label(desc: bool) -> FuncImpl:
    def fn(ev: Evaluator, args: Args, times: I64) -> Value:
        v = _vec(ev, args[0], times)
        names = [_str(ev, a, times) for a in args[1:]]
        if len(times) != 1 or not v.labels:
            return Vector(v.labels, v.values, v.present)  # order only matters for instant

        def key(i: int) -> tuple[object, ...]:
            d = dict(v.labels[i])
            return (*[_natural_key(d.get(n, "")) for n in names], v.labels[i])

        order = sorted(range(len(v.labels)), key=key, reverse=desc)
        return Vector([v.labels[i] for i in order], v.values[order], v.present[order])

    return fn


# --- absent --------------------------------------------------------------------------------------


def _absent_labels(node: pp.Expr) -> Labels:
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    vs = None
    if isinstance(node, pp.VectorSelector):
        vs = node
    elif isinstance(node, pp.MatrixSelector):
        vs = node.vector_selector
    if vs is None:
        return ()
    seen: dict[str, str] = {}
    dup: set[str] = set()
    for m in vs.matchers.matchers:
        if m.name == METRIC_NAME:
            continue
        if m.name in seen or m.name in dup:
            dup.add(m.name)
        is_equal = str(m.op).endswith("Equal") and not str(m.op).endswith("NotEqual")
        if is_equal:
            seen[m.name] = m.value
        else:
            dup.add(m.name)
    return tuple(sorted((n, v) for n, v in seen.items() if n not in dup and v != ""))


def _absent_result(node: pp.Expr, missing: np.ndarray) -> Vector:
    if not missing.any():
        return Vector.empty(len(missing))
    return Vector([_absent_labels(node)], np.ones((1, len(missing))), missing[None, :].copy())


def f_absent(ev: Evaluator, args: Args, times: I64) -> Value:
    v = _vec(ev, args[0], times)
    any_p = np.zeros(len(times), dtype=bool)
    if v.labels:
        any_p = np.asarray(v.present.any(axis=0), dtype=bool)
    return _absent_result(args[0], ~any_p)


# --- classic histograms ---------------------------------------------------------------------


def _parse_le(s: str) -> float | None:
    t = s.strip()
    if t != s or not t:
        return None
    try:
        return float(t)
    except ValueError:
        return None


def _go_div(a: float, b: float) -> float:
    """Float division as Go does it: x/0 is +-Inf, 0/0 is NaN (Python raises)."""
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
    return a / b


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> tuple[float, bool]:
    """Prometheus's ``BucketQuantile`` over (upper bound, cumulative count) pairs."""
    if math.isnan(q):
        return math.nan, False
    if q < 0:
        return -math.inf, False
    if q > 1:
        return math.inf, False
    bs = sorted(buckets, key=lambda b: b[0])
    if not bs or not (math.isinf(bs[-1][0]) and bs[-1][0] > 0):
        return math.nan, False
    merged: list[list[float]] = []
    for ub, c in bs:
        if merged and merged[-1][0] == ub:
            merged[-1][1] += c
        else:
            merged.append([ub, c])
    forced = False
    prev = merged[0][1]
    for b in merged[1:]:
        cur = b[1]
        if cur == prev:
            continue
        if abs(cur - prev) <= 1e-12 * max(abs(cur), abs(prev)):
            b[1] = prev
            continue
        if cur < prev:
            b[1] = prev
            forced = True
            continue
        prev = cur
    if len(merged) < 2:
        return math.nan, forced
    total = merged[-1][1]
    if total == 0 or math.isnan(total):
        return math.nan, forced
    rank = q * total
    b = len(merged) - 1
    for i in range(len(merged) - 1):
        if merged[i][1] >= rank:
            b = i
            break
    if b == len(merged) - 1:
        return merged[-2][0], forced
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0], forced
    start = 0.0
    end = merged[b][0]
    count = merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return start + (end - start) * _go_div(rank, count), forced


def _bucket_groups(ev: Evaluator, v: Vector) -> dict[Labels, list[tuple[int, float]]]:
    """Classic histogram series grouped by their labels without ``le``: (row, upper bound)."""
    groups: dict[Labels, list[tuple[int, float]]] = {}
    for i, lb in enumerate(v.labels):
        d = dict(lb)
        le = d.get("le")
        parsed = _parse_le(le) if le is not None else None
        if parsed is None:
            if v.present[i].any():
                ev.warn(
                    f'PromQL warning: bucket label "le" is missing or has a malformed value of '
                    f"{_q(le or '')} for metric name {_q(d.get(METRIC_NAME, ''))}"
                )
            continue
        # Grouped with the name, which goes only from the result (Prometheus 3.x removes it
        # late): two histograms that differ only by name are an error, not one histogram.
        key = tuple(p for p in lb if p[0] != "le")
        groups.setdefault(key, []).append((i, parsed))
    return groups


def f_histogram_quantile(ev: Evaluator, args: Args, times: I64) -> Value:
    q = _scalar(ev, args[0], times)
    v = _vec(ev, args[1], times)
    nsteps = len(times)
    bad = (q < 0) | (q > 1) | np.isnan(q)
    if bad.any():
        ev.warn(
            "PromQL warning: quantile value should be between 0 and 1, got "
            + format_float(float(q[bad][0]))
        )
    groups = _bucket_groups(ev, v)
    labels = list(groups)
    out = np.zeros((len(labels), nsteps))
    pres = np.zeros((len(labels), nsteps), dtype=bool)
    for g, key in enumerate(labels):
        members = groups[key]
        name = ""
        for i, _ in members:
            name = dict(v.labels[i]).get(METRIC_NAME, "")
            break
        steps = range(nsteps)
        fast = _bucket_quantile_steps(q, v, members)
        if fast is not None:
            res_fast, done, forced_any = fast
            out[g] = res_fast
            pres[g] = done
            if forced_any:
                ev.info(
                    "PromQL info: input to histogram_quantile needed to be fixed for "
                    "monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/"
                    f"functions/#histogram_quantile) for metric name {_q(name)}"
                )
            steps = [j for j in range(nsteps) if not done[j]]
        ev.check()
        for j in steps:
            bs = [(ub, float(v.values[i, j])) for i, ub in members if v.present[i, j]]
            if not bs:
                continue
            res, forced = bucket_quantile(float(q[j]), bs)
            if forced:
                ev.info(
                    "PromQL info: input to histogram_quantile needed to be fixed for "
                    "monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/"
                    f"functions/#histogram_quantile) for metric name {_q(name)}"
                )
            out[g, j] = res
            pres[g, j] = True
    return merge_rows(ev, [drop_name(lb) for lb in labels], out, pres)


def _bucket_quantile_steps(
    q: F64, v: Vector, members: list[tuple[int, float]]
) -> tuple[F64, np.ndarray, bool] | None:
    """``bucket_quantile`` for all steps of one histogram at once, for the regular steps: all
    buckets present, no NaN, distinct bounds ending in +Inf, 0 <= q <= 1. Returns (results,
    which steps were done, whether monotonicity had to be forced); irregular steps are left to
    the exact per-step path."""
    if len(members) < 2:
        return None
    order = sorted(members, key=lambda m: m[1])
    bounds = np.array([ub for _, ub in order])
    if not (math.isinf(bounds[-1]) and bounds[-1] > 0) or (np.diff(bounds) == 0).any():
        return None
    rows = [i for i, _ in order]
    counts = v.values[rows]
    regular = v.present[rows].all(axis=0) & ~np.isnan(counts).any(axis=0)
    regular &= (q >= 0) & (q <= 1)
    if not regular.any():
        return None
    fixed = np.maximum.accumulate(np.where(np.isnan(counts), -np.inf, counts), axis=0)
    diff = fixed - counts
    tolerance = 1e-12 * np.abs(fixed)
    forced = bool(((diff > tolerance) & regular[None, :]).any())
    total = fixed[-1]
    rank = q * total
    below = fixed[:-1] >= rank[None, :]
    b = np.where(below.any(axis=0), np.argmax(below, axis=0), len(bounds) - 1)
    cols = np.arange(len(q))
    prev_b = np.maximum(b - 1, 0)
    start = np.where(b > 0, bounds[prev_b], 0.0)
    end = bounds[np.minimum(b, len(bounds) - 1)]
    count = fixed[b, cols] - np.where(b > 0, fixed[prev_b, cols], 0.0)
    r = rank - np.where(b > 0, fixed[prev_b, cols], 0.0)
    with np.errstate(all="ignore"):  # 0/0 is NaN, as in Go
        res = start + (end - start) * (r / count)
    res = np.where(b == len(bounds) - 1, bounds[-2], res)
    res = np.where((b == 0) & (bounds[0] <= 0), bounds[0], res)
    res = np.where(total == 0, np.nan, res)
    return np.where(regular, res, 0.0), regular, forced


def bucket_fraction(lower: float, upper: float, buckets: list[tuple[float, float]]) -> float:
    """The fraction of observations in ``[lower, upper]`` from classic cumulative buckets.

    Like Prometheus: linear interpolation inside a bucket; the lowest bucket starts at 0 when
    its upper bound is positive (else at -Inf); a bound falling inside a bucket of infinite
    width takes none of it.
    """
    bs = sorted(buckets, key=lambda b: b[0])
    if not bs or not (math.isinf(bs[-1][0]) and bs[-1][0] > 0):
        return math.nan
    merged: list[list[float]] = []
    for ub, c in bs:
        if merged and merged[-1][0] == ub:
            merged[-1][1] += c
        else:
            merged.append([ub, c])
    prev = merged[0][1]
    for b in merged[1:]:
        b[1] = max(b[1], prev)
        prev = b[1]
    total = merged[-1][1]
    if total == 0 or math.isnan(total) or math.isnan(lower) or math.isnan(upper):
        return math.nan
    if lower >= upper:
        return 0.0
    rank = 0.0
    lower_rank = upper_rank = total
    lower_set = upper_set = False
    prev_ub = None
    prev_cum = 0.0
    for ub, cum in merged:
        count = cum - prev_cum
        lo_b = prev_ub if prev_ub is not None else (0.0 if ub > 0 else -math.inf)
        if not lower_set and lo_b >= lower:
            lower_rank, lower_set = rank, True
        if not upper_set and lo_b >= upper:
            upper_rank, upper_set = rank, True
        if lower_set and upper_set:
            break
        if not lower_set and lo_b < lower < ub:
            lower_rank = _position(rank, count, lo_b, ub, lower)
            lower_set = True
        if not upper_set and lo_b < upper < ub:
            upper_rank = _position(rank, count, lo_b, ub, upper)
            upper_set = True
        if lower_set and upper_set:
            break
        rank += count
        prev_ub, prev_cum = ub, cum
    lower_rank = min(lower_rank, total)
    upper_rank = min(upper_rank, total)
    return (upper_rank - lower_rank) / total


def _position(rank: float, count: float, lo_b: float, ub: float, x: float) -> float:
    """The rank of ``x`` inside a bucket: interpolated, or at the finite end of an infinite
    bucket (which thus contributes nothing)."""
    if math.isinf(lo_b):
        return rank + count
    if math.isinf(ub):
        return rank
    return rank + count * (x - lo_b) / (ub - lo_b)


def f_histogram_fraction(ev: Evaluator, args: Args, times: I64) -> Value:
    lower = _scalar(ev, args[0], times)
    upper = _scalar(ev, args[1], times)
    v = _vec(ev, args[2], times)
    groups = _bucket_groups(ev, v)
    labels = list(groups)
    out = np.zeros((len(labels), len(times)))
    pres = np.zeros((len(labels), len(times)), dtype=bool)
    for g, key in enumerate(labels):
        ev.check()
        members = groups[key]
        for j in range(len(times)):
            bs = [(ub, float(v.values[i, j])) for i, ub in members if v.present[i, j]]
            if bs:
                out[g, j] = bucket_fraction(float(lower[j]), float(upper[j]), bs)
                pres[g, j] = True
    return merge_rows(ev, [drop_name(lb) for lb in labels], out, pres)


_IDENTIFYING = ("instance", "job")


def f_info(ev: Evaluator, args: Args, times: I64) -> Value:
    """``info(v, {selector})`` (experimental): add the data labels of info series (default
    ``target_info``) that share ``instance`` and ``job`` with each series of ``v``."""
    v = _vec(ev, args[0], times)
    sel = args[1] if len(args) > 1 else None
    matchers: list[Matcher] = []
    if sel is not None:
        if not isinstance(sel, pp.VectorSelector):
            raise EvaluationError("info() expects a label selector as its second argument")
        matchers = ev.matcher_sets(sel)[0]
    name_m = [m for m in matchers if m.name == METRIC_NAME]
    data_m = [m for m in matchers if m.name != METRIC_NAME]
    if not name_m:
        name_m = [Matcher(METRIC_NAME, MatchType.EQUAL, "target_info")]
    elif all(m.type in (MatchType.NOT_EQUAL, MatchType.NOT_REGEX) for m in name_m):
        name_m = [*name_m, Matcher(METRIC_NAME, MatchType.REGEX, ".+_info")]
    info = ev.instant_vector([name_m], times)
    usable = [
        i
        for i, lb in enumerate(info.labels)
        if all(m.matches(dict(lb).get(m.name, "")) for m in data_m)
    ]
    by_id: dict[tuple[str, ...], list[int]] = {}
    for i in usable:
        d = dict(info.labels[i])
        by_id.setdefault(tuple(d.get(n, "") for n in _IDENTIFYING), []).append(i)
    wanted = {m.name for m in data_m}
    required = any(not m.matches("") for m in data_m)
    nsteps = len(times)
    out_labels: list[Labels] = []
    out_vals: list[np.ndarray] = []
    out_pres: list[np.ndarray] = []
    for r, lb in enumerate(v.labels):
        base = dict(lb)
        if all(m.matches(base.get(METRIC_NAME, "")) for m in name_m):
            out_labels.append(lb)  # info series themselves are not enriched
            out_vals.append(v.values[r])
            out_pres.append(v.present[r])
            continue
        cands = by_id.get(tuple(base.get(n, "") for n in _IDENTIFYING), [])
        for j in np.flatnonzero(v.present[r]):
            live = [c for c in cands if info.present[c, j]]
            if live:
                # Per info metric, the series with the latest sample wins; metrics combine.
                ts = info.sample_ts
                best: dict[str, int] = {}
                for c in live:
                    name = _name(info.labels[c])
                    t = int(ts[c, j]) if ts is not None else 0
                    if name not in best or t > int(ts[best[name], j] if ts is not None else 0):
                        best[name] = c
                d = dict(base)
                for c in best.values():
                    for n, val in info.labels[c]:
                        if n in (METRIC_NAME, *_IDENTIFYING) or n in base:
                            continue
                        if wanted and n not in wanted:
                            continue
                        if d.get(n, val) != val:
                            raise EvaluationError(
                                f"info(): conflicting label {n}: {d[n]!r} and {val!r} "
                                "from different info metrics"
                            )
                        d[n] = val
                new = tuple(sorted(d.items()))
            elif required:
                continue
            else:
                new = lb
            row = np.zeros(nsteps)
            pres = np.zeros(nsteps, dtype=bool)
            row[j] = v.values[r, j]
            pres[j] = True
            out_labels.append(new)
            out_vals.append(row)
            out_pres.append(pres)
    if not out_labels:
        return Vector.empty(nsteps)
    return merge_rows(ev, out_labels, np.array(out_vals), np.array(out_pres))


def _unsupported(name: str) -> FuncImpl:
    def fn(ev: Evaluator, args: Args, times: I64) -> Value:
        raise EvaluationError(f"function {name}() is not supported (native histograms)")

    return fn


def _scalar_fn(kind: str) -> FuncImpl:
    def fn(ev: Evaluator, args: Args, times: I64) -> Value:
        if kind == "start":
            return Scalar(np.full(len(times), ev.start_ms / 1000.0))
        if kind == "end":
            return Scalar(np.full(len(times), ev.end_ms / 1000.0))
        if kind == "range":
            return Scalar(np.full(len(times), (ev.end_ms - ev.start_ms) / 1000.0))
        return Scalar(np.full(len(times), ev.step_ms / 1000.0))

    return fn


_MATH: dict[str, Callable[[F64], F64]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sgn": _sgn,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "deg": np.degrees,
    "rad": np.radians,
}

_FUNCS: dict[str, FuncImpl] = {
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
    "quantile_over_time": f_quantile_over_time,
    "absent_over_time": f_absent_over_time,
    "absent": f_absent,
    "round": f_round,
    "clamp": f_clamp,
    "clamp_min": f_clamp_min,
    "clamp_max": f_clamp_max,
    "timestamp": f_timestamp,
    "time": f_time,
    "pi": f_pi,
    "vector": f_vector,
    "scalar": f_scalar,
    "label_replace": f_label_replace,
    "label_join": f_label_join,
    "sort": _sorter(False),
    "sort_desc": _sorter(True),
    "sort_by_label": _sort_by_label(False),
    "sort_by_label_desc": _sort_by_label(True),
    "histogram_quantile": f_histogram_quantile,
    "histogram_fraction": f_histogram_fraction,
    "info": f_info,
    "start": _scalar_fn("start"),
    "end": _scalar_fn("end"),
    "range": _scalar_fn("range"),
    "step": _scalar_fn("step"),
}
for _k in (
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "last",
    "first",
    "present",
    "stddev",
    "stdvar",
    "mad",
    "ts_of_max",
    "ts_of_min",
    "ts_of_last",
    "ts_of_first",
):
    _FUNCS[f"{_k}_over_time"] = _over_time(_k)
for _k, _f in _MATH.items():
    _FUNCS[_k] = _elementwise(_f)
for _k in (
    "minute",
    "hour",
    "day_of_week",
    "day_of_month",
    "day_of_year",
    "days_in_month",
    "month",
    "year",
):
    _FUNCS[_k] = _date_fn(_k)
NATIVE_HISTOGRAM_FUNCTIONS = (
    "histogram_count",
    "histogram_sum",
    "histogram_avg",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_quantiles",
)
"""Functions that only make sense on native histograms, which the engine does not support."""

for _k in NATIVE_HISTOGRAM_FUNCTIONS:
    _FUNCS[_k] = _unsupported(_k)
