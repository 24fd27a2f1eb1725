"""A fake snapd for the snap's configure hook: a $SNAP/$SNAP_COMMON layout and a ``snapctl``.

snapd cannot run here, so ``snapctl`` is the one thing faked: a script that answers
``get -d KEYS`` from a JSON file of settings, ``services`` from a state file, and logs every
call. The hook script itself, the bridge's validator and the files on disk are all real. Shared
by the hook's own tests and the test that follows docs/deploy.md's snap path.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOOK = ROOT / "snap" / "hooks" / "configure"

FAKE_SNAPCTL = """#!{python}
import json, os, sys
state = os.environ["FAKE_SNAPCTL_STATE"]
args = sys.argv[1:]
with open(os.path.join(state, "calls.log"), "a") as log:
    log.write(json.dumps(args) + "\\n")
if os.path.exists(os.path.join(state, "fail")):
    sys.stderr.write("error: snapd is not responding\\n")
    sys.exit(1)
if args[:2] == ["get", "-d"]:
    with open(os.path.join(state, "settings.json")) as f:
        settings = json.load(f)
    print(json.dumps({{k: settings[k] for k in args[2:] if k in settings}}, indent="\\t"))
elif args[0] == "services":
    with open(os.path.join(state, "service")) as f:
        current = f.read().strip()
    print("Service  Startup  Current  Notes")
    print(f"{{args[1]}}  enabled  {{current}}  -")
elif args[0] == "restart":
    pass
else:
    sys.stderr.write(f"fake snapctl: unexpected {{args}}\\n")
    sys.exit(2)
"""


@dataclass
class FakeSnap:
    """A $SNAP/$SNAP_COMMON layout and a fake snapctl, as the hook sees them under snapd."""

    root: Path
    common: Path
    state: Path
    env: dict[str, str]

    @property
    def config_file(self) -> Path:
        return self.common / "config.yaml"

    def set(self, **settings: object) -> None:
        """Like `snap set`: values arrive as JSON (strings, numbers, booleans, lists)."""
        current = json.loads((self.state / "settings.json").read_text())
        current.update({k.replace("_", "-"): v for k, v in settings.items()})
        (self.state / "settings.json").write_text(json.dumps(current))

    def snap_set(self, items: list[str]) -> None:
        """Like ``snap set SNAP KEY=VALUE...`` on the command line: a value that parses as JSON
        is stored as that JSON (``false``, ``30``), anything else as the string."""
        parsed: dict[str, object] = {}
        for item in items:
            key, _, value = item.partition("=")
            try:
                parsed[key] = json.loads(value)
            except ValueError:
                parsed[key] = value
        current = json.loads((self.state / "settings.json").read_text())
        current.update(parsed)
        (self.state / "settings.json").write_text(json.dumps(current))

    def service(self, current: str) -> None:
        (self.state / "service").write_text(current)

    def run_hook(self) -> subprocess.CompletedProcess[str]:
        (self.state / "calls.log").write_text("")
        return subprocess.run(
            [str(HOOK)], check=False, env=self.env, capture_output=True, text=True, timeout=60
        )

    def calls(self) -> list[list[str]]:
        lines = (self.state / "calls.log").read_text().splitlines()
        return [json.loads(line) for line in lines]

    def restarts(self) -> list[list[str]]:
        return [c for c in self.calls() if c[0] == "restart"]


def make_fake_snap(tmp_path: Path) -> FakeSnap:
    """A fresh $SNAP, $SNAP_COMMON and fake snapd under ``tmp_path``, nothing set yet."""
    root, common, state, fake_bin = (tmp_path / d for d in ("snap", "common", "state", "bin"))
    for d in (root / "bin", common, state, fake_bin):
        d.mkdir(parents=True)
    # $SNAP/bin/python3 is the snap's venv interpreter; here, the one running the tests.
    python = root / "bin" / "python3"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    snapctl = fake_bin / "snapctl"
    snapctl.write_text(FAKE_SNAPCTL.format(python=sys.executable))
    for script in (python, snapctl):
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    (state / "settings.json").write_text("{}")
    (state / "service").write_text("active")
    env = {
        "PATH": f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "SNAP": str(root),
        "SNAP_COMMON": str(common),
        "SNAP_NAME": "grafana-agent-bridge",
        "SNAP_INSTANCE_NAME": "grafana-agent-bridge",
        "PYTHONPATH": str(ROOT / "bridge"),
        "FAKE_SNAPCTL_STATE": str(state),
    }
    return FakeSnap(root, common, state, env)
