"""Corruption on disk: a torn or bit-flipped newest WAL segment, a damaged block.

The bridge daemon must start, keep the valid prefix (WAL) or everything outside the damaged
block, say what it dropped (log and ``bridge_store_*`` metrics), and keep serving: queries
answer and new writes are accepted. Modelled on Prometheus's ``TestWALRepair_ReadingError``.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from forward_support import Bridge, http_get, http_post, series_labels

from grafana_agent_bridge.labels import Labels, make_labels
from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import SeriesBatch

SERIES = 10


@pytest.fixture
def bridges() -> Iterator[list[Bridge]]:
    """Bridges a test starts (each with its own options); always stopped afterwards."""
    started: list[Bridge] = []
    yield started
    for b in started:
        b.stop()


def push(bridge: Bridge, labels: list[Labels], times: list[int], tick0: int) -> int:
    """One request: every series gets ``times``; values encode (tick, series)."""
    ts = np.array(times, dtype=np.int64)
    body = encode_write_request(
        SeriesBatch(lb, ts, np.arange(tick0, tick0 + len(ts), dtype=np.float64) * 100 + i)
        for i, lb in enumerate(labels)
    )
    status, answer = http_post(bridge.url, "/api/v1/write", body, REMOTE_WRITE_HEADERS)
    assert status == 204, answer
    return len(ts) * len(labels)


def query_samples(
    bridge: Bridge, metric: str, at_ms: int
) -> dict[Labels, list[tuple[int, float]]]:
    q = urllib.parse.urlencode({"query": f"{metric}[1h]", "time": f"{at_ms / 1000:.3f}"})
    status, body = http_get(bridge.url, f"/api/v1/query?{q}")
    assert status == 200, body[:300]
    out = {}
    for item in json.loads(body)["data"]["result"]:
        out[make_labels(item["metric"])] = [
            (round(float(t) * 1000), float(v)) for t, v in item["values"]
        ]
    return out


def newest_segment(data_dir: Path) -> Path:
    segments = sorted(p for p in (data_dir / "wal").iterdir() if p.name.isdigit())
    return segments[-1]


def flip(path: Path, offset: int, n: int = 8) -> None:
    data = bytearray(path.read_bytes())
    for i in range(offset, min(offset + n, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_newest_wal_segment_keeps_the_valid_prefix(
    tmp_path: Path, damage: str, bridges: list[Bridge]
) -> None:
    bridge = Bridge(tmp_path / "bridge")
    bridges.append(bridge)
    bridge.start()
    labels = series_labels("corr_wal", SERIES)
    base = int(time.time() * 1000) - 30 * 60_000
    ticks = 60
    for k in range(ticks):
        push(bridge, labels, [base + k * 1000], k)
    bridge.stop()
    segment = newest_segment(bridge.data_dir)
    size = segment.stat().st_size
    if damage == "truncate":  # a torn write: the last record cut in the middle
        with open(segment, "r+b") as f:
            f.truncate(size - 7)
    else:  # a flipped bit pattern in the middle of the segment
        flip(segment, size // 2)

    bridge.start()
    now = base + ticks * 1000
    got = query_samples(bridge, "corr_wal", now)
    kept = {len(v) for v in got.values()}
    # A prefix: every series has the same first K ticks, exactly as written.
    assert len(kept) == 1, kept
    k = kept.pop()
    for i, lb in enumerate(labels):
        assert got[lb] == [(base + t * 1000, t * 100.0 + i) for t in range(k)]
    if damage == "truncate":
        assert k == ticks - 1
    else:
        assert 0 < k < ticks - 1
    assert "is corrupt" in bridge.log_text()

    # Still serving: new writes are accepted and readable.
    push(bridge, labels, [now + 1000], ticks)
    got = query_samples(bridge, "corr_wal", now + 1000)
    assert all(v[-1] == (now + 1000, ticks * 100.0 + i) for i, v in enumerate(got.values()))
    metrics = bridge.metrics()
    bridge.stop()
    assert metrics["bridge_store_wal_corruptions_total"] == 1
    assert metrics["bridge_store_wal_bytes_dropped_total"] > 0


def test_damaged_blocks_lose_only_their_own_range(tmp_path: Path, bridges: list[Bridge]) -> None:
    bridge = Bridge(tmp_path / "bridge", storage={"block_duration": "1m"})
    bridges.append(bridge)
    bridge.start()
    labels = series_labels("corr_blk", SERIES)
    base = (int(time.time() * 1000) - 20 * 60_000) // 60_000 * 60_000
    step, per_request, requests = 5_000, 6, 14  # 7 minutes of data, 30 s per request
    for r in range(requests):
        times = [base + (r * per_request + j) * step for j in range(per_request)]
        push(bridge, labels, times, r * per_request)
    end = base + requests * per_request * step
    blocks_dir = bridge.data_dir / "blocks"

    def blocks() -> list[Path]:
        return sorted(p for p in blocks_dir.iterdir() if (p / "meta.json").exists())

    deadline = time.monotonic() + 20
    while len(blocks()) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(blocks()) >= 3, "the store cut no blocks"
    before = query_samples(bridge, "corr_blk", end)
    bridge.stop()

    first, second = blocks()[:2]
    ranges = []
    for b in (first, second):
        meta = json.loads((b / "meta.json").read_text())
        ranges.append((int(meta["mint"]), int(meta["maxt"])))
    flip(first / "chunks", (first / "chunks").stat().st_size // 2)  # one group damaged
    flip(second / "index", 3)  # the whole block unreadable

    bridge.start()
    after = query_samples(bridge, "corr_blk", end)

    def damaged(t: int) -> bool:
        return any(lo <= t <= hi for lo, hi in ranges)

    lost = 0
    for lb, samples in before.items():
        have = dict(after.get(lb, []))
        for t, v in samples:
            if damaged(t):
                lost += t not in have
                assert have.get(t, v) == v  # whatever is kept is the real value
            else:
                assert have.get(t) == v, (lb, t)
    assert lost > 0
    assert "corrupt" in bridge.log_text()
    # Still serving: a new write lands and reads back.
    push(bridge, labels, [end + step], 999)
    got = query_samples(bridge, "corr_blk", end + step)
    assert got[labels[0]][-1] == (end + step, 99900.0)
    metrics = bridge.metrics()
    bridge.stop()
    assert metrics["bridge_store_blocks_corrupt_total"] == 2
