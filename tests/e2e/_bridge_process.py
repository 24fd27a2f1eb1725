"""Run the bridge as a real process for end-to-end tests, and stop it however the test ends."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import free_port, stop_process, wait_ready


def bridge_command() -> list[str]:
    """The installed ``grafana-agent-bridge`` entry point of this interpreter's environment."""
    beside = Path(sys.executable).parent / "grafana-agent-bridge"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("grafana-agent-bridge")
    return [found] if found else [sys.executable, "-m", "grafana_agent_bridge"]


class BridgeProcess:
    def __init__(self, data_dir: Path, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"bridge-{self.port}.log"
        cmd = [
            *bridge_command(),
            "serve",
            "--data-dir",
            str(data_dir),
            "--listen-address",
            f"127.0.0.1:{self.port}",
            *args,
        ]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        wait_ready(self.url, self.proc, log=self.log_path, timeout=timeout_s)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> int:
        code = stop_process(self.proc, 20)
        self._log.close()
        return code
