"""The charm's reading of forwarding health, against the REAL bridge daemon's ``/metrics``.

The unit status (docs/charm.md, "Status") is only as true as ``SnapWorkload.forwarding_health``
reads the daemon's own page, so these tests start the daemon as a child process on loopback,
make one target fall hours behind (a dead upstream) and one keep up (a real Prometheus), and
compare what the charm's reader sees with the page's own figures.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from forward_support import Bridge, Prometheus, Pusher, http_get, parse_metrics, wait_until

from health import LAG_THRESHOLD_S
from tests.support import free_port
from workload import SnapWorkload

HOUR_MS = 3600 * 1000


@pytest.fixture
def dead_upstream_bridge(tmp_path: Path) -> Iterator[Bridge]:
    """A bridge whose only target is a closed loopback port, holding samples an hour old."""
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
        wait_until(lambda: bridge.metric(lag) > LAG_THRESHOLD_S, 60, "the lag gauge to rise")
        yield bridge
    finally:
        pusher.stop()
        bridge.stop()


def test_a_dead_upstream_reads_as_far_behind_and_unreachable(dead_upstream_bridge: Bridge):
    bridge = dead_upstream_bridge
    health = SnapWorkload().forwarding_health(bridge.port)
    status, body = http_get(bridge.url, "/metrics")
    assert status == 200
    page = parse_metrics(body.decode())
    assert health is not None
    assert [t.name for t in health.targets] == ["up0"]
    (target,) = health.targets
    assert target.pending_samples == page['bridge_forward_samples_pending{target="up0"}'] > 0
    assert abs(target.lag_seconds - page['bridge_forward_lag_seconds{target="up0"}']) < 30
    assert target.lag_seconds > 3000  # the samples are an hour old
    assert target.last_delivery == 0.0  # nothing ever delivered
    assert target.degraded() and target.unreachable(time.time())
    assert health.wal_bytes == page["bridge_store_wal_bytes"] > 0


def test_a_live_upstream_reads_as_caught_up(tmp_path: Path):
    prometheus = Prometheus(tmp_path / "prom")
    bridge = Bridge(tmp_path / "bridge", [prometheus.write_url])
    pusher = Pusher(f"{bridge.url}/api/v1/write", series=5)
    try:
        bridge.start()
        pusher.start()
        wait_until(lambda: pusher.acked >= 5, 30, "the bridge to accept samples")
        pusher.stop()
        sent = 'bridge_forward_samples_sent_total{target="up0"}'
        wait_until(lambda: bridge.metric(sent) >= 5 * pusher.acked, 60, "delivery upstream")
        pending = 'bridge_forward_samples_pending{target="up0"}'
        wait_until(lambda: bridge.metric(pending, -1) == 0, 60, "the backlog gauge to clear")
        health = SnapWorkload().forwarding_health(bridge.port)
        assert health is not None
        (target,) = health.targets
        assert target.name == "up0" and target.pending_samples == 0
        assert target.lag_seconds < LAG_THRESHOLD_S
        assert time.time() - 120 < target.last_delivery <= time.time()
        assert not target.degraded() and not target.unreachable(time.time())
    finally:
        pusher.stop()
        bridge.stop()
        prometheus.stop()


def test_a_stopped_bridge_reads_as_unknown(tmp_path: Path):
    assert SnapWorkload().forwarding_health(free_port()) is None
