"""Upstream outage: a real Prometheus behind the fault proxy goes away (refused, dropped
connections, 503, 429 with Retry-After) while a steady remote-write stream keeps arriving at
the bridge daemon; once it is back, every acknowledged sample must be upstream, in order,
with nothing dropped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultproxy import DROP, PASS, Fault, FaultProxy
from forward_support import Bridge, Prometheus, Pusher, compare, wait_until

T = 'target="up0"'


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[tuple[Prometheus, FaultProxy]]:
    prom = Prometheus(tmp_path / "prom")
    proxy = FaultProxy(prom.write_url)
    yield prom, proxy
    proxy.close()
    prom.stop()


def m(bridge: Bridge, name: str, labels: str = T) -> float:
    return bridge.metric(f"bridge_forward_{name}{{{labels}}}")


def test_outage_then_recovery_delivers_everything_in_order(
    tmp_path: Path, upstream: tuple[Prometheus, FaultProxy]
) -> None:
    prom, proxy = upstream
    bridge = Bridge(
        tmp_path / "bridge", [proxy.url], max_backoff="1s", target_timeout="1s"
    ).start()
    pusher = Pusher(bridge.url, series=50, interval_s=0.05).start()  # 1000 samples/s
    try:
        wait_until(lambda: m(bridge, "samples_sent_total") > 0, 10, "first delivery")

        # The outage, in five flavours, 8.5 s in all.
        proxy.refuse()
        time.sleep(1.5)
        proxy.accept()
        proxy.set_mode(DROP)
        time.sleep(1.5)
        proxy.set_mode(Fault.answer(503, "upstream overloaded"))
        time.sleep(1.5)
        proxy.set_mode(Fault.answer(429, "too many requests", retry_after="1"))
        time.sleep(1.5)
        proxy.set_mode(Fault("stall", stall_s=30))  # requests hang: the 1 s timeout ends them
        time.sleep(2.5)
        pending = m(bridge, "samples_pending")
        lag = m(bridge, "lag_seconds")
        sent_before = m(bridge, "samples_sent_total")
        assert pending >= 6000, pending  # ~8.5 s of 1000 samples/s, kept locally
        assert lag >= 6.0, lag

        proxy.set_mode(PASS)
        wait_until(lambda: m(bridge, "samples_sent_total") > sent_before, 10, "a delivery")
        recovered = time.monotonic()
        sent_first = m(bridge, "samples_sent_total")
        wait_until(lambda: m(bridge, "samples_pending") == 0, 30, "the backlog to drain")
        drain_s = time.monotonic() - recovered
        drained = m(bridge, "samples_sent_total") - sent_first

        pusher.stop()
        wait_until(
            lambda: (
                m(bridge, "samples_sent_total") >= pusher.acked * 50
                and m(bridge, "samples_pending") == 0
            ),
            15,
            "the tail to be delivered",
        )
        metrics = bridge.metrics()
    finally:
        pusher.stop()
        bridge.stop()

    expected = pusher.expected()
    got = prom.samples("fwd_test", pusher.timestamp(pusher.acked) + 1)
    total, missing = compare(expected, got)
    received = sum(len(v) for v in got.values())
    print(
        f"\noutage: acked {total} samples, upstream has {received}, missing {missing}; "
        f"backlog {pending:.0f} drained in {drain_s:.2f}s after the first delivery "
        f"({drained / max(drain_s, 1e-3):.0f} samples/s = "
        f"{drained / max(drain_s, 1e-3) / 1000:.1f}x the 1000/s ingest rate)"
    )
    assert missing == 0
    assert received == total  # nothing extra either (the pusher never re-sent a sample)
    for labels, samples in got.items():
        ts = [t for t, _ in samples]
        assert ts == sorted(ts), labels
    assert metrics[f"bridge_forward_samples_sent_total{{{T}}}"] >= total
    assert metrics.get(f'bridge_forward_samples_dropped_total{{{T},reason="rejected"}}', 0) == 0
    assert metrics.get(f"bridge_forward_samples_failed_total{{{T}}}", 0) == 0
    assert metrics[f"bridge_forward_samples_retried_total{{{T}}}"] > 0
    for result in ("network", "5xx", "429"):
        assert metrics[f'bridge_forward_requests_total{{{T},result="{result}"}}'] > 0, result
    assert "retrying in" in bridge.log_text()


def test_rejected_batches_are_dropped_and_the_rest_flows(
    tmp_path: Path, upstream: tuple[Prometheus, FaultProxy]
) -> None:
    prom, proxy = upstream
    proxy.set_mode(Fault.answer(400, "out of bounds: too old"))
    bridge = Bridge(tmp_path / "bridge", [proxy.url]).start()
    pusher = Pusher(bridge.url, series=5, interval_s=0.05)
    try:
        pusher.start()
        wait_until(lambda: m(bridge, "samples_failed_total") > 0, 10, "a rejection")
        proxy.set_mode(PASS)
        rejected_until = pusher.acked
        time.sleep(1.0)
        pusher.stop()
        wait_until(lambda: m(bridge, "samples_pending") == 0, 15, "delivery")
        failed = m(bridge, "samples_failed_total")
        dropped = bridge.metric(f'bridge_forward_samples_dropped_total{{{T},reason="rejected"}}')
    finally:
        pusher.stop()
        bridge.stop()
    got = prom.samples("fwd_test", pusher.timestamp(pusher.acked) + 1)
    received = sum(len(v) for v in got.values())
    assert failed == dropped > 0
    # Every acked sample was either delivered or counted as dropped: none vanished silently.
    assert received + failed == pusher.acked * 5
    assert received >= (pusher.acked - rejected_until) * 5 - 5 * 5
    assert "HTTP 400" in bridge.log_text()
    assert "out of bounds: too old" in bridge.log_text()


def test_forward_url_flags_add_targets(tmp_path: Path) -> None:
    """``serve --forward-url URL`` (repeatable): each URL is a target, with its own cursor."""
    a, b = FaultProxy(), FaultProxy()
    bridge = Bridge(tmp_path / "bridge", args=["--forward-url", a.url, "--forward-url", b.url])
    try:
        bridge.start()
        pusher = Pusher(bridge.url, series=3, interval_s=0.02).start()
        time.sleep(0.5)
        pusher.stop()
        total = pusher.acked * 3
        wait_until(lambda: a.received.total() == b.received.total() == total, 10, "delivery")
        progress = list(bridge.data_dir.rglob("forward-*.progress"))  # one cursor per URL
        assert len(progress) == 2, progress
    finally:
        bridge.stop()
        a.close()
        b.close()
