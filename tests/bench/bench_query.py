"""Query benchmark: the bridge's PromQL engine and Debian's Prometheus, same data, same queries.

    python tests/bench/bench_query.py [--series 10000] [--scrapes 150] [--repeat 7]

10 k series x 150 scrapes at 15 s (37.5 min) are remote-written, as the same pre-encoded
requests, to a Prometheus and to a bridge server (each its own process on a free loopback
port). The same data is also appended to an in-process bridge store. Each query then runs
``--repeat`` times against each; the median latency is printed:

- ``prometheus``: HTTP round trip to Prometheus (parse + evaluate + JSON + HTTP);
- ``bridge http``: the same HTTP round trip to the bridge server (everything included);
- ``engine``: ``Engine.instant``/``Engine.range`` in this process (parse + select from the store
  + evaluate; no JSON, no HTTP), i.e. the part this benchmark's targets are about;

with the ratios bridge/Prometheus against the targets (sum(rate) over 10 k series <= 2x;
single-series dashboard queries <= 10 ms median). Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

# benchlib sits beside this script (sys.path[0]); it needs the repo root for tests.support.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchlib import (
    BridgeServer,
    PrometheusServer,
    Server,
    Workload,
    post_all,
)

from grafana_agent_bridge.labels import Labels, make_labels
from grafana_agent_bridge.promql import Engine
from grafana_agent_bridge.storage import SeriesBatch
from grafana_agent_bridge.store import Store, StoreOptions

ONE = 'instance="host-000.example.internal:9100"'


class QueryWorkload(Workload):
    """The ingest benchmark's data, with ``mode`` unique per metric of a host: ``rate`` drops
    the metric name, and ``sum(rate({job="node"}[5m]))`` must not see two series that differ
    only by name (Prometheus rejects that query)."""

    def labels(self) -> list[Labels]:
        return [
            make_labels({**dict(lb), "mode": f"m{i % 100:02d}"})
            for i, lb in enumerate(super().labels())
        ]


def queries(end_s: float, span_s: float) -> list[tuple[str, str, dict[str, float]]]:
    """(name, query, params): params with ``time`` = instant, with ``start`` = range."""
    inst = {"time": end_s}
    rng = {"start": end_s - span_s, "end": end_s, "step": 15}
    return [
        ("sum(rate) 10k series, instant", 'sum(rate({job="node"}[5m]))', inst),
        ("sum(rate) 10k series, 151-step range", 'sum(rate({job="node"}[5m]))', rng),
        ("single series, instant", f"node_metric_04{{{ONE}}}", inst),
        ("single series, range", f"node_metric_04{{{ONE}}}", rng),
        ("rate of one series, range", f"rate(node_metric_04{{{ONE}}}[5m])", rng),
        ("sum by (region) rate, 100 series, range",
         "sum by (region) (rate(node_metric_05[5m]))", rng),
        ("topk(5) by instance, 10k series, range",
         'topk(5, sum by (instance) (rate({job="node"}[5m])))', rng),
    ]  # fmt: skip


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up (caches, first-touch allocations)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def http_query(session: requests.Session, server: Server, q: str, p: dict[str, float]):  # type: ignore[no-untyped-def]
    path = "/api/v1/query_range" if "start" in p else "/api/v1/query"

    def run() -> None:
        r = session.get(server.base + path, params={"query": q, **p}, timeout=120)
        r.raise_for_status()
        r.json()

    return run


def engine_query(engine: Engine, q: str, p: dict[str, float]):  # type: ignore[no-untyped-def]
    if "start" in p:
        return lambda: engine.range(
            q, round(p["start"] * 1000), round(p["end"] * 1000), round(p["step"] * 1000)
        )
    return lambda: engine.instant(q, round(p["time"] * 1000))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--scrapes", type=int, default=150)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    wl = QueryWorkload(n_series=args.series, scrapes=args.scrapes)
    print(f"generating {args.series} series x {args.scrapes} scrapes ...", flush=True)
    payloads = wl.payloads()
    labels = wl.labels()
    ts, values = wl.columns()
    end_s = (wl.start_ms + args.scrapes * wl.step_ms) / 1000
    span_s = 150 * 15  # 151 steps
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        prom = PrometheusServer(Path(tmp) / "prom", block_minutes=120)
        bridge = BridgeServer(Path(tmp) / "bridge", block_minutes=120)
        store = Store.open(Path(tmp) / "engine", StoreOptions(retention_time_ms=2**62))
        try:
            for name, server in (("prometheus", prom), ("bridge", bridge)):
                ok, failed, wall = post_all(server.base + "/api/v1/write", payloads)
                print(f"loaded {ok} samples into {name} in {wall:.1f}s ({failed} failed requests)")
            store.append(
                [
                    SeriesBatch(lb, ts[:, i].copy(), values[:, i].copy())
                    for i, lb in enumerate(labels)
                ]
            )
            engine = Engine(store)
            session = requests.Session()
            print(
                f"\nmedian of {args.repeat} runs, ms; machine: {sys.platform}, "
                f"python {sys.version.split()[0]}"
            )
            print(f"{'query':44} {'prometheus':>10} {'bridge http':>11} {'engine':>8} "
                  f"{'http/prom':>9} {'engine/prom':>11}")  # fmt: skip
            for name, q, p in queries(end_s, span_s):
                pm = median_ms(http_query(session, prom, q, p), args.repeat)
                bm = median_ms(http_query(session, bridge, q, p), args.repeat)
                em = median_ms(engine_query(engine, q, p), args.repeat)
                print(f"{name:44} {pm:10.1f} {bm:11.1f} {em:8.1f} {bm / pm:9.2f} {em / pm:11.2f}")
            print(
                "\ntargets: sum(rate) over 10k series <= 2x Prometheus; "
                "single-series queries <= 10 ms median"
            )
        finally:
            store.close()
            bridge.stop()
            prom.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
