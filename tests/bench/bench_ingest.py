"""Ingest benchmark: the bridge and Debian's Prometheus side by side, same payloads.

    python tests/bench/bench_ingest.py [--series 10000] [--scrapes 192] [--block-minutes 30]

Both run as their own server processes on free loopback ports with temporary data dirs; this
process POSTs the same pre-encoded remote-write requests (2,000 series x 1 sample each, like
Prometheus's sender) sequentially to each. Printed, per server:

- ingest CPU seconds per sample: utime+stime of the server process (/proc/<pid>/stat) over
  the POST phase (decode + validate + WAL + head; the bridge also cuts blocks meanwhile);
- bytes per sample on disk after compaction: block directories / samples in them, once each
  server has cut the first block (Prometheus compacts on a 1-minute timer, so we wait);
- RSS with the series count loaded (VmRSS after ingest);

and the ratios bridge / Prometheus against the targets (CPU <= 3x, bytes <= 1.0x, RSS <= 2x).
Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

# benchlib sits beside this script (sys.path[0]); it needs the repo root for tests.support.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchlib import (
    PROMETHEUS,
    BridgeServer,
    PrometheusServer,
    Server,
    Workload,
    block_bytes_per_sample,
    cpu_seconds,
    post_all,
    rss_bytes,
    wait_for_blocks,
)


def run(server: Server, payloads: list[tuple[bytes, int]], first_block_samples: int) -> dict:
    cpu0 = cpu_seconds(server.pid)
    ok, failed, wall = post_all(server.base + "/api/v1/write", payloads)
    cpu = cpu_seconds(server.pid) - cpu0
    rss = rss_bytes(server.pid)
    compacted = wait_for_blocks(server, first_block_samples, timeout=150)
    bps, size, samples = block_bytes_per_sample(server)
    return {
        "samples": ok,
        "failed_requests": failed,
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_us_per_sample": cpu / ok * 1e6 if ok else float("nan"),
        "rss_mb": rss / 2**20,
        "bytes_per_sample": bps if compacted else float("nan"),
        "block_bytes": size,
        "block_samples": samples,
        "cpu_total_s": cpu_seconds(server.pid) - cpu0,
    }


def main() -> int:
    p = argparse.ArgumentParser(description="Ingest benchmark against Prometheus.")
    p.add_argument("--series", type=int, default=10_000)
    p.add_argument("--scrapes", type=int, default=192, help="15 s scrapes (192 = 48 min)")
    p.add_argument("--block-minutes", type=int, default=30)
    args = p.parse_args()
    if PROMETHEUS is None:
        print("SKIP: prometheus is not installed (apt-get install prometheus)")
        return 0
    w = Workload(n_series=args.series, scrapes=args.scrapes)
    started = time.monotonic()
    payloads = w.payloads()
    total = sum(n for _, n in payloads)
    print(
        f"workload: {args.series} series x {args.scrapes} scrapes = {total} samples in "
        f"{len(payloads)} requests ({sum(len(b) for b, _ in payloads) / total:.1f} B/sample "
        f"snappy), built in {time.monotonic() - started:.1f}s; blocks of {args.block_minutes}m"
    )
    # Samples in the first block: scrapes before the first block boundary.
    ts, _ = w.columns()
    block_ms = args.block_minutes * 60_000
    first_end = (int(ts.min()) // block_ms + 1) * block_ms
    first_block = int((ts < first_end).sum())
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for name, cls in (("prometheus", PrometheusServer), ("bridge", BridgeServer)):
            server = cls(Path(tmp) / name, block_minutes=args.block_minutes)
            try:
                results[name] = run(server, payloads, first_block)
            finally:
                server.stop()
    b, pr = results["bridge"], results["prometheus"]
    print("bridge measured as its own server process (grafana-agent-bridge serve --no-collect)")
    print(f"{'':28}{'prometheus':>14}{'bridge':>14}{'ratio':>9}  target")
    rows = [
        ("samples acknowledged", "samples", "{:.0f}", None),
        ("failed requests", "failed_requests", "{:.0f}", None),
        ("ingest wall s", "wall_s", "{:.2f}", None),
        ("ingest CPU us/sample", "cpu_us_per_sample", "{:.2f}", "<= 3.0x"),
        ("bytes/sample after compaction", "bytes_per_sample", "{:.3f}", "<= 1.0x"),
        ("RSS MB", "rss_mb", "{:.1f}", "<= 2.0x"),
        ("block samples", "block_samples", "{:.0f}", None),
        ("CPU s incl. compaction", "cpu_total_s", "{:.2f}", None),
    ]
    for label, key, fmt, target in rows:
        ratio = b[key] / pr[key] if pr[key] else float("nan")
        tail = f"{ratio:8.2f}x  {target}" if target else ""
        print(f"{label:28}{fmt.format(pr[key]):>14}{fmt.format(b[key]):>14} {tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
