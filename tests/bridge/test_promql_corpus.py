"""Prometheus's own PromQL test files, run through the bridge's store and engine.

Fails on any crash, on any tier-1/2 failure not listed (with its reason) in the committed
known-failures file, and when a tier falls below its target pass rate.
"""

from __future__ import annotations

import io

import pytest

from grafana_agent_bridge.cli import open_scratch_store
from grafana_agent_bridge.promql.promqltest import (
    DEFAULT_KNOWN_FAILURES,
    Runner,
    load_known_failures,
    summarize,
)
from tests.support import SHARED, require_shared

CORPUS = SHARED / "promql-testdata"
TARGETS = {1: 0.99, 2: 0.99}


@pytest.fixture(scope="module")
def reports():  # type: ignore[no-untyped-def]
    require_shared(CORPUS, "the PromQL corpus")
    files = sorted(CORPUS.glob("*.test"))
    assert files, f"no *.test files in {CORPUS}"
    known = load_known_failures(DEFAULT_KNOWN_FAILURES)
    runner = Runner(open_store=open_scratch_store)
    return [runner.run_file(f, known) for f in files]


def test_no_case_crashes(reports) -> None:  # type: ignore[no-untyped-def]
    crashed = [
        f"{r.path.name}:{o.line} {o.reason}"
        for r in reports
        for o in r.outcomes
        if o.status == "crashed"
    ]
    assert not crashed


def test_no_unlisted_tier1_or_tier2_failure(reports) -> None:  # type: ignore[no-untyped-def]
    failed = [
        f"{r.path.name}:{o.line} {o.reason}"
        for r in reports
        if r.tier < 3
        for o in r.outcomes
        if o.status == "failed"
    ]
    assert not failed, "\n".join(failed)


def test_tiers_meet_their_targets(reports) -> None:  # type: ignore[no-untyped-def]
    """Issue 12's bar: of ALL the cases of tier 1 and of tier 2, 99 % pass (a skipped case
    counts as not passed), and 95 % of native_histograms.test."""
    out = io.StringIO()
    summarize(reports, out)
    print(out.getvalue())
    for tier, target in TARGETS.items():
        outcomes = [o for r in reports if r.tier == tier for o in r.outcomes]
        passed = sum(1 for o in outcomes if o.status == "passed")
        assert outcomes, f"no tier-{tier} case ran"
        assert passed / len(outcomes) >= target, f"tier {tier}: {passed}/{len(outcomes)} pass"
    (native,) = [r for r in reports if r.path.name == "native_histograms.test"]
    passed = native.count("passed")
    assert passed / len(native.outcomes) >= 0.95, f"native histograms: {passed} pass"


def test_native_histograms_pass_every_case(reports) -> None:  # type: ignore[no-untyped-def]
    """All of native_histograms.test, the expected counter-reset hints included: the store
    reads them back from the chunk layout as Prometheus's TSDB does (``histogram.readback``)."""
    (native,) = [r for r in reports if r.path.name == "native_histograms.test"]
    missed = [f"{o.line} {o.status}: {o.reason}" for o in native.outcomes if o.status != "passed"]
    assert not missed, "\n".join(missed)


def test_skips_name_a_tier3_reason(reports) -> None:  # type: ignore[no-untyped-def]
    """A tier-1/2 file may only skip cases that need a tier-3 feature, and must say which."""
    for r in reports:
        for o in r.outcomes:
            if o.status == "skipped":
                assert o.reason
                if r.tier < 3:
                    assert o.reason != "tier 3 file"


def test_known_failures_are_still_relevant(reports) -> None:  # type: ignore[no-untyped-def]
    """Every listed case exists and still fails: a fixed case must leave the list."""
    known = load_known_failures(DEFAULT_KNOWN_FAILURES)
    status = {f"{r.path.name}:{o.line}": o.status for r in reports for o in r.outcomes}
    for key, reason in known.items():
        assert reason, f"{key} has no reason"
        assert status.get(key) == "known", f"{key} is listed but {status.get(key, 'absent')}"
