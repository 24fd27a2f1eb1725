"""The ``*_over_time`` functions: one statistic of each series' samples in each window
(``sum``, ``avg``, ``min``, ``max``, ``count``, ``last``, ``quantile``, ``stddev``, ...).
``absent_over_time`` lives with ``absent`` in ``labelfuncs``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..context import EvalContext
from ..numeric import format_float, kahan_sum, quantile, quantile_sorted
from ..selection import window_reduce
from ..values import F64, I64, Matrix, Value
from . import histrange as hr
from .common import Call, FuncImpl, padded_windows, per_window, range_result


def _over_time(kind: str) -> FuncImpl:
    def fn(ctx: EvalContext, call: Call) -> Value:
        m = call.matrix(0)
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
                res, ok = _variance_windows(ctx, m)
                if kind == "stddev":
                    res = np.sqrt(res)
            else:
                res, ok = per_window(m, _WINDOW_FNS[kind], ctx)
        return range_result(m, res, ok, keep_name=keep_name)

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
            res2, _ = per_window(m, lambda ts, v, j: _incremental_mean(v))
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


def f_quantile_over_time(ctx: EvalContext, call: Call) -> Value:
    q = call.scalar(0)
    m = call.matrix(1)
    bad = (q < 0) | (q > 1) | np.isnan(q)
    if bad.any() and (m.hi > m.lo).any():
        ctx.warn(
            "PromQL warning: quantile value should be between 0 and 1, got "
            + format_float(float(q[bad][0]))
        )
    res = np.zeros(m.lo.shape)
    ok = np.zeros(m.lo.shape, dtype=bool)
    for ss, jj, _, v, mask in padded_windows(ctx, m, 1):
        n = mask.sum(axis=1)
        srt = np.sort(np.where(mask, v, np.inf), axis=1)
        res[ss, jj] = quantile_sorted(srt, n, q[jj])
        ok[ss, jj] = True
        nan = (np.isnan(v) & mask).any(axis=1)
        for k in np.flatnonzero(nan):  # NaN sorts first in Prometheus: the exact path
            res[ss[k], jj[k]] = quantile(float(q[jj[k]]), v[k][mask[k]].tolist())
    return range_result(m, res, ok)


def _variance_windows(ctx: EvalContext, m: Matrix) -> tuple[F64, np.ndarray]:
    """Population variance per window (exactly 0 when all values are equal, like upstream's
    incremental algorithm)."""
    res = np.zeros(m.lo.shape)
    ok = np.zeros(m.lo.shape, dtype=bool)
    for ss, jj, _, v, mask in padded_windows(ctx, m, 1):
        n = mask.sum(axis=1)
        y = np.where(mask, v, 0.0)
        mean = y.sum(axis=1) / n
        var = np.where(mask, (v - mean[:, None]) ** 2, 0.0).sum(axis=1) / n
        const = ((v == v[:, :1]) | ~mask).all(axis=1) & np.isfinite(v[:, 0])
        res[ss, jj] = np.where(const, 0.0, var)
        ok[ss, jj] = True
    return res, ok


FUNCTIONS: dict[str, FuncImpl] = {
    f"{kind}_over_time": _over_time(kind)
    for kind in (
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
    )
}
FUNCTIONS["quantile_over_time"] = f_quantile_over_time


def _with_histograms() -> None:
    """Give every ``*_over_time`` its native-histogram rule (see ``histrange``)."""
    cells = {
        "sum_over_time": hr.c_sum_over_time,
        "avg_over_time": hr.c_avg_over_time,
        "count_over_time": hr.c_count_over_time,
        "present_over_time": hr.c_present_over_time,
        "last_over_time": hr.c_last_over_time,
        "first_over_time": hr.c_first_over_time,
        "ts_of_last_over_time": hr.c_ts_of_last,
        "ts_of_first_over_time": hr.c_ts_of_first,
    }
    for name, impl in list(FUNCTIONS.items()):
        arg = 1 if name == "quantile_over_time" else 0
        cell = cells.get(name) or hr.floats_ignoring(impl, arg=arg)
        keep = name in ("last_over_time", "first_over_time")
        FUNCTIONS[name] = hr.with_histograms(impl, cell, arg=arg, keep_name=keep)


_with_histograms()
