#!/usr/bin/env python3
"""The README's two commands: run the bridge locally, or run the whole test suite.

Only Python 3 and pip are assumed. Everything is installed into ``.venv`` beside this
repository, so nothing touches the system Python (Debian and Ubuntu forbid that, PEP 668).

    python3 tools/dev.py serve [bridge serve flags...]   # start the bridge on its defaults
    python3 tools/dev.py install                         # only install the command-line tool
    python3 tools/dev.py test [tox args...]              # run every test environment

The command-line tool is then ``.venv/bin/grafana-agent-bridge`` (``.venv/bin`` is not put on
your PATH: call it by that path, or ``source .venv/bin/activate`` first).
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
LOOPBACK = "127.0.0.1:9099"  # the quickstart's address: this machine only


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


def install_bridge() -> Path:
    """Install ``./bridge`` (not editable: as an operator gets it) into ``.venv``."""
    ensure_venv()
    pip_install(ROOT / "bridge")
    return BIN / "grafana-agent-bridge"


def install(args: list[str]) -> int:
    tool = install_bridge()
    print(f"Installed {tool}: run it by that path, or as grafana-agent-bridge after")
    print("`source .venv/bin/activate`.")
    return 0


def _flag(args: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in ``args`` (the last one wins)."""
    value = None
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def serve_argv(args: list[str]) -> tuple[list[str], str]:
    """The bridge's ``serve`` arguments for the quickstart, and a warning to print (or "").

    The quickstart keeps to this machine: it listens on loopback unless told otherwise (a
    ``--listen-address`` flag, or a ``--config`` file that may set one), and its data stays
    beside the checkout unless the user chose a place. Listening beyond loopback without a
    query token exposes an open read/write API, and the warning says so.
    """
    chosen = {f for f in ("--data-dir", "--config", "--listen-address") if _flag(args, f)}
    extra = [] if chosen & {"--data-dir", "--config"} else ["--data-dir", str(ROOT / "data")]
    if not chosen & {"--listen-address", "--config"}:
        extra += ["--listen-address", LOOPBACK]
    warning = ""
    address = _flag(args, "--listen-address")
    host = address.rpartition(":")[0].strip("[]") if address else "127.0.0.1"
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        warning = (
            f"WARNING: listening on {address}: anyone who can reach this machine can query "
            "and write its metrics (set query.auth_token in a --config file to require a "
            "token for queries; ingest.allowed_clients limits who may write)."
        )
    return ["serve", *extra, *args], warning


def serve(args: list[str]) -> int:
    install_bridge()
    argv, warning = serve_argv(args)
    if warning:
        print("\n" + "!" * 78 + "\n" + warning + "\n" + "!" * 78 + "\n", file=sys.stderr)
    os.execv(BIN / "grafana-agent-bridge", ["grafana-agent-bridge", *argv])


def test(args: list[str]) -> int:
    ensure_venv()
    pip_install("tox>=4.22,<5")
    return subprocess.run([str(BIN / "tox"), *args], check=False, cwd=ROOT).returncode


def main() -> int:
    commands = {"serve": serve, "install": install, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
