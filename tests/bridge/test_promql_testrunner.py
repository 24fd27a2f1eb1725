"""The ``promql-test`` command: the test-file DSL and its exit status on any ``.test`` file."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from grafana_agent_bridge.cli import open_scratch_store
from grafana_agent_bridge.promql.promqltest import main as promqltest_main
from grafana_agent_bridge.promql.promqltest.testfile import (
    EvalCmd,
    LoadCmd,
    expand_values,
    parse_file,
)
from grafana_agent_bridge.storage import is_stale_nan


def main(argv: list[str]) -> int:
    """The command as the CLI runs it: against the bridge's own store."""
    return promqltest_main(argv, open_store=open_scratch_store)


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


def test_a_directory_runs_every_test_file_in_it_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "b.test").write_text("load 1m\n  x 1 2 3\n\neval instant at 2m x\n  x 3\n")
    (tmp_path / "a.test").write_text("load 1m\n  y 5\n\neval instant at 0m y\n  y 5\n")
    (tmp_path / "notes.txt").write_text("not a test file")
    assert main([str(tmp_path), "--no-known-failures"]) == 0
    out = capsys.readouterr().out
    assert out.index("a.test") < out.index("b.test")
    assert "notes.txt" not in out
    assert "total: 2 passed, 0 failed" in out


def test_a_missing_path_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path / "absent.test")]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "absent.test" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty)]) == 2
    assert "no *.test files" in capsys.readouterr().err
