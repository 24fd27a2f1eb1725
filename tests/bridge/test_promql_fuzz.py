"""Random PromQL over awkward data (NaN, +Inf, stale markers, missing series): every query
either answers or fails with a user-facing error type, never an internal error. Deep, long and
regex-pathological queries are answered or refused within a time bound, never crash."""

from __future__ import annotations

import random
import time

import numpy as np
import promql_parser as pp

from grafana_agent_bridge.labels import make_labels
from grafana_agent_bridge.promql import Engine, PromQLError
from grafana_agent_bridge.promql.promqltest.memquerier import MemoryStore
from grafana_agent_bridge.promql.querytext import TextLimits, depth_bound
from grafana_agent_bridge.storage import STALE_NAN, SeriesBatch
from tests.promql_gen import DEEP_SHAPES, deep_query, pathological_regex, random_query


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


def test_random_queries_never_fail_internally() -> None:
    engine = Engine(_store())
    answered = 0
    for _ in range(250):
        q = random_query(rng)
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


# -- bounded work: deep, long and pathological input -------------------------------------------


def _tree_depth(node: object) -> int:
    """The depth of a parsed syntax tree (a leaf is 0), walking the parser's own objects."""
    children = [getattr(node, a, None) for a in ("expr", "lhs", "rhs", "param")]
    children += list(getattr(node, "args", None) or ())
    return 1 + max((_tree_depth(c) for c in children if c is not None), default=-1)


def test_depth_bound_is_never_below_the_real_depth() -> None:
    """The pre-parse scan must never under-estimate, or a deep query could reach the parser."""
    checked = 0
    for _ in range(300):
        q = random_query(rng)
        try:
            tree = pp.parse(q)
        except ValueError:
            continue  # the generator also makes invalid queries (e.g. topk(-1, ...))
        assert depth_bound(q) >= _tree_depth(tree), q
        checked += 1
    assert checked > 200


def test_deep_queries_are_answered_or_refused_by_the_limit() -> None:
    """Up to the limit they evaluate; past it (up to 20x, where the parser used to die with
    SIGSEGV and take this test process with it) they are refused before parsing."""
    engine = Engine(_store(), text_limits=TextLimits(max_depth=100))
    for _ in range(60):
        shape = rng.choice(DEEP_SHAPES)
        depth = rng.choice(
            [rng.randint(1, 100), rng.randint(101, 2_000), 10_000 + rng.randint(0, 9)]
        )
        q = deep_query(shape, depth, rng=rng)
        started = time.monotonic()
        try:
            engine.instant(q, 400_000)
            assert depth_bound(q) <= 100, (shape, depth)
        except PromQLError as e:
            assert e.error_type in ("bad_data", "execution"), (shape, depth, str(e))
            if depth > 100 and shape != "mixed":
                assert "query.max_nesting_depth" in str(e), (shape, depth, str(e))
        assert time.monotonic() - started < 2.0, (shape, depth)


def test_long_queries_are_answered_or_refused_by_the_limit() -> None:
    engine = Engine(_store(), text_limits=TextLimits(max_length=200_000))
    for _ in range(20):
        n = rng.choice([10, 1_000, 50_000, 250_000])
        q = rng.choice(
            [
                '{__name__=~"' + "|".join(f"a{i}" for i in range(n // 4)) + '|a"}',
                'a{i!="' + "x" * n + '"}',
                "a" + " " * n,
                "sum by (" + ", ".join(f"l{i}" for i in range(n // 5)) + ") (a)",
                'label_replace(a, "x", "' + "$1" * (n // 2) + '", "i", "(.*)")',
            ]
        )
        started = time.monotonic()
        try:
            engine.instant(q, 400_000)
            assert len(q) <= 200_000
        except PromQLError as e:
            assert e.error_type in ("bad_data", "execution"), str(e)[:200]
            if len(q) > 200_000:
                assert "query.max_query_length" in str(e)
        assert time.monotonic() - started < 5.0, q[:80]


def test_pathological_regexes_run_in_linear_time() -> None:
    store = _store()
    for n in (30, 5_000):
        bait = {"__name__": "bait", "v": "a" * n, "w": "ab" * n}
        store.append(
            [SeriesBatch(make_labels(bait), np.array([390_000], np.int64), np.array([1.0]))]
        )
    engine = Engine(store)
    for _ in range(100):
        p = pathological_regex(rng).replace("\\", "\\\\")
        q = rng.choice(
            [
                f'{{__name__=~"bait|a", v=~"{p}"}}',
                f'bait{{w!~"{p}"}}',
                f'label_replace(bait, "x", "$1", "v", "{p}")',
                f'label_replace({{__name__=~"{p}"}}, "x", "${{1}}", "w", "{p}")',
            ]
        )
        started = time.monotonic()
        try:
            engine.instant(q, 400_000)
        except PromQLError as e:
            assert e.error_type in ("bad_data", "execution"), (q, str(e))
        assert time.monotonic() - started < 1.0, q
