"""Forwarding benchmark: crash loop, long outage (memory), catch-up rate, with real peers.

    python tests/bench/bench_forward.py [--crash-cycles 100] [--outage-seconds 120]
                                        [--series 100] [--interval 0.05]

1. **Crash loop**: the bridge daemon is ``kill -9``-ed ``--crash-cycles`` times at random
   moments while a pusher writes to it and it forwards to a real Prometheus. Printed: samples
   acknowledged (204) vs present in the local store and upstream, and how many the restarts
   re-sent.
2. **Long outage**: two bridges get the same steady stream; one forwards to a Prometheus behind
   the fault proxy, which refuses connections for ``--outage-seconds``, the other forwards
   nowhere (the control). Printed: RSS of both at the start and end of the outage; the
   difference is what forwarding costs, and it must not grow with the outage.
3. **Catch-up**: when the upstream returns, the backlog drains while ingest continues.
   Printed: drain time, delivery rate, and that rate as a multiple of the ingest rate; then
   that every acknowledged sample is upstream.

In the outage, Prometheus (as a relay) and vmagent (from Debian's ``victoria-metrics``
package, which ships it; skipped with a line when absent) get the same stream beside the
bridge, each behind its own fault proxy, and their RSS growth and drain time are printed with
the bridge's, as ratios, with the load average.

Asserts nothing (a shared 2-core box); the e2e tests assert the correctness parts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for tests.support

from faultproxy import FaultProxy
from forward_support import Bridge, Prometheus, Pusher, compare, wait_until

from grafana_agent_bridge.labels import Matcher, MatchType
from grafana_agent_bridge.store import Store
from tests.support import free_port, stop_process, wait_ready

VMAGENT = os.environ.get("VMAGENT_BIN") or shutil.which("vmagent")

T = 'target="up0"'
DROPPED = f'bridge_forward_samples_dropped_total{{{T},reason="rejected"}}'


def rss_mib(bridge: Bridge) -> float:
    assert bridge.proc is not None
    for line in Path(f"/proc/{bridge.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def local_samples(data_dir: Path, metric: str) -> dict:
    store = Store.open(data_dir)
    try:
        m = Matcher("__name__", MatchType.EQUAL, metric)
        return {
            s.labels: list(zip(s.timestamps.tolist(), s.values.tolist()))
            for s in store.select([m], 0, 2**62)
        }
    finally:
        store.close()


def crash_loop(work: Path, cycles: int) -> None:
    print(f"== crash loop: {cycles} x kill -9 during ingest + forwarding", flush=True)
    prom = Prometheus(work / "prom")
    proxy = FaultProxy(prom.write_url)
    bridge = Bridge(work / "bridge", [proxy.url], max_backoff="500ms").start()
    pusher = Pusher(bridge.url, metric="crash_bench", series=20, interval_s=0.02).start()
    rng = random.Random(100)
    resent = 0.0
    started = time.monotonic()
    try:
        for i in range(cycles):
            time.sleep(rng.uniform(0.1, 0.8))
            with contextlib.suppress(OSError, AssertionError):
                resent += bridge.metric(
                    f"bridge_forward_samples_resent_after_restart_total{{{T}}}"
                )
            bridge.kill9()
            bridge.start()
            if (i + 1) % 20 == 0:
                print(f"  {i + 1} cycles, {pusher.acked * 20} samples acked", flush=True)
        pusher.stop()
        wait_until(
            lambda: bridge.metric(f"bridge_forward_samples_pending{{{T}}}", -1) == 0,
            60,
            "catch-up",
        )
        time.sleep(0.5)
        resent += bridge.metric(f"bridge_forward_samples_resent_after_restart_total{{{T}}}")
    finally:
        pusher.stop()
        bridge.stop()
        proxy.close()
    elapsed = time.monotonic() - started
    expected = pusher.expected()
    local = local_samples(bridge.data_dir, "crash_bench")
    acked, missing_local = compare(expected, local)
    remote = prom.samples("crash_bench", pusher.timestamp(pusher.acked) + 1)
    _, missing_up = compare(expected, remote)
    prom.stop()
    print(
        f"  {cycles} cycles in {elapsed:.0f}s: acked {acked}, present locally "
        f"{sum(map(len, local.values()))} (missing {missing_local}), upstream "
        f"{sum(map(len, remote.values()))} (missing {missing_up}), re-sent after restarts "
        f"{resent:.0f}",
        flush=True,
    )


def pid_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def prom_metric(prom: Prometheus, name: str) -> float:
    from forward_support import http_get, parse_metrics

    status, body = http_get(prom.url, "/metrics")
    if status != 200:
        return float("nan")
    return sum(v for k, v in parse_metrics(body.decode()).items() if k.split("{")[0] == name)


class VMAgent:
    """vmagent on a free loopback port: remote-write in at ``/api/v1/write``, out to
    ``upstream``, buffering on disk in its own directory while the upstream is away."""

    def __init__(self, workdir: Path, upstream: str) -> None:
        assert VMAGENT is not None
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = workdir / "vmagent.log"
        self.proc = subprocess.Popen(
            [
                VMAGENT,
                f"-httpListenAddr=127.0.0.1:{port}",
                f"-remoteWrite.url={upstream}",
                f"-remoteWrite.tmpDataPath={workdir / 'queue'}",
                "-remoteWrite.flushInterval=1s",
                # One sender: with several, a drained backlog races fresh samples, and
                # Prometheus rejects the older ones as out of order (vmagent drops on 4xx).
                "-remoteWrite.queues=1",
                "-loggerLevel=ERROR",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(log, "wb"),  # noqa: SIM115
        )
        wait_ready(self.url, self.proc, log=log, timeout=60)

    def stop(self) -> None:
        stop_process(self.proc, 30)


def upstream_count(prom: Prometheus, metric: str) -> float:
    """Samples of ``metric`` the upstream holds (last hour)."""
    from forward_support import http_get

    q = urllib.parse.urlencode(
        {"query": f"sum(count_over_time({metric}[1h]))", "time": f"{time.time():.3f}"}
    )
    status, body = http_get(prom.url, f"/api/v1/query?{q}")
    if status != 200:
        return float("nan")
    result = json.loads(body)["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def outage(work: Path, seconds: float, series: int, interval: float) -> None:
    """The bridge and, side by side on the same stream, Prometheus as a relay (its remote-write
    receiver feeding its own remote_write queue), each behind its own fault proxy."""
    rate = series / interval
    print(
        f"== outage: {seconds:.0f}s upstream refused at {rate:.0f} samples/s "
        f"({series} series every {interval}s); bridge and Prometheus relay side by side",
        flush=True,
    )
    upstream = Prometheus(work / "upstream")
    proxy = FaultProxy(upstream.write_url)
    proxy_rel = FaultProxy(upstream.write_url)
    relay = Prometheus(
        work / "relay",
        "remote_write:\n"
        f"  - url: {proxy_rel.url}\n"
        "    queue_config:\n      min_backoff: 30ms\n      max_backoff: 5s\n"
        "      batch_send_deadline: 1s\n",
    )
    proxy_vma = FaultProxy(upstream.write_url)
    vma = VMAgent(work / "vmagent", proxy_vma.url) if VMAGENT else None
    if vma is None:
        print("  SKIP vmagent: not installed (apt-get install victoria-metrics ships it)")
    fwd = Bridge(work / "fwd", [proxy.url]).start()
    ctl = Bridge(work / "ctl").start()
    start_ms = int(time.time() * 1000)
    p_fwd = Pusher(fwd.url, "outage_bench", series, interval, start_ms).start()
    p_ctl = Pusher(ctl.url, "outage_bench", series, interval, start_ms).start()
    p_rel = Pusher(relay.url, "relay_bench", series, interval, start_ms).start()
    p_vma = Pusher(vma.url if vma else relay.url, "vmagent_bench", series, interval, start_ms)
    if vma:
        p_vma.start()
    vma_rss = (lambda: pid_rss_mib(vma.proc.pid)) if vma else (lambda: float("nan"))
    rel_sent = "prometheus_remote_storage_samples_total"
    try:
        time.sleep(5)
        proxy.refuse()
        proxy_rel.refuse()
        proxy_vma.refuse()
        time.sleep(2)
        rss0 = (rss_mib(fwd), rss_mib(ctl), pid_rss_mib(relay.proc.pid), vma_rss())
        t0, acked0 = time.monotonic(), p_fwd.acked
        time.sleep(max(0.0, seconds - 2))
        rss1 = (rss_mib(fwd), rss_mib(ctl), pid_rss_mib(relay.proc.pid), vma_rss())
        load_outage = os.getloadavg()[0]
        ingest_rate = (p_fwd.acked - acked0) * series / (time.monotonic() - t0)
        backlog = fwd.metric(f"bridge_forward_samples_pending{{{T}}}")
        sent0 = fwd.metric(f"bridge_forward_samples_sent_total{{{T}}}")
        print(
            f"  RSS at outage start: forwarding bridge {rss0[0]:.1f} MiB, control "
            f"{rss0[1]:.1f} MiB (difference {rss0[0] - rss0[1]:+.1f} MiB); Prometheus relay "
            f"{rss0[2]:.1f} MiB\n"
            f"  RSS at outage end:   forwarding bridge {rss1[0]:.1f} MiB, control "
            f"{rss1[1]:.1f} MiB (difference {rss1[0] - rss1[1]:+.1f} MiB); Prometheus relay "
            f"{rss1[2]:.1f} MiB\n"
            f"  growth over the outage: bridge {rss1[0] - rss0[0]:+.1f} MiB (control "
            f"{rss1[1] - rss0[1]:+.1f}), Prometheus relay {rss1[2] - rss0[2]:+.1f} MiB, "
            f"vmagent {rss1[3] - rss0[3]:+.1f} MiB (vmagent RSS {rss0[3]:.1f} -> "
            f"{rss1[3]:.1f} MiB); load average {load_outage:.2f}\n"
            f"  RSS at outage end, bridge / Prometheus relay "
            f"{ratio(rss1[0], rss1[2])}, bridge / vmagent {ratio(rss1[0], rss1[3])}\n"
            f"  backlog {backlog:.0f} samples, lag "
            f"{fwd.metric(f'bridge_forward_lag_seconds{{{T}}}'):.0f}s",
            flush=True,
        )
        rel0 = prom_metric(relay, rel_sent)
        proxy.accept()
        proxy_rel.accept()
        proxy_vma.accept()
        back = time.monotonic()
        sent = f"bridge_forward_samples_sent_total{{{T}}}"
        wait_until(lambda: fwd.metric(sent) > sent0, 60, "the first delivery")
        first = time.monotonic()
        sent1 = fwd.metric(sent)
        wait_until(
            lambda: fwd.metric(f"bridge_forward_samples_pending{{{T}}}") < series * 2,
            600,
            "the backlog to drain",
        )
        done = time.monotonic()
        delivered = fwd.metric(sent) - sent1
        rate_now = delivered / (done - first)
        print(
            f"  bridge catch-up: first delivery {first - back:.1f}s after the upstream returned "
            f"(the backoff sleep, max 5s); then {delivered:.0f} samples in {done - first:.2f}s "
            f"= {rate_now:.0f}/s = {rate_now / ingest_rate:.1f}x the ingest rate "
            f"({ingest_rate:.0f}/s, ingest continuing); whole drain {done - back:.1f}s",
            flush=True,
        )
        # Prometheus: drained when its sent counter has covered everything pushed to it.
        want = p_rel.acked * series
        deadline = time.monotonic() + 300
        while prom_metric(relay, rel_sent) < want and time.monotonic() < deadline:
            time.sleep(0.2)
        rel_done = time.monotonic()
        rel_delivered = prom_metric(relay, rel_sent) - rel0
        print(
            f"  Prometheus relay catch-up: {rel_delivered:.0f} samples sent in "
            f"{rel_done - back:.1f}s after the upstream returned (whole drain; bridge "
            f"{done - back:.1f}s = {ratio(done - back, rel_done - back)} of it)",
            flush=True,
        )
        if vma:
            # vmagent: drained once the upstream holds everything acknowledged to it.
            want_vma = p_vma.acked * series
            deadline = time.monotonic() + 300
            while upstream_count(upstream, "vmagent_bench") < want_vma:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            vma_done = time.monotonic()
            print(
                f"  vmagent catch-up: {want_vma} acknowledged samples upstream "
                f"{vma_done - back:.1f}s after the upstream returned (bridge "
                f"{done - back:.1f}s = {ratio(done - back, vma_done - back)} of it); "
                f"load average {os.getloadavg()[0]:.2f}",
                flush=True,
            )
        p_fwd.stop()
        p_ctl.stop()
        p_rel.stop()
        if vma:
            p_vma.stop()
        wait_until(
            lambda: fwd.metric(f"bridge_forward_samples_pending{{{T}}}") == 0, 60, "the tail"
        )
        time.sleep(3)  # the relay's batch_send_deadline
        metrics = fwd.metrics()
    finally:
        p_fwd.stop()
        p_ctl.stop()
        p_rel.stop()
        if vma:
            p_vma.stop()
        fwd.stop()
        ctl.stop()
        proxy.close()
        proxy_rel.close()
        relay.stop()
    time.sleep(2)  # vmagent's flush interval, for the tail it got after the drain
    if vma:
        vma.stop()
    proxy_vma.close()
    remote = upstream.samples("outage_bench", p_fwd.timestamp(p_fwd.acked) + 1)
    acked, missing = compare(p_fwd.expected(), remote)
    rel_remote = upstream.samples("relay_bench", p_rel.timestamp(p_rel.acked) + 1)
    rel_expected = {
        tuple((n, v if n != "__name__" else "relay_bench") for n, v in lb): s
        for lb, s in p_rel.expected().items()
    }
    rel_acked, rel_missing = compare(rel_expected, rel_remote)
    vma_line = "  vmagent: skipped"
    if vma:
        vma_remote = upstream.samples("vmagent_bench", p_vma.timestamp(p_vma.acked) + 1)
        vma_acked, vma_missing = compare(p_vma.expected(), vma_remote)
        vma_line = (
            f"  vmagent: acked {vma_acked}, received upstream "
            f"{sum(map(len, vma_remote.values()))} (missing {vma_missing})"
        )
    upstream.stop()
    print(
        f"  bridge: sent {metrics[f'bridge_forward_samples_sent_total{{{T}}}']:.0f}, acked "
        f"{acked}, received upstream {sum(map(len, remote.values()))} (missing {missing}), "
        f"dropped {metrics.get(DROPPED, 0):.0f}\n"
        f"  Prometheus relay: acked {rel_acked}, received upstream "
        f"{sum(map(len, rel_remote.values()))} (missing {rel_missing})\n{vma_line}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--crash-cycles", type=int, default=100)
    ap.add_argument("--outage-seconds", type=float, default=120)
    ap.add_argument("--series", type=int, default=100)
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--skip-crash", action="store_true")
    ap.add_argument("--skip-outage", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-forward-") as tmp:
        work = Path(tmp)
        if not args.skip_crash:
            crash_loop(work / "crash", args.crash_cycles)
        if not args.skip_outage:
            outage(work / "outage", args.outage_seconds, args.series, args.interval)


if __name__ == "__main__":
    main()
