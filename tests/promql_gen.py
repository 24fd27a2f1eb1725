"""The PromQL query generators of the fuzz tests, in one place.

Both the in-process engine fuzz (tests/bridge/test_promql_fuzz.py) and the HTTP fuzz of a real
daemon (tests/e2e/test_fuzz_api.py) draw their queries from here:

- :func:`random_query`: a grammar of mostly well-formed queries (selectors, range functions,
  subqueries, aggregations, binary operators with matching, special functions), driven by a
  ``random.Random`` so a seed reproduces a run; :func:`well_formed_queries` is the same grammar
  as a hypothesis strategy;
- :func:`malformed_queries`: a hypothesis grammar that ignores arity and types;
- :func:`deep_query`, :func:`pathological_regex`: bounded-work inputs (nesting far past the
  limit; regexes exponential for a backtracking engine).

The differential test against Prometheus keeps its own narrower grammar
(tests/e2e/test_promql_differential.py): it only asks what Debian's Prometheus 2.42 answers the
same way (no ties, no functions newer than 2.42).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hypothesis import strategies as st

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


def random_query(rng: random.Random, selectors: Sequence[str] = SEL, d: int = 0) -> str:
    """A mostly well-formed query over ``selectors`` (the engine must answer or refuse it)."""
    r = rng.random()
    sel = selectors
    if d > 3 or r < 0.25:
        return rng.choice(sel)
    if r < 0.4:
        return f"{rng.choice(FM)}({rng.choice(sel)}[{rng.choice(RNG)}])"
    if r < 0.5:
        inner = random_query(rng, sel, d + 1)
        return f"{rng.choice(FM)}(({inner})[{rng.choice(RNG)}:{rng.choice(['', '15s', '1m'])}])"
    if r < 0.6:
        f = rng.choice(F1)
        return (
            f"-({random_query(rng, sel, d + 1)})"
            if f == "-"
            else f"{f}({random_query(rng, sel, d + 1)})"
        )
    if r < 0.72:
        g = rng.choice(["", " by (i)", " without (j)", " by (__name__)", " by ()"])
        return f"{rng.choice(AGG)}{g} ({random_query(rng, sel, d + 1)})"
    if r < 0.78:
        k = rng.choice(["topk", "bottomk", "quantile", "count_values"])
        p = {
            "topk": rng.choice(["1", "2", "0", "-1", "scalar(a)"]),
            "bottomk": "2",
            "quantile": rng.choice(["0.5", "2", "-1", "NaN"]),
            "count_values": '"v"',
        }[k]
        return f"{k}({p}, {random_query(rng, sel, d + 1)})"
    if r < 0.92:
        op = rng.choice(OPS)
        mod = rng.choice(
            ["", " on(i)", " ignoring(j)", " on(i) group_left(j)", " on() group_right", " bool"]
        )
        if op in ("and", "or", "unless") and ("group" in mod or "bool" in mod):
            mod = ""
        if "bool" in mod and op not in ("==", "!=", ">", "<", ">=", "<="):
            mod = ""
        rhs = (
            random_query(rng, sel, d + 1)
            if rng.random() < 0.7
            else rng.choice(["1", "0", "NaN", "-Inf", "time()"])
        )
        if op in ("and", "or", "unless") and rhs[0].isdigit():
            rhs = "a"
        return f"({random_query(rng, sel, d + 1)}){op}{mod} ({rhs})"
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


def well_formed_queries(selectors: Sequence[str]) -> st.SearchStrategy[str]:
    """:func:`random_query` as a hypothesis strategy (the seed is drawn, so it shrinks)."""
    return st.randoms(use_true_random=False).map(lambda rng: random_query(rng, selectors))


def _atoms(metric: str) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            "{M}",
            '{M}{series="s001"}',
            '{__name__=~"fuzz.*"}',
            '{series!~""}',
            "{M}[5m]",
            "{M}[1m:15s]",
            "{M} offset 1m",
            "{M} @ 100",
            "1",
            "-2.5",
            "NaN",
            "Inf",
            '"str"',
            "0x1f",
            "1e308",
            "time()",
            "vector(1)",
            "nonexistent",
        ]
    ).map(lambda atom: atom.replace("{M}", metric))


FUNCTIONS = st.sampled_from(
    [
        "rate",
        "irate",
        "increase",
        "delta",
        "deriv",
        "abs",
        "sum",
        "avg",
        "count",
        "max",
        "min",
        "topk",
        "quantile",
        "histogram_quantile",
        "label_replace",
        "label_join",
        "sort",
        "absent",
        "clamp",
        "round",
        "predict_linear",
        "holt_winters",
        "count_values",
        "sum_over_time",
        "quantile_over_time",
        "scalar",
        "timestamp",
        "sqrt",
        "ln",
        "exp",
        "changes",
        "resets",
    ]
)
BINOPS = st.sampled_from(
    [
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
        "== bool",
        "+ on(series)",
        "* ignoring(series) group_left",
        "/ on() group_right",
    ]
)


def malformed_queries(metric: str) -> st.SearchStrategy[str]:
    """Queries assembled with little regard for arity or types (the API must answer 4xx)."""
    return st.recursive(
        _atoms(metric),
        lambda inner: st.one_of(
            st.tuples(FUNCTIONS, st.lists(inner, min_size=0, max_size=3)).map(
                lambda fa: f"{fa[0]}({', '.join(fa[1])})"
            ),
            st.tuples(inner, BINOPS, inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
            st.tuples(
                st.sampled_from(["sum", "max", "count", "topk(2,", "quantile(0.5,"]),
                st.sampled_from(["by (series)", "without (series)", ""]),
                inner,
            ).map(
                lambda t: (
                    f"{t[0]}({t[2]})) {t[1]}" if t[0].endswith(",") else f"{t[0]} {t[1]} ({t[2]})"
                )
            ),
            st.tuples(inner, st.sampled_from(["[5m]", "[1m:10s]", "[0s]", "[5m:]"])).map(
                lambda t: f"({t[0]}){t[1]}"
            ),
            inner.map(lambda s: f"-({s})"),
            st.tuples(inner, st.text(max_size=5)).map(lambda t: t[0] + t[1]),
        ),
        max_leaves=6,
    )


DEEP_SHAPES = ("paren", "chain", "unary", "call", "subquery", "or", "mixed")


def deep_query(shape: str, depth: int, metric: str = "a", rng: random.Random | None = None) -> str:
    """``depth`` levels of one nesting shape around ``metric`` (``mixed`` draws from ``rng``)."""
    if shape == "mixed":
        chooser = rng or random.Random(depth)
        opening = "".join(chooser.choice(["(", "abs(", "-("]) for _ in range(depth))
        return opening + metric + ")" * depth
    return {
        "paren": lambda: "(" * depth + metric + ")" * depth,
        "chain": lambda: metric + " + 1" * depth,
        "unary": lambda: "-" * depth + "1",
        "call": lambda: "abs(" * depth + metric + ")" * depth,
        "subquery": lambda: "max_over_time(" * depth + metric + "[5m:1m])" * depth,
        "or": lambda: " or ".join([metric] * (depth + 1)),
    }[shape]()


def pathological_regex(rng: random.Random) -> str:
    """Nested quantifiers over overlapping alternatives: exponential for a backtracker."""
    pattern = rng.choice([".", ".*", "a", "a?", "[a-z]", r"\w", "(a|aa)", "(a|a?)", "(.*a)"])
    for _ in range(rng.randint(1, 4)):
        pattern = f"({pattern}{rng.choice(['*', '+', '?', '{1,5}', '*?', ''])})"
        if rng.random() < 0.3:
            pattern += pattern
    return pattern + rng.choice(["y", "$", "b", "", "(?:a|b)*c"])
