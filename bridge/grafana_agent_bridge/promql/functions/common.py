"""What every function family shares: its evaluated arguments, and the window helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import promql_parser as pp

from ...labels import METRIC_NAME, Labels
from ..context import EvalContext
from ..errors import EvaluationError
from ..values import (
    F64,
    I64,
    Matrix,
    Scalar,
    String,
    Value,
    Vector,
    drop_names,
    merge_rows,
)


@dataclass
class Call:
    """One function call, its arguments already evaluated by the evaluator.

    ``exprs`` is the arguments' syntax, read-only: ``absent()`` names its result's labels
    from its argument's matchers. Functions never evaluate it.
    """

    args: list[Value]
    times: I64
    exprs: Sequence[pp.Expr]

    def vector(self, i: int) -> Vector:
        v = self.args[i]
        if not isinstance(v, Vector):
            raise EvaluationError("expected instant vector argument")
        return v

    def scalar(self, i: int) -> F64:
        v = self.args[i]
        if not isinstance(v, Scalar):
            raise EvaluationError("expected scalar argument")
        return v.values

    def string(self, i: int) -> str:
        v = self.args[i]
        if not isinstance(v, String):
            raise EvaluationError("expected string argument")
        return v.value

    def matrix(self, i: int) -> Matrix:
        v = self.args[i]
        if not isinstance(v, Matrix):
            raise EvaluationError("expected range vector argument")
        return v


FuncImpl = Callable[[EvalContext, Call], Value]
"""A function's implementation: the query's context and the call, to a value."""


def range_result(m: Matrix, vals: F64, present: np.ndarray, *, keep_name: bool = False) -> Vector:
    """The instant vector a range function returns: one row per series of ``m`` that has a
    value at some step, the metric name dropped unless ``keep_name``."""
    keep = present.any(axis=1)
    if keep.all():
        labels = m.labels if keep_name else drop_names(m.labels)
        return merge_rows(labels, vals, present)
    idx = np.flatnonzero(keep)
    labels = [m.labels[i] for i in idx]
    return merge_rows(labels if keep_name else drop_names(labels), vals[idx], present[idx])


def per_window(
    m: Matrix, fn: Callable[[I64, F64, int], float | None], ctx: EvalContext | None = None
) -> tuple[F64, np.ndarray]:
    """``fn(timestamps, values, step)`` for every non-empty window: the exact but slow path."""
    nser, nsteps = m.lo.shape
    out = np.zeros((nser, nsteps))
    pres = np.zeros((nser, nsteps), dtype=bool)
    for s in range(nser):
        for j in range(nsteps):
            if ctx is not None and j % 64 == 0:
                ctx.check()  # a long Python loop must still honour the timeout and cancellation
            a, b = int(m.lo[s, j]), int(m.hi[s, j])
            if b <= a:
                continue
            r = fn(m.ts[a:b], m.vals[a:b], j)
            if r is not None:
                out[s, j] = r
                pres[s, j] = True
    return out, pres


def padded_windows(
    ctx: EvalContext, m: Matrix, min_count: int
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
        ctx.check()
        ss, jj = rows[a : a + chunk], cols[a : a + chunk]
        lo = m.lo[ss, jj]
        ln = cnt[ss, jj]
        width = np.arange(int(ln.max()))
        mask = width[None, :] < ln[:, None]
        idx = np.where(mask, lo[:, None] + width[None, :], lo[:, None])
        yield ss, jj, m.ts[idx], m.vals[idx], mask


def metric_name(lb: Labels) -> str:
    for n, v in lb:
        if n == METRIC_NAME:
            return v
    return ""


def quote(s: str) -> str:
    """A label value quoted as Go's ``%q`` does it in Prometheus's annotations."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
