"""Histogram functions: ``histogram_quantile`` and ``histogram_fraction`` over classic
histograms (one series per ``le`` bucket, grouped by their other labels) and over native
histogram samples, and the ``histogram_*`` statistics of native ones. Classic bucket maths is
in ``numeric``, native in the ``histogram`` package.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ...histogram import stats
from ...histogram.model import FloatHistogram
from ...histogram.notes import Note
from ...histogram.stats import histogram_fraction, histogram_quantile
from ...labels import METRIC_NAME, Labels
from ..context import EvalContext
from ..numeric import bucket_fraction, bucket_quantile, bucket_quantile_steps, format_float
from ..values import Value, Vector, drop_name, merge_rows
from .common import Call, FuncImpl, quote
from .histrange import report


def _parse_le(s: str) -> float | None:
    t = s.strip()
    if t != s or not t:
        return None
    try:
        return float(t)
    except ValueError:
        return None


def _bucket_groups(ctx: EvalContext, v: Vector) -> dict[Labels, list[tuple[int, float]]]:
    """Classic histogram series grouped by their labels without ``le``: (row, upper bound)."""
    groups: dict[Labels, list[tuple[int, float]]] = {}
    for i, lb in enumerate(v.labels):
        d = dict(lb)
        le = d.get("le")
        parsed = _parse_le(le) if le is not None else None
        if parsed is None:
            if v.present[i].any():
                ctx.warn(
                    f'PromQL warning: bucket label "le" is missing or has a malformed value of '
                    f"{quote(le or '')} for metric name {quote(d.get(METRIC_NAME, ''))}"
                )
            continue
        # Grouped with the name, which goes only from the result (Prometheus 3.x removes it
        # late): two histograms that differ only by name are an error, not one histogram.
        key = tuple(p for p in lb if p[0] != "le")
        groups.setdefault(key, []).append((i, parsed))
    return groups


def f_histogram_quantile(ctx: EvalContext, call: Call) -> Value:
    q = call.scalar(0)
    v = call.vector(1)
    nsteps = len(call.times)
    bad = (q < 0) | (q > 1) | np.isnan(q)
    if bad.any():
        ctx.warn(
            "PromQL warning: quantile value should be between 0 and 1, got "
            + format_float(float(q[bad][0]))
        )
    groups = _bucket_groups(ctx, v)
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
        rows = [i for i, _ in members]
        fast = bucket_quantile_steps(q, [ub for _, ub in members], v.values[rows], v.present[rows])
        if fast is not None:
            res_fast, done, forced_any = fast
            out[g] = res_fast
            pres[g] = done
            if forced_any:
                ctx.info(
                    "PromQL info: input to histogram_quantile needed to be fixed for "
                    "monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/"
                    f"functions/#histogram_quantile) for metric name {quote(name)}"
                )
            steps = [j for j in range(nsteps) if not done[j]]
        ctx.check()
        for j in steps:
            bs = [(ub, float(v.values[i, j])) for i, ub in members if v.present[i, j]]
            if not bs:
                continue
            res, forced = bucket_quantile(float(q[j]), bs)
            if forced:
                ctx.info(
                    "PromQL info: input to histogram_quantile needed to be fixed for "
                    "monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/"
                    f"functions/#histogram_quantile) for metric name {quote(name)}"
                )
            out[g, j] = res
            pres[g, j] = True
    return merge_rows([drop_name(lb) for lb in labels], out, pres)


def f_histogram_fraction(ctx: EvalContext, call: Call) -> Value:
    lower = call.scalar(0)
    upper = call.scalar(1)
    v = call.vector(2)
    groups = _bucket_groups(ctx, v)
    labels = list(groups)
    out = np.zeros((len(labels), len(call.times)))
    pres = np.zeros((len(labels), len(call.times)), dtype=bool)
    for g, key in enumerate(labels):
        ctx.check()
        members = groups[key]
        for j in range(len(call.times)):
            bs = [(ub, float(v.values[i, j])) for i, ub in members if v.present[i, j]]
            if bs:
                out[g, j] = bucket_fraction(float(lower[j]), float(upper[j]), bs)
                pres[g, j] = True
    return merge_rows([drop_name(lb) for lb in labels], out, pres)


def _float_part(v: Vector) -> Vector:
    return Vector(v.labels, v.values, v.float_present())


def _native(
    ctx: EvalContext,
    call: Call,
    v: Vector,
    fn: Callable[[int, FloatHistogram], tuple[float, frozenset[Note]]],
) -> Vector:
    """``fn(step, histogram)`` for every histogram sample of ``v`` (floats are ignored);
    the notes it gives become annotations naming the series' metric."""
    nsteps = len(call.times)
    if v.hists is None:
        return Vector.empty(nsteps)
    out = np.zeros(v.values.shape)
    pres = np.zeros(v.values.shape, dtype=bool)
    hm = v.is_hist() & v.present
    for i in np.flatnonzero(hm.any(axis=1)):
        ctx.check()
        name = dict(v.labels[i]).get(METRIC_NAME, "")
        for j in np.flatnonzero(hm[i]):
            val, notes = fn(int(j), v.hists[i, j])
            report(ctx, notes, name)
            out[i, j] = val
            pres[i, j] = True
    keep = pres.any(axis=1)
    idx = np.flatnonzero(keep)
    return merge_rows([drop_name(v.labels[i]) for i in idx], out[idx], pres[idx])


def _stat(fn: Callable[[FloatHistogram], float]) -> FuncImpl:
    def impl(ctx: EvalContext, call: Call) -> Value:
        return _native(ctx, call, call.vector(0), lambda _j, h: (fn(h), frozenset()))

    return impl


def _concat(a: Vector, b: Vector) -> Vector:
    if not a.labels:
        return b
    if not b.labels:
        return a
    return merge_rows(
        a.labels + b.labels,
        np.concatenate([a.values, b.values]),
        np.concatenate([a.present, b.present]),
    )


def _mixed_classic(ctx: EvalContext, v: Vector) -> Vector:
    """Drop native histograms that share their labels (but ``le``) with classic buckets at
    the same step, with Prometheus's warning."""
    if v.hists is None:
        return v
    hm = v.is_hist() & v.present
    fp = v.float_present()
    keys: dict[Labels, list[int]] = {}
    for i, lb in enumerate(v.labels):
        keys.setdefault(tuple(p for p in lb if p[0] != "le"), []).append(i)
    present = v.present.copy()
    for rows in keys.values():
        if len(rows) < 2:
            continue
        has_classic = np.zeros(v.nsteps, dtype=bool)
        for i in rows:
            if dict(v.labels[i]).get("le") is not None:
                has_classic |= fp[i]
        for i in rows:
            clash = hm[i] & has_classic
            if clash.any():
                name = dict(v.labels[i]).get(METRIC_NAME, "")
                ctx.warn(
                    "PromQL warning: vector contains a mix of classic and native histograms "
                    f"for metric name {quote(name)}"
                )
                present[i] &= ~clash
                for k in rows:  # the classic buckets of that histogram go too
                    if dict(v.labels[k]).get("le") is not None:
                        present[k] &= ~clash
    return Vector(v.labels, v.values, present, hists=v.hists)


def f_histogram_quantile_all(ctx: EvalContext, call: Call) -> Value:
    v = _mixed_classic(ctx, call.vector(1))
    q = call.scalar(0)
    classic = f_histogram_quantile(
        ctx, Call([call.args[0], _float_part(v)], call.times, call.exprs)
    )
    assert isinstance(classic, Vector)
    native = _native(ctx, call, v, lambda j, h: histogram_quantile(float(q[j]), h))
    return _concat(classic, native)


def f_histogram_fraction_all(ctx: EvalContext, call: Call) -> Value:
    v = _mixed_classic(ctx, call.vector(2))
    lower, upper = call.scalar(0), call.scalar(1)
    classic = f_histogram_fraction(
        ctx, Call([call.args[0], call.args[1], _float_part(v)], call.times, call.exprs)
    )
    assert isinstance(classic, Vector)
    native = _native(
        ctx, call, v, lambda j, h: histogram_fraction(float(lower[j]), float(upper[j]), h)
    )
    return _concat(classic, native)


def _openmetrics_float(q: float) -> str:
    """``labels.FormatOpenMetricsFloat``: a whole number keeps a ``.0``."""
    if math.isnan(q):
        return "NaN"
    if math.isinf(q):
        return "+Inf" if q > 0 else "-Inf"
    text = repr(q)
    return text if ("." in text or "e" in text) else text + ".0"


def f_histogram_quantiles(ctx: EvalContext, call: Call) -> Value:
    """Several quantiles at once, each in its own series labelled ``<label>="<q>"``."""
    v = call.vector(0)
    label = call.string(1)
    out_labels: list[Labels] = []
    vals: list[np.ndarray] = []
    pres: list[np.ndarray] = []
    for k in range(2, len(call.args)):
        q = call.scalar(k)
        one = f_histogram_quantile_all(ctx, Call([call.args[k], v], call.times, call.exprs))
        assert isinstance(one, Vector)
        text = _openmetrics_float(float(q[0]))
        for i, lb in enumerate(one.labels):
            d = dict(lb)
            d[label] = text
            out_labels.append(tuple(sorted(d.items())))
            vals.append(one.values[i])
            pres.append(one.present[i])
    if not out_labels:
        return Vector.empty(len(call.times))
    return merge_rows(out_labels, np.array(vals), np.array(pres))


FUNCTIONS: dict[str, FuncImpl] = {
    "histogram_quantile": f_histogram_quantile_all,
    "histogram_fraction": f_histogram_fraction_all,
    "histogram_quantiles": f_histogram_quantiles,
    "histogram_count": _stat(stats.histogram_count),
    "histogram_sum": _stat(stats.histogram_sum),
    "histogram_avg": _stat(stats.histogram_avg),
    "histogram_stddev": _stat(stats.histogram_stddev),
    "histogram_stdvar": _stat(stats.histogram_stdvar),
}
