"""The README's first command, as a new user runs it: the installed ``grafana-agent-bridge serve``
on its embedded defaults (only the data directory, the port and a short collection interval
changed for the test) serves a datasource that passes Grafana's health check and shows this
host's CPU within one collection interval."""

from __future__ import annotations

import os
import re
import select
import time
from pathlib import Path

import requests
from forward_support import BridgeProcess

INTERVAL_S = 2


def _banner(proc: BridgeProcess, timeout_s: float = 10) -> str:
    """Read what ``serve`` prints on start (stdout) until the blank line that ends it."""
    assert proc.proc is not None and proc.proc.stdout is not None
    fd = proc.proc.stdout.fileno()
    out = b""
    deadline = time.monotonic() + timeout_s
    while not out.endswith(b"\n\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 4096)  # unbuffered: select() must see what is left
            if not chunk:
                break
            out += chunk
    return out.decode()


def test_serve_prints_the_grafana_url_and_serves_host_cpu(tmp_path: Path) -> None:
    proc = BridgeProcess(tmp_path / "data", "--collect-interval", f"{INTERVAL_S}s")
    try:
        proc.wait_ready()
        ready_at = time.monotonic()
        banner = _banner(proc)
        m = re.search(r"Add this URL in Grafana as a Prometheus datasource: (http://\S+)", banner)
        assert m, banner
        assert m.group(1).endswith(f":{proc.port}")
        assert "CPU" in banner and "every 2s" in banner  # the line saying what it collects

        # Grafana's "Save & test" on the printed URL's port.
        r = requests.post(
            f"{proc.url}/api/v1/query",
            data="query=1%2B1&time=4",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
        assert r.status_code == 200
        assert r.json() == {
            "status": "success",
            "data": {"resultType": "scalar", "result": [4, "2"]},
        }

        # The host's CPU within one collection interval of being ready.
        series: list = []
        while time.monotonic() < ready_at + INTERVAL_S + 1 and not series:
            series = requests.get(
                f"{proc.url}/api/v1/query",
                params={"query": 'node_cpu_seconds_total{mode="idle"}'},
                timeout=10,
            ).json()["data"]["result"]
            time.sleep(0.1)
        assert series, proc.log()
        assert {s["metric"]["job"] for s in series} == {"node"}
        assert all(float(s["value"][1]) > 0 for s in series)
        cpus = {s["metric"]["cpu"] for s in series}
        assert "0" in cpus
    finally:
        assert proc.stop() == 0, proc.log()
    assert "stopped" in proc.log()
