"""Built-in collection: the exposition parser, host metrics from /proc, and the job runner
writing through the real store (labels, up, staleness markers)."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from grafana_agent_bridge.collect import SELF_JOB, build_jobs, describe
from grafana_agent_bridge.collect.exposition import ExpositionError, parse
from grafana_agent_bridge.collect.families import Collected
from grafana_agent_bridge.collect.host import HostCollector
from grafana_agent_bridge.collect.runner import Job, JobRunner
from grafana_agent_bridge.collect.scrape import ScrapeCollector, ScrapeError
from grafana_agent_bridge.collect.selfmetrics import SelfCollector
from grafana_agent_bridge.config import BridgeConfig
from grafana_agent_bridge.labels import Matcher, MatchType
from grafana_agent_bridge.metrics import Registry
from grafana_agent_bridge.storage import is_stale_nan
from grafana_agent_bridge.store import Store

PAGE = (
    r"""# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# A normal comment.
"""
    + (
        r'msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",'
        r'error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9'
    )
    + r"""
metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf
negative{} -Inf
not_a_number NaN
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5",} 4773
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
empty_label{a="",b="x"} 1
"""
)


def test_exposition_parser_reads_the_format_examples() -> None:
    out = parse(PAGE)
    samples = {(n, lb): v for n, lb, v in out.samples}
    assert samples[("http_requests_total", (("code", "200"), ("method", "post")))] == 1027
    key = (
        "msdos_file_access_time_seconds",
        (("error", 'Cannot find file:\n"FILE.TXT"'), ("path", "C:\\DIR\\FILE.TXT")),
    )
    assert samples[key] == 1.458255915e9
    assert samples[("something_weird", (("problem", "division by zero"),))] == math.inf
    assert samples[("negative", ())] == -math.inf
    assert math.isnan(samples[("not_a_number", ())])
    assert samples[("rpc_duration_seconds", (("quantile", "0.5"),))] == 4773
    assert samples[("empty_label", (("b", "x"),))] == 1  # empty value = label absent
    assert out.metadata["http_requests_total"].type == "counter"
    assert out.metadata["http_requests_total"].help == "The total number of HTTP requests."
    assert out.metadata["rpc_duration_seconds"].type == "summary"
    assert out.timestamps == {0: 1395066363000, 1: 1395066363000}


@pytest.mark.parametrize(
    "line",
    ['m{a="1" 1', "m 1 2 3", "m{a=1} 1", "m abc", "0m 1", 'm{a="x",a="y"} 1', "# TYPE m bogus"],
)
def test_malformed_pages_fail_whole(line: str) -> None:
    with pytest.raises(ExpositionError, match="line 2"):
        parse(f"ok 1\n{line}\n")


def test_host_metrics_from_this_machine() -> None:
    out = HostCollector().collect()
    names = {n for n, _, _ in out.samples}
    for required in (
        "node_cpu_seconds_total",
        "node_memory_MemTotal_bytes",
        "node_memory_MemAvailable_bytes",
        "node_load1",
        "node_load5",
        "node_load15",
        "node_filesystem_size_bytes",
        "node_filesystem_avail_bytes",
        "node_network_receive_bytes_total",
        "node_network_transmit_bytes_total",
        "node_uname_info",
    ):
        assert required in names, required
    cpu = [dict(lb) for n, lb, _ in out.samples if n == "node_cpu_seconds_total"]
    assert {c["mode"] for c in cpu} >= {"user", "system", "idle", "iowait"}
    assert len({c["cpu"] for c in cpu}) == os.cpu_count()
    mem = {n: v for n, _, v in out.samples if n.startswith("node_memory_")}
    assert 0 < mem["node_memory_MemAvailable_bytes"] <= mem["node_memory_MemTotal_bytes"]
    fs = [dict(lb) for n, lb, _ in out.samples if n == "node_filesystem_size_bytes"]
    assert all(set(f) == {"device", "fstype", "mountpoint"} for f in fs)
    devices = {dict(lb)["device"] for n, lb, _ in out.samples if n.startswith("node_network_")}
    assert "lo" in devices
    assert out.metadata["node_cpu_seconds_total"].type == "counter"


def test_host_metrics_values_from_known_files(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "self").mkdir()
    hz = os.sysconf("SC_CLK_TCK")
    (proc / "stat").write_text(
        f"cpu  {hz * 3} 0 0 0 0 0 0 0 0 0\n"
        f"cpu0 {hz * 1} {hz * 2} {hz * 3} {hz * 4} 5 6 7 8 0 0\n"
        "btime 1700000000\n"
    )
    (proc / "meminfo").write_text(
        "MemTotal:       1000 kB\nMemAvailable:    250 kB\nActive(anon):     10 kB\n"
        "HugePages_Total:       0\n"
    )
    (proc / "loadavg").write_text("0.50 0.25 0.125 1/100 12345\n")
    (proc / "net" / "dev").write_text(
        "Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n"
        "  eth0: 100 2 0 0 0 0 0 0 300 4 0 0 0 0 0 0\n"
    )
    (proc / "self" / "mounts").write_text(
        f"/dev/x {tmp_path} ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n"
    )
    (proc / "diskstats").write_text(
        " 253       0 vda 10 0 20 30 40 0 50 60 0 70 80 0 0 0 0\n"
        " 253       1 vda1 1 0 2 3 4 0 5 6 0 7 8 0 0 0 0\n"
        "   7       0 loop0 1 0 2 3 4 0 5 6 0 7 8 0 0 0 0\n"
    )
    out = HostCollector(proc=str(proc)).collect()
    got = {(n, lb): v for n, lb, v in out.samples}
    assert got[("node_disk_read_bytes_total", (("device", "vda"),))] == 20 * 512
    assert got[("node_disk_writes_completed_total", (("device", "vda"),))] == 40
    assert got[("node_disk_io_time_seconds_total", (("device", "vda"),))] == 0.07
    disks = {dict(lb)["device"] for n, lb, _ in out.samples if n.startswith("node_disk_")}
    assert disks == {"vda"}  # partitions and loop devices excluded, as node_exporter does
    assert got[("node_cpu_seconds_total", (("cpu", "0"), ("mode", "user")))] == 1
    assert got[("node_cpu_seconds_total", (("cpu", "0"), ("mode", "idle")))] == 4
    assert got[("node_memory_MemTotal_bytes", ())] == 1024_000
    assert got[("node_memory_Active_anon_bytes", ())] == 10240
    assert got[("node_memory_HugePages_Total", ())] == 0
    assert got[("node_load15", ())] == 0.125
    assert got[("node_network_transmit_bytes_total", (("device", "eth0"),))] == 300
    assert got[("node_boot_time_seconds", ())] == 1_700_000_000
    mounts = {
        dict(lb)["mountpoint"] for n, lb, _ in out.samples if n.startswith("node_filesystem")
    }
    assert mounts == {str(tmp_path)}  # proc is excluded, as node_exporter does


def test_host_collector_measures_the_hosts_mounts_under_rootfs(tmp_path: Path) -> None:
    # As inside a strict snap: the host's mount table is PID 1's, its root is under rootfs,
    # and the labels name the host's own mountpoints.
    proc, hostfs = tmp_path / "proc", tmp_path / "hostfs"
    (proc / "1").mkdir(parents=True)
    (hostfs / "srv").mkdir(parents=True)
    (proc / "1" / "mounts").write_text("/dev/sda1 / ext4 rw 0 0\n/dev/sdb1 /srv xfs ro 0 0\n")
    (proc / "self").mkdir()
    (proc / "self" / "mounts").write_text("/dev/loop9 /snap/core24/1 squashfs ro 0 0\n")
    out = HostCollector(proc=str(proc), rootfs=str(hostfs)).collect()
    sizes = {
        dict(lb)["mountpoint"]: v for n, lb, v in out.samples if n == "node_filesystem_size_bytes"
    }
    assert set(sizes) == {"/", "/srv"}
    st = os.statvfs(hostfs / "srv")
    assert sizes["/srv"] == st.f_blocks * st.f_frsize
    readonly = {
        dict(lb)["mountpoint"]: v for n, lb, v in out.samples if n == "node_filesystem_readonly"
    }
    assert readonly == {"/": 0.0, "/srv": 1.0}


def test_host_collector_skips_what_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "loadavg").write_text("1 2 3 1/1 1\n")
    empty = str(tmp_path / "nothing")
    out = HostCollector(proc=str(tmp_path), sys=empty, rootfs=empty).collect()
    not_from_files = {  # system calls and the clock, which need no /proc
        n for n, _, _ in out.samples if n.startswith(("node_timex_", "node_time_"))
    }
    assert {n for n, _, _ in out.samples} - not_from_files == {
        "node_load1",
        "node_load5",
        "node_load15",
        "node_uname_info",  # from uname(2), not /proc
        "node_scrape_collector_duration_seconds",
        "node_scrape_collector_success",
    }
    success = {
        dict(lb)["collector"]: v for n, lb, v in out.samples if n == "node_scrape_collector_success"
    }
    assert success["loadavg"] == 1.0 and success["uname"] == 1.0
    assert success["meminfo"] == 0.0 and success["netclass"] == 0.0 and success["os"] == 0.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "data")
    yield s
    s.close()


def _values(store: Store, name: str) -> dict[tuple, list[float]]:
    got = store.select([Matcher("__name__", MatchType.EQUAL, name)], 0, 10**13)
    return {s.labels: s.values.tolist() for s in got}


def test_runner_labels_up_and_staleness(store: Store) -> None:
    pages = [Collected(), Collected()]
    pages[0].add("a", 1.0, job="inner", x="1")
    pages[0].add("b", 2.0)
    pages[1].add("a", 3.0, job="inner", x="1")
    calls = iter(pages)
    runner = JobRunner(Job("svc", "host:1", lambda: next(calls), 1.0), store, threading.Event())
    runner.run_once(now_ms=1_000)
    runner.run_once(now_ms=2_000)
    a = _values(store, "a")
    assert a == {
        (
            ("__name__", "a"),
            ("exported_job", "inner"),
            ("instance", "host:1"),
            ("job", "svc"),
            ("x", "1"),
        ): [1.0, 3.0]
    }
    (b,) = _values(store, "b").values()
    assert b[0] == 2.0 and is_stale_nan(b[1])  # gone in the second collection: stale marker
    assert list(_values(store, "up").values()) == [[1.0, 1.0]]
    assert list(_values(store, "scrape_samples_scraped").values()) == [[2.0, 1.0]]
    assert store.metadata()["up"][0].type == "gauge"


def test_failed_collection_is_up_zero(store: Store) -> None:
    def broken() -> Collected:
        raise ScrapeError("connection refused")

    JobRunner(Job("svc", "h:1", broken, 1.0), store, threading.Event()).run_once(now_ms=5)
    assert list(_values(store, "up").values()) == [[0.0]]


def test_scrape_target(store: Store) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/metrics":
                self.send_error(404)
                return
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        out = ScrapeCollector(f"http://127.0.0.1:{port}/metrics", 5).collect()
        assert len(out.samples) == 11
        with pytest.raises(ScrapeError, match="404"):
            ScrapeCollector(f"http://127.0.0.1:{port}/nope", 5).collect()
        config = BridgeConfig().with_overrides(
            {
                "collect.host": False,
                "collect.scrape": [{"job_name": "app", "url": f"http://127.0.0.1:{port}/metrics"}],
            }
        )
        jobs = build_jobs(config.collect, Registry(), "me:9099")
        assert [(j.job, j.instance) for j in jobs] == [
            (SELF_JOB, "me:9099"),
            ("app", f"127.0.0.1:{port}"),
        ]
        JobRunner(jobs[1], store, threading.Event()).run_once(now_ms=1000)
        (labels,) = _values(store, "metric_without_timestamp_and_labels")
        assert dict(labels)["job"] == "app" and dict(labels)["instance"] == f"127.0.0.1:{port}"
        stamped = store.select(
            [Matcher("__name__", MatchType.EQUAL, "http_requests_total")], 0, 10**13
        )
        assert {int(s.timestamps[0]) for s in stamped} == {1395066363000}  # honoured
        plain = store.select([Matcher("__name__", MatchType.EQUAL, "negative")], 0, 10**13)
        assert [int(s.timestamps[0]) for s in plain] == [1000]  # the scrape's time
        assert "scrape target" in describe(config.collect)
    finally:
        server.shutdown()
        server.server_close()


def test_self_metrics_include_histogram_buckets() -> None:
    reg = Registry()
    reg.counter("c_total", "c", ("k",)).inc(2, "v")
    reg.histogram("h_seconds", "h", buckets=(0.1, 1)).observe(0.5)
    out = SelfCollector(reg).collect()
    got = {(n, lb): v for n, lb, v in out.samples}
    assert got[("c_total", (("k", "v"),))] == 2
    assert got[("h_seconds_bucket", (("le", "0.1"),))] == 0
    assert got[("h_seconds_bucket", (("le", "1"),))] == 1
    assert got[("h_seconds_bucket", (("le", "+Inf"),))] == 1
    assert got[("h_seconds_count", ())] == 1
    assert out.metadata["h_seconds"].type == "histogram"


def test_describe_says_what_is_off() -> None:
    config = BridgeConfig().with_overrides({"collect.host": False, "collect.self": False})
    assert "nothing" in describe(config.collect)
    assert "CPU" in describe(BridgeConfig().collect)
