"""Child-process helpers shared by the bridge, e2e and bench suites.

A plain module rather than a conftest, so the benchmark scripts (run outside pytest) import it
the same way the tests do: ``from tests.support import ...`` with the repository root on
``sys.path`` (tox puts it in ``PYTHONPATH``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

PROMETHEUS = (
    os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus") or "/usr/bin/prometheus"
)


def require_prometheus() -> None:
    """Skip when Debian's Prometheus is missing, but fail under ``REQUIRE_PROMETHEUS=1`` (CI),
    where a silent skip would hide that the comparison never ran."""
    if not Path(PROMETHEUS).exists():
        if os.environ.get("REQUIRE_PROMETHEUS") == "1":
            pytest.fail(f"REQUIRE_PROMETHEUS=1 but no Prometheus at {PROMETHEUS}")
        pytest.skip("Prometheus not installed (apt-get install prometheus)")


SHARED = Path(__file__).resolve().parents[2] / "shared"


def require_shared(path: Path, what: str) -> None:
    """Skip a test whose input lives in ``../shared`` when it is absent from a developer's
    checkout, but fail under CI (``CI`` or ``REQUIRE_SHARED=1``): CI always has it beside the
    clone, so a skip there means the gate silently did not run."""
    if path.exists():
        return
    if os.environ.get("CI") or os.environ.get("REQUIRE_SHARED") == "1":
        pytest.fail(f"{what} not found at {path}, and CI requires it (../shared is missing)")
    pytest.skip(f"{what} not found at {path} (../shared is not beside this checkout)")


def free_port() -> int:
    """A port on 127.0.0.1 that is free now: fixed ports clash with parallel runs and with
    whatever already listens on 9090."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bridge_serve(data_dir: Path, port: int, *args: str) -> list[str]:
    """The command line of ``grafana-agent-bridge serve`` on ``127.0.0.1:port``, run as
    ``python -m`` by this interpreter so it is the bridge installed in the running venv."""
    return [
        sys.executable,
        "-m",
        "grafana_agent_bridge",
        "serve",
        "--data-dir",
        str(data_dir),
        "--listen-address",
        f"127.0.0.1:{port}",
        *args,
    ]


def _log_tail(proc: subprocess.Popen[bytes] | None, log: Path | None) -> str:
    if log is not None and log.exists():
        return log.read_text(errors="replace")[-3000:]
    if proc is not None and proc.stderr is not None and proc.poll() is not None:
        return proc.stderr.read().decode(errors="replace")[-3000:]
    return ""


def wait_ready(
    url: str,
    proc: subprocess.Popen[bytes] | None = None,
    *,
    log: Path | None = None,
    timeout: float = 30.0,
) -> None:
    """Poll ``url/-/ready`` until it answers 200.

    When ``proc`` (the server's child process) exits first, raise at once with the tail of its
    log (``log``, else its piped stderr): a start-up crash says more than a timeout. A child
    that never gets ready is killed, so it cannot outlive the test that gave up on it.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"{proc.args!r} exited with {proc.returncode}: {_log_tail(proc, log)}"
            )
        try:
            if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    if proc is not None:
        proc.kill()
        proc.wait()
    raise TimeoutError(f"{url} not ready after {timeout}s: {_log_tail(proc, log)}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """SIGTERM (the graceful path under test), then SIGKILL if it hangs; the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def start_prometheus(
    binary: str, workdir: Path, config: str, *args: str, timeout: float = 30.0
) -> tuple[subprocess.Popen[bytes], str]:
    """Debian's Prometheus with its remote-write receiver on, on a free port, once ready.

    ``config`` becomes ``workdir/prometheus.yml``; the TSDB lives in ``workdir/data`` and the
    output in ``workdir/prometheus.log``; ``args`` are extra flags (``--enable-feature=...``).
    Returns the process (stop it with :func:`stop_process`) and its base URL.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus.yml").write_text(config)
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-remote-write-receiver",
                *args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc, log=log_path, timeout=timeout)
    return proc, url
