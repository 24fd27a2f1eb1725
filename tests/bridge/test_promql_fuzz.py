"""Random PromQL over awkward data (NaN, +Inf, stale markers, missing series): every query
either answers or fails with a user-facing error type, never an internal error."""

from __future__ import annotations

import random

import numpy as np

from grafana_agent_bridge.labels import make_labels
from grafana_agent_bridge.promql import Engine, PromQLError
from grafana_agent_bridge.promql.memquerier import MemoryStore
from grafana_agent_bridge.storage import STALE_NAN, SeriesBatch


def _store() -> MemoryStore:
    s = MemoryStore()
    nr = np.random.default_rng(1)
    for name in ("a", "b_total", "c_bucket"):
        for i in range(3):
            for le in ["0.1", "1", "+Inf"] if name == "c_bucket" else [None]:
                lb = {"__name__": name, "i": str(i), "j": str(i % 2)}
                if le:
                    lb["le"] = le
                n = 40
                ts = np.arange(n) * 15000 + nr.integers(0, 5000, n)
                v = np.cumsum(nr.normal(1, 3, n))
                if i == 1:
                    v[10] = np.nan
                if i == 2:
                    v[20] = STALE_NAN
                if name == "a" and i == 0:
                    v[5] = np.inf
                s.append([SeriesBatch(make_labels(lb), ts.astype(np.int64), v)])
    return s


rng = random.Random(0)

SEL = [
    "a",
    "b_total",
    "c_bucket",
    'a{i="1"}',
    '{__name__=~"a|b_total"}',
    'a{j!~"0"}',
    "nothing",
    "a offset 1m",
    "a @ 100",
    "b_total @ end()",
]
RNG = ["1m", "2m", "30s", "5m"]
F1 = [
    "abs",
    "ceil",
    "floor",
    "exp",
    "sqrt",
    "ln",
    "log2",
    "log10",
    "sgn",
    "timestamp",
    "sort",
    "sort_desc",
    "acos",
    "tanh",
    "deg",
    "hour",
    "absent",
    "-",
]
FM = [
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "changes",
    "resets",
    "deriv",
    "avg_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "count_over_time",
    "last_over_time",
    "first_over_time",
    "present_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "mad_over_time",
    "absent_over_time",
    "ts_of_max_over_time",
]
AGG = ["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"]
OPS = [
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "==",
    "!=",
    ">",
    "<",
    ">=",
    "<=",
    "and",
    "or",
    "unless",
    "atan2",
]


def vec(d: int = 0) -> str:
    r = rng.random()
    if d > 3 or r < 0.25:
        return rng.choice(SEL)
    if r < 0.4:
        return f"{rng.choice(FM)}({rng.choice(SEL)}[{rng.choice(RNG)}])"
    if r < 0.5:
        return (
            f"{rng.choice(FM)}(({vec(d + 1)})[{rng.choice(RNG)}:{rng.choice(['', '15s', '1m'])}])"
        )
    if r < 0.6:
        f = rng.choice(F1)
        return f"-({vec(d + 1)})" if f == "-" else f"{f}({vec(d + 1)})"
    if r < 0.72:
        g = rng.choice(["", " by (i)", " without (j)", " by (__name__)", " by ()"])
        return f"{rng.choice(AGG)}{g} ({vec(d + 1)})"
    if r < 0.78:
        k = rng.choice(["topk", "bottomk", "quantile", "count_values"])
        p = {
            "topk": rng.choice(["1", "2", "0", "-1", "scalar(a)"]),
            "bottomk": "2",
            "quantile": rng.choice(["0.5", "2", "-1", "NaN"]),
            "count_values": '"v"',
        }[k]
        return f"{k}({p}, {vec(d + 1)})"
    if r < 0.92:
        op = rng.choice(OPS)
        mod = rng.choice(
            ["", " on(i)", " ignoring(j)", " on(i) group_left(j)", " on() group_right", " bool"]
        )
        if op in ("and", "or", "unless") and ("group" in mod or "bool" in mod):
            mod = ""
        if "bool" in mod and op not in ("==", "!=", ">", "<", ">=", "<="):
            mod = ""
        rhs = vec(d + 1) if rng.random() < 0.7 else rng.choice(["1", "0", "NaN", "-Inf", "time()"])
        if op in ("and", "or", "unless") and rhs[0].isdigit():
            rhs = "a"
        return f"({vec(d + 1)}){op}{mod} ({rhs})"
    return rng.choice(
        [
            "histogram_quantile(0.9, rate(c_bucket[2m]))",
            "histogram_quantile(0, rate(c_bucket[2m]))",
            "histogram_quantile(1, c_bucket)",
            "histogram_fraction(-Inf, 0, rate(c_bucket[1m]))",
            "histogram_fraction(0, 0.5, c_bucket)",
            'label_replace(a, "x", "$1", "i", "(.*)")',
            'label_join(a, "x", "-", "i", "j")',
            "clamp(a, 0, 5)",
            "round(a, 0.5)",
            "predict_linear(a[5m], 60)",
            "holt_winters(a[5m], 0.5, 0.5)",
            "quantile_over_time(0.3, a[5m])",
            "scalar(a)",
            "vector(time())",
            "clamp_min(a, 1)",
        ]
    )


def test_random_queries_never_fail_internally() -> None:
    engine = Engine(_store())
    answered = 0
    for _ in range(250):
        q = vec()
        for kind in ("instant", "range"):
            try:
                if kind == "instant":
                    engine.instant(q, 400_000)
                else:
                    engine.range(q, 0, 600_000, rng.choice([15_000, 7_000, 60_000]))
                answered += 1
            except PromQLError as e:
                assert e.error_type in ("bad_data", "execution"), (q, kind, str(e))
    assert answered > 250  # the generator mostly produces valid queries
