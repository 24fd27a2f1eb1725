"""Functions about labels and order: ``label_replace``, ``label_join``, ``sort*``, and
``absent``/``absent_over_time`` (whose result's labels come from the argument's matchers)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import promql_parser as pp

from ... import regex as promql_regex
from ...labels import METRIC_NAME, Labels, is_valid_label_name
from ..context import EvalContext
from ..errors import EvaluationError
from ..values import DROPPED, Value, Vector, merge_rows, take_rows
from .common import Call, FuncImpl

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
    if name == METRIC_NAME:
        d.pop(DROPPED, None)  # a name set explicitly stays (delayed name removal)
    if value:
        d[name] = value
    else:
        d.pop(name, None)
    return tuple(sorted(d.items()))


def f_label_replace(ctx: EvalContext, call: Call) -> Value:
    v = call.vector(0)
    dst = call.string(1)
    repl = call.string(2)
    src = call.string(3)
    pattern = call.string(4)
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
        ctx.check()  # a deadline inside the per-series regex loop
        groups = rx.groups_of(dict(lb).get(src, ""))
        labels.append(
            lb if groups is None else _set_label(lb, dst, expand_template(repl, groups, rx.names))
        )
    return merge_rows(labels, v.values, v.present, hists=v.hists)


def f_label_join(ctx: EvalContext, call: Call) -> Value:
    v = call.vector(0)
    dst = call.string(1)
    sep = call.string(2)
    srcs = [call.string(i) for i in range(3, len(call.args))]
    if not is_valid_label_name(dst):
        raise EvaluationError(f"invalid destination label name in label_join(): {dst}")
    labels = []
    for lb in v.labels:
        d = dict(lb)
        labels.append(_set_label(lb, dst, sep.join(d.get(s, "") for s in srcs)))
    return merge_rows(labels, v.values, v.present, hists=v.hists)


# --- ordering ------------------------------------------------------------------------------------


def _sorter(desc: bool) -> FuncImpl:
    def fn(ctx: EvalContext, call: Call) -> Value:
        v = call.vector(0)
        if len(call.times) != 1 or not v.labels:
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
    def fn(ctx: EvalContext, call: Call) -> Value:
        v = call.vector(0)
        names = [call.string(i) for i in range(1, len(call.args))]
        if len(call.times) != 1 or not v.labels:
            return Vector(v.labels, v.values, v.present, hists=v.hists)  # instant only

        def key(i: int) -> tuple[object, ...]:
            d = dict(v.labels[i])
            return (*[_natural_key(d.get(n, "")) for n in names], v.labels[i])

        order = sorted(range(len(v.labels)), key=key, reverse=desc)
        return take_rows(v, order)

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


def f_absent(ctx: EvalContext, call: Call) -> Value:
    v = call.vector(0)
    any_p = np.zeros(len(call.times), dtype=bool)
    if v.labels:
        any_p = np.asarray(v.present.any(axis=0), dtype=bool)
    return _absent_result(call.exprs[0], ~any_p)


def f_absent_over_time(ctx: EvalContext, call: Call) -> Value:
    m = call.matrix(0)
    any_p = np.zeros(len(call.times), dtype=bool)
    if m.labels:
        any_p = np.asarray((m.hi > m.lo).any(axis=0), dtype=bool)
    return _absent_result(call.exprs[0], ~any_p)


FUNCTIONS: dict[str, FuncImpl] = {
    "label_replace": f_label_replace,
    "label_join": f_label_join,
    "sort": _sorter(False),
    "sort_desc": _sorter(True),
    "sort_by_label": _sort_by_label(False),
    "sort_by_label_desc": _sort_by_label(True),
    "absent": f_absent,
    "absent_over_time": f_absent_over_time,
}
