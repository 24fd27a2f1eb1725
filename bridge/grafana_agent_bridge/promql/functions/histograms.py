"""Histogram functions: ``histogram_quantile`` and ``histogram_fraction`` over classic
histograms (one series per ``le`` bucket, grouped by their other labels). The bucket maths
itself is in ``numeric``; native histograms are not supported yet.
"""

from __future__ import annotations

import numpy as np

from ...labels import METRIC_NAME, Labels
from ..context import EvalContext
from ..numeric import bucket_fraction, bucket_quantile, bucket_quantile_steps, format_float
from ..values import Value, Vector, drop_name, merge_rows
from .common import Call, FuncImpl, quote


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


NATIVE_HISTOGRAM_FUNCTIONS = (
    "histogram_count",
    "histogram_sum",
    "histogram_avg",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_quantiles",
)
"""Functions that only make sense on native histograms, which the engine does not support
yet: refused by name before their arguments are evaluated. Implementing one means adding it
to ``FUNCTIONS`` and removing it here."""


FUNCTIONS: dict[str, FuncImpl] = {
    "histogram_quantile": f_histogram_quantile,
    "histogram_fraction": f_histogram_fraction,
}
