"""Run Prometheus's PromQL test files against the bridge's engine and a store.

Each ``load`` goes through the store's ``Appender`` (the bridge's own ingest path) into a
fresh store per file; ``clear`` opens a new one. Which store is the caller's choice, through
the storage contract only: the CLI passes an opener of the bridge's real store in a
temporary directory, and without one an in-memory store is used.

Like upstream's harness, every passing instant eval is also re-run as a range query (the
middle step must agree) and with ``@ t`` forced on its selectors at other evaluation times.

Tiers (``../shared/promql-testdata/README.md``): tier 3 files hold experimental features
(native histograms, limit_ratio, fill(), start timestamps, duration expressions, ...). They
are evaluated like the others; a tier 3 case that fails is reported as skipped with its
reason (syntax the parser package cannot parse is named as such) and never counted as passed.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import promql_parser as pp

from ...histogram.classic import ClassicConversionError, nhcb_series
from ...histogram.model import FloatHistogram
from ...histogram.notation import HistogramPoint
from ...labels import make_labels
from ...storage import Appender, Querier, SeriesBatch
from ..engine import Engine
from ..errors import PromQLError
from ..parser import parse_with_trims
from .checks import at_rerun, check_annotations, compare, range_rerun
from .memquerier import MemoryStore
from .testfile import (
    ClearCmd,
    EvalCmd,
    LoadCmd,
    TestFileError,
    parse_file,
)

TIER1 = {
    "literals",
    "selectors",
    "staleness",
    "operators",
    "aggregators",
    "functions",
    "histograms",
    "type_and_unit",
}
TIER2 = {"at_modifier", "subquery"}
TIER3 = {
    "native_histograms",
    "limit",
    "info",
    "extended_vectors",
    "fill-modifier",
    "duration_expression",
    "start_timestamps",
}

DEFAULT_KNOWN_FAILURES = Path(__file__).with_name("known_failures.txt")


def file_tier(path: Path) -> int:
    """The corpus tier of a file; any other ``.test`` file is held to tier 1's standard (its
    cases that need a tier-3 feature are still skipped with the reason)."""
    stem = path.stem
    if stem in TIER2:
        return 2
    if stem in TIER3:
        return 3
    return 1


@dataclass
class Outcome:
    status: str  # "passed" | "failed" | "known" | "skipped" | "crashed"
    line: int
    reason: str = ""
    detail: str = ""


@dataclass
class FileReport:
    path: Path
    tier: int
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


def load_known_failures(path: Path | None) -> dict[str, str]:
    """``file.test:LINE reason`` per line; ``#`` comments; ``None`` for no list at all.

    A missing file is an error, not an empty list: a package installed without its data (or a
    mistyped path) would otherwise turn every known failure into a red run, or hide that the
    list was never read.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    out: dict[str, str] = {}
    if path is None:
        return out
    if not path.is_file():
        raise FileNotFoundError(f"the known-failures list {path} does not exist")
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, reason = line.partition(" ")
        out[key] = reason.strip()
    return out


class ScratchStore(Appender, Querier, Protocol):
    """What the runner needs of a store: the write and read contracts, and closing."""

    def close(self) -> None: ...


OpenStore = Callable[[Path], ScratchStore]
"""Opens a new, empty store in the given (empty) directory."""


class _StoreHandle:
    """A fresh store per file and per ``clear``: from ``open_store`` in a temporary directory,
    or in memory when there is no opener."""

    def __init__(self, open_store: OpenStore | None) -> None:
        self.open_store = open_store
        self.tmp: str | None = None
        self.store: ScratchStore | None = None
        self.open()

    def open(self) -> None:
        self.close()
        if self.open_store is None:
            self.store = MemoryStore()
            return
        self.tmp = tempfile.mkdtemp(prefix="promql-test-")
        self.store = self.open_store(Path(self.tmp))

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


class Runner:
    """Runs test files, each against a fresh store from ``open_store`` (memory if None)."""

    def __init__(self, *, open_store: OpenStore | None = None, verbose: bool = False) -> None:
        self.open_store = open_store
        self.verbose = verbose

    def run_file(self, path: Path, known: dict[str, str]) -> FileReport:
        report = FileReport(path, file_tier(path))
        try:
            cmds = parse_file(path.read_text())
        except TestFileError as e:
            report.outcomes.append(Outcome("crashed", 0, f"cannot parse test file: {e}"))
            return report
        handle = _StoreHandle(self.open_store)
        load_problems: list[str] = []
        st_series = False
        try:
            for cmd in cmds:
                if isinstance(cmd, ClearCmd):
                    handle.open()
                    load_problems, st_series = [], False
                elif isinstance(cmd, LoadCmd):
                    problems = self._load(handle, cmd)
                    load_problems.extend(problems)
                    st_series = st_series or cmd.start_timestamps
                else:
                    outcome = self._eval(
                        handle=handle,
                        cmd=cmd,
                        tier=report.tier,
                        load_problems=load_problems,
                        st=st_series,
                    )
                    key = f"{path.name}:{cmd.line}"
                    if outcome.status == "failed" and key in known:
                        outcome = Outcome("known", cmd.line, f"{known[key]} ({outcome.reason})")
                    report.outcomes.append(outcome)
        finally:
            handle.close()
        return report

    def _load(self, handle: _StoreHandle, cmd: LoadCmd) -> list[str]:
        batches = []
        classic: list[tuple[dict[str, str], list[tuple[int, float]]]] = []
        for labels, values in cmd.series:
            ts: list[int] = []
            vs: list[float] = []
            hs: list[FloatHistogram | None] = []
            for i, v in enumerate(values):
                if v is None:
                    continue
                ts.append(i * cmd.step_ms)
                if isinstance(v, HistogramPoint):
                    vs.append(math.nan)
                    hs.append(v.histogram)
                else:
                    vs.append(float(v))
                    hs.append(None)
            if cmd.with_nhcb:
                classic.append((dict(labels), list(zip(ts, vs))))
            if ts:
                hist = hs if any(h is not None for h in hs) else None
                batches.append(
                    SeriesBatch(
                        labels,
                        np.array(ts, dtype=np.int64),
                        np.array(vs, dtype=np.float64),
                        histograms=hist,
                    )
                )
        if classic:
            try:
                converted = nhcb_series(classic)
            except ClassicConversionError as e:
                return [f"load_with_nhcb: {e}"]
            for lbs, points in converted:
                batches.append(
                    SeriesBatch(
                        make_labels(lbs),
                        np.array([t for t, _ in points], dtype=np.int64),
                        np.full(len(points), math.nan),
                        histograms=[h for _, h in points],
                    )
                )
        assert handle.store is not None
        res = handle.store.append(batches)
        return [f"{r.reason} ({r.labels})" for r in res.rejections]

    def _tier3_reason(self, cmd: EvalCmd, st: bool) -> str | None:
        if st:
            return "start timestamps (@st)"
        try:
            expr, _ = parse_with_trims(cmd.expr)
        except Exception as e:
            return f"syntax promql-parser 0.12 cannot parse ({str(e).splitlines()[0][:80]})"
        reasons: list[str] = []

        def visit(node: pp.Expr) -> bool:
            if isinstance(node, pp.BinaryExpr) and node.modifier is not None:
                fv = node.modifier.fill_values
                if fv is not None and (fv.lhs is not None or fv.rhs is not None):
                    reasons.append("fill() modifier")
            return True

        pp.walk(expr, visit)
        return reasons[0] if reasons else None

    def _eval(
        self,
        *,
        handle: _StoreHandle,
        cmd: EvalCmd,
        tier: int,
        load_problems: list[str],
        st: bool,
    ) -> Outcome:
        reason3 = self._tier3_reason(cmd, st)
        if tier == 3 and reason3 is None:
            reason3 = "tier 3 file"
        try:
            problem = self._check(handle, cmd, load_problems)
        except Exception as e:  # the engine must never crash, on any tier
            return Outcome("crashed", cmd.line, f"{type(e).__name__}: {e}")
        if problem is None:
            return Outcome("passed", cmd.line)
        if problem.startswith("CRASH "):
            return Outcome("crashed", cmd.line, problem[6:])
        if reason3 is not None:
            return Outcome("skipped", cmd.line, reason3, problem)
        return Outcome("failed", cmd.line, problem)

    def _check(self, handle: _StoreHandle, cmd: EvalCmd, load_problems: list[str]) -> str | None:
        assert handle.store is not None
        engine = Engine(
            handle.store,
            lookback_delta_ms=300_000,
            max_samples=10_000,
            timeout_s=100.0,
            default_subquery_step_ms=60_000,
            delayed_name_removal=True,  # as upstream's test engine
        )
        expect_fail = [e for e in cmd.expects if e.kind == "fail"]
        try:
            if cmd.instant:
                res = engine.instant(cmd.expr, cmd.at_ms)
            else:
                res = engine.range(cmd.expr, cmd.start_ms, cmd.end_ms, cmd.step_ms)
        except PromQLError as e:
            if e.error_type == "internal":
                return f"CRASH {e}"
            if not expect_fail:
                return f"unexpected error: {e}"
            f = expect_fail[0]
            if f.msg is not None and str(e) != f.msg:
                return f"error message {str(e)!r}, expected {f.msg!r}"
            if f.regex is not None and not re.search(f.regex, str(e)):
                return f"error message {str(e)!r} does not match {f.regex!r}"
            return None
        if expect_fail:
            return "expected an error, got a result"
        ann = check_annotations(cmd, res.warnings, res.infos)
        if ann:
            return ann
        problem = compare(cmd, res)
        if problem is None and cmd.instant:
            problem = range_rerun(engine, cmd, res)
        if problem is None and cmd.instant:
            problem = at_rerun(engine, cmd)
        if problem and load_problems:
            problem += " (the load rejected samples: " + "; ".join(load_problems[:2]) + ")"
        return problem
