"""The ``promql-test`` command: the test-file DSL and its exit status on any ``.test`` file."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from grafana_agent_bridge.promql.testfile import EvalCmd, LoadCmd, expand_values, parse_file
from grafana_agent_bridge.promql.testrunner import main
from grafana_agent_bridge.storage import is_stale_nan

GOOD = """
load 1m
  metric{a="x"} 0+10x4 _ stale 7
  other 1x2

eval instant at 3m metric
  metric{a="x"} 30

eval range from 0 to 6m step 1m metric
  metric{a="x"} 0 10 20 30 40 40 _

eval instant at 1m sum(other)
  {} 1

eval instant at 1m other / on() bad_syntax(
  expect fail
"""


def test_expanding_notation() -> None:
    assert expand_values("1+2x3") == [1, 3, 5, 7]
    assert expand_values("5-1x2 3x1") == [5, 4, 3, 3, 3]
    assert expand_values("_x2 1") == [None, None, 1]
    vals = expand_values("stale Inf -Inf NaN 1e3")
    assert is_stale_nan(vals[0])  # type: ignore[arg-type]
    assert vals[1:4] == [math.inf, -math.inf, vals[3]] and math.isnan(vals[3])  # type: ignore[arg-type]
    assert vals[4] == 1000


def test_parse_file_blocks() -> None:
    cmds = parse_file(GOOD)
    assert isinstance(cmds[0], LoadCmd) and cmds[0].step_ms == 60_000
    evals = [c for c in cmds if isinstance(c, EvalCmd)]
    assert evals[1].instant is False and evals[1].end_ms == 360_000
    assert evals[3].has("fail")


def test_passing_file_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "good.test"
    f.write_text(GOOD)
    assert main([str(f), "--no-known-failures"]) == 0
    out = capsys.readouterr().out
    assert "good.test (tier 1): 4 passed, 0 failed" in out


def test_a_missing_known_failures_list_is_an_error_not_an_empty_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "good.test"
    f.write_text(GOOD)
    assert main([str(f), "--known-failures", str(tmp_path / "none.txt")]) == 2
    err = capsys.readouterr().err
    assert "known-failures list" in err and "none.txt" in err and "does not exist" in err


def test_failing_case_exits_non_zero_unless_known(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "bad.test"
    f.write_text(GOOD + '\neval instant at 3m metric\n  metric{a="x"} 31\n')
    known = tmp_path / "known.txt"
    known.write_text("")
    assert main([str(f), "--known-failures", str(known)]) == 1
    line = len((GOOD + "\n").splitlines()) + 1
    known.write_text(f"bad.test:{line} deliberately wrong expectation\n")
    assert main([str(f), "--known-failures", str(known)]) == 0
    assert "1 known failures" in capsys.readouterr().out
