"""Pure helpers of the engine whose exact behaviour users see: RE2 regexes, Go's template
expansion in label_replace, Go's float formatting in count_values, bucket maths."""

from __future__ import annotations

import math

import pytest

from grafana_agent_bridge.promql.functions.labelfuncs import expand_template
from grafana_agent_bridge.promql.numeric import (
    bucket_fraction,
    bucket_quantile,
    format_float,
    kahan_sum,
    quantile,
)
from grafana_agent_bridge.regex import Regex, RegexError, compile_matcher


@pytest.mark.parametrize(
    ("pattern", "text", "hit"),
    [
        ("(?i)prod", "PROD", True),
        ("a(?i)b|c", "C", True),
        ("a(?i)b|c", "aB", True),
        ("a(?i)b|c", "AB", False),
        ("((?i)PRO).*", "production", True),
        ("[[:digit:]]+", "123", True),
        ("[[:digit:]]+", "12a", False),
        ("foo", "foobar", False),  # fully anchored
        ("a.b", "a\nb", True),  # . matches newline (Prometheus 3.x)
        ("a|b", "b", True),  # literal alternatives take a set lookup
        ("a|b", "ab", False),
        ("", "", True),
        (".*", "x\ny", True),
        (".+", "", False),
        ("x\\z", "x", True),  # RE2's end of text
        ("[^a]", "\n", True),
        ("é+", "éé", True),  # UTF-8 code points, not bytes
    ],
)
def test_re2_patterns_behave_like_prometheus(pattern: str, text: str, hit: bool) -> None:
    assert compile_matcher(pattern)(text) is hit
    assert (Regex(pattern).groups_of(text) is not None) is hit


@pytest.mark.parametrize(
    "pattern", ["(.*.*.*.*)*y", "(p+)+q", "(a|aa)+b", "(x+x+)+y", "((a*)*|b)*c"]
)
def test_backtracking_patterns_run_in_linear_time(pattern: str) -> None:
    """Python's ``re`` needs minutes (exponential steps) for each of these; RE2 does not."""
    import time

    text = "p" * 5000 + "x" * 5000 + "a" * 5000
    started = time.monotonic()
    for _ in range(10):
        assert not compile_matcher(pattern)(text)
        assert Regex(pattern).groups_of(text) is None
    assert time.monotonic() - started < 2.0


def test_capture_groups_of_label_replace() -> None:
    rx = Regex("(?P<name>a+)-(b)?(c)?")
    assert rx.groups_of("aa-b") == ["aa-b", "aa", "b", None]
    assert rx.names == {"name": 1}
    assert rx.groups_of("aa-bx") is None  # fully anchored


@pytest.mark.parametrize(
    ("template", "expected"),
    [("$1", "a"), ("${1}x", "ax"), ("$1x", ""), ("$name-$2", "a-b"), ("$$1", "$1"), ("$9", "")],
)
def test_go_template_expansion(template: str, expected: str) -> None:
    rx = Regex(r"(?P<name>a)-(b)")
    groups = rx.groups_of("a-b")
    assert groups is not None
    assert expand_template(template, groups, rx.names) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1"), (0.1, "0.1"), (1e21, "1000000000000000000000"), (1e-7, "0.0000001"),
     (-2.5, "-2.5"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN")],
)  # fmt: skip
def test_count_values_formats_like_go(value: float, text: str) -> None:
    assert format_float(value) == text


def test_kahan_sum_keeps_small_terms() -> None:
    assert kahan_sum([1e100, 1.0, -1e100, 1.0]) == 2.0


def test_quantile_interpolates_between_ranks() -> None:
    assert quantile(0.5, [1, 2, 3, 4]) == 2.5
    assert quantile(1.5, [1.0]) == math.inf
    assert math.isnan(quantile(0.5, []))


def test_bucket_quantile() -> None:
    buckets = [(0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (math.inf, 40.0)]
    assert bucket_quantile(0.5, buckets)[0] == pytest.approx(0.1 + 0.4 * 0.5)
    assert bucket_quantile(0.99, [(1.0, 1.0), (math.inf, 2.0)])[0] == 1.0  # highest bucket
    value, forced = bucket_quantile(0.5, [(1.0, 5.0), (2.0, 4.0), (math.inf, 10.0)])
    assert forced and value == pytest.approx(1.0)  # monotonicity fixed (an info is raised)
    assert math.isnan(bucket_quantile(0.5, [(1.0, 5.0)])[0])  # no +Inf bucket


def test_bucket_fraction() -> None:
    buckets = [(1.0, 1.0), (2.0, 3.0), (3.0, 6.0), (math.inf, 100.0)]
    assert bucket_fraction(0, 1.5, buckets) == pytest.approx(0.02)
    assert bucket_fraction(4, 5, buckets) == 0.0  # inside the +Inf bucket: no interpolation
    assert bucket_fraction(400, math.inf, buckets) == pytest.approx(0.94)
    neg = [(-3.0, 10.0), (-2.0, 12.0), (-1.0, 15.0), (math.inf, 100.0)]
    assert bucket_fraction(-4, -2, neg) == pytest.approx(0.02)
    assert bucket_fraction(-math.inf, -1.5, neg) == pytest.approx(0.135)


@pytest.mark.parametrize(
    "pattern",
    ["a(?=b)", "a(?!b)", "(?<=a)b", r"(a)\1", "(?P<n>a)(?P=n)", r"a\Z", "a{1001}", "(a"],
)
def test_syntax_re2_rejects_is_rejected(pattern: str) -> None:
    with pytest.raises(RegexError, match="error parsing regexp"):
        compile_matcher(pattern)
    with pytest.raises(RegexError):
        Regex(pattern)


def test_re2_literal_quoting() -> None:
    rx = compile_matcher(r"\Qa.b\E.*")
    assert rx("a.bc")
    assert not rx("axbc")


def test_vectorised_histogram_quantile_matches_the_exact_path() -> None:
    """The all-steps-at-once path must agree with bucket_quantile on every regular step."""
    import numpy as np

    from grafana_agent_bridge.promql.numeric import bucket_quantile_steps

    rng = np.random.default_rng(3)
    bounds = [0.1, 0.5, 1.0, 5.0, math.inf]
    nsteps = 200
    counts = np.cumsum(rng.integers(0, 5, (len(bounds), nsteps)), axis=0).astype(float)
    counts[2, 7] -= 3  # non-monotonic: forced fix
    counts[:, 9] = 0  # no observations
    present = np.ones(counts.shape, dtype=bool)
    present[1, 11] = False  # a missing bucket: left to the exact path
    q = rng.choice([0.0, 0.25, 0.5, 0.9, 0.99, 1.0], nsteps)
    fast = bucket_quantile_steps(q, bounds, counts, present)
    assert fast is not None
    res, done, forced = fast
    assert forced and not done[11] and done.sum() == nsteps - 1
    for j in np.flatnonzero(done):
        want = bucket_quantile(
            float(q[j]), [(b, float(counts[i, j])) for i, b in enumerate(bounds)]
        )
        assert res[j] == pytest.approx(want[0], nan_ok=True), j


def test_vectorised_quantile_matches_the_exact_one() -> None:
    import numpy as np

    from grafana_agent_bridge.promql.numeric import quantile_sorted

    rng = np.random.default_rng(5)
    for _ in range(50):
        n = int(rng.integers(1, 9))
        vals = rng.normal(0, 10, n)
        if rng.random() < 0.2:
            vals[0] = math.inf
        for q in (0.0, 0.3, 0.5, 0.99, 1.0, -1.0, 2.0):
            padded = np.sort(np.r_[vals, [np.inf] * 3])[None, :]
            got = quantile_sorted(padded, np.array([n]), np.array([q]))[0]
            assert got == pytest.approx(quantile(q, vals.tolist()), nan_ok=True)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("job", True),
        ("__name__", True),
        ("service.name", True),  # UTF-8 names are valid in Prometheus 3.x
        ("名前", True),
        ("", False),
        ("a\ufffdz", False),  # where the parser put bytes that were not UTF-8
        ("a\udcc5z", False),  # a lone surrogate cannot be encoded
    ],
)
def test_one_label_name_rule_for_count_values_and_label_replace(name: str, valid: bool) -> None:
    """The rule both count_values and label_replace/label_join apply to a new label's name."""
    from grafana_agent_bridge.labels import is_valid_label_name

    assert is_valid_label_name(name) is valid
