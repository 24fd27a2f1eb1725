"""Query benchmark: the bridge's PromQL engine, Debian's Prometheus and VictoriaMetrics, same
data, same queries.

    python tests/bench/bench_query.py [--series 10000] [--scrapes 150] [--repeat 7]
                                      [--datasets node_exporter,synthetic]

Per data set (``node_exporter``: realistic, see :mod:`nodedata`; ``synthetic``: the original
mix), the series x scrapes at 15 s are remote-written, as the same pre-encoded requests, to a
Prometheus, a bridge server and a VictoriaMetrics (each its own process on a free loopback
port; VictoriaMetrics is skipped with a line when not installed). The same data is also
appended to an in-process bridge store. Each query then runs ``--repeat`` times against each;
the median latency is printed:

- ``prometheus`` / ``victoria``: HTTP round trip (parse + evaluate + JSON + HTTP);
- ``bridge http``: the same HTTP round trip to the bridge server (everything included);
- ``engine``: ``Engine.instant``/``Engine.range`` in this process (parse + select from the store
  + evaluate; no JSON, no HTTP): how much of the round trip the engine itself takes;

with the ratios bridge/Prometheus, bridge/VictoriaMetrics and engine/Prometheus against the
targets of issue 16 (range queries over 10 k series <= 0.8x Prometheus through HTTP;
single-series instant and range queries <= 1 ms through HTTP), and the 1-minute load average
while each query ran. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

# benchlib sits beside this script (sys.path[0]); it needs the repo root for tests.support.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchlib import (
    BridgeServer,
    DataSet,
    PrometheusServer,
    QueryClient,
    Server,
    VictoriaMetricsServer,
    Workload,
    available_servers,
    env_int,
    env_list,
    http_query,
    load_average,
    median_ms,
    post_all,
    ratio,
)
from nodedata import NodeWorkload

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


def queries(ds: DataSet, end_s: float, span_s: float) -> list[tuple[str, str, dict[str, float]]]:
    """(name, query, params): params with ``time`` = instant, with ``start`` = range."""
    inst = {"time": end_s}
    rng = {"start": end_s - span_s, "end": end_s, "step": 15}
    one = ds.one_series
    if isinstance(ds, NodeWorkload):
        inst0 = ds.host_labels(0)["instance"]
        cpu = f'node_cpu_seconds_total{{instance="{inst0}",cpu="0",mode="user"}}'
        return [
            (
                "sum by (mode) rate, all CPUs, instant",
                "sum by (mode) (rate(node_cpu_seconds_total[5m]))",
                inst,
            ),
            (
                "sum by (mode) rate, all CPUs, range",
                "sum by (mode) (rate(node_cpu_seconds_total[5m]))",
                rng,
            ),
            (
                "every series, sum by (instance), range",
                f"sum by (instance) ({ds.job_selector})",
                rng,
            ),
            ("single series, instant", one, inst),
            ("single series, range", one, rng),
            ("rate of one series, range", f"rate({cpu}[5m])", rng),
            (
                "memory available ratio, all hosts, range",
                "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
                rng,
            ),
            (
                "topk(5) network receive by instance, range",
                "topk(5, sum by (instance) (rate(node_network_receive_bytes_total[5m])))",
                rng,
            ),
        ]
    return [
        ("sum(rate) all series, instant", 'sum(rate({job="node"}[5m]))', inst),
        ("sum(rate) all series, range", 'sum(rate({job="node"}[5m]))', rng),
        ("single series, instant", one, inst),
        ("single series, range", one, rng),
        ("rate of one series, range", f"rate({one}[5m])", rng),
        ("sum by (region) rate, 100 series, range",
         "sum by (region) (rate(node_metric_05[5m]))", rng),
        ("topk(5) by instance, all series, range",
         'topk(5, sum by (instance) (rate({job="node"}[5m])))', rng),
    ]  # fmt: skip


def engine_query(engine: Engine, q: str, p: dict[str, float]):  # type: ignore[no-untyped-def]
    if "start" in p:
        return lambda: engine.range(
            q, round(p["start"] * 1000), round(p["end"] * 1000), round(p["step"] * 1000)
        )
    return lambda: engine.instant(q, round(p["time"] * 1000))


def run(ds: DataSet, repeat: int, with_vm: bool) -> None:
    print(f"\n===== data set: {ds.describe()}")
    print(f"generating {ds.n_series} series x {ds.scrapes} scrapes ...", flush=True)
    payloads, _ = ds.payloads()
    labels = [make_labels(dict(lb)) for lb in ds.labels()]
    ts, values = ds.columns()
    end_s = (ds.start_ms + ds.scrapes * ds.step_ms) / 1000
    span_s = min(150, ds.scrapes - 1) * 15
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        servers: dict[str, Server] = {}
        store = Store.open(Path(tmp) / "engine", StoreOptions(retention_time_ms=2**62))
        try:
            servers["prometheus"] = PrometheusServer(Path(tmp) / "prom", block_minutes=120)
            servers["bridge"] = BridgeServer(Path(tmp) / "bridge", block_minutes=120)
            if with_vm:
                servers["victoria"] = VictoriaMetricsServer(Path(tmp) / "vm")
            for name, server in servers.items():
                ok, failed, wall = post_all(server.base + "/api/v1/write", payloads)
                server.settle()
                print(f"loaded {ok} samples into {name} in {wall:.1f}s ({failed} failed requests)")
            store.append(
                [
                    SeriesBatch(lb, ts[:, i].copy(), values[:, i].copy())
                    for i, lb in enumerate(labels)
                ]
            )
            engine = Engine(store)
            client = QueryClient()
            print(
                f"\nmedian of {repeat} runs, ms; machine: {sys.platform}, "
                f"python {sys.version.split()[0]}; load average now {load_average()}"
            )
            print(f"{'query':44} {'prometheus':>10} {'bridge http':>11} {'victoria':>9} "
                  f"{'engine':>8} {'bridge/prom':>11} {'bridge/vm':>9} {'engine/prom':>11}"
                  f" {'load1':>6}")  # fmt: skip
            for name, q, p in queries(ds, end_s, span_s):
                ms = {}
                for sname, server in servers.items():
                    try:
                        ms[sname] = median_ms(http_query(client, server, q, p), repeat)
                    except Exception as exc:
                        print(f"  {sname}: {q}: {exc}")
                        ms[sname] = float("nan")
                em = median_ms(engine_query(engine, q, p), repeat)
                pm, bm = ms["prometheus"], ms["bridge"]
                vm = ms.get("victoria", float("nan"))
                print(
                    f"{name:44} {pm:10.2f} {bm:11.2f} {vm:9.2f} {em:8.2f} "
                    f"{ratio(bm, pm):>11} {ratio(bm, vm):>9} {ratio(em, pm):>11}"
                    f" {os.getloadavg()[0]:6.2f}"
                )
            print(
                "\ntargets (bridge http): range queries over 10k series <= 0.8x Prometheus; "
                "single-series instant and range queries <= 1 ms"
            )
        finally:
            store.close()
            for server in servers.values():
                server.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--scrapes", type=int, default=150)
    ap.add_argument("--repeat", type=int, default=env_int("BENCH_REPEAT", 7))
    ap.add_argument(
        "--datasets", default=",".join(env_list("BENCH_DATASETS", "node_exporter,synthetic"))
    )
    args = ap.parse_args()
    if not available_servers(["prometheus"]):
        return 0
    with_vm = bool(available_servers(["victoria-metrics"]))
    for name in args.datasets.split(","):
        if name == "node_exporter":
            ds: DataSet = NodeWorkload(n_series=args.series, scrapes=args.scrapes)
        else:
            ds = QueryWorkload(n_series=args.series, scrapes=args.scrapes)
        run(ds, args.repeat, with_vm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
