"""Run every ``bench_*.py`` here in turn (``tox -e bench``); each prints its own figures.

    python tests/bench/run_all.py [name-substring ...]

Benchmarks print, never assert: a failing one is reported and the rest still run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(a in s.name for a in argv)]
    failed = []
    for script in scripts:
        print(f"\n===== {script.name} =====", flush=True)
        started = time.monotonic()
        rc = subprocess.run([sys.executable, str(script)], check=False).returncode
        print(f"===== {script.name}: exit {rc} in {time.monotonic() - started:.0f}s", flush=True)
        if rc:
            failed.append(script.name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
