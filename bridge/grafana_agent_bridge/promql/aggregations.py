"""Aggregation operators (``sum``, ``avg``, ``topk``, ``quantile``, ... with ``by``/``without``).

Rows are grouped once; the common reductions then run as ``reduceat`` over rows sorted by
group, for every step at once. The per-element ones (``topk``, ``quantile``,
``count_values``) loop over groups and steps, which is fine at dashboard sizes.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable

import numpy as np
import promql_parser as pp

from ..histogram.kahan import mean_histograms, sum_histograms
from ..histogram.model import go_string
from ..labels import Labels, is_valid_label_name, make_labels
from .context import EvalContext
from .errors import EvaluationError
from .numeric import format_float, kahan_sum, quantile, quantile_sorted
from .ratiosample import in_sample
from .topkheap import heap_select
from .values import (
    DROPPED,
    F64,
    NAME_LABELS,
    Scalar,
    String,
    Value,
    Vector,
    drop_name,
    is_marked,
    kept,
)


def grouping(mod: pp.AggModifier | None) -> tuple[bool, list[str]]:
    """(whether ``without``, the label names) of an aggregation's ``by``/``without``."""
    if mod is None:
        return False, []
    by = str(mod.type).endswith("By")
    return (not by), list(mod.labels)


def group_key_fn(without: bool, names: list[str]) -> Callable[[Labels], Labels]:
    if without:
        drop = set(names) | NAME_LABELS | {DROPPED}
        return lambda lb: tuple([p for p in lb if p[0] not in drop])
    keep = set(names)
    if len(keep) > 3:
        # (A list comprehension: this runs once per series of every aggregation, and it is
        # about twice as fast as a generator fed to ``tuple``.)
        return lambda lb: tuple([p for p in lb if p[0] in keep])
    # A few names (the usual ``by (instance)``): labels are sorted by name, so each is found
    # by bisection instead of looking at every label of every series.
    probes = [(n,) for n in sorted(keep)]

    def key(lb: Labels) -> Labels:
        out = []
        n = len(lb)
        for probe in probes:
            i = bisect_left(lb, probe)
            if i < n and lb[i][0] == probe[0]:
                out.append(lb[i])
        return tuple(out)

    return key


def group_ids(
    labels: list[Labels], without: bool, names: list[str]
) -> tuple[list[int], list[Labels]]:
    """The group of each series, and each group's labels.

    With delayed name removal, ``by (__name__)`` groups series by their name whether or not an
    operation marked it to go; as in Prometheus, the group's name goes at the end if any of its
    series' names was to go (``groupedAggregation.dropName``).
    """
    keyf = group_key_fn(without, names)
    index: dict[Labels, int] = {}
    setdefault = index.setdefault
    ids = [setdefault(keyf(lb), len(index)) for lb in labels]
    glabels = list(index)
    if not without and not NAME_LABELS.isdisjoint(names):
        for g in {ids[i] for i, lb in enumerate(labels) if is_marked(lb)}:
            glabels[g] = drop_name(glabels[g])
    return ids, glabels


PARAM_OPS = frozenset({"count_values", "topk", "bottomk", "quantile", "limitk", "limit_ratio"})
"""Aggregations that take a parameter before their vector."""


def aggregation_param(op: str, value: Value | None) -> F64 | str | None:
    """The checked parameter of ``op``: the label name of ``count_values``, the per-step
    numbers of the others in ``PARAM_OPS``. The evaluator checks it before evaluating the
    aggregated vector, so a bad parameter costs no selection."""
    if op == "count_values":
        if value is None:
            raise EvaluationError("count_values needs a label name")
        if not isinstance(value, String):
            raise EvaluationError("count_values parameter must be a string")
        return value.value
    if op not in PARAM_OPS:
        return None
    if value is None:
        raise EvaluationError(f"{op} needs a parameter")
    if not isinstance(value, Scalar):
        raise EvaluationError("expected scalar parameter")
    return value.values


def aggregate(
    ctx: EvalContext,
    op: str,
    vec: Value,
    param: F64 | str | None,
    *,
    without: bool,
    names: list[str],
    nsteps: int,
) -> Vector:
    """``op`` over the groups of ``vec`` (``by``/``without`` ``names``), every step at once."""
    if not isinstance(vec, Vector):
        raise EvaluationError("aggregation expects an instant vector")
    if vec.hists is not None and op not in (
        "count",
        "group",
        "count_values",
        "limitk",
        "limit_ratio",
    ):
        return _with_histograms(ctx, op, vec, param, without=without, names=names, nsteps=nsteps)
    if op == "count_values":
        assert isinstance(param, str)
        return _count_values(ctx, vec, param, without=without, names=names, nsteps=nsteps)
    ids, glabels = group_ids(vec.labels, without, names)
    gid = np.array(ids, dtype=np.int64)
    if op in ("topk", "bottomk", "limitk"):
        assert isinstance(param, np.ndarray)
        return _topk(ctx, op, vec, gid, ngroups=len(glabels), param=param)
    if op == "limit_ratio":
        assert isinstance(param, np.ndarray)
        return _limit_ratio(ctx, vec, param)
    if op == "quantile":
        assert isinstance(param, np.ndarray)
        return _quantile(ctx, vec, gid, glabels, param)
    ngroups = len(glabels)
    if ngroups == 0:
        return Vector.empty(nsteps)
    if ngroups == 1 or bool((gid[1:] >= gid[:-1]).all()):
        # Rows already grouped (one group, or series sorted by the grouping labels' order):
        # no copy of the (series x steps) arrays.
        sg = gid
        starts = np.flatnonzero(np.r_[True, sg[1:] != sg[:-1]])
        pres = vec.present
        vals = vec.values
    else:
        order = np.argsort(gid, kind="stable")
        sg = gid[order]
        starts = np.flatnonzero(np.r_[True, sg[1:] != sg[:-1]])
        pres = vec.present[order]
        vals = vec.values[order]
    count = np.add.reduceat(pres, starts, axis=0, dtype=np.int64)
    out_p = count > 0
    with np.errstate(all="ignore"):
        if op in ("sum", "avg"):
            out = _accurate_sums(vals, pres, starts, count)
            if op == "avg":
                out = out / count
                over = np.isinf(out)
                if over.any():
                    ends = np.r_[starts[1:], len(vals)]
                    for g, j in zip(*np.nonzero(over)):
                        xs = [
                            float(vals[r, j])
                            for r in range(int(starts[g]), int(ends[g]))
                            if pres[r, j]
                        ]
                        out[g, j] = _mean(xs)
        elif op == "count":
            out = count.astype(np.float64)
        elif op == "group":
            out = np.ones(count.shape)
        elif op in ("min", "max"):
            uf = np.fmin if op == "min" else np.fmax
            out = uf.reduceat(np.where(pres, vals, np.nan), starts, axis=0)
        elif op in ("stddev", "stdvar"):
            var = _welford(vals, pres, sg, ngroups)
            out = np.sqrt(var) if op == "stddev" else var
        else:
            raise EvaluationError(f"unsupported aggregation {op}")
    keep = out_p.any(axis=1)
    return Vector([glabels[i] for i in np.flatnonzero(keep)], out[keep], out_p[keep])


def _with_histograms(
    ctx: EvalContext,
    op: str,
    vec: Vector,
    param: F64 | str | None,
    *,
    without: bool,
    names: list[str],
    nsteps: int,
) -> Vector:
    """An aggregation over a vector holding native histograms (``promql/engine.go``
    ``aggregation``): ``sum``/``avg`` add histograms (a group mixing them with floats at a
    step gives no result and a warning), the float-only ones ignore them with an info."""
    assert vec.hists is not None
    hm = vec.is_hist() & vec.present
    floats = Vector(vec.labels, vec.values, vec.present & ~hm)
    if op not in ("sum", "avg"):
        if hm.any():
            ctx.info(f"PromQL info: ignored histogram in {op} aggregation")
        return aggregate(ctx, op, floats, param, without=without, names=names, nsteps=nsteps)
    fres = aggregate(ctx, op, floats, param, without=without, names=names, nsteps=nsteps)
    ids, labels = group_ids(vec.labels, without, names)
    groups: dict[int, list[int]] = {}
    for i, g in enumerate(ids):
        groups.setdefault(g, []).append(i)
    frow = {lb: i for i, lb in enumerate(fres.labels)}
    vals = np.zeros((len(labels), nsteps))
    pres = np.zeros((len(labels), nsteps), dtype=bool)
    hists = np.full((len(labels), nsteps), None, dtype=object)
    for g, key in enumerate(labels):
        rows = groups[g]
        r = frow.get(key)
        if r is not None:
            vals[g], pres[g] = fres.values[r], fres.present[r]
        ghm = hm[rows]
        for j in np.flatnonzero(ghm.any(axis=0)):
            ctx.check()
            if floats.present[rows, j].any():
                ctx.warn(
                    "PromQL warning: encountered a mix of histograms and floats for aggregation"
                )
                pres[g, j] = False
                continue
            hs = [vec.hists[i, j] for i in rows if hm[i, j]]
            h, notes = (sum_histograms if op == "sum" else mean_histograms)(hs)
            for n in notes:
                (ctx.warn if n.is_warning else ctx.info)(n.message(""))
            if h is None:
                continue
            hists[g, j] = h
            vals[g, j] = np.nan
            pres[g, j] = True
    keep = pres.any(axis=1)
    return Vector(
        [labels[i] for i in np.flatnonzero(keep)], vals[keep], pres[keep], hists=hists[keep]
    )


def _mean(xs: list[float]) -> float:
    """Incremental mean, which Prometheus switches to when the plain sum would overflow."""
    if any(math.isinf(x) for x in xs):
        return sum(xs) / len(xs)
    mean = 0.0
    for i, x in enumerate(xs):
        mean += x / (i + 1) - mean / (i + 1)
    return mean


def _accurate_sums(vals: F64, pres: np.ndarray, starts: np.ndarray, count: np.ndarray) -> F64:
    """Group sums by ``reduceat``; cells where cancellation may have cost precision (the sum is
    small next to the sum of magnitudes) are redone with Kahan summation, like Prometheus."""
    masked = np.where(pres, vals, 0.0)
    out = np.add.reduceat(masked, starts, axis=0)
    mags = np.add.reduceat(np.abs(masked, out=masked), starts, axis=0)
    # Naive summation errs by at most about count * eps * mags; redo where that could exceed
    # a billionth of the result (i.e. where the terms cancel), so results stay within 1e-6.
    risky = (mags * count * 2.3e-16 > np.abs(out) * 1e-9) & np.isfinite(mags) & (count > 1)
    if risky.any():
        ends = np.r_[starts[1:], len(vals)]
        for g, j in zip(*np.nonzero(risky)):
            rows = range(int(starts[g]), int(ends[g]))
            out[g, j] = kahan_sum([float(vals[r, j]) for r in rows if pres[r, j]])
    return out


def _welford(vals: F64, pres: np.ndarray, sg: np.ndarray, ngroups: int) -> F64:
    """Population variance per group and step, with Prometheus's incremental algorithm (so a
    group of identical values has exactly zero variance)."""
    nsteps = vals.shape[1]
    cnt = np.zeros((ngroups, nsteps))
    mean = np.zeros((ngroups, nsteps))
    aux = np.zeros((ngroups, nsteps))
    for r in range(len(sg)):
        g = int(sg[r])
        p = pres[r]
        if not p.any():
            continue
        v = vals[r]
        cnt[g] += p
        delta = np.where(p, v - mean[g], 0.0)
        mean[g] = mean[g] + np.where(p, delta / np.maximum(cnt[g], 1), 0.0)
        aux[g] = aux[g] + np.where(p, delta * (v - mean[g]), 0.0)
    return aux / cnt


def _limit_ratio(ctx: EvalContext, vec: Vector, param: F64) -> Vector:
    """The series whose label hash falls in the ratio (``ratiosample``), whole and unchanged
    (histograms included); a ratio outside [-1, 1] is capped with a warning."""
    if np.isnan(param).any():
        raise EvaluationError("Ratio value is NaN")
    ratios = np.clip(param, -1.0, 1.0)
    bad = param[ratios != param]
    if len(bad):
        r = float(bad[0])
        ctx.warn(
            "PromQL warning: ratio value should be between -1 and 1, got "
            f"{format_float(r)}, capping to {format_float(max(-1.0, min(1.0, r)))}"
        )
    present = np.zeros(vec.present.shape, dtype=bool)
    for i, lb in enumerate(vec.labels):
        ctx.check()
        keep = np.array([in_sample(lb, float(r)) and r != 0 for r in ratios], dtype=bool)
        present[i] = vec.present[i] & keep
    rows = present.any(axis=1)
    return Vector(
        kept(vec.labels, rows),
        vec.values[rows],
        present[rows],
        hists=None if vec.hists is None else vec.hists[rows],
    )


def _topk(
    ctx: EvalContext, op: str, vec: Vector, gid: np.ndarray, *, ngroups: int, param: F64
) -> Vector:
    nsteps = vec.values.shape[1]
    if np.isnan(param).any():
        raise EvaluationError("Parameter value is NaN")
    big = param > 9.2e18
    if big.any():
        raise EvaluationError(f"Scalar value {param[big][0]:g} overflows int64")
    ks = np.where(np.isnan(param), 0, np.trunc(param)).astype(np.int64)
    present = np.zeros(vec.present.shape, dtype=bool)
    rank = np.zeros(vec.present.shape, dtype=np.int64)
    rows_all = vec.labels
    for g in range(ngroups):
        ctx.check()
        rows = np.flatnonzero(gid == g)
        sub = vec.values[rows]
        sp = vec.present[rows]
        for j in range(nsteps):
            k = int(ks[j])
            if k < 1:
                continue
            cand = np.flatnonzero(sp[:, j])
            if len(cand) == 0:
                continue
            v = sub[cand, j]
            if op == "limitk":
                chosen = cand[:k]
            else:
                k = min(k, len(rows_all))
                chosen = cand[heap_select(v.tolist(), k, top=op == "topk")]
            present[rows[chosen], j] = True
            rank[rows[chosen], j] = np.arange(len(chosen))
    keep = present.any(axis=1)
    idx = np.flatnonzero(keep)
    if nsteps == 1 and op != "limitk":
        # Instant result order: groups in order of first appearance, best first within each.
        first_seen: dict[int, int] = {}
        for i in idx:
            first_seen.setdefault(int(gid[i]), len(first_seen))
        idx = np.array(
            sorted(idx, key=lambda i: (first_seen[int(gid[i])], rank[i, 0])), dtype=np.int64
        )
    return Vector(
        [vec.labels[i] for i in idx],
        vec.values[idx],
        present[idx],
        hists=None if vec.hists is None else vec.hists[idx],
    )


def _quantile(
    ctx: EvalContext, vec: Vector, gid: np.ndarray, glabels: list[Labels], param: F64
) -> Vector:
    nsteps = vec.values.shape[1]
    if ((param < 0) | (param > 1) | np.isnan(param)).any():
        bad = param[(param < 0) | (param > 1) | np.isnan(param)][0]
        ctx.warn(
            "PromQL warning: quantile value should be between 0 and 1, got "
            + format_float(float(bad))
        )
    out = np.zeros((len(glabels), nsteps))
    out_p = np.zeros((len(glabels), nsteps), dtype=bool)
    for g in range(len(glabels)):
        rows = np.flatnonzero(gid == g)
        pres = vec.present[rows]
        vals = vec.values[rows]
        n = pres.sum(axis=0)
        out_p[g] = n > 0
        nan = (np.isnan(vals) & pres).any(axis=0)
        # Steps without NaN at once: sort each column, absent values last.
        srt = np.sort(np.where(pres, vals, np.inf), axis=0).T
        out[g] = quantile_sorted(srt, n, param)
        for j in np.flatnonzero(nan):  # NaN sorts first in Prometheus: the exact path
            out[g, j] = quantile(float(param[j]), vals[pres[:, j], j].tolist())
    keep = out_p.any(axis=1)
    return Vector([glabels[i] for i in np.flatnonzero(keep)], out[keep], out_p[keep])


def _count_values(
    ctx: EvalContext, vec: Vector, label: str, *, without: bool, names: list[str], nsteps: int
) -> Vector:
    if not is_valid_label_name(label):
        raise EvaluationError(f'invalid label name "{label}"')
    keyf = group_key_fn(without, names)
    index: dict[Labels, int] = {}
    counts: dict[int, np.ndarray] = {}
    for i, lb in enumerate(vec.labels):
        ctx.check()
        base = dict(keyf(lb))
        for j in np.flatnonzero(vec.present[i]):
            d = dict(base)
            h = None if vec.hists is None else vec.hists[i, j]
            d[label] = go_string(h) if h is not None else format_float(float(vec.values[i, j]))
            key = make_labels(d)
            g = index.setdefault(key, len(index))
            if g not in counts:
                # Every distinct value is a new output row of all steps: up to series x steps
                # rows, so each one is charged before it is allocated.
                ctx.reserve_cells(1, nsteps)
                counts[g] = np.zeros(nsteps)
            counts[g][j] += 1
    labels = list(index)
    if not labels:
        return Vector.empty(nsteps)
    vals = np.array([counts[g] for g in range(len(labels))])
    return Vector(labels, vals, vals > 0)
