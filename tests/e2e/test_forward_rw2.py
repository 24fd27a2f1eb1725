"""Forwarding with ``protobuf_message: io.prometheus.write.v2.Request``: to a receiver that
takes remote write 2.0 (another bridge) the batches go as 2.0; to one that knows only 1.0
(Debian's Prometheus 2.42, which reads a 2.0 body as an empty 1.0 request and answers 204
without the ``X-Prometheus-Remote-Write-*-Written`` headers) the bridge falls back to 1.0 and
re-sends, so nothing is lost either way."""

from __future__ import annotations

from pathlib import Path

from forward_support import Bridge, Prometheus, Pusher, compare, wait_until

from grafana_agent_bridge.forward.client import Outcome, SendResult
from grafana_agent_bridge.forward.delivery import knows_only_v1

T = 'target="up0"'
V2 = "      protobuf_message: io.prometheus.write.v2.Request\n"


def v2_bridge(workdir: Path, url: str) -> Bridge:
    bridge = Bridge(workdir, [url], max_backoff="1s")
    text = bridge.config.read_text().replace("      name: up0\n", "      name: up0\n" + V2)
    bridge.config.write_text(text)
    return bridge.start()


def push_and_drain(bridge: Bridge, ticks: int = 20) -> Pusher:
    pusher = Pusher(bridge.url, series=10, interval_s=0.02).start()
    wait_until(lambda: pusher.acked >= ticks, 20, "acknowledged writes")
    pusher.stop()
    wait_until(
        lambda: (
            bridge.metric(f"bridge_forward_samples_sent_total{{{T}}}") >= pusher.acked * 10
            and bridge.metric(f"bridge_forward_samples_pending{{{T}}}") == 0
        ),
        30,
        "delivery",
    )
    return pusher


def test_v2_to_a_v2_receiver(tmp_path: Path) -> None:
    receiver = Bridge(tmp_path / "receiver").start()
    sender = v2_bridge(tmp_path / "sender", f"{receiver.url}/api/v1/write")
    try:
        pusher = push_and_drain(sender)
        r = receiver.metrics()
        assert r["bridge_ingest_samples_total"] >= pusher.acked * 10
        assert "from now on" not in sender.log_text()
    finally:
        sender.stop()
        receiver.stop()
    assert pusher.acked >= 20


def test_v2_falls_back_to_v1_for_a_v1_receiver(tmp_path: Path) -> None:
    prom = Prometheus(tmp_path / "prom")
    sender = v2_bridge(tmp_path / "sender", prom.write_url)
    try:
        pusher = push_and_drain(sender)
    finally:
        sender.stop()
    try:
        got = prom.samples("fwd_test", pusher.timestamp(pusher.acked) + 1)
        total, missing = compare(pusher.expected(), got)
    finally:
        prom.stop()
    assert missing == 0 and total == pusher.acked * 10
    assert "sending remote write 1.0 from now on" in sender.log_text()


def test_what_counts_as_a_v1_only_receiver() -> None:
    # Prometheus's write_handler.go answers 415 to a message type it does not accept; a 2.0
    # receiver always sends X-Prometheus-Remote-Write-Samples-Written (the 2.0 spec).
    assert knows_only_v1(SendResult(Outcome.REJECTED, 415, "unsupported"))
    assert knows_only_v1(SendResult(Outcome.DELIVERED, 204, ""))
    assert not knows_only_v1(SendResult(Outcome.DELIVERED, 204, "", None, "10"))
    assert not knows_only_v1(SendResult(Outcome.REJECTED, 400, "bad", None, "0"))
    assert not knows_only_v1(SendResult(Outcome.RETRY, 503, "busy"))
