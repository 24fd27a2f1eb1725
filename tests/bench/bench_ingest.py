"""Cost growth: the bridge, Debian's Prometheus and VictoriaMetrics, same payloads, per size.

    python tests/bench/bench_ingest.py [--series 1000,10000,50000] [--minutes 30]
        [--datasets node_exporter,synthetic] [--repeat 5] [--servers prometheus,bridge,...]

For each data set (``node_exporter``: :mod:`nodedata`, realistic values, labels and scrape
timing; ``synthetic``: the original flattering mix) and each series count, the same
pre-encoded remote-write requests are POSTed sequentially to each server in turn, each its own
process on a free loopback port with a temporary data dir (one server at a time, so they do
not compete for the 2 cores). Measured per server (see :func:`benchlib.measure_ingest`):

- ingest CPU per sample, series-creation CPU per series, RSS growth per series; creation is
  averaged over ``--create-runs`` fresh servers (the measured one and more started only to
  take the first requests), because one reading at 10k series rests on a handful of ticks;
- bytes on disk per sample once compacted, with the default 2 h blocks: Prometheus writes
  its head out as a block (TSDB snapshot, admin API), the bridge's own store cuts the whole
  head into blocks (``compact(force=True)`` on its data dir once the daemon has stopped),
  VictoriaMetrics flushes and merges its parts; data, index and metadata all count;
- single-series instant and range query latency through HTTP, and a range query over every
  series (``sum by (instance) ({job=...})``: the real data has series differing only by name,
  so a ``rate`` over all of them is an error in Prometheus), median of ``--repeat``.

Printed: the figures, the ratios bridge / Prometheus and bridge / VictoriaMetrics, and the
1-minute load average when each server was measured. CPU is read in clock ticks: a figure
resting on fewer than ``benchlib.NOISY_TICKS`` of them (creation at 1k series, for every
server) is printed with ``~``, as is a ratio using one. Defaults come from ``BENCH_SERIES``,
``BENCH_MINUTES``, ``BENCH_DATASETS``, ``BENCH_REPEAT``, ``BENCH_CREATE_RUNS``. Asserts
nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# benchlib sits beside this script (sys.path[0]); it needs the repo root for tests.support.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchlib import (
    CLK_TCK,
    NOISY_TICKS,
    PROMETHEUS,
    SERVER_CLASSES,
    VICTORIA_METRICS,
    DataSet,
    QueryClient,
    Workload,
    available_servers,
    combine_creation,
    creation_cpu,
    env_int,
    env_list,
    http_query,
    load_average,
    measure_disk,
    measure_ingest,
    median_ms,
    ratio,
    series_count,
)
from nodedata import NodeWorkload

ROWS = [  # (key, label, format); the cost table, in this order
    ("cpu_us_per_sample", "ingest CPU us/sample", "{:.2f}"),
    ("create_us_per_series", "series creation CPU us/series", "{:.1f}"),
    ("bytes_per_sample", "bytes on disk/sample", "{:.3f}"),
    ("rss_per_series", "RSS growth bytes/series", "{:.0f}"),
    ("peak_rss_mb", "peak RSS MiB", "{:.0f}"),
    ("q_one_instant_ms", "one series, instant query ms", "{:.2f}"),
    ("q_one_range_ms", "one series, range query ms", "{:.2f}"),
    ("q_all_range_ms", "all series, range query ms", "{:.1f}"),
]


def make_dataset(name: str, n_series: int, scrapes: int) -> DataSet:
    if name == "node_exporter":
        return NodeWorkload(n_series=n_series, scrapes=scrapes)
    if name == "synthetic":
        return Workload(n_series=n_series, scrapes=scrapes)
    raise SystemExit(f"unknown data set {name!r} (node_exporter, synthetic)")


def versions() -> str:
    out = []
    for binary in (PROMETHEUS, VICTORIA_METRICS):
        if binary is None:
            continue
        try:
            text = subprocess.run(
                ["dpkg-query", "-W", "-f", "${Package} ${Version}", "--", Path(binary).name],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
        except OSError:
            text = ""
        out.append(text or Path(binary).name)
    return ", ".join(out)


def measure_queries(server, ds: DataSet, repeat: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Median HTTP latency of the table's three queries, and the load when they ran."""
    end_s = (ds.start_ms + ds.scrapes * ds.step_ms) / 1000
    span_s = min(150, ds.scrapes - 1) * ds.step_ms / 1000
    inst = {"time": end_s}
    rng = {"start": end_s - span_s, "end": end_s, "step": ds.step_ms / 1000}
    client = QueryClient()
    wide = f"sum by (instance) ({ds.job_selector})"
    out = {
        "q_one_instant_ms": median_ms(http_query(client, server, ds.one_series, inst), repeat),
        "q_one_range_ms": median_ms(http_query(client, server, ds.one_series, rng), repeat),
        "q_all_range_ms": median_ms(http_query(client, server, wide, rng), repeat),
        "load_query": os.getloadavg()[0],
        "series_seen": series_count(client, server, ds.job_selector, end_s),
    }
    client.close()
    return out


def run_size(
    ds: DataSet,
    servers: list[str],
    repeat: int,
    block_minutes: int,
    tmp: Path,
    create_runs: int = 1,
) -> dict[str, dict[str, float]]:
    started = time.monotonic()
    payloads, first_round = ds.payloads()
    total = sum(n for _, n in payloads)
    print(
        f"\n-- {ds.name}: {ds.n_series} series x {ds.scrapes} scrapes = {total} samples in "
        f"{len(payloads)} requests ({sum(len(b) for b, _ in payloads) / total:.1f} B/sample "
        f"snappy; series created by the first {first_round}), built in "
        f"{time.monotonic() - started:.1f}s",
        flush=True,
    )
    results: dict[str, dict[str, float]] = {}
    for name in servers:
        server = SERVER_CLASSES[name](
            tmp / f"{ds.name}-{ds.n_series}-{name}", block_minutes=block_minutes
        )
        try:
            r = measure_ingest(server, payloads, first_round, n_series=ds.n_series)
            r.update(measure_queries(server, ds, repeat))
            r.update(measure_disk(server, int(r["samples"])))
            results[name] = r
        except Exception as exc:  # one server failing must not hide the others' figures
            print(f"  {name}: FAILED: {exc!r}", flush=True)
        finally:
            server.stop()
        if name in results and create_runs > 1:
            r = results[name]
            runs = [(r["create_cpu_s"], int(r["create_samples"]))]
            for i in range(1, create_runs):
                fresh = SERVER_CLASSES[name](
                    tmp / f"{ds.name}-{ds.n_series}-{name}-create{i}", block_minutes=block_minutes
                )
                try:
                    runs.append(creation_cpu(fresh, payloads[:first_round]))
                finally:
                    fresh.stop()
            r.update(combine_creation(runs, r["steady_us_per_sample"] / 1e6, ds.n_series))
        if name in results:
            r = results[name]
            print(
                f"  {name:17} {r['samples']:.0f} samples ({r['failed_requests']:.0f} failed "
                f"requests, {r['series_seen']:.0f} series seen) in {r['wall_s']:.1f}s, "
                f"CPU {r['cpu_s']:.1f}s (steady {r['steady_us_per_sample']:.2f} us/sample), "
                f"creation {r['create_us_per_series']:.1f} us/series over "
                f"{r.get('create_runs', 1):.0f} fresh run(s), spread "
                f"{r.get('create_spread_us', 0.0):.1f}, "
                f"RSS {r['rss_mb']:.0f} MB, {r['block_samples']:.0f} samples in "
                f"{r['block_bytes'] / 2**20:.1f} MiB on disk; load {r['load_ingest']:.2f}",
                flush=True,
            )
    return results


def print_table(dataset: str, sizes: list[int], res: dict[int, dict[str, dict[str, float]]]):  # type: ignore[no-untyped-def]
    names = ("prometheus", "bridge", "victoria-metrics")
    print(f"\n== cost growth, {dataset} data; load average now {load_average()}")
    print(
        f"{'':31}{'series':>7}{'prometheus':>12}{'bridge':>12}{'victoria':>12}"
        f"{'bridge/prom':>13}{'bridge/vm':>11}   load1 at measurement (P/B/V)"
    )
    flagged = False
    for key, label, fmt in ROWS:
        load_key = "load_query" if key.startswith("q_") else "load_ingest"
        for i, n in enumerate(sizes):
            by = res.get(n, {})
            vals = [by.get(s, {}).get(key, float("nan")) for s in names]
            # The same rule for every server (benchlib.NOISY_TICKS).
            noisy = [bool(by.get(s, {}).get(key + "_noisy", 0.0)) for s in names]
            flagged = flagged or any(noisy)
            loads = "/".join(f"{by[s][load_key]:.1f}" if s in by else "-" for s in names)
            cells = "".join(
                f"{('~' if bad else '') + fmt.format(v) if v == v else '-':>12}"
                for v, bad in zip(vals, noisy)  # NaN != NaN
            )
            vs_prom = ratio(vals[1], vals[0], noisy=noisy[1] or noisy[0])
            vs_vm = ratio(vals[1], vals[2], noisy=noisy[1] or noisy[2])
            print(f"{label if i == 0 else '':31}{n:>7}{cells}{vs_prom:>13}{vs_vm:>11}   {loads}")
    if flagged:
        print(
            f"  ~ rests on under {NOISY_TICKS} ticks of CPU ({1000 / CLK_TCK:.0f} ms each), read "
            "to the tick: off by a tenth or more from that alone; trust the larger sizes."
        )


def main() -> int:
    p = argparse.ArgumentParser(description="Cost growth against Prometheus and VictoriaMetrics.")
    p.add_argument("--series", default=",".join(env_list("BENCH_SERIES", "1000,10000,50000")))
    p.add_argument("--minutes", type=int, default=env_int("BENCH_MINUTES", 30))
    p.add_argument(
        "--datasets", default=",".join(env_list("BENCH_DATASETS", "node_exporter,synthetic"))
    )
    p.add_argument("--repeat", type=int, default=env_int("BENCH_REPEAT", 5))
    p.add_argument(
        "--create-runs",
        type=int,
        default=env_int("BENCH_CREATE_RUNS", 3),
        help="fresh servers whose creation CPU is averaged (each: start, first requests, stop)",
    )
    p.add_argument("--servers", default="prometheus,bridge,victoria-metrics")
    args = p.parse_args()
    sizes = [int(x) for x in args.series.split(",")]
    scrapes = args.minutes * 4
    block_minutes = 120  # Prometheus's and the bridge's default
    servers = available_servers(args.servers.split(","))
    print(
        f"servers: {', '.join(servers)} ({versions()}); data: {args.minutes} min at 15 s; "
        f"load average at start {load_average()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for dataset in args.datasets.split(","):
            res = {}
            for n in sizes:
                ds = make_dataset(dataset, n, scrapes)
                if n == sizes[0]:
                    print(f"\n===== data set: {ds.describe()}")
                res[n] = run_size(
                    ds, servers, args.repeat, block_minutes, Path(tmp), args.create_runs
                )
            print_table(dataset, sizes, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
