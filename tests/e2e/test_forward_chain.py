"""The whole chain with real peers on both sides:

    Prometheus A (scrapes itself, remote-writes) → bridge → Prometheus B (remote-write receiver)

After a few seconds of scraping, every sample A holds for a closed time window must be in B,
series by series (A's own TSDB is the oracle), and the bridge must report nothing dropped.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
from pathlib import Path

from forward_support import (
    Bridge,
    Prometheus,
    free_port,
    http_get,
    require_prometheus,
    wait_until,
)

T = 'target="up0"'


def samples(url: str, expr: str, at: float) -> dict[str, list[list]]:
    """Raw samples of a range selector, per series (its labels as sorted JSON)."""
    q = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
    status, body = http_get(url, f"/api/v1/query?{q}", timeout=30)
    assert status == 200, body[:300]
    return {
        json.dumps(item["metric"], sort_keys=True): item["values"]
        for item in json.loads(body)["data"]["result"]
    }


def test_prometheus_to_bridge_to_prometheus(tmp_path: Path) -> None:
    binary = require_prometheus()
    receiver = Prometheus(tmp_path / "b")
    bridge = Bridge(tmp_path / "bridge", [receiver.write_url]).start()
    port = free_port()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: chain\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        "remote_write:\n"
        f"  - url: {bridge.url}/api/v1/write\n"
        "    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 30ms\n"
    )
    sender = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'a' / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'a' / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    a_url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_get(a_url, "/-/ready")[0] == 200, 30, "Prometheus A")
        # Its first scrape comes a few seconds after start (target discovery is batched).
        wait_until(lambda: b'"up"' in http_get(a_url, "/api/v1/query?query=up")[1], 20, "a scrape")
        started = time.time()
        time.sleep(8)
        window_end = time.time() - 3  # samples up to here have been sent (deadline 1 s)
        expr = f'{{job="chain"}}[{int(window_end - started) - 1}s]'
        wait_until(
            lambda: bridge.metric(f"bridge_forward_samples_pending{{{T}}}", -1) == 0,
            20,
            "the bridge to catch up",
        )
        want = samples(a_url, expr, window_end)
        got = samples(receiver.url, expr, window_end)
        metrics = bridge.metrics()
    finally:
        sender.terminate()
        sender.wait(20)
        bridge.stop()
        receiver.stop()
    assert len(want) > 100  # Prometheus's own metrics: hundreds of series
    missing = {k: v for k, v in want.items() if got.get(k) != v}
    print(
        f"\nchain: {len(want)} series, {sum(map(len, want.values()))} samples in the window; "
        f"{len(missing)} series differ in B"
    )
    assert not missing, list(missing.items())[:5]
    assert metrics.get(f"bridge_forward_samples_failed_total{{{T}}}", 0) == 0
    assert metrics[f"bridge_forward_samples_sent_total{{{T}}}"] >= sum(map(len, want.values()))
