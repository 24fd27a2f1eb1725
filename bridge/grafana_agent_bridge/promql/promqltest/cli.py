"""``grafana-agent-bridge promql-test PATH...``: run test files, print one line per file
(passed / failed / skipped with reasons) and a summary per tier; exit 1 when a case fails
that the known-failures list does not name, 2 on a bad path or list."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .runner import DEFAULT_KNOWN_FAILURES, FileReport, OpenStore, Runner, load_known_failures


def expand_paths(paths: Sequence[Path]) -> list[Path]:
    """The files named, a directory standing for every ``*.test`` in it (sorted).

    Raises:
        FileNotFoundError: a path does not exist, or a directory holds no ``.test`` file.
    """
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(p.glob("*.test"))
            if not found:
                raise FileNotFoundError(f"no *.test files in the directory {p}")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such file or directory: {p}")
    return out


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


def main(argv: list[str], open_store: OpenStore | None = None) -> int:
    """The command; ``open_store`` opens the store each file is loaded into (the CLI passes
    the bridge's own; without one, and with ``--memory``, an in-memory store is used)."""
    ap = argparse.ArgumentParser(
        prog="grafana-agent-bridge promql-test",
        description="Run PromQL test files (Prometheus's promqltest DSL) against the bridge.",
    )
    ap.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="a .test file, or a directory of them"
    )
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
        files = expand_paths(args.paths)
    except OSError as exc:
        print(f"promql-test: {exc}", file=sys.stderr)
        return 2
    runner = Runner(open_store=None if args.memory else open_store, verbose=args.verbose)
    reports = []
    started = time.monotonic()
    for f in files:
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
