"""``info(v, {selector})`` (experimental): enrich series with the data labels of info series.

Like Prometheus, which evaluates it in the engine rather than as a function, the evaluator
runs it in two halves around its own series selection: ``info_matchers`` reads which info
series to select from the call's syntax; the evaluator selects them; ``join_info`` adds their
data labels to each series of ``v`` that shares ``instance`` and ``job`` with one.
"""

from __future__ import annotations

import numpy as np
import promql_parser as pp

from ..labels import METRIC_NAME, Labels, Matcher, MatchType
from .errors import EvaluationError
from .parser import selector_matcher_sets
from .values import Vector, merge_rows

_IDENTIFYING = ("instance", "job")


def info_matchers(selector: pp.Expr | None) -> tuple[list[Matcher], list[Matcher]]:
    """(matchers selecting the info series, matchers on their data labels) of ``info()``'s
    optional second argument; by default every ``target_info`` series."""
    matchers: list[Matcher] = []
    if selector is not None:
        if not isinstance(selector, pp.VectorSelector):
            raise EvaluationError("info() expects a label selector as its second argument")
        matchers = selector_matcher_sets(selector)[0]
    name_m = [m for m in matchers if m.name == METRIC_NAME]
    data_m = [m for m in matchers if m.name != METRIC_NAME]
    if not name_m:
        name_m = [Matcher(METRIC_NAME, MatchType.EQUAL, "target_info")]
    elif all(m.type in (MatchType.NOT_EQUAL, MatchType.NOT_REGEX) for m in name_m):
        name_m = [*name_m, Matcher(METRIC_NAME, MatchType.REGEX, ".+_info")]
    return name_m, data_m


def join_info(v: Vector, info: Vector, name_m: list[Matcher], data_m: list[Matcher]) -> Vector:
    """``v`` with the data labels of the ``info`` series (selected by ``name_m``) that match
    ``data_m`` and share identifying labels with each series, step by step."""
    nsteps = v.nsteps
    if info.hists is not None and bool(
        (np.any(v.present, axis=0) & np.any(info.is_hist(), axis=0)).any()
    ):
        raise EvaluationError("info sample should be float")
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
    out_labels: list[Labels] = []
    out_vals: list[np.ndarray] = []
    out_pres: list[np.ndarray] = []
    out_hists: list[np.ndarray] = []
    no_hists = np.full(nsteps, None, dtype=object)
    for r, lb in enumerate(v.labels):
        base = dict(lb)
        if all(m.matches(base.get(METRIC_NAME, "")) for m in name_m):
            out_labels.append(lb)  # info series themselves are not enriched
            out_vals.append(v.values[r])
            out_pres.append(v.present[r])
            out_hists.append(no_hists if v.hists is None else v.hists[r])
            continue
        cands = by_id.get(tuple(base.get(n, "") for n in _IDENTIFYING), [])
        for j in np.flatnonzero(v.present[r]):
            live = [c for c in cands if info.present[c, j]]
            if live:
                # Per info metric, the series with the latest sample wins; metrics combine.
                ts = info.sample_ts
                best: dict[str, int] = {}
                for c in live:
                    name = dict(info.labels[c]).get(METRIC_NAME, "")
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
            hrow = np.full(nsteps, None, dtype=object)
            if v.hists is not None:
                hrow[j] = v.hists[r, j]
            out_labels.append(new)
            out_vals.append(row)
            out_pres.append(pres)
            out_hists.append(hrow)
    if not out_labels:
        return Vector.empty(nsteps)
    hists = np.array(out_hists, dtype=object) if v.hists is not None else None
    return merge_rows(out_labels, np.array(out_vals), np.array(out_pres), hists=hists)
