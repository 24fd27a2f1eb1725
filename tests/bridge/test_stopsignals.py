"""A stop signal must never be lost, whatever the main thread is doing when it arrives."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

# The main thread logs to a pipe without pause, as the daemon does during a busy start-up, so
# the signal usually lands in the middle of a log write (where logging from a handler breaks).
CHILD = textwrap.dedent(
    """
    import logging, sys
    from grafana_agent_bridge.stopsignals import StopSignals
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    stop = StopSignals()
    stop.install()
    print("ready", flush=True)
    n = 0
    while not stop.requested:
        n += 1
        logging.info("busy %d %s", n, "x" * 200)
    print(stop.name, flush=True)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_constant_logging_always_stops(sig: signal.Signals) -> None:
    for _ in range(10):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(sig)
        try:
            out, _ = proc.communicate(timeout=10)  # drains stderr so the child never blocks
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"{sig.name} was lost: the process kept running")
        assert proc.returncode == 0
        assert out.strip() == sig.name.encode()


WAITER = textwrap.dedent(
    """
    import time
    from grafana_agent_bridge.stopsignals import StopSignals
    stop = StopSignals()
    stop.install()
    print("ready", flush=True)
    started = time.process_time()
    stop.wait()
    print(stop.name, time.process_time() - started, flush=True)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_wait_ends_when_the_signal_arrives_not_at_the_next_poll(sig: signal.Signals) -> None:
    """The wait is woken by the signal itself (its safety-net poll is 5 s), and an idle
    daemon's main thread spends no CPU waking up in between."""
    proc = subprocess.Popen([sys.executable, "-c", WAITER], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    time.sleep(1.0)
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{sig.name} was lost: the process kept waiting")
    assert time.monotonic() - sent < 2.0
    name, cpu = out.split()
    assert name == sig.name.encode()
    assert float(cpu) < 0.05  # one wake-up, not five a second
