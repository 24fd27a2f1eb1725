"""The data directory's lock says who holds it: PID and command line, credentials masked."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grafana_agent_bridge.store import Store, StoreLockedError, StoreOptions

HOLD = (  # one short line: the message shows the holder's command line up to 300 characters
    "import sys,time;from grafana_agent_bridge.store import Store;"
    "s=Store.open(__import__('pathlib').Path(sys.argv[1]));print('locked',flush=True);"
    "time.sleep(30)"
)


def test_the_lock_error_names_the_holding_process(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path), "--forward-url=http://u:pw0rd@h/p?k=v"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        t0 = time.monotonic()
        with pytest.raises(StoreLockedError) as e:
            Store.open(tmp_path, StoreOptions())
        assert time.monotonic() - t0 < 1  # refused at once, not after waiting for the lock
        message = str(e.value)
        assert f"PID {holder.pid} (" in message and "-c" in message, message
        assert "http://***@h/p?k=***" in message and "pw0rd" not in message, message
        assert str(tmp_path) in message
    finally:
        holder.kill()
        holder.wait()
    Store.open(tmp_path, StoreOptions()).close()  # a killed holder leaves no stale lock


def test_a_second_open_in_the_same_process_says_so(tmp_path: Path) -> None:
    store = Store.open(tmp_path, StoreOptions())
    try:
        with pytest.raises(StoreLockedError, match=f"this process \\(PID {os.getpid()}"):
            Store.open(tmp_path, StoreOptions())
    finally:
        store.close()


def test_a_holder_that_recorded_no_pid_is_still_reported(tmp_path: Path) -> None:
    import fcntl

    fd = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as an older version: locked, nothing written
        with pytest.raises(StoreLockedError, match="did not record its PID"):
            Store.open(tmp_path, StoreOptions())
    finally:
        os.close(fd)
