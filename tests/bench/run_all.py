"""Run every ``bench_*.py`` here in turn (``tox -e bench``); each prints its own figures.

    python tests/bench/run_all.py [--smoke] [name-substring ...]

Benchmarks print, never assert: a failing one is reported and the rest still run. Sizes come
from each script's defaults, which read ``BENCH_SERIES``, ``BENCH_MINUTES``, ``BENCH_DATASETS``,
``BENCH_REPEAT`` and ``BENCH_CREATE_RUNS`` (tox passes them through). ``--smoke`` shrinks
everything to a quick check that the harness works (1k series, 10 minutes of data, one
creation run, a short forwarding run): well under a minute per benchmark, figures too small
to mean much.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

SMOKE_ENV = {
    "BENCH_SERIES": "1000",
    "BENCH_MINUTES": "10",
    "BENCH_REPEAT": "3",
    "BENCH_CREATE_RUNS": "1",
}
SMOKE_ARGS = {
    "bench_query.py": ["--series", "1000", "--scrapes", "40"],
    "bench_forward.py": ["--crash-cycles", "3", "--outage-seconds", "5"],
    "bench_model.py": ["--units", "1,3", "--seeds", "1"],
}


def main(argv: list[str]) -> int:
    smoke = "--smoke" in argv
    names = [a for a in argv if a != "--smoke"]
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if any(a in s.name for a in names)]
    env = {**os.environ, **(SMOKE_ENV if smoke else {})}
    failed = []
    began = time.monotonic()
    print(f"load average at start: {os.getloadavg()} on {os.cpu_count()} cores", flush=True)
    for script in scripts:
        print(f"\n===== {script.name} =====", flush=True)
        started = time.monotonic()
        extra = SMOKE_ARGS.get(script.name, []) if smoke else []
        rc = subprocess.run([sys.executable, str(script), *extra], check=False, env=env).returncode
        print(f"===== {script.name}: exit {rc} in {time.monotonic() - started:.0f}s", flush=True)
        if rc:
            failed.append(script.name)
    print(
        f"\nall benchmarks: {time.monotonic() - began:.0f}s; load average at end: "
        f"{os.getloadavg()}"
    )
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
