"""The histogram_* functions against Prometheus's own expectations.

Two sources: single cases from ``promql/quantile.go`` doc comments and
``promql/promqltest/testdata/native_histograms.test``, and a sweep over the shared corpus
(Prometheus v3 test files) that takes every ``eval instant`` of ``histogram_quantile``,
``histogram_fraction``, ``histogram_count``/``sum``/``avg``/``stddev``/``stdvar`` applied
directly to a metric loaded with ``load`` and checks the value the module computes for the
loaded histogram (parsed with ``histogram.notation``) against the file's expected value,
with promqltest's tolerance.
"""

from __future__ import annotations

import math
import re

import pytest
from histogram_helpers import fh

from grafana_agent_bridge.histogram.model import CUSTOM_BUCKETS_SCHEMA, FloatHistogram
from grafana_agent_bridge.histogram.notation import HistogramPoint, expand_series_values
from grafana_agent_bridge.histogram.ops import almost_equal
from grafana_agent_bridge.histogram.stats import (
    Note,
    histogram_avg,
    histogram_count,
    histogram_fraction,
    histogram_quantile,
    histogram_stddev,
    histogram_stdvar,
    histogram_sum,
)
from tests.support import SHARED, require_shared

CORPUS = SHARED / "promql-testdata"
NHCB = CUSTOM_BUCKETS_SCHEMA


def test_quantile_interpolates_exponentially_in_standard_buckets():
    """native_histograms.test: median of buckets:[1 2 1] is sqrt(2), the boundary the (1,2]
    bucket would split at one schema finer."""
    h = fh(count=4, total=5, pos=[(0, 3)], pb=[1, 2, 1])
    # Go's math.Exp2(0.5) is one ulp below the correctly rounded sqrt(2) that Python gives.
    value, notes = histogram_quantile(0.5, h)
    assert value == pytest.approx(1.414213562373095, rel=1e-15)
    assert notes == frozenset()
    assert histogram_fraction(1, 2, h) == (0.5, frozenset())
    assert histogram_fraction(0, 8, h)[0] == 1


def test_quantile_special_cases():
    """HistogramQuantile: q<0 → -Inf, q>1 → +Inf, q NaN or no observations → NaN."""
    h = fh(count=4, total=5, pos=[(0, 3)], pb=[1, 2, 1])
    assert histogram_quantile(-0.1, h)[0] == -math.inf
    assert histogram_quantile(1.1, h)[0] == math.inf
    assert math.isnan(histogram_quantile(math.nan, h)[0])
    assert math.isnan(histogram_quantile(0.5, fh())[0])
    assert math.isnan(histogram_fraction(0, 1, fh())[0])
    assert histogram_fraction(2, 1, h)[0] == 0


def test_quantile_in_zero_bucket_is_linear_from_zero():
    """A zero bucket next to positive buckets only is taken to span [0, threshold]; the
    quantile in it is interpolated linearly (HistogramQuantile)."""
    h = fh(zt=0.001, zc=2, count=4, total=1, pos=[(0, 1)], pb=[2])
    assert histogram_quantile(0.25, h)[0] == pytest.approx(0.0005)
    neg = fh(zt=0.001, zc=2, count=4, total=-1, neg=[(0, 1)], nb=[2])
    assert histogram_quantile(0.75, neg)[0] == pytest.approx(-0.0005)


def test_custom_buckets_interpolate_linearly_and_clamp_at_infinite_buckets():
    """NHCB: linear interpolation; the first bucket starts at 0 if its upper bound is
    positive; a quantile in the +Inf bucket is the last finite bound."""
    h = fh(schema=NHCB, count=10, total=20, pos=[(0, 3)], pb=[2, 4, 4], cv=[1, 5])
    assert histogram_quantile(0.1, h)[0] == pytest.approx(0.5)
    assert histogram_quantile(0.4, h)[0] == pytest.approx(3.0)
    assert histogram_quantile(0.9, h)[0] == 5
    below_zero = fh(schema=NHCB, count=2, total=-4, pos=[(0, 1)], pb=[2], cv=[-1])
    assert histogram_quantile(0.5, below_zero)[0] == -1


def test_nan_observations_give_notes():
    """Sum NaN and count above the buckets: the quantile beyond them is NaN with an info,
    within them skewed with another; fraction notes NaNs are excluded."""
    h = fh(count=5, total=math.nan, pos=[(0, 2)], pb=[2, 2])
    value, notes = histogram_quantile(0.99, h)
    assert math.isnan(value) and notes == {Note.QUANTILE_NAN_RESULT}
    value, notes = histogram_quantile(0.5, h)
    assert not math.isnan(value) and notes == {Note.QUANTILE_NAN_SKEW}
    value, notes = histogram_fraction(-math.inf, math.inf, h)
    assert value == pytest.approx(0.8) and notes == {Note.FRACTION_NANS}


def test_stddev_of_custom_buckets_uses_midpoints():
    h = fh(schema=NHCB, count=2, total=4, pos=[(1, 2)], pb=[1, 1], cv=[0, 2, 4])
    # Midpoints 1 and 3, mean 2: variance ((1-2)**2 + (3-2)**2) / 2 = 1.
    assert histogram_stdvar(h) == 1
    assert histogram_stddev(h) == 1


# --- The corpus sweep ----------------------------------------------------------------------

_FUNC = re.compile(
    r"eval instant at (\S+) histogram_(quantile|fraction|count|sum|avg|stddev|stdvar)"
    r"\(((?:[^(),]+,\s*)*)([a-zA-Z_:][a-zA-Z0-9_:]*)\)\s*$"
)
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _duration(text: str) -> int:
    total = 0
    for n, unit in re.findall(r"(\d+)(ms|s|m|h|d)", text):
        total += int(n) * _UNITS[unit]
    return total


def _arg(text: str) -> float:
    t = text.strip()
    return {"-inf": -math.inf, "+inf": math.inf, "inf": math.inf}.get(t.lower()) or float(t)


def _labels(text: str) -> frozenset[tuple[str, str]]:
    return frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"', text))


def _series_at(values: list, step: int, at: int) -> HistogramPoint | float | None:
    """The sample a direct selector sees at ``at``: the newest within 5 minutes."""
    latest = None
    for k, v in enumerate(values):
        t = k * step
        if t > at:
            break
        if t > at - 300_000 and v is not None:
            latest = v
    if isinstance(latest, float) and latest != latest:  # stale marker or NaN float
        return None
    return latest


def _apply(func: str, args: list[float], h: FloatHistogram) -> float:
    if func == "quantile":
        return histogram_quantile(args[0], h)[0]
    if func == "fraction":
        return histogram_fraction(args[0], args[1], h)[0]
    simple = {
        "count": histogram_count,
        "sum": histogram_sum,
        "avg": histogram_avg,
        "stddev": histogram_stddev,
        "stdvar": histogram_stdvar,
    }
    return simple[func](h)


def _corpus_cases() -> list:
    cases = []
    for path in sorted(CORPUS.glob("*.test")):
        lines = path.read_text().splitlines()
        loaded: dict[str, list[tuple[frozenset, list]]] = {}
        step = 0
        i = 0
        while i < len(lines):
            line = lines[i].strip()
            if line == "clear":
                loaded = {}
            elif line.startswith("load "):
                step = _duration(line.split()[1])
                i += 1
                while i < len(lines) and lines[i].strip() and lines[i][0].isspace():
                    series = lines[i].strip()
                    m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(.*)$", series)
                    if m:
                        values = expand_series_values(m.group(3))
                        loaded.setdefault(m.group(1), []).append(
                            (_labels(m.group(2) or ""), values)
                        )
                    i += 1
                continue
            elif (m := _FUNC.match(line)) and m.group(4) in loaded:
                at = _duration(m.group(1))
                args = [_arg(a) for a in m.group(3).split(",") if a.strip()]
                expected: dict[frozenset, float] = {}
                i += 1
                while i < len(lines) and lines[i].strip() and lines[i][0].isspace():
                    exp = lines[i].strip()
                    if not exp.startswith("expect"):
                        em = re.match(r"(\{[^}]*\})\s+(\S+)$", exp)
                        if em:
                            expected[_labels(em.group(1))] = _arg(em.group(2))
                    i += 1
                series_of_metric = loaded[m.group(4)]
                if any(dict(lb).get("le") for lb, _ in series_of_metric):
                    continue  # classic and native mixed: the engine's business, not ours
                for labels, values in series_of_metric:
                    sample = _series_at(values, step, at)
                    if isinstance(sample, HistogramPoint):
                        cases.append(
                            pytest.param(
                                m.group(2),
                                args,
                                sample.histogram,
                                expected.get(labels),
                                id=f"{path.name}:{line}:{sorted(labels)}",
                            )
                        )
                continue
            i += 1
    return cases


CORPUS_CASES = _corpus_cases() if CORPUS.is_dir() else []


def test_corpus_sweep_finds_cases():
    require_shared(CORPUS, "the PromQL corpus")
    assert len(CORPUS_CASES) > 100


@pytest.mark.parametrize(("func", "args", "histogram", "expected"), CORPUS_CASES)
def test_corpus_expectation(func, args, histogram, expected):
    assert expected is not None, "the corpus expects no result for this series"
    got = _apply(func, args, histogram)
    assert almost_equal(expected, got), f"expected {expected!r}, got {got!r}"
