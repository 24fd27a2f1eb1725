"""Native histogram ingest: the bridge against Debian's Prometheus with native histograms on.

    python tests/bench/bench_histograms.py [--smoke] [--series 1000] [--minutes 30]

A latency-like integer native histogram per series (schema 3, about 20 populated buckets that
grow by a random amount each 15 s scrape), every series in one remote-write request per
scrape, the same pre-encoded requests POSTed to each server (one at a time). Reported, as in
``bench_ingest`` (see :func:`benchlib.measure_ingest` and ``measure_disk``): ingest CPU per
histogram sample and bytes on disk per histogram sample once compacted, with the 1-minute load
average. ``--smoke`` runs a small size. Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import cramjam
import numpy as np
from benchlib import (
    BridgeServer,
    PrometheusServer,
    Server,
    load_average,
    measure_disk,
    measure_ingest,
    ratio,
)

from grafana_agent_bridge.histogram.codec import HistogramSample, to_proto
from grafana_agent_bridge.histogram.model import FloatHistogram, Span
from grafana_agent_bridge.remote_write import WriteRequest

BUCKETS = 20


def payloads(n_series: int, scrapes: int) -> list[tuple[bytes, int]]:
    """One request per scrape, one histogram per series, timestamps ending now."""
    import time

    rng = np.random.default_rng(1)
    counts = np.zeros((n_series, BUCKETS))
    sums = np.zeros(n_series)
    end = int(time.time() * 1000) // 15_000 * 15_000
    out: list[tuple[bytes, int]] = []
    for k in range(scrapes):
        t = end - (scrapes - 1 - k) * 15_000
        counts += rng.poisson(3.0, size=counts.shape)
        sums += rng.random(n_series) * 50
        req = WriteRequest()
        for i in range(n_series):
            ts = req.timeseries.add()
            ts.labels.add(name="__name__", value="http_request_duration_seconds")
            ts.labels.add(name="instance", value=f"host-{i}")
            h = FloatHistogram(
                schema=3,
                count=float(counts[i].sum()),
                sum=float(sums[i]),
                positive_spans=(Span(-40, BUCKETS),),
                positive_buckets=tuple(counts[i].tolist()),
            )
            ts.histograms.append(to_proto(HistogramSample(t, h, True)).SerializeToString())
        out.append((bytes(cramjam.snappy.compress_raw(req.SerializeToString())), n_series))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description="Native histogram ingest against Prometheus.")
    p.add_argument("--smoke", action="store_true", help="200 series x 10 minutes")
    p.add_argument("--series", type=int, default=1000)
    p.add_argument("--minutes", type=int, default=30)
    args = p.parse_args()
    n, minutes = (200, 10) if args.smoke else (args.series, args.minutes)
    data = payloads(n, minutes * 4)
    total = n * minutes * 4
    print(f"{n} series x {minutes * 4} scrapes = {total} histogram samples; load {load_average()}")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-hist-") as tmp:
        for name in ("prometheus", "bridge"):
            server: Server
            if name == "prometheus":
                server = PrometheusServer(
                    Path(tmp) / name, block_minutes=120, features=("native-histograms",)
                )
            else:
                server = BridgeServer(Path(tmp) / name, block_minutes=120)
            try:
                r = measure_ingest(server, data, 1, n_series=n)
                r.update(measure_disk(server, int(r["samples"])))
                results[name] = r
            finally:
                server.stop()
            print(
                f"  {name:11} {r['samples']:.0f} samples ({r['failed_requests']:.0f} failed "
                f"requests): ingest CPU {r['cpu_us_per_sample']:.2f} us/histogram sample "
                f"(steady {r['steady_us_per_sample']:.2f}), {r['bytes_per_sample']:.2f} "
                f"bytes/histogram sample on disk ({r['block_samples']:.0f} samples in blocks); "
                f"load1 {r['load_ingest']:.2f}",
                flush=True,
            )
    prom, bridge = results["prometheus"], results["bridge"]
    for key, label in (
        ("cpu_us_per_sample", "ingest CPU us/histogram sample"),
        ("bytes_per_sample", "bytes/histogram sample"),
    ):
        print(
            f"{label:32} prometheus {prom[key]:8.2f}  bridge {bridge[key]:8.2f}  "
            f"bridge/prom {ratio(bridge[key], prom[key])}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
