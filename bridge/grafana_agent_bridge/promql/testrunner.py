"""Run Prometheus's PromQL test files against the bridge's engine and its own store.

``grafana-agent-bridge promql-test FILE...`` prints one line per file (passed / failed /
skipped with reasons) and a summary per tier, and exits non-zero when a case fails that is not
listed in the known-failures file. Each ``load`` goes through the store's ``Appender`` into a
fresh store in a temporary directory (the bridge's own ingest path); ``clear`` opens a new one.

Like upstream's harness, every passing instant eval is also re-run as a range query (the
middle step must agree) and with ``@ t`` forced on its selectors at other evaluation times.

Tiers (``../shared/promql-testdata/README.md``): tier 3 cases need features the engine does not
have yet (native histograms, experimental syntax, ...). They are still evaluated, to prove they
do not crash the engine; a tier 3 case that fails is reported as skipped with its reason and is
never counted as passed.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast

import numpy as np
import promql_parser as pp

from ..labels import METRIC_NAME, Labels, matches_all
from ..storage import SeriesBatch, SeriesData
from .engine import Engine, QueryResult
from .errors import PromQLError
from .functions import NATIVE_HISTOGRAM_FUNCTIONS
from .parser import selector_matcher_sets
from .testfile import (
    HIST,
    ClearCmd,
    EvalCmd,
    LoadCmd,
    TestFileError,
    parse_file,
    stale_bits,
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

_TIER3_FUNCS = {*NATIVE_HISTOGRAM_FUNCTIONS, "min_of", "max_of"}
_TIER3_AGGS = {"limit_ratio"}


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


class _StoreHandle:
    """A fresh store per file and per ``clear``: the real one, or memory as a fallback."""

    def __init__(self, use_memory: bool) -> None:
        self.use_memory = use_memory
        self.tmp: str | None = None
        self.store = None
        self.open()

    def open(self) -> None:
        self.close()
        if self.use_memory:
            from .memquerier import MemoryStore

            self.store = MemoryStore()
            return
        from ..store import Store, StoreOptions

        self.tmp = tempfile.mkdtemp(prefix="promql-test-")
        opts = StoreOptions(retention_time_ms=2**62, compact_automatically=False)
        self.store = Store.open(Path(self.tmp), opts)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


class Runner:
    def __init__(self, *, use_memory: bool = False, verbose: bool = False) -> None:
        self.use_memory = use_memory
        self.verbose = verbose

    def run_file(self, path: Path, known: dict[str, str]) -> FileReport:
        report = FileReport(path, file_tier(path))
        try:
            cmds = parse_file(path.read_text())
        except TestFileError as e:
            report.outcomes.append(Outcome("crashed", 0, f"cannot parse test file: {e}"))
            return report
        handle = _StoreHandle(self.use_memory)
        hist_series: list[Labels] = []
        nhcb_names: set[str] = set()
        load_problems: list[str] = []
        st_series = False
        try:
            for cmd in cmds:
                if isinstance(cmd, ClearCmd):
                    handle.open()
                    hist_series, nhcb_names, load_problems, st_series = [], set(), [], False
                elif isinstance(cmd, LoadCmd):
                    problems = self._load(handle, cmd, hist_series, nhcb_names)
                    load_problems.extend(problems)
                    st_series = st_series or cmd.start_timestamps
                else:
                    outcome = self._eval(
                        handle=handle,
                        cmd=cmd,
                        hist=hist_series,
                        nhcb=nhcb_names,
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

    def _load(
        self, handle: _StoreHandle, cmd: LoadCmd, hist: list[Labels], nhcb: set[str]
    ) -> list[str]:
        batches = []
        for labels, values in cmd.series:
            ts, vs = [], []
            for i, v in enumerate(values):
                if v is None:
                    continue
                if v == HIST:
                    if labels not in hist:
                        hist.append(labels)
                    continue
                ts.append(i * cmd.step_ms)
                vs.append(float(v))  # type: ignore[arg-type]
            if cmd.with_nhcb:
                name = dict(labels).get(METRIC_NAME, "")
                if name.endswith("_bucket"):
                    nhcb.add(name[: -len("_bucket")])
            if ts:
                batches.append(
                    SeriesBatch(
                        labels, np.array(ts, dtype=np.int64), np.array(vs, dtype=np.float64)
                    )
                )
        assert handle.store is not None
        res = handle.store.append(batches)
        return [f"{r.reason} ({r.labels})" for r in res.rejections]

    def _tier3_reason(
        self, cmd: EvalCmd, hist: list[Labels], nhcb: set[str], st: bool
    ) -> str | None:
        if any(v == HIST for _, vals in cmd.expected for v in vals):
            return "native histograms in the expected result"
        if st:
            return "start timestamps (@st)"
        try:
            expr = pp.parse(cmd.expr)
        except Exception as e:
            return f"syntax promql-parser 0.12 cannot parse ({str(e).splitlines()[0][:80]})"
        reasons: list[str] = []

        def visit(node: pp.Expr) -> bool:
            if isinstance(node, pp.Call) and node.func.name in _TIER3_FUNCS:
                reasons.append(f"{node.func.name}() (native histograms / experimental)")
            if isinstance(node, pp.AggregateExpr) and str(node.op) in _TIER3_AGGS:
                reasons.append(f"{node.op} (experimental aggregation)")
            if isinstance(node, pp.BinaryExpr) and node.modifier is not None:
                fv = node.modifier.fill_values
                if fv is not None and (fv.lhs is not None or fv.rhs is not None):
                    reasons.append("fill() modifier")
            if isinstance(node, pp.VectorSelector):
                try:
                    sets = selector_matcher_sets(node)
                except PromQLError:
                    return True
                for ms in sets:
                    for lb in hist:
                        if matches_all(lb, ms):
                            reasons.append(f"native histogram series {dict(lb).get(METRIC_NAME)}")
                            return True
                    # load_with_nhcb adds a native histogram series named without _bucket;
                    # the classic _bucket series stay float data the engine handles.
                    for name in nhcb:
                        named = [m for m in ms if m.name == METRIC_NAME]
                        if named and all(m.matches(name) for m in named):
                            reasons.append("load_with_nhcb (native histograms)")
                            return True
            return True

        pp.walk(expr, visit)
        return reasons[0] if reasons else None

    def _eval(
        self,
        *,
        handle: _StoreHandle,
        cmd: EvalCmd,
        hist: list[Labels],
        nhcb: set[str],
        tier: int,
        load_problems: list[str],
        st: bool,
    ) -> Outcome:
        reason3 = self._tier3_reason(cmd, hist, nhcb, st)
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
            handle.store,  # type: ignore[arg-type]
            lookback_delta_ms=300_000,
            max_samples=10_000,
            timeout_s=100.0,
            default_subquery_step_ms=60_000,
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
        ann = _check_annotations(cmd, res.warnings, res.infos)
        if ann:
            return ann
        problem = _compare(cmd, res)
        if problem is None and cmd.instant:
            problem = _range_rerun(engine, cmd, res)
        if problem is None and cmd.instant:
            problem = _at_rerun(engine, cmd)
        if problem and load_problems:
            problem += " (the load rejected samples: " + "; ".join(load_problems[:2]) + ")"
        return problem


_RANGE_UNSAFE = re.compile(r"\b(start|end|range|step)\s*\(")


def _range_rerun(engine: Engine, cmd: EvalCmd, res: QueryResult) -> str | None:
    """Upstream's hidden check: an instant query re-run as a range query from t-1m to t+1m
    must give the same result at the middle step."""
    if (
        cmd.has("ordered")
        or cmd.range_vector is not None
        or cmd.expected_string is not None
        or res.result_type not in ("vector", "scalar")
        or _RANGE_UNSAFE.search(cmd.expr)
    ):
        return None
    t = cmd.at_ms
    try:
        rr = engine.range(cmd.expr, t - 60_000, t + 60_000, 60_000)
    except PromQLError as e:
        return f"range re-run failed: {e}"
    series = cast(list[SeriesData], rr.value)
    labels = [s.labels for s in series]
    if labels != sorted(labels):
        return "range re-run: result not sorted by labels"
    vec = []
    for s in series:
        hit = np.flatnonzero(s.timestamps == t)
        if len(hit):
            vec.append((s.labels, t, float(s.values[hit[0]])))
    if res.result_type == "scalar":
        if not vec:
            return "range re-run: no scalar at the middle step"
        fake = QueryResult("scalar", (t, vec[0][2]))
    else:
        fake = QueryResult("vector", vec)
    problem = _compare(cmd, fake)
    return f"range re-run (middle step): {problem}" if problem else None


_AT_UNSAFE = re.compile(
    r"\b(days_in_month|day_of_month|day_of_week|day_of_year|hour|minute|month|year|"
    r"predict_linear|time|timestamp|start|end|range|step)\s*\("
)


def _at_rerun(engine: Engine, cmd: EvalCmd) -> str | None:
    """Upstream's other hidden check: with ``@ t`` on every selector and subquery that has
    none, evaluating at other times must give the same result as at ``t``."""
    if _AT_UNSAFE.search(cmd.expr):
        return None
    t = cmd.at_ms
    others = [-1000, 0, 1000] if t == 0 else [-10 * t, 0, t // 5, t, 10 * t]
    for other in others:
        try:
            res = engine.instant(cmd.expr, other, default_at_ms=t)
        except PromQLError as e:
            return f"@ re-run at {other} ms failed: {e}"
        problem = _compare(cmd, res)
        if problem:
            return f"@ re-run at {other} ms: {problem}"
    return None


def _check_annotations(cmd: EvalCmd, warnings: list[str], infos: list[str]) -> str | None:
    for kind, got in (("warn", warnings), ("info", infos)):
        exps = [e for e in cmd.expects if e.kind == kind]
        if cmd.has(f"no_{kind}") and got:
            return f"unexpected {kind} annotations: {got}"
        if not exps:
            continue
        if not got:
            return f"expected {kind} annotation, got none"
        specific = [e for e in exps if e.msg is not None or e.regex is not None]
        if not specific:
            continue
        for g in got:
            if not any(
                (e.msg is not None and g == e.msg)
                or (e.regex is not None and re.search(e.regex, g))
                for e in specific
            ):
                return f"{kind} annotation {g!r} not expected"
    return None


def almost_equal(a: float, b: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return stale_bits(a) == stale_bits(b)
    if a == b:
        return True
    if math.isinf(a) or math.isinf(b) or math.isnan(a) or math.isnan(b):
        return False
    diff = abs(a - b)
    if a == 0 or b == 0 or (abs(a) + abs(b)) < sys.float_info.min:
        return diff < 1e-6 * sys.float_info.min
    return diff / (abs(a) + abs(b)) < 1e-6


def _fmt(lb: Labels) -> str:
    return "{" + ", ".join(f'{n}="{v}"' for n, v in lb) + "}"


def _compare(cmd: EvalCmd, result: QueryResult) -> str | None:
    res: Any = result  # value's shape depends on result_type
    if cmd.expected_string is not None:
        if res.result_type != "string":
            return f"expected string, got {res.result_type}"
        if res.value[1] != cmd.expected_string:
            return f"string {res.value[1]!r} != {cmd.expected_string!r}"
        return None
    if cmd.expected_scalar is not None:
        if res.result_type != "scalar":
            return f"expected scalar, got {res.result_type}"
        if not almost_equal(res.value[1], cmd.expected_scalar):
            return f"scalar {res.value[1]!r} != {cmd.expected_scalar!r}"
        return None
    if cmd.instant and cmd.range_vector is None:
        if res.result_type == "scalar":
            return f"expected vector, got scalar {res.value[1]}"
        if res.result_type != "vector":
            return f"expected vector, got {res.result_type}"
        got = res.value
        want = cmd.expected
        if len(got) != len(want):
            sample = [(_fmt(g[0]), g[2]) for g in got][:6]
            return f"expected {len(want)} samples, got {len(got)}: {sample}"
        gmap = {lb: (i, v) for i, (lb, _, v) in enumerate(got)}
        for pos, (lb, vals) in enumerate(want):
            if len(vals) != 1:
                return f"expected a single value for {_fmt(lb)}"
            if lb not in gmap:
                return f"missing {_fmt(lb)}; got {[_fmt(g[0]) for g in got][:6]}"
            i, v = gmap[lb]
            if not almost_equal(v, float(vals[0])):  # type: ignore[arg-type]
                return f"{_fmt(lb)}: got {v!r}, expected {vals[0]!r}"
            if cmd.has("ordered") and i != pos:
                return f"order: {_fmt(lb)} at {i}, expected at {pos}"
        return None
    # matrix results: range queries, or instant queries expecting a range vector
    if res.result_type != "matrix":
        return f"expected matrix, got {res.result_type}"
    if cmd.range_vector is not None:
        start, _, step = cmd.range_vector
    else:
        start, step = cmd.start_ms, cmd.step_ms
    got = {s.labels: s for s in res.value}
    if len(got) != len(cmd.expected):
        return f"expected {len(cmd.expected)} series, got {len(got)}: {[_fmt(s) for s in got][:6]}"
    labels_order = [s.labels for s in res.value]
    if labels_order != sorted(labels_order):
        return "range result not sorted by labels"
    for lb, vals in cmd.expected:
        s = got.get(lb)
        if s is None:
            return f"missing series {_fmt(lb)}; got {[_fmt(x) for x in got][:6]}"
        want = {}
        for i, v in enumerate(vals):
            if v is None:
                continue
            if isinstance(v, str):
                return "native histogram samples expected"
            want[start + i * step] = float(v)
        have = dict(zip(s.timestamps.tolist(), s.values.tolist()))
        if set(want) != set(have):
            return f"{_fmt(lb)}: timestamps {sorted(have)[:12]} != expected {sorted(want)[:12]}"
        for t, v in want.items():
            if not almost_equal(have[t], v):
                return f"{_fmt(lb)} at {t}: got {have[t]!r}, expected {v!r}"
    return None


def summarize(reports: Sequence[FileReport], out: TextIO | None = None) -> bool:
    """Print per-file lines and the totals; True when nothing failed or crashed."""
    out = out or sys.stdout
    tiers: dict[int, dict[str, int]] = {}
    ok = True
    for r in reports:
        c = {k: r.count(k) for k in ("passed", "failed", "known", "skipped", "crashed")}
        t = tiers.setdefault(r.tier, dict.fromkeys(c, 0))
        for k, v in c.items():
            t[k] += v
        skipped_reasons: dict[str, int] = {}
        for o in r.outcomes:
            if o.status == "skipped":
                skipped_reasons[o.reason] = skipped_reasons.get(o.reason, 0) + 1
        top = ", ".join(
            f"{n}x {why}" for why, n in sorted(skipped_reasons.items(), key=lambda x: -x[1])[:3]
        )
        print(
            f"{r.path.name} (tier {r.tier}): {c['passed']} passed, {c['failed']} failed, "
            f"{c['known']} known failures, {c['skipped']} skipped"
            + (f" [{top}{', ...' if len(skipped_reasons) > 3 else ''}]" if top else "")
            + (f", {c['crashed']} CRASHED" if c["crashed"] else ""),
            file=out,
        )
        if c["failed"] or c["crashed"]:
            ok = False
    total = {
        k: sum(t[k] for t in tiers.values())
        for k in ("passed", "failed", "known", "skipped", "crashed")
    }
    for tier in sorted(tiers):
        t = tiers[tier]
        run = t["passed"] + t["failed"] + t["known"] + t["crashed"]
        pct = 100.0 * t["passed"] / run if run else 100.0
        print(
            f"tier {tier}: {t['passed']} passed, {t['failed']} failed, "
            f"{t['known']} known failures, {t['skipped']} skipped, {t['crashed']} crashed"
            + (
                f" — {pct:.1f}% of the {run} cases needing no tier-3 feature pass"
                if tier < 3
                else ""
            ),
            file=out,
        )
    print(
        f"total: {total['passed']} passed, {total['failed']} failed, {total['known']} known "
        f"failures, {total['skipped']} skipped, {total['crashed']} crashed",
        file=out,
    )
    return ok


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="grafana-agent-bridge promql-test",
        description="Run PromQL test files (Prometheus's promqltest DSL) against the bridge.",
    )
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument(
        "--known-failures",
        type=Path,
        default=DEFAULT_KNOWN_FAILURES,
        help="file of 'NAME.test:LINE reason' lines whose failures do not fail the run",
    )
    ap.add_argument(
        "--no-known-failures",
        action="store_true",
        help="hold every case to passing (use no known-failures list)",
    )
    ap.add_argument("--memory", action="store_true", help="use an in-memory store (debugging)")
    ap.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="print every failure (-vv: also why skipped tier-3 cases failed)",
    )
    args = ap.parse_args(argv)
    try:
        known = load_known_failures(None if args.no_known_failures else args.known_failures)
    except OSError as exc:
        print(f"promql-test: {exc}", file=sys.stderr)
        return 2
    runner = Runner(use_memory=args.memory, verbose=args.verbose)
    reports = []
    started = time.monotonic()
    for f in args.files:
        r = runner.run_file(f, known)
        reports.append(r)
        if args.verbose:
            for o in r.outcomes:
                if o.status in ("failed", "crashed", "known") or (
                    o.status == "skipped" and args.verbose > 1
                ):
                    print(f"  {f.name}:{o.line}: {o.status.upper()}: {o.reason} {o.detail}")
    ok = summarize(reports)
    print(f"({time.monotonic() - started:.1f}s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
