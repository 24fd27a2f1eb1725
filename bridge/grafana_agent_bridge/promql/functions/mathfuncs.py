"""Element-wise functions of instant vectors and scalars: the math functions (``abs``,
``ln``, ``sin``, ...), ``round``, ``clamp*``, ``vector``, ``scalar`` and ``pi``."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..context import EvalContext
from ..values import F64, Scalar, Value, Vector, drop_name, merge_rows
from .common import Call, FuncImpl


def _elementwise(f: Callable[[F64], F64]) -> FuncImpl:
    def fn(ctx: EvalContext, call: Call) -> Value:
        v = call.vector(0)
        with np.errstate(all="ignore"):
            vals = f(v.values)
        return merge_rows([drop_name(lb) for lb in v.labels], vals, v.present.copy())

    return fn


def _sgn(x: F64) -> F64:
    return np.where(np.isnan(x), x, np.sign(x))


def f_round(ctx: EvalContext, call: Call) -> Value:
    v = call.vector(0)
    to = call.scalar(1) if len(call.args) > 1 else np.ones(len(call.times))
    with np.errstate(all="ignore"):
        inv = 1.0 / to
        vals = np.floor(v.values * inv[None, :] + 0.5) / inv[None, :]
    return merge_rows([drop_name(lb) for lb in v.labels], vals, v.present.copy())


def f_clamp(ctx: EvalContext, call: Call) -> Value:
    v = call.vector(0)
    lo = call.scalar(1)
    hi = call.scalar(2)
    present = v.present & ~(hi < lo)[None, :]
    vals = np.minimum(np.maximum(v.values, lo[None, :]), hi[None, :])
    return merge_rows([drop_name(lb) for lb in v.labels], vals, present)


def f_clamp_min(ctx: EvalContext, call: Call) -> Value:
    v = call.vector(0)
    lo = call.scalar(1)
    vals = np.maximum(v.values, lo[None, :])
    return merge_rows([drop_name(lb) for lb in v.labels], vals, v.present.copy())


def f_clamp_max(ctx: EvalContext, call: Call) -> Value:
    v = call.vector(0)
    hi = call.scalar(1)
    vals = np.minimum(v.values, hi[None, :])
    return merge_rows([drop_name(lb) for lb in v.labels], vals, v.present.copy())


def f_pi(ctx: EvalContext, call: Call) -> Value:
    return Scalar(np.full(len(call.times), math.pi))


def f_vector(ctx: EvalContext, call: Call) -> Value:
    s = call.scalar(0)
    return Vector([()], s[None, :].copy(), np.ones((1, len(call.times)), dtype=bool))


def f_scalar(ctx: EvalContext, call: Call) -> Value:
    v = call.vector(0)
    out = np.full(len(call.times), np.nan)
    if v.labels:
        cnt = v.present.sum(axis=0)
        one = cnt == 1
        if one.any():
            row = np.argmax(v.present, axis=0)
            out = np.where(one, v.values[row, np.arange(len(call.times))], np.nan)
    return Scalar(out)


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


FUNCTIONS: dict[str, FuncImpl] = {name: _elementwise(f) for name, f in _MATH.items()}
FUNCTIONS.update(
    {
        "round": f_round,
        "clamp": f_clamp,
        "clamp_min": f_clamp_min,
        "clamp_max": f_clamp_max,
        "pi": f_pi,
        "vector": f_vector,
        "scalar": f_scalar,
    }
)


def _scalar_pair(fn: Callable[[F64, F64], F64]) -> FuncImpl:
    """``min_of``/``max_of``: Go's ``math.Min``/``math.Max`` of two scalars (NaN wins)."""

    def impl(ctx: EvalContext, call: Call) -> Value:
        return Scalar(fn(call.scalar(0), call.scalar(1)))

    return impl


FUNCTIONS["min_of"] = _scalar_pair(np.minimum)
FUNCTIONS["max_of"] = _scalar_pair(np.maximum)
