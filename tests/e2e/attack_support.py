"""The harness of the attack suite: a real daemon, samples it acknowledged before the attack,
and the three things every attack test asserts afterwards.

An attack test starts a :class:`Target`, attacks it over loopback (bounded in count and time),
then calls :meth:`Target.assert_survived`, which checks that

- the daemon still answers ``/-/ready`` within 2 s (it did not die, freeze or wedge),
- every sample acknowledged before the attack can still be queried, value for value,
- the daemon's peak RSS (``VmHWM`` from ``/proc``) stayed under the bound the test states.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path

import numpy as np
from forward_support import Bridge, http_get, http_post, series_labels

from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import SeriesBatch

READY_WITHIN_S = 2.0
PROBE_METRIC = "attack_probe"
PROBE_SERIES = 5


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (``VmHWM``) in MiB: a spike that was freed again still
    counts, which is the point (the kernel's OOM killer sees the peak, not the average)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


class Target:
    """The daemon under attack, with a few series it acknowledged before the attack began."""

    def __init__(self, workdir: Path, *, args: list[str] | None = None, **bridge: object) -> None:
        self.bridge = Bridge(workdir, args=args, **bridge)  # type: ignore[arg-type]
        self.acked: dict[str, list[tuple[int, float]]] = {}
        self.now_ms = int(time.time() * 1000)

    def start(self) -> Target:
        self.bridge.start()
        self._push_probe()
        return self

    @property
    def url(self) -> str:
        return self.bridge.url

    @property
    def pid(self) -> int:
        assert self.bridge.proc is not None, "the daemon is not running"
        return self.bridge.proc.pid

    def stop(self) -> int:
        return self.bridge.stop()

    def _push_probe(self) -> None:
        labels = series_labels(PROBE_METRIC, PROBE_SERIES)
        for k in range(4):
            ts_ms = self.now_ms - (4 - k) * 15_000
            body = encode_write_request(
                SeriesBatch(lb, np.array([ts_ms], dtype=np.int64), np.array([float(k + i)]))
                for i, lb in enumerate(labels)
            )
            status, answer = http_post(self.url, "/api/v1/write", body, REMOTE_WRITE_HEADERS)
            assert status == 204, (status, answer[:300])
            for i in range(PROBE_SERIES):
                self.acked.setdefault(f"s{i:03d}", []).append((ts_ms, float(k + i)))

    def _stored(self) -> dict[str, list[tuple[int, float]]]:
        start = min(ts for pts in self.acked.values() for ts, _ in pts) / 1000
        end = max(ts for pts in self.acked.values() for ts, _ in pts) / 1000
        query = urllib.parse.urlencode(
            {"query": PROBE_METRIC, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "15"}
        )
        status, body = http_get(self.url, f"/api/v1/query_range?{query}", timeout=10)
        assert status == 200, (status, body[:300])
        out: dict[str, list[tuple[int, float]]] = {}
        for series in json.loads(body)["data"]["result"]:
            out[series["metric"]["series"]] = [
                (round(float(t) * 1000), float(v)) for t, v in series["values"]
            ]
        return out

    def assert_ready(self) -> None:
        """``/-/ready`` answers 200 within 2 s, and the process is still the one we started."""
        assert self.bridge.alive(), f"the daemon died: {self.bridge.log_text()[-2000:]}"
        t0 = time.monotonic()
        status, _ = http_get(self.url, "/-/ready", timeout=READY_WITHIN_S)
        took = time.monotonic() - t0
        assert status == 200, f"/-/ready answered {status}"
        assert took < READY_WITHIN_S, f"/-/ready took {took:.2f}s"

    def assert_survived(self, max_rss_mib: float) -> float:
        """The three post-attack checks; returns the peak RSS in MiB for the test to report."""
        self.assert_ready()
        assert self._stored() == self.acked, "samples acknowledged before the attack are gone"
        peak = peak_rss_mib(self.pid)
        assert peak < max_rss_mib, f"peak RSS {peak:.0f} MiB over the {max_rss_mib:.0f} MiB bound"
        print(f"peak RSS {peak:.0f} MiB (bound {max_rss_mib:.0f} MiB)")
        return peak
