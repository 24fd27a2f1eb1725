"""Functions of time: ``time()``, ``timestamp()``, the calendar functions (``hour``,
``day_of_week``, ...) and the query-bound ones (``start()``, ``end()``, ``range()``,
``step()``)."""

from __future__ import annotations

import numpy as np

from ..context import EvalContext
from ..errors import EvaluationError
from ..values import Scalar, Value, Vector, drop_name, merge_rows
from .common import Call, FuncImpl


def f_timestamp(ctx: EvalContext, call: Call) -> Value:
    v = call.vector(0)
    if v.sample_ts is not None:
        vals = v.sample_ts / 1000.0
    else:
        vals = np.broadcast_to(call.times / 1000.0, v.values.shape).copy()
    return merge_rows([drop_name(lb) for lb in v.labels], vals, v.present.copy())


def f_time(ctx: EvalContext, call: Call) -> Value:
    return Scalar(call.times / 1000.0)


def _date_fn(kind: str) -> FuncImpl:
    def fn(ctx: EvalContext, call: Call) -> Value:
        if call.args:
            v = call.vector(0)
        else:
            v = Vector(
                [()], (call.times / 1000.0)[None, :], np.ones((1, len(call.times)), dtype=bool)
            )
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
        return merge_rows([drop_name(lb) for lb in v.labels], res, v.present.copy())

    return fn


def _scalar_fn(kind: str) -> FuncImpl:
    def fn(ctx: EvalContext, call: Call) -> Value:
        if kind == "start":
            return Scalar(np.full(len(call.times), ctx.start_ms / 1000.0))
        if kind == "end":
            return Scalar(np.full(len(call.times), ctx.end_ms / 1000.0))
        if kind == "range":
            return Scalar(np.full(len(call.times), (ctx.end_ms - ctx.start_ms) / 1000.0))
        return Scalar(np.full(len(call.times), ctx.step_ms / 1000.0))

    return fn


FUNCTIONS: dict[str, FuncImpl] = {
    "timestamp": f_timestamp,
    "time": f_time,
    "start": _scalar_fn("start"),
    "end": _scalar_fn("end"),
    "range": _scalar_fn("range"),
    "step": _scalar_fn("step"),
}
for _kind in (
    "minute",
    "hour",
    "day_of_week",
    "day_of_month",
    "day_of_year",
    "days_in_month",
    "month",
    "year",
):
    FUNCTIONS[_kind] = _date_fn(_kind)
