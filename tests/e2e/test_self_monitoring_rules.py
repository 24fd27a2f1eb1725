"""The cos-agent alert rules and dashboard against the REAL bridge, scraped by a real Prometheus.

The unit tests check the rules with ``promtool`` on synthetic series; here Debian's Prometheus
scrapes a running bridge's ``/metrics`` (as the collector on the machine does), with the
charm's rule file loaded, while the bridge's only upstream is dead and it holds samples an hour
old: the backlog alert must go pending on the bridge's real figures, the disk and WAL alerts
must stay quiet on a healthy disk, and every metric the rules and the dashboard name must be on
the page.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from forward_support import Bridge, Pusher, http_get, require_prometheus, wait_until

from tests.support import free_port, start_prometheus, stop_process

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "src" / "prometheus_alert_rules" / "grafana_agent_bridge.rules"
DASHBOARD = ROOT / "src" / "grafana_dashboards" / "grafana-agent-bridge.json"
HOUR_MS = 3600 * 1000


@pytest.fixture
def behind_bridge(tmp_path: Path) -> Iterator[Bridge]:
    """A bridge whose only target is a closed port, holding samples an hour old."""
    dead = f"http://127.0.0.1:{free_port()}/api/v1/write"
    bridge = Bridge(tmp_path / "bridge", [dead]).start()
    pusher = Pusher(
        f"{bridge.url}/api/v1/write", series=5, start_ms=int(time.time() * 1000) - HOUR_MS
    )
    try:
        pusher.start()
        wait_until(lambda: pusher.acked >= 5, 30, "the bridge to accept old samples")
        pusher.stop()
        lag = 'bridge_forward_lag_seconds{target="up0"}'
        wait_until(lambda: bridge.metric(lag) > 900, 60, "the lag gauge to pass 15 minutes")
        yield bridge
    finally:
        pusher.stop()
        bridge.stop()


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    status, body = http_get(url, "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert status == 200, body[:300]
    return json.loads(body)["data"]["result"]


def _alerts(url: str) -> dict[str, str]:
    status, body = http_get(url, "/api/v1/alerts")
    assert status == 200, body[:300]
    return {a["labels"]["alertname"]: a["state"] for a in json.loads(body)["data"]["alerts"]}


def test_the_rules_evaluate_on_the_real_bridges_metrics(behind_bridge: Bridge, tmp_path: Path):
    binary = require_prometheus()
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    shutil.copy(RULES, workdir / "bridge.rules")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(workdir / "bridge.rules")],
        "scrape_configs": [
            {
                "job_name": "grafana_agent_bridge",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [f"127.0.0.1:{behind_bridge.port}"]}],
            }
        ],
    }
    proc, url = start_prometheus(binary, workdir, yaml.safe_dump(config), "--log.level=warn")
    try:
        wait_until(
            lambda: _alerts(url).get("BridgeForwardingBehind") == "pending",
            60,
            "the backlog alert to go pending",
        )
        alerts = _alerts(url)
        # An hour behind is not six (far behind); the disk, WAL and blocks are healthy.
        for quiet in ("BridgeForwardingFarBehind", "BridgeDiskFull", "BridgeWALRepaired"):
            assert quiet not in alerts, alerts
        free = _query(url, "bridge_store_disk_avail_bytes / bridge_store_disk_size_bytes")
        assert len(free) == 1 and 0 < float(free[0]["value"][1]) <= 1
        (lag,) = _query(url, "bridge_forward_lag_seconds")
        assert float(lag["value"][1]) > 900
    finally:
        stop_process(proc)


def test_every_metric_named_by_the_rules_and_the_dashboard_is_on_the_page(
    behind_bridge: Bridge,
):
    status, body = http_get(behind_bridge.url, "/metrics")
    assert status == 200
    typed = set(re.findall(r"^# TYPE (\S+) ", body.decode(), re.MULTILINE))
    rules = yaml.safe_load(RULES.read_text())["groups"]
    exprs = [rule["expr"] for group in rules for rule in group["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {re.sub(r"_bucket$", "", n) for e in exprs for n in re.findall(r"\bbridge_\w+", e)}
    assert used and not used - typed, sorted(used - typed)
