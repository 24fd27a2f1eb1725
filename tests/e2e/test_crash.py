"""``kill -9`` under a steady write load: every acknowledged sample is there after restart.

Two levels: the real daemon over HTTP (an acknowledgement is a 204), and the store alone in a
child process with tiny blocks and WAL segments, so kills also land in block cuts, WAL
rotation, WAL truncation and feed acknowledgements (an acknowledgement is ``append``
returning). The acknowledged set is checked against a fresh ``Store.open`` of the data dir.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import requests
from forward_support import BridgeProcess

from grafana_agent_bridge.labels import Matcher, MatchType, make_labels
from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import SeriesBatch
from grafana_agent_bridge.store import Store, StoreOptions
from tests.support import free_port

KILLS = int(os.environ.get("STORE_CRASH_KILLS", "6"))
N_SERIES = 100
STEP = 15_000


def _value(i: int, k: int) -> float:
    return float(i * 100_000 + k) + 0.25


def _stored(data_dir: Path, metric: str) -> dict[str, dict[int, float]]:
    store = Store.open(data_dir, StoreOptions(compact_automatically=False))
    try:
        out: dict[str, dict[int, float]] = {}
        for s in store.select([Matcher("__name__", MatchType.EQUAL, metric)], 0, 2**62):
            inst = dict(s.labels)["i"]
            out[inst] = dict(zip(s.timestamps.tolist(), s.values.tolist(), strict=True))
        return out
    finally:
        store.close()


def _assert_all_present(got: dict[str, dict[int, float]], acked: list[int]) -> None:
    assert acked, "nothing was acknowledged: the load did not run"
    missing = 0
    for i in range(N_SERIES):
        series = got.get(str(i), {})
        for k in acked:
            if series.get(k * STEP) != _value(i, k):
                missing += 1
    assert missing == 0, f"{missing} acknowledged samples missing or wrong"
    print(f"{len(acked) * N_SERIES} acknowledged samples, all present after the kills")


def _start_daemon(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    daemon = BridgeProcess(data_dir, "--no-collect", "--log-level", "warning", port=port)
    daemon.wait_ready(20)
    assert daemon.proc is not None
    return daemon.proc


def test_kill9_of_the_daemon_loses_no_acknowledged_sample(tmp_path: Path) -> None:
    data = tmp_path / "data"
    url_port = free_port()
    rng = random.Random(4)
    acked: list[int] = []
    k = 0
    session = requests.Session()
    for _cycle in range(KILLS):
        proc = _start_daemon(data, url_port)
        killer = threading.Timer(
            rng.uniform(0.3, 1.2), lambda p=proc: p.send_signal(signal.SIGKILL)
        )
        killer.start()
        try:
            while proc.poll() is None:
                k += 1
                body = encode_write_request(
                    SeriesBatch(
                        make_labels({"__name__": "crash_load", "i": str(i)}),
                        np.array([k * STEP], np.int64),
                        np.array([_value(i, k)]),
                    )
                    for i in range(N_SERIES)
                )
                try:
                    r = session.post(
                        f"http://127.0.0.1:{url_port}/api/v1/write",
                        data=body,
                        headers=REMOTE_WRITE_HEADERS,
                        timeout=5,
                    )
                except requests.RequestException:
                    break
                if r.status_code == 204:
                    acked.append(k)
        finally:
            killer.join()
            proc.wait(10)
            session.close()
            session = requests.Session()
        assert proc.returncode == -signal.SIGKILL
    _assert_all_present(_stored(data, "crash_load"), acked)


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import numpy as np
    from grafana_agent_bridge.labels import make_labels
    from grafana_agent_bridge.storage import SeriesBatch
    from grafana_agent_bridge.store import Store, StoreOptions

    data = Path(sys.argv[1])
    first, n_series, step = (int(a) for a in sys.argv[2:5])
    opts = StoreOptions(block_duration_ms=20 * step, wal_segment_bytes=16 * 1024, zstd_level=1,
                        retention_time_ms=10**12)
    store = Store.open(data, opts)
    pos = store.register("fw")
    labels = [make_labels({"__name__": "crash_load", "i": str(i)}) for i in range(n_series)]
    k = first
    while True:
        store.append([SeriesBatch(labels[i], np.array([k * step], np.int64),
                                  np.array([float(i * 100_000 + k) + 0.25]))
                      for i in range(n_series)])
        sys.stdout.write(f"{k}\\n")
        sys.stdout.flush()
        if k % 7 == 0:
            b = store.read(pos, 500)
            pos = b.next_position
            store.acknowledge("fw", pos)
        k += 1
    """
)


def test_kill9_of_the_store_during_cuts_rotation_and_truncation(tmp_path: Path) -> None:
    data = tmp_path / "data"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    rng = random.Random(9)
    acked: list[int] = []
    first = 1
    for _cycle in range(KILLS * 2):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(data), str(first), str(N_SERIES), str(STEP)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        time.sleep(rng.uniform(0.3, 1.0))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
        done = [int(line) for line in out.decode().split()]
        acked.extend(done)
        # Continue after anything that may have been written but not acknowledged.
        first = (done[-1] if done else first) + 2
    assert len(acked) > 50
    _assert_all_present(_stored(data, "crash_load"), acked)
    store = Store.open(data, StoreOptions(compact_automatically=False))
    try:
        assert store.stats().blocks > 0  # kills happened with blocks being cut
    finally:
        store.close()
