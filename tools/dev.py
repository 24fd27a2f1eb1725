#!/usr/bin/env python3
"""The README's two commands: run the bridge locally, or run the whole test suite.

Only Python 3 and pip are assumed. Everything is installed into ``.venv`` beside this
repository, so nothing touches the system Python (Debian and Ubuntu forbid that, PEP 668).

    python3 tools/dev.py serve [bridge serve flags...]   # start the bridge on its defaults
    python3 tools/dev.py test [tox args...]              # run every test environment
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def run(*cmd: str | Path, **kw: object) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)  # type: ignore[arg-type]


def ensure_venv() -> None:
    """Create ``.venv``; fall back to ``virtualenv`` where the ``venv`` module lacks ensurepip."""
    if PY.exists():
        return
    try:
        run(sys.executable, "-m", "venv", VENV)
        return
    except subprocess.CalledProcessError:
        print("venv is unavailable (python3-venv not installed); trying virtualenv", flush=True)
    pip_user = [sys.executable, "-m", "pip", "install", "--user", "--quiet", "virtualenv"]
    if subprocess.run(pip_user, check=False).returncode != 0:
        run(*pip_user, "--break-system-packages")
    run(sys.executable, "-m", "virtualenv", VENV)


def pip_install(*args: str | Path) -> None:
    run(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args)


def serve(args: list[str]) -> int:
    ensure_venv()
    pip_install(ROOT / "bridge")
    # Keep the data beside the checkout unless the user chose a place (a flag, or a config
    # file's data_dir, which a --data-dir flag would override).
    chosen = any(a == f or a.startswith(f + "=") for a in args for f in ("--data-dir", "--config"))
    data_dir = [] if chosen else ["--data-dir", str(ROOT / "data")]
    os.execv(BIN / "grafana-agent-bridge", ["grafana-agent-bridge", "serve", *data_dir, *args])


def test(args: list[str]) -> int:
    ensure_venv()
    pip_install("tox>=4.22,<5")
    return subprocess.run([str(BIN / "tox"), *args], check=False, cwd=ROOT).returncode


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("serve", "test"):
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    return serve(rest) if command == "serve" else test(rest)


if __name__ == "__main__":
    sys.exit(main())
