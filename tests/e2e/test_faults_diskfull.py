"""Disk full: ingest answers 5xx (a transient fault: the sender retries), nothing already
stored is lost, and everything recovers when space returns, forwarding included.

Two ways to fill the disk: a real size-limited tmpfs under the data directory (needs root and
permission to mount, as in CI containers run as root), and, always, ``ENOSPC`` injected at the
one place the store writes its WAL (``SegmentWriter._write_all``) through a launcher that
patches it while a flag file exists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from faultproxy import FaultProxy
from forward_support import Bridge, http_get, http_post, series_labels, wait_until

from grafana_agent_bridge.labels import make_labels
from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import SeriesBatch

SERIES, PER_REQUEST, STEP = 20, 50, 10

LAUNCHER = """
import errno, os, sys
from grafana_agent_bridge.store import wal
flag = os.environ["GAB_TEST_ENOSPC_FLAG"]
real = wal.SegmentWriter._write_all
def write_all(self, data):
    if os.path.exists(flag):
        raise OSError(errno.ENOSPC, "No space left on device (injected)")
    return real(self, data)
wal.SegmentWriter._write_all = write_all
from grafana_agent_bridge.cli import main
sys.exit(main(sys.argv[1:]))
"""


class Writer:
    """Sends requests of ``PER_REQUEST`` samples per series; request k is acked once 204."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.labels = series_labels("full_test", SERIES)
        self.base = int(time.time() * 1000) - 20 * 60_000
        self.acked = 0
        self.statuses: list[int] = []
        self.last_error = ""
        self.rng = np.random.default_rng(7)

    def times(self, k: int) -> list[int]:
        return [self.base + (k * PER_REQUEST + j) * STEP for j in range(PER_REQUEST)]

    def send_next(self) -> int:
        k = self.acked
        ts = np.array(self.times(k), dtype=np.int64)
        body = encode_write_request(
            # Random values: the store compresses its WAL, and the disk must still fill up.
            SeriesBatch(lb, ts, self.rng.random(len(ts)) + i)
            for i, lb in enumerate(self.labels)
        )
        status, answer = http_post(self.bridge.url, "/api/v1/write", body, REMOTE_WRITE_HEADERS)
        self.statuses.append(status)
        if status == 204:
            self.acked += 1
        else:
            self.last_error = answer.decode(errors="replace")
        return status

    def expected_times(self) -> list[int]:
        return [t for k in range(self.acked) for t in self.times(k)]

    def stored_times(self) -> dict:
        end = self.times(self.acked)[0]
        q = urllib.parse.urlencode({"query": "full_test[1h]", "time": f"{end / 1000:.3f}"})
        status, body = http_get(self.bridge.url, f"/api/v1/query?{q}")
        assert status == 200, body[:300]
        return {
            make_labels(item["metric"]): [round(float(t) * 1000) for t, _ in item["values"]]
            for item in json.loads(body)["data"]["result"]
        }

    def assert_all_acked_present(self) -> None:
        stored = self.stored_times()
        want = self.expected_times()
        assert set(stored) == set(self.labels)
        for lb in self.labels:
            assert stored[lb] == want, lb


def can_mount_tmpfs(path: Path) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        return False
    subprocess.run(["umount", str(path)], check=True)
    return True


@pytest.fixture
def receiver() -> Iterator[FaultProxy]:
    p = FaultProxy()
    yield p
    p.close()


def run_disk_full_episode(bridge: Bridge, fill, free, receiver: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    writer = Writer(bridge)
    for _ in range(5):
        assert writer.send_next() == 204
    fill()
    first_failure = None
    for _ in range(2000):  # ~8 KiB per request against a 3 MiB filesystem
        status = writer.send_next()
        if status != 204:
            first_failure = status
            break
    assert first_failure is not None, "the disk never filled up"
    assert 500 <= first_failure < 600, (first_failure, writer.last_error[:300], writer.acked)
    assert "No space left on device" in writer.last_error, writer.last_error
    # Still full: the same request keeps failing with 5xx, the daemon keeps serving reads.
    assert 500 <= writer.send_next() < 600
    assert http_get(bridge.url, "/-/healthy")[0] == 200
    writer.assert_all_acked_present()

    free()
    wait_until(lambda: writer.send_next() == 204, 10, "ingest to recover")
    for _ in range(3):
        assert writer.send_next() == 204
    writer.assert_all_acked_present()
    total = writer.acked * PER_REQUEST * SERIES
    wait_until(lambda: receiver.received.total() >= total, 20, "forwarding to catch up")
    assert receiver.received.total() == total

    # And after a restart, still everything.
    bridge.stop()
    bridge.start()
    writer.assert_all_acked_present()
    bridge.stop()


def test_disk_full_on_a_small_tmpfs(tmp_path: Path, receiver: FaultProxy) -> None:
    mnt = tmp_path / "mnt"
    if not can_mount_tmpfs(mnt):
        pytest.skip("cannot mount a tmpfs here (needs root); the injected ENOSPC test covers it")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], check=True)
    try:
        bridge = Bridge(mnt, [receiver.url]).start()

        def fill() -> None:
            pass  # the tmpfs fills up by itself

        def free() -> None:
            subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)

        try:
            run_disk_full_episode(bridge, fill, free, receiver)
        finally:
            bridge.stop()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_injected(tmp_path: Path, receiver: FaultProxy) -> None:
    flag = tmp_path / "enospc"
    bridge = Bridge(
        tmp_path / "bridge",
        [receiver.url],
        launcher=[sys.executable, "-c", LAUNCHER],
        env={"GAB_TEST_ENOSPC_FLAG": str(flag)},
    ).start()
    try:
        run_disk_full_episode(bridge, flag.touch, flag.unlink, receiver)
    finally:
        bridge.stop()
