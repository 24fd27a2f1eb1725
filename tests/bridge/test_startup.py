"""Starting the bridge honestly: opening a large store says how far it has got (log lines and a
gauge), a stop signal during the WAL replay ends it within a second, and a taken port is one
clear line naming the address."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from grafana_agent_bridge.metrics import Registry
from grafana_agent_bridge.storage import SeriesBatch
from grafana_agent_bridge.store import Store
from grafana_agent_bridge.store import progress as store_progress
from grafana_agent_bridge.store.options import StoreOptions
from grafana_agent_bridge.store.progress import OpenCancelledError
from tests.support import bridge_serve, free_port

T0 = 1_700_000_000_000
OPTIONS = StoreOptions(compact_automatically=False)


def fill(path: Path, rounds: int, series: int = 1000, per_round: int = 100) -> int:
    """Write ``rounds`` appends of ``series`` x ``per_round`` samples; return the sample count."""
    rng = np.random.default_rng(1)
    with Store.open(path, OPTIONS) as store:
        for r in range(rounds):
            start = T0 + r * per_round * 1000
            times = np.arange(start, start + per_round * 1000, 1000, dtype=np.int64)
            store.append(
                [
                    SeriesBatch((("__name__", "m"), ("i", str(i))), times, rng.random(per_round))
                    for i in range(series)
                ]
            )
    return rounds * series * per_round


def test_replay_logs_its_progress_and_the_gauge_climbs_to_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    total = fill(tmp_path / "data", rounds=4, series=200)
    monkeypatch.setattr(store_progress, "LOG_EVERY_S", 0.0)  # a line at every step
    registry = Registry()  # as a fresh process starts
    gauge = store_progress.progress_gauge(registry)
    seen: list[float] = []

    def progress_ratio(stage: str) -> float:
        return gauge.get(stage)

    def watch() -> bool:
        seen.append(progress_ratio("wal"))
        return False

    with caplog.at_level(logging.INFO, logger="grafana_agent_bridge.store"):
        store = Store.open(tmp_path / "data", OPTIONS, should_stop=watch, registry=registry)
    store.close()
    lines = [
        r.getMessage() for r in caplog.records if "replaying the write-ahead log" in r.message
    ]
    assert lines, caplog.text
    assert any("MiB)" in line and "segment 1 of" in line for line in lines), lines
    assert seen == sorted(seen) and seen[-1] < 1.0  # it moved forward during the replay
    assert progress_ratio("wal") == 1.0 and progress_ratio("blocks") == 1.0
    assert store.stats_.replay_samples == total


def test_a_stop_during_replay_cancels_it_and_leaves_the_store_whole(tmp_path: Path) -> None:
    total = fill(tmp_path / "data", rounds=4, series=200)
    calls = 0

    def stop_soon() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    with pytest.raises(OpenCancelledError, match="replaying the write-ahead log"):
        Store.open(tmp_path / "data", OPTIONS, should_stop=stop_soon)
    # The lock is released and nothing was lost: the next open replays everything.
    with Store.open(tmp_path / "data", OPTIONS) as store:
        assert store.stats_.replay_samples == total


def test_sigint_during_a_long_replay_stops_the_daemon_within_a_second(tmp_path: Path) -> None:
    data = tmp_path / "data"
    fill(data, rounds=60)  # 6 M samples: a replay of several seconds on this machine
    proc = subprocess.Popen(
        bridge_serve(data, free_port(), "--no-collect"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen = b""
    while b"opening the store" not in seen:
        line = proc.stderr.readline()
        assert line, seen
        seen += line
    time.sleep(0.2)  # well into the replay
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    took = time.monotonic() - sent
    assert took < 1.0, f"stopped {took:.2f}s after SIGINT"
    assert b"store opened" not in err, "the replay ran to its end"
    assert proc.returncode == 0, err.decode()
    assert b"received SIGINT" in err and b"stopped" in err


def test_a_taken_port_is_one_line_naming_the_address(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            bridge_serve(tmp_path / "data", port, "--no-collect"),
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in errors[0]
    assert "--listen-address" in errors[0]


def test_data_from_a_newer_version_is_one_line_and_an_exit_not_a_repair(tmp_path: Path) -> None:
    """``snap revert`` to an older revision: the daemon says what it found and stops, and
    the newer revision's WAL record is still there for when it comes back."""
    from grafana_agent_bridge.store import wal

    fill(tmp_path / "data", rounds=1, series=10, per_round=10)
    seg = sorted((tmp_path / "data" / "wal").iterdir())[-1]
    newer = seg.read_bytes() + wal.encode_record(77, b"a later record")  # type: ignore[arg-type]
    seg.write_bytes(newer)
    done = subprocess.run(
        bridge_serve(tmp_path / "data", free_port(), "--no-collect"),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, done.stderr
    assert "written by a newer grafana-agent-bridge" in errors[0]
    assert "record of type 77" in errors[0] and seg.name in errors[0]
    assert seg.read_bytes() == newer


def test_the_daemon_keeps_its_start_up_heap_out_of_garbage_collection() -> None:
    """Once started, what start-up made is frozen out of the collector's walks and young
    collections are rarer, so creating series does not pay for walking the whole heap
    again and again (in a fresh interpreter: freezing is process-wide)."""
    code = (
        "import gc, sys\n"
        "from grafana_agent_bridge.daemon import GC_GEN0_THRESHOLD, tune_gc\n"
        "kept = [[i] for i in range(1000)]\n"
        "tune_gc()\n"
        "sys.exit(0 if gc.get_freeze_count() >= 1000 "
        "and gc.get_threshold()[0] == GC_GEN0_THRESHOLD > 700 else 1)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
