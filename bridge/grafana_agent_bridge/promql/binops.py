"""Binary operators: arithmetic, comparisons (with and without ``bool``) and set operators,
with Prometheus's vector matching (``on``/``ignoring``, ``group_left``/``group_right``) and
its errors for ambiguous matches, evaluated for all steps at once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import promql_parser as pp

from ..histogram.binop import binop as hbinop
from ..histogram.model import FloatHistogram
from ..histogram.ops import compact, mul
from ..labels import METRIC_NAME, Labels
from .context import EvalContext
from .errors import EvaluationError
from .values import (
    DROPPED,
    F64,
    Bool,
    Scalar,
    Value,
    Vector,
    drop_name,
    hist_mask,
    kept,
    merge_rows,
    strip_name,
    where_hist,
)

ARITHMETIC = {"+", "-", "*", "/", "%", "^", "atan2"}
COMPARISON = {"==", "!=", ">", "<", ">=", "<="}
SET_OPS = {"and", "or", "unless"}
TRIMS = {"</", ">/"}
"""Histogram trim operators: a histogram on the left, a float on the right; the name stays."""


def _arith(op: str, a: F64, b: F64) -> F64:
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return np.true_divide(a, b)
        if op == "%":
            return np.fmod(a, b)
        if op == "^":
            return np.power(a, b)
        if op == "atan2":
            return np.arctan2(a, b)
    raise EvaluationError(f"unsupported operator {op}")


def _compare(op: str, a: F64, b: F64) -> Bool:
    with np.errstate(all="ignore"):
        if op == "==":
            return a == b
        if op == "!=":
            return a != b
        if op == ">":
            return a > b
        if op == "<":
            return a < b
        if op == ">=":
            return a >= b
        if op == "<=":
            return a <= b
    raise EvaluationError(f"unsupported operator {op}")


def _drop_name(lb: Labels) -> Labels:
    return drop_name(lb)


def _no_name(lb: Labels) -> Labels:
    return strip_name(lb)


def _signature_fn(
    mod: pp.BinModifier | None,
) -> tuple[Callable[[Labels], Labels], bool, list[str]]:
    matching = mod.matching if mod is not None else None
    if matching is None:
        return _no_name, False, []
    names = list(matching.labels)
    on = str(matching.type).endswith("Include")
    if on:
        keep = set(names)

        def sig_on(lb: Labels) -> Labels:
            return tuple(p for p in lb if p[0] in keep)

        return sig_on, True, names
    drop = set(names) | {METRIC_NAME, DROPPED}

    def sig_ignoring(lb: Labels) -> Labels:
        return tuple(p for p in lb if p[0] not in drop)

    return sig_ignoring, False, names


def _group_any(sigs: list[Labels], present: Bool) -> tuple[dict[Labels, int], Bool]:
    """Per distinct signature: whether any row with it is present, per step."""
    index: dict[Labels, int] = {}
    gid = np.empty(len(sigs), dtype=np.int64)
    for i, s in enumerate(sigs):
        gid[i] = index.setdefault(s, len(index))
    out = np.zeros((len(index), present.shape[1]), dtype=bool)
    if len(sigs):
        np.logical_or.at(out, gid, present)
    return index, out


def negate(v: Value) -> Value:
    """Unary minus: of a scalar, or of a vector (whose series lose their name)."""
    if isinstance(v, Scalar):
        return Scalar(-v.values)
    if isinstance(v, Vector):
        hists = None
        if v.hists is not None:
            hists = np.array(
                [
                    [None if h is None else compact(mul(h, -1.0), 0) for h in row]
                    for row in v.hists
                ],
                dtype=object,
            ).reshape(v.values.shape)
        return merge_rows(
            [drop_name(lb) for lb in v.labels], -v.values, v.present.copy(), hists=hists
        )
    raise EvaluationError("unary minus on a non-numeric value")


def _hist_cells(  # noqa: PLR0917
    ctx: EvalContext | None,
    op: str,
    lv: np.ndarray,
    rv: np.ndarray,
    lh: np.ndarray | None,
    rh: np.ndarray | None,
    p: Bool,
    return_bool: bool,
) -> tuple[np.ndarray, Bool, np.ndarray | None]:
    """``lv op rv`` at the steps ``p`` where either side is a histogram (``lh``/``rh``, per
    step, None for a float), as ``histogram.binop`` decides it; float steps keep the numpy
    path. Returns values, presence and the result histograms (None if there are none)."""
    nsteps = len(p)
    lv = np.broadcast_to(lv, (nsteps,))
    rv = np.broadcast_to(rv, (nsteps,))
    lhm = np.zeros(nsteps, bool) if lh is None else hist_mask(lh)
    rhm = np.zeros(nsteps, bool) if rh is None else hist_mask(rh)
    anyh = (lhm | rhm) & p
    fp = p & ~(lhm | rhm)
    if op in TRIMS:
        if fp.any() and ctx is not None:
            ctx.info(
                "PromQL info: incompatible sample types encountered for binary operator "
                f'"{op}": float {op} float'
            )
        fp = np.zeros(nsteps, dtype=bool)
        vals = np.zeros(nsteps)
    elif op in COMPARISON:
        ok = _compare(op, lv, rv)
        if return_bool:
            vals = ok.astype(np.float64)
        else:
            vals = np.array(lv, dtype=np.float64, copy=True)
            fp = fp & ok
    else:
        vals = np.array(_arith(op, lv, rv), dtype=np.float64, copy=True)
    vals = np.broadcast_to(vals, (nsteps,)).copy()
    pres = fp.copy()
    hists = np.full(nsteps, None, dtype=object)
    for j in np.flatnonzero(anyh):
        a = lh[j] if lhm[j] else float(lv[j])  # type: ignore[index]
        b = rh[j] if rhm[j] else float(rv[j])  # type: ignore[index]
        res = hbinop(op, a, b)
        if res.note is not None and ctx is not None:
            (ctx.warn if res.note_is_warning else ctx.info)(res.note)
        if res.value is None:
            continue
        if op in COMPARISON:
            if return_bool:
                vals[j] = 1.0 if res.keep else 0.0
                pres[j] = True
                continue
            if not res.keep:
                continue
        pres[j] = True
        if isinstance(res.value, FloatHistogram):
            hists[j] = res.value
            vals[j] = np.nan
        else:
            vals[j] = res.value
    has = hist_mask(hists).any()
    return vals, pres, hists if has else None


def binary(
    op: str,
    mod: pp.BinModifier | None,
    lhs: Value,
    rhs: Value,
    ctx: EvalContext | None = None,
) -> Vector | Scalar:
    """``lhs op rhs`` with the matching, ``bool`` and ``fill`` of ``mod``, for all steps."""
    return_bool = bool(mod.return_bool) if mod is not None else False
    if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
        if op in COMPARISON:
            return Scalar(_compare(op, lhs.values, rhs.values).astype(np.float64))
        return Scalar(_arith(op, lhs.values, rhs.values))
    if op in TRIMS:
        lhs, rhs = _with_hist_column(lhs), _with_hist_column(rhs)
    if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
        if lhs.hists is not None:
            return _hist_vector_scalar(ctx, op, lhs, rhs.values, return_bool, swap=False)
        return _vector_scalar(op, lhs, rhs.values, return_bool, swap=False)
    if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
        if rhs.hists is not None:
            return _hist_vector_scalar(ctx, op, rhs, lhs.values, return_bool, swap=True)
        return _vector_scalar(op, rhs, lhs.values, return_bool, swap=True)
    if not (isinstance(lhs, Vector) and isinstance(rhs, Vector)):
        raise EvaluationError(
            "binary expression must contain only scalar and instant vector types"
        )
    if op in SET_OPS:
        return _set_op(op, lhs, rhs, mod)
    return _vector_vector(op=op, lhs=lhs, rhs=rhs, mod=mod, return_bool=return_bool, ctx=ctx)


def _with_hist_column(v: Value) -> Value:
    """``v`` with an (all-None) histogram column, so the histogram path decides every cell."""
    if isinstance(v, Vector) and v.hists is None:
        return Vector(
            v.labels, v.values, v.present, v.sample_ts, np.full(v.values.shape, None, object)
        )
    return v


def _hist_vector_scalar(
    ctx: EvalContext | None, op: str, vec: Vector, s: F64, return_bool: bool, *, swap: bool
) -> Vector:
    assert vec.hists is not None
    filtering = op in COMPARISON and not return_bool
    labels = [lb if filtering or op in TRIMS else _drop_name(lb) for lb in vec.labels]
    n = len(labels)
    vals = np.zeros(vec.values.shape)
    pres = np.zeros(vec.values.shape, dtype=bool)
    hists = np.full(vec.values.shape, None, dtype=object)
    for i in range(n):
        if swap:
            v, p, h = _hist_cells(
                ctx, op, s, vec.values[i], None, vec.hists[i], vec.present[i], return_bool
            )
        else:
            v, p, h = _hist_cells(
                ctx, op, vec.values[i], s, vec.hists[i], None, vec.present[i], return_bool
            )
        if filtering:
            # A filter keeps the vector's own sample (the scalar only decides).
            v = np.where(p, vec.values[i], 0.0)
            h = np.where(p, vec.hists[i], None)
        vals[i], pres[i] = v, p
        if h is not None:
            hists[i] = h
    return merge_rows(labels, vals, pres, hists=hists)


def _vector_scalar(op: str, vec: Vector, s: F64, return_bool: bool, *, swap: bool) -> Vector:
    sv = s[None, :]
    if op in COMPARISON:
        a, b = (sv, vec.values) if swap else (vec.values, sv)
        ok = _compare(
            op, np.broadcast_to(a, vec.values.shape), np.broadcast_to(b, vec.values.shape)
        )
        if return_bool:
            labels = [_drop_name(lb) for lb in vec.labels]
            return merge_rows(labels, ok.astype(np.float64), vec.present.copy())
        present = vec.present & ok
        keep = present.any(axis=1)
        return Vector(kept(vec.labels, keep), vec.values[keep], present[keep])
    vals = _arith(op, sv, vec.values) if swap else _arith(op, vec.values, sv)
    labels = [_drop_name(lb) for lb in vec.labels]
    return merge_rows(labels, np.broadcast_to(vals, vec.values.shape).copy(), vec.present.copy())


def _set_op(op: str, lhs: Vector, rhs: Vector, mod: pp.BinModifier | None) -> Vector:
    sig, _, _ = _signature_fn(mod)
    lsig = [sig(lb) for lb in lhs.labels]
    rsig = [sig(lb) for lb in rhs.labels]
    if op in ("and", "unless"):
        index, any_r = _group_any(rsig, rhs.present)
        nsteps = lhs.values.shape[1]
        match = np.zeros(lhs.present.shape, dtype=bool)
        for i, s in enumerate(lsig):
            j = index.get(s)
            if j is not None:
                match[i] = any_r[j]
        present = lhs.present & (match if op == "and" else ~match)
        keep = present.any(axis=1)
        del nsteps
        return Vector(
            kept(lhs.labels, keep),
            lhs.values[keep],
            present[keep],
            hists=None if lhs.hists is None else lhs.hists[keep],
        )
    # or
    index, any_l = _group_any(lsig, lhs.present)
    rp = rhs.present.copy()
    for i, s in enumerate(rsig):
        j = index.get(s)
        if j is not None:
            rp[i] &= ~any_l[j]
    labels = list(lhs.labels) + list(rhs.labels)
    vals = np.concatenate([lhs.values, rhs.values]) if labels else lhs.values
    pres = np.concatenate([lhs.present, rp]) if labels else lhs.present
    hists = None
    if labels and (lhs.hists is not None or rhs.hists is not None):
        hists = np.concatenate([_hists_of(lhs), _hists_of(rhs)])
    return merge_rows(labels, vals, pres, hists=hists)


def _hists_of(v: Vector) -> np.ndarray:
    if v.hists is not None:
        return v.hists
    return np.full(v.values.shape, None, dtype=object)


def _fmt_labels(lb: Labels) -> str:
    return "{" + ", ".join(f'{n}="{v}"' for n, v in lb) + "}"


def _vector_vector(
    *,
    op: str,
    lhs: Vector,
    rhs: Vector,
    mod: pp.BinModifier | None,
    return_bool: bool,
    ctx: EvalContext | None = None,
) -> Vector:
    card = str(mod.card).rsplit(".", 1)[-1] if mod is not None else "OneToOne"
    sig, on, match_names = _signature_fn(mod)
    include = list(mod.group_labels or []) if mod is not None else []
    swapped = card == "OneToMany"
    many, one = (rhs, lhs) if swapped else (lhs, rhs)
    nsteps = lhs.values.shape[1]
    msig = [sig(lb) for lb in many.labels]
    osig = [sig(lb) for lb in one.labels]
    both = many.present.any(axis=0) & one.present.any(axis=0)

    one_rows: dict[Labels, list[int]] = {}
    for i, s in enumerate(osig):
        one_rows.setdefault(s, []).append(i)
    for s, rows in one_rows.items():
        if len(rows) > 1:
            cnt = one.present[rows].sum(axis=0)
            bad = (cnt > 1) & both
            if bad.any():
                step = int(np.argmax(bad))
                dups = [one.labels[r] for r in rows if one.present[r, step]][:2]
                side = "left" if swapped else "right"
                raise EvaluationError(
                    f"found duplicate series for the match group {_fmt_labels(s)} on the {side} "
                    f"hand-side of the operation: "
                    f"[{_fmt_labels(dups[0])}, {_fmt_labels(dups[1])}]"
                    ";many-to-many matching not allowed: "
                    "matching labels must be unique on one side"
                )
    if card == "OneToOne":
        many_rows: dict[Labels, list[int]] = {}
        for i, s in enumerate(msig):
            many_rows.setdefault(s, []).append(i)
        for s, rows in many_rows.items():
            if len(rows) > 1 and s in one_rows:
                cnt = many.present[rows].sum(axis=0)
                opres = one.present[one_rows[s]].any(axis=0)
                if ((cnt > 1) & opres).any():
                    raise EvaluationError(
                        "multiple matches for labels: many-to-one matching must be explicit "
                        "(group_left/group_right)"
                    )

    keep_set = set(match_names)
    out_labels: list[Labels] = []
    out_vals: list[np.ndarray] = []
    out_pres: list[np.ndarray] = []
    out_hists: list[np.ndarray | None] = []
    dropping = op in ARITHMETIC or return_bool
    fill = mod.fill_values if mod is not None else None
    fill_lhs = fill.lhs if fill is not None else None
    fill_rhs = fill.rhs if fill is not None else None
    # Like upstream, which swaps the operands of group_right before matching: fill_left
    # always fills the "many" side and fill_right the "one" side.
    fill_one, fill_many = fill_rhs, fill_lhs

    def matching_labels(lb: Labels) -> Labels:
        if on:
            return tuple(x for x in lb if x[0] in keep_set)
        return tuple(x for x in lb if x[0] not in keep_set)

    def emit(  # noqa: PLR0917
        mv: np.ndarray,
        ov: np.ndarray,
        p: np.ndarray,
        lb: Labels,
        mh: np.ndarray | None = None,
        oh: np.ndarray | None = None,
    ) -> None:
        lv, rv = (ov, mv) if swapped else (mv, ov)
        if mh is not None or oh is not None:
            lh, rh = (oh, mh) if swapped else (mh, oh)
            vals, p, hs = _hist_cells(ctx, op, lv, rv, lh, rh, p, return_bool)
            if hs is not None and op in COMPARISON and not return_bool:
                hs = None if lh is None else where_hist(p, lh)
            if p.any():
                out_labels.append(lb)
                out_vals.append(vals)
                out_pres.append(p)
                out_hists.append(hs)
            return
        if op in COMPARISON:
            ok = _compare(op, lv, rv)
            if return_bool:
                vals = ok.astype(np.float64)
            else:
                vals = np.array(lv, dtype=np.float64, copy=True)
                p = p & ok
        else:
            vals = _arith(op, lv, rv)
        if p.any():
            out_labels.append(lb)
            out_vals.append(np.broadcast_to(vals, (nsteps,)).copy())
            out_pres.append(p)
            out_hists.append(None)

    def result_labels(i: int, one_labels: Labels) -> Labels:
        lb = many.labels[i]
        if dropping:
            lb = _drop_name(lb)
        if card == "OneToOne":
            lb = matching_labels(lb)
        if include:
            d = dict(lb)
            od = dict(one_labels)
            for name in include:
                v = od.get(name, "")
                if v:
                    d[name] = v
                else:
                    d.pop(name, None)
            lb = tuple(sorted(d.items()))
        return lb

    one_any = {sg: one.present[rows].any(axis=0) for sg, rows in one_rows.items()}
    for i, s in enumerate(msig):
        for r in one_rows.get(s, ()):
            p = many.present[i] & one.present[r]
            if p.any():
                emit(
                    many.values[i],
                    one.values[r],
                    p,
                    result_labels(i, one.labels[r]),
                    None if many.hists is None else many.hists[i],
                    None if one.hists is None else one.hists[r],
                )
        if fill_one is not None:
            # fill(): the "one" side is missing at these steps; its value is the fill value.
            missing = one_any.get(s)
            p = many.present[i] if missing is None else many.present[i] & ~missing
            if p.any():
                emit(many.values[i], np.full(nsteps, fill_one), p, result_labels(i, ()))
    if fill_many is not None:
        many_rows: dict[Labels, list[int]] = {}
        for i, s in enumerate(msig):
            many_rows.setdefault(s, []).append(i)
        for s, rows in one_rows.items():
            mrows = many_rows.get(s)
            many_any = many.present[mrows].any(axis=0) if mrows else np.zeros(nsteps, bool)
            for r in rows:
                p = one.present[r] & ~many_any
                if p.any():
                    # A series for the match group alone stands in for the missing side.
                    lb = matching_labels(_drop_name(one.labels[r]))
                    emit(np.full(nsteps, fill_many), one.values[r], p, lb)
    if not out_labels:
        return Vector.empty(nsteps)
    msg = (
        "vector cannot contain metrics with the same labelset"
        if card == "OneToOne"
        else "multiple matches for labels: grouping labels must ensure unique matches"
    )
    hists = None
    if any(h is not None for h in out_hists):
        hists = np.full((len(out_labels), nsteps), None, dtype=object)
        for k, h in enumerate(out_hists):
            if h is not None:
                hists[k] = h
    return merge_rows(out_labels, np.array(out_vals), np.array(out_pres), msg, hists=hists)
