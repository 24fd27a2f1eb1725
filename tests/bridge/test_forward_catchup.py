"""A forwarder catching up on a backlog says so in the log: start, progress with percent and
counts, and the end; steady forwarding logs nothing of the kind."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_forward import config, fill, wait_until

from grafana_agent_bridge.forward import ForwardManager, catchup
from grafana_agent_bridge.forward.catchup import CatchUpReport
from grafana_agent_bridge.metrics import Registry
from grafana_agent_bridge.store import Store, StoreOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from faultproxy import DROP, PASS, FaultProxy


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "data", StoreOptions())
    yield s
    s.close()


def test_a_backlog_is_reported_when_it_builds_and_when_it_is_drained(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = FaultProxy()
    receiver.set_mode(DROP)  # an outage: the backlog builds up
    fm = ForwardManager(store, config(receiver.url, max_samples_per_send=100), Registry())
    try:
        with caplog.at_level(logging.INFO, logger="grafana_agent_bridge.forward"):
            fm.start()
            total = fill(store, series=50, writes=20, per_write=20)  # samples from 2023: old
            wait_until(lambda: fm.stats.pending.get("up") == total)
            time.sleep(0.5)
            receiver.set_mode(PASS)
            wait_until(fm.caught_up, timeout=30)
            wait_until(lambda: "caught up:" in caplog.text, timeout=5)
    finally:
        fm.stop()
        receiver.close()
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("catchup")]
    assert lines[0].startswith(f"forward up: catching up: {total} samples to send, the oldest ")
    assert sum("caught up:" in line for line in lines) == 1, lines
    assert f"forward up: caught up: {total} samples sent in" in lines[-1], lines


def test_progress_lines_give_percent_count_rate_and_time_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    report = CatchUpReport("up", clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="grafana_agent_bridge.forward"):
        report.update(pending=10_000, lag_s=7200.0, sent_total=0.0)
        for step in range(1, 5):
            now[0] = step * catchup.LOG_EVERY_S
            report.update(pending=10_000 - step * 2000, lag_s=7200.0, sent_total=step * 2000.0)
        now[0] += 1
        report.update(pending=0, lag_s=0.0, sent_total=10_000.0)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "forward up: catching up: 10000 samples to send, the oldest 2h00m old"
    assert lines[1] == (
        "forward up: catching up: 20% of the backlog sent, 8000 samples to send "
        "(200 samples/s, about 40s left), the oldest 2h00m old"
    )
    assert "80% of the backlog sent, 2000 samples to send" in lines[4]
    assert lines[5] == "forward up: caught up: 10000 samples sent in 41s"


def test_steady_forwarding_logs_no_catch_up(caplog: pytest.LogCaptureFixture) -> None:
    clock = iter(range(1000))
    report = CatchUpReport("up", clock=lambda: float(next(clock)))
    with caplog.at_level(logging.INFO, logger="grafana_agent_bridge.forward"):
        for sent in range(100):
            report.update(pending=50, lag_s=2.0 * (sent % 2), sent_total=float(sent * 50))
    assert not caplog.records
