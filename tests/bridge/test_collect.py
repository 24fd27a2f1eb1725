"""Built-in collection: the exposition parser, host metrics from /proc, and the job runner
writing through the real store (labels, up, staleness markers)."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from grafana_agent_bridge.collect import (
    SELF_JOB,
    build_jobs,
    cpu,
    describe,
    hardware,
    hostfs,
    hwmon,
    kernel,
    memory,
    netstat,
    network,
    osrelease,
    processes,
    storage,
    timex,
)
from grafana_agent_bridge.collect.exposition import ExpositionError, parse
from grafana_agent_bridge.collect.families import Collected
from grafana_agent_bridge.collect.host import HostCollector
from grafana_agent_bridge.collect.hostfs import HostPaths, Part
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
        dict(lb)["collector"]: v
        for n, lb, v in out.samples
        if n == "node_scrape_collector_success"
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

        def log_message(self, format: str, *args: object) -> None:
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


# --- node_exporter families, each on fixture files laid out as /proc, /sys and a root ---


def _tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _run(part: Part, src: HostPaths) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = Collected()
    part(src, out)
    for name, _, _ in out.samples:  # every sample belongs to a declared family
        assert name in out.metadata, name
    return {(n, frozenset(lb)): v for n, lb, v in out.samples}


def _key(name: str, /, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_stat_counters_and_guest_time(tmp_path: Path) -> None:
    hz = 100
    proc = _tree(
        tmp_path,
        {
            "stat": "cpu  1 2 3 4 5 6 7 8 9 10\n"
            "cpu0 100 200 300 400 500 600 700 800 900 1000\n"
            "intr 123456 10 20 0 0\nctxt 98765\nbtime 1700000000\nprocesses 4321\n"
            "procs_running 3\nprocs_blocked 1\nsoftirq 5 1 1 1 1 1\n"
        },
    )
    src = HostPaths(proc=proc, user_hz=hz)
    got = _run(cpu.collect_stat, src)
    assert got == {
        _key("node_intr_total"): 123456,
        _key("node_context_switches_total"): 98765,
        _key("node_boot_time_seconds"): 1_700_000_000,
        _key("node_forks_total"): 4321,
        _key("node_procs_running"): 3,
        _key("node_procs_blocked"): 1,
    }
    cpus = _run(cpu.collect_cpu, src)
    assert cpus[_key("node_cpu_seconds_total", cpu="0", mode="steal")] == 8.0
    assert cpus[_key("node_cpu_guest_seconds_total", cpu="0", mode="user")] == 9.0
    assert cpus[_key("node_cpu_guest_seconds_total", cpu="0", mode="nice")] == 10.0


def test_vmstat_default_fields_only(tmp_path: Path) -> None:
    proc = _tree(
        tmp_path,
        {
            "vmstat": "nr_free_pages 100\npgpgin 11\npgpgout 12\npswpin 13\npswpout 14\n"
            "pgfault 15\npgmajfault 16\noom_kill 17\nnr_dirty 18\n"
        },
    )
    out = Collected()
    memory.collect_vmstat(HostPaths(proc=proc), out)
    got = {n: v for n, _, v in out.samples}
    assert got == {
        "node_vmstat_pgpgin": 11,
        "node_vmstat_pgpgout": 12,
        "node_vmstat_pswpin": 13,
        "node_vmstat_pswpout": 14,
        "node_vmstat_pgfault": 15,
        "node_vmstat_pgmajfault": 16,
        "node_vmstat_oom_kill": 17,
    }
    assert out.metadata["node_vmstat_pgfault"].type == "unknown"  # untyped, as node_exporter


def test_netstat_merges_netstat_snmp_and_snmp6_with_default_fields(tmp_path: Path) -> None:
    proc = _tree(
        tmp_path,
        {
            "net/netstat": "TcpExt: SyncookiesSent ListenDrops TCPTimeouts PruneCalled\n"
            "TcpExt: 1 2 3 4\nIpExt: InOctets OutOctets InNoRoutes\nIpExt: 500 600 7\n",
            "net/snmp": "Ip: Forwarding DefaultTTL InReceives\nIp: 1 64 1000\n"
            "Tcp: RtoAlgorithm ActiveOpens CurrEstab InErrs MaxConn\nTcp: 1 20 5 2 -1\n"
            "Udp: InDatagrams NoPorts InErrors IgnoredMulti\nUdp: 30 4 1 9\n",
            "net/snmp6": "Ip6InReceives                   \t10\nIp6InOctets\t2000\n"
            "Udp6InDatagrams\t40\nIcmp6OutMsgs\t8\n",
        },
    )
    out = Collected()
    netstat.collect_netstat(HostPaths(proc=proc), out)
    got = {n[len("node_netstat_") :]: v for n, _, v in out.samples}
    assert got == {
        "TcpExt_SyncookiesSent": 1,
        "TcpExt_ListenDrops": 2,
        "TcpExt_TCPTimeouts": 3,
        "IpExt_InOctets": 500,
        "IpExt_OutOctets": 600,
        "Ip_Forwarding": 1,
        "Tcp_ActiveOpens": 20,
        "Tcp_CurrEstab": 5,
        "Tcp_InErrs": 2,
        "Udp_InDatagrams": 30,
        "Udp_NoPorts": 4,
        "Udp_InErrors": 1,
        "Ip6_InOctets": 2000,
        "Udp6_InDatagrams": 40,
        "Icmp6_OutMsgs": 8,
    }
    assert out.metadata["node_netstat_Tcp_InErrs"].help == "Statistic TcpInErrs."


def test_sockstat_names_and_mem_bytes(tmp_path: Path) -> None:
    proc = _tree(
        tmp_path,
        {
            "net/sockstat": "sockets: used 24\nTCP: inuse 8 orphan 1 tw 164 alloc 9 mem 3\n"
            "UDP: inuse 2 mem 5\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n",
            "net/sockstat6": "TCP6: inuse 4\nUDP6: inuse 1\n",
        },
    )
    got = _run(netstat.collect_sockstat, HostPaths(proc=proc, page_size=4096))
    assert got[_key("node_sockstat_sockets_used")] == 24
    assert got[_key("node_sockstat_TCP_tw")] == 164
    assert got[_key("node_sockstat_TCP_mem")] == 3
    assert got[_key("node_sockstat_TCP_mem_bytes")] == 3 * 4096
    assert got[_key("node_sockstat_UDP_mem_bytes")] == 5 * 4096
    assert got[_key("node_sockstat_FRAG_memory")] == 0
    assert got[_key("node_sockstat_TCP6_inuse")] == 4
    assert _key("node_sockstat_FRAG_mem_bytes") not in got  # "memory" is bytes already


def test_pressure_in_seconds_and_irq_optional(tmp_path: Path) -> None:
    line = "some avg10=0.00 avg60=0.00 avg300=0.00 total={}\n"
    full = "full avg10=0.00 avg60=0.00 avg300=0.00 total={}\n"
    proc = _tree(
        tmp_path,
        {
            "pressure/cpu": line.format(1_500_000) + full.format(0),
            "pressure/io": line.format(2_000_000) + full.format(250_000),
            "pressure/memory": line.format(3) + full.format(1),
        },
    )
    got = _run(cpu.collect_pressure, HostPaths(proc=proc))
    assert got == {
        _key("node_pressure_cpu_waiting_seconds_total"): 1.5,
        _key("node_pressure_io_waiting_seconds_total"): 2.0,
        _key("node_pressure_io_stalled_seconds_total"): 0.25,
        _key("node_pressure_memory_waiting_seconds_total"): 3e-6,
        _key("node_pressure_memory_stalled_seconds_total"): 1e-6,
    }
    _tree(tmp_path, {"pressure/irq": full.format(4_000_000)})
    got = _run(cpu.collect_pressure, HostPaths(proc=proc))
    assert got[_key("node_pressure_irq_stalled_seconds_total")] == 4.0
    with pytest.raises(FileNotFoundError):
        _run(cpu.collect_pressure, HostPaths(proc=tmp_path / "none"))


def test_filefd_entropy_and_hung_tasks(tmp_path: Path) -> None:
    proc = _tree(
        tmp_path,
        {
            "sys/fs/file-nr": "1250\t0\t2466290\n",
            "sys/kernel/random/entropy_avail": "256\n",
            "sys/kernel/random/poolsize": "256\n",
            "sys/kernel/hung_task_detect_count": "2\n",
        },
    )
    src = HostPaths(proc=proc)
    assert _run(kernel.collect_filefd, src) == {
        _key("node_filefd_allocated"): 1250,
        _key("node_filefd_maximum"): 2466290,
    }
    assert _run(kernel.collect_entropy, src) == {
        _key("node_entropy_available_bits"): 256,
        _key("node_entropy_pool_size_bits"): 256,
    }
    assert _run(kernel.collect_kernel_hung, src) == {_key("node_kernel_hung_tasks_total"): 2}


def test_softnet_cpu_index_from_the_kernel_or_the_row(tmp_path: Path) -> None:
    new = "00000010 00000001 00000002 0 0 0 0 0 00000003 00000004 00000005 00000006 00000007\n"
    old = "00000020 00000000 00000000 0 0 0 0 0 00000000 00000009\n"
    proc = _tree(tmp_path, {"net/softnet_stat": new})
    got = _run(netstat.collect_softnet, HostPaths(proc=proc))
    assert got[_key("node_softnet_processed_total", cpu="7")] == 16
    assert got[_key("node_softnet_times_squeezed_total", cpu="7")] == 2
    assert got[_key("node_softnet_flow_limit_count_total", cpu="7")] == 5
    assert got[_key("node_softnet_backlog_len", cpu="7")] == 6
    _tree(tmp_path, {"net/softnet_stat": old + old})
    got = _run(netstat.collect_softnet, HostPaths(proc=proc))
    assert got[_key("node_softnet_processed_total", cpu="1")] == 32
    assert got[_key("node_softnet_received_rps_total", cpu="1")] == 9
    assert got[_key("node_softnet_flow_limit_count_total", cpu="1")] == 0  # older kernel


TCP_TABLE = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
    "   0: 0100007F:B06B 00000000:0000 0A 00000000:00000002 00:00000000 00000000 0\n"
    "   1: 0100007F:B06B 0100007F:C000 01 00000010:00000000 00:00000000 00000000 0\n"
    "   2: 0100007F:B06B 0100007F:C001 06 00000000:00000000 00:00000000 00000000 0\n"
)


def test_udp_queues_tcp_states_and_arp(tmp_path: Path) -> None:
    udp = (
        "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt\n"
        "  1: 00000000:0044 00000000:0000 07 00000100:00000200 00:00000000 00000000\n"
        "  2: 00000000:0045 00000000:0000 07 00000001:00000002 00:00000000 00000000\n"
    )
    proc = _tree(
        tmp_path,
        {
            "net/udp": udp,
            "net/tcp": TCP_TABLE,
            "net/tcp6": TCP_TABLE.splitlines(keepends=True)[0] + TCP_TABLE.splitlines()[2] + "\n",
            "net/arp": "IP address HW type Flags HW address Mask Device\n"
            "192.0.2.1 0x1 0x2 02:fc:00:00:00:05 * eth0\n"
            "192.0.2.2 0x1 0x2 02:fc:00:00:00:06 * eth0\n"
            "10.0.0.1 0x1 0x2 02:fc:00:00:00:07 * br0\n",
        },
    )
    src = HostPaths(proc=proc)
    assert _run(netstat.collect_udp_queues, src) == {
        _key("node_udp_queues", queue="tx", ip="v4"): 0x101,
        _key("node_udp_queues", queue="rx", ip="v4"): 0x202,
    }
    assert _run(netstat.collect_tcpstat, src) == {
        _key("node_tcp_connection_states", state="listen"): 1,
        _key("node_tcp_connection_states", state="established"): 2,  # one v4, one v6
        _key("node_tcp_connection_states", state="time_wait"): 1,
        _key("node_tcp_connection_states", state="tx_queued_bytes"): 32,
        _key("node_tcp_connection_states", state="rx_queued_bytes"): 2,
    }
    assert _run(netstat.collect_arp, src) == {
        _key("node_arp_entries", device="eth0"): 2,
        _key("node_arp_entries", device="br0"): 1,
    }


def test_socket_tables_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostfs, "MAX_TABLE_LINES", 2)
    proc = _tree(tmp_path, {"net/tcp": TCP_TABLE})
    with pytest.raises(hostfs.TooLargeError, match="more than 2 lines"):
        _run(netstat.collect_tcpstat, HostPaths(proc=proc))


def test_conntrack_entries_limit_and_summed_stats(tmp_path: Path) -> None:
    header = "entries  clashres found new invalid ignore delete insert insert_failed drop"
    proc = _tree(
        tmp_path,
        {
            "sys/net/netfilter/nf_conntrack_count": "12\n",
            "sys/net/netfilter/nf_conntrack_max": "262144\n",
            "net/stat/nf_conntrack": f"{header} early_drop search_restart\n"
            "0000000c 0 00000001 0 00000002 0 0 00000003 0 0 0 00000010\n"
            "0000000c 0 00000001 0 00000002 0 0 00000003 0 0 0 00000001\n",
        },
    )
    got = _run(netstat.collect_conntrack, HostPaths(proc=proc))
    assert got[_key("node_nf_conntrack_entries")] == 12
    assert got[_key("node_nf_conntrack_entries_limit")] == 262144
    assert got[_key("node_nf_conntrack_stat_found")] == 2
    assert got[_key("node_nf_conntrack_stat_insert")] == 6
    assert got[_key("node_nf_conntrack_stat_search_restart")] == 17


def test_schedstat_per_cpu_seconds(tmp_path: Path) -> None:
    proc = _tree(
        tmp_path,
        {
            "schedstat": "version 15\ntimestamp 4294\n"
            "cpu0 0 0 0 0 0 0 2500000000 1000000000 42\ndomain0 3 0 0 0\n"
        },
    )
    assert _run(cpu.collect_schedstat, HostPaths(proc=proc)) == {
        _key("node_schedstat_running_seconds_total", cpu="0"): 2.5,
        _key("node_schedstat_waiting_seconds_total", cpu="0"): 1.0,
        _key("node_schedstat_timeslices_total", cpu="0"): 42,
    }


def test_processes_states_threads_and_limits(tmp_path: Path) -> None:
    def stat(pid: int, comm: str, state: str, threads: int) -> str:
        return f"{pid} ({comm}) {state} 1 " + "0 " * 15 + f"{threads} 0 0\n"

    proc = _tree(
        tmp_path,
        {
            "1/stat": stat(1, "init", "S", 1),
            "20/stat": stat(20, "a) R (b", "R", 4),  # a name with ") R (" in it
            "33/stat": stat(33, "worker", "D", 2),
            "sys/kernel/threads-max": "191000\n",
            "sys/kernel/pid_max": "4194304\n",
        },
    )
    (proc / "self").mkdir()
    assert _run(processes.collect_processes, HostPaths(proc=proc)) == {
        _key("node_processes_threads"): 7,
        _key("node_processes_max_threads"): 191000,
        _key("node_processes_pids"): 3,
        _key("node_processes_max_processes"): 4194304,
        _key("node_processes_state", state="S"): 1,
        _key("node_processes_state", state="R"): 1,
        _key("node_processes_state", state="D"): 1,
    }


def test_netclass_properties_and_info(tmp_path: Path) -> None:
    eth0 = {
        "address": "02:fc:00:00:00:01\n",
        "broadcast": "ff:ff:ff:ff:ff:ff\n",
        "duplex": "full\n",
        "operstate": "up\n",
        "ifalias": "\n",
        "flags": "0x1003\n",
        "mtu": "1400\n",
        "speed": "1000\n",
        "carrier": "1\n",
        "carrier_changes": "2\n",
        "ifindex": "2\n",
        "type": "1\n",
    }
    sys_root = _tree(
        tmp_path / "sys",
        {
            **{f"class/net/eth0/{k}": v for k, v in eth0.items()},
            "class/net/lo/operstate": "unknown\n",
            "class/net/lo/flags": "0x8\n",
            "class/net/lo/mtu": "65536\n",
            "class/net/bonding_masters": "\n",
        },
    )
    got = _run(network.collect_netclass, HostPaths(sys=sys_root))
    assert got[_key("node_network_up", device="eth0")] == 1
    assert got[_key("node_network_up", device="lo")] == 0
    assert got[_key("node_network_mtu_bytes", device="eth0")] == 1400
    assert got[_key("node_network_speed_bytes", device="eth0")] == 125_000_000
    assert got[_key("node_network_flags", device="eth0")] == 0x1003
    assert got[_key("node_network_carrier_changes_total", device="eth0")] == 2
    info = {dict(k[1])["device"]: dict(k[1]) for k in got if k[0] == "node_network_info"}
    assert info["eth0"] == {
        "device": "eth0",
        "address": "02:fc:00:00:00:01",
        "broadcast": "ff:ff:ff:ff:ff:ff",
        "duplex": "full",
        "operstate": "up",
        "adminstate": "up",
        "ifalias": "",
    }
    assert info["lo"]["adminstate"] == "down"
    assert _key("node_network_speed_bytes", device="lo") not in got  # unreadable: left out
    assert "bonding_masters" not in {dict(k[1]).get("device") for k in got}


def test_netdev_nohandler_from_sysfs(tmp_path: Path) -> None:
    proc = _tree(
        tmp_path / "proc",
        {
            "net/dev": "Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n"
            "  eth0: 100 2 0 0 0 0 0 0 300 4 0 0 0 0 0 0\n"
        },
    )
    sys_root = _tree(tmp_path / "sys", {"class/net/eth0/statistics/rx_nohandler": "7\n"})
    got = _run(network.collect_netdev, HostPaths(proc=proc, sys=sys_root))
    assert got[_key("node_network_receive_nohandler_total", device="eth0")] == 7
    assert got[_key("node_network_transmit_bytes_total", device="eth0")] == 300


def test_os_release_from_the_hosts_root(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "usr/lib/os-release": 'NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\n'
            "ID_LIKE=debian\nPRETTY_NAME='Ubuntu 24.04.1 LTS'\nVERSION=\"24.04.1 LTS (Noble)\"\n"
            "VERSION_CODENAME=noble\nSUPPORT_END=2029-05-31\n# comment\n"
        },
    )
    got = _run(osrelease.collect_os, HostPaths(rootfs=root))
    info = next(dict(k[1]) for k in got if k[0] == "node_os_info")
    assert info == {
        "build_id": "",
        "id": "ubuntu",
        "id_like": "debian",
        "image_id": "",
        "image_version": "",
        "name": "Ubuntu",
        "pretty_name": "Ubuntu 24.04.1 LTS",
        "variant": "",
        "variant_id": "",
        "version": "24.04.1 LTS (Noble)",
        "version_codename": "noble",
        "version_id": "24.04",
    }
    assert got[_key("node_os_version", id="ubuntu", id_like="debian", name="Ubuntu")] == 24.04
    assert got[_key("node_os_support_end_timestamp_seconds")] == 1_874_880_000
    _tree(tmp_path, {"etc/os-release": "ID=debian\nVERSION_ID=12\n"})  # /etc wins
    got = _run(osrelease.collect_os, HostPaths(rootfs=root))
    assert got[_key("node_os_version", id="debian", id_like="", name="")] == 12


def test_diskstats_all_columns_the_kernel_has(tmp_path: Path) -> None:
    proc = _tree(
        tmp_path,
        {
            "diskstats": " 254 0 vda 10 1 20 30 40 2 50 60 3 70 80 4 5 6 7 8 9\n"
            " 8 0 sda 10 1 20 30 40 2 50 60 3 70 80\n"
        },
    )
    got = _run(storage.collect_diskstats, HostPaths(proc=proc))
    vda = {k[0][len("node_disk_") :]: v for k, v in got.items() if dict(k[1])["device"] == "vda"}
    assert vda["reads_merged_total"] == 1 and vda["writes_merged_total"] == 2
    assert vda["io_now"] == 3
    assert vda["io_time_weighted_seconds_total"] == pytest.approx(0.08)
    assert vda["discards_completed_total"] == 4 and vda["discarded_sectors_total"] == 6
    assert vda["discard_time_seconds_total"] == pytest.approx(0.007)
    assert vda["flush_requests_total"] == 8 and vda[
        "flush_requests_time_seconds_total"
    ] == pytest.approx(0.009)
    sda = {k[0] for k in got if dict(k[1])["device"] == "sda"}
    assert "node_disk_io_time_weighted_seconds_total" in sda
    assert "node_disk_discards_completed_total" not in sda  # a kernel before 4.18


def test_filesystem_device_error_when_statfs_fails(tmp_path: Path) -> None:
    proc = _tree(
        tmp_path / "proc",
        {"self/mounts": f"/dev/x {tmp_path} ext4 rw 0 0\n/dev/y /nonexistent/m xfs ro 0 0\n"},
    )
    got = _run(storage.collect_filesystem, HostPaths(proc=proc))
    assert (
        got[
            _key(
                "node_filesystem_device_error",
                device="/dev/x",
                fstype="ext4",
                mountpoint=str(tmp_path),
            )
        ]
        == 0
    )
    failed = [k for k in got if dict(k[1]).get("mountpoint") == "/nonexistent/m"]
    assert {k[0] for k in failed} == {"node_filesystem_device_error", "node_filesystem_readonly"}
    assert all(dict(k[1])["device_error"] == "no such file or directory" for k in failed)
    assert all(got[k] == 1 for k in failed)


def test_time_zone_and_clocksources(tmp_path: Path) -> None:
    sys_root = _tree(
        tmp_path,
        {
            "devices/system/clocksource/clocksource0/available_clocksource": "kvm-clock tsc\n",
            "devices/system/clocksource/clocksource0/current_clocksource": "tsc\n",
        },
    )
    got = _run(kernel.collect_time, HostPaths(sys=sys_root))
    assert got[_key("node_time_clocksource_current_info", device="0", clocksource="tsc")] == 1
    assert _key("node_time_clocksource_available_info", device="0", clocksource="kvm-clock") in got
    zone = next(k for k in got if k[0] == "node_time_zone_offset_seconds")
    assert got[zone] == time.localtime().tm_gmtoff


def test_timex_units_and_the_live_call() -> None:
    tx = timex.Timex(
        offset=1500,
        freq=-65536 * 10,
        maxerror=16000,
        esterror=500,
        status=0x2001,
        constant=7,
        tick=10000,
        jitter=2000,
        shift=4,
        tai=37,
        calcnt=3,
    )
    values = timex.timex_values(0, tx)
    assert values["sync_status"] == 1.0
    assert values["offset_seconds"] == 1.5e-6  # STA_NANO set: nanoseconds
    assert values["frequency_adjustment_ratio"] == pytest.approx(1 - 10e-6)
    assert values["maxerror_seconds"] == 0.016
    assert values["tick_seconds"] == 0.01
    assert values["pps_jitter_seconds"] == 2e-6
    assert values["tai_offset_seconds"] == 37 and values["pps_calibration_total"] == 3
    assert timex.timex_values(5, tx)["sync_status"] == 0.0  # TIME_ERROR: unsynchronised
    got = _run(timex.collect_timex, HostPaths())
    assert got[_key("node_timex_tick_seconds")] > 0  # this kernel's real clock tick


def test_every_part_is_cheap_on_this_machine() -> None:
    # 15 s is the default interval on a small machine: all parts together stay far below it.
    collector = HostCollector()
    collector.collect()
    started = time.perf_counter()
    out = collector.collect()
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, elapsed
    success = {
        dict(lb)["collector"]
        for n, lb, v in out.samples
        if n == "node_scrape_collector_success" and v == 1
    }
    assert {
        "cpu",
        "stat",
        "meminfo",
        "vmstat",
        "netstat",
        "sockstat",
        "filefd",
        "netclass",
    } <= success


def test_hwmon_chips_sensors_and_units(tmp_path: Path) -> None:
    sys_root = tmp_path / "sys"
    chip_dir = sys_root / "devices/platform/coretemp.0/hwmon/hwmon0"
    _tree(
        chip_dir,
        {
            "name": "coretemp\n",
            "temp1_input": "45000\n",
            "temp1_crit": "100000\n",
            "temp1_crit_alarm": "0\n",
            "temp1_max": "84000\n",
            "temp1_label": "Package id 0\n",
            "uevent": "\n",
        },
    )
    (chip_dir / "device").symlink_to("../..")
    _tree(
        sys_root / "class/hwmon/hwmon1",
        {
            "name": "nct6775\n",
            "fan1_input": "1200\n",
            "fan1_min": "300\n",
            "in0_input": "1104\n",
            "update_interval": "1000\n",
            "power1_average": "12500000\n",
        },
    )
    (sys_root / "class/hwmon/hwmon0").symlink_to(chip_dir)
    got = _run(hwmon.collect_hwmon, HostPaths(sys=sys_root))
    core = {"chip": "platform_coretemp_0", "sensor": "temp1"}
    assert got[_key("node_hwmon_temp_celsius", **core)] == 45.0
    assert got[_key("node_hwmon_temp_crit_celsius", **core)] == 100.0
    assert got[_key("node_hwmon_temp_crit_alarm_celsius", **core)] == 0.0
    assert got[_key("node_hwmon_temp_max_celsius", **core)] == 84.0
    assert got[_key("node_hwmon_sensor_label", label="Package id 0", **core)] == 1
    assert (
        got[_key("node_hwmon_chip_names", chip="platform_coretemp_0", chip_name="coretemp")] == 1
    )
    nct = {"chip": "nct6775"}  # no device link: named by its name file
    assert got[_key("node_hwmon_fan_rpm", sensor="fan1", **nct)] == 1200
    assert got[_key("node_hwmon_fan_min_rpm", sensor="fan1", **nct)] == 300
    assert got[_key("node_hwmon_in_volts", sensor="in0", **nct)] == pytest.approx(1.104)
    assert got[_key("node_hwmon_update_interval_seconds", sensor="update_interval0", **nct)] == 1
    assert got[_key("node_hwmon_power_average_watt", sensor="power1", **nct)] == 12.5


def test_cpufreq_thermal_and_power_supply(tmp_path: Path) -> None:
    sys_root = _tree(
        tmp_path,
        {
            "devices/system/cpu/offline": "1\n",
            "devices/system/cpu/cpu0/cpufreq/scaling_cur_freq": "2400000\n",
            "devices/system/cpu/cpu0/cpufreq/scaling_min_freq": "800000\n",
            "devices/system/cpu/cpu0/cpufreq/scaling_max_freq": "3600000\n",
            "devices/system/cpu/cpu0/cpufreq/scaling_governor": "powersave\n",
            "devices/system/cpu/cpu0/cpufreq/scaling_available_governors": "performance powersave",
            "devices/system/cpu/cpu1/cpufreq/scaling_cur_freq": "1\n",  # offline
            "class/thermal/thermal_zone0/temp": "51000\n",
            "class/thermal/thermal_zone0/type": "x86_pkg_temp\n",
            "class/thermal/cooling_device3/cur_state": "2\n",
            "class/thermal/cooling_device3/max_state": "10\n",
            "class/thermal/cooling_device3/type": "Processor\n",
            "class/power_supply/AC/online": "1\n",
            "class/power_supply/AC/type": "Mains\n",
            "class/power_supply/BAT0/voltage_now": "12000000\n",
            "class/power_supply/BAT0/temp": "305\n",
            "class/power_supply/BAT0/status": "Charging\n",
        },
    )
    src = HostPaths(sys=sys_root)
    freq = _run(hardware.collect_cpufreq, src)
    assert freq == {
        _key("node_cpu_scaling_frequency_hertz", cpu="0"): 2.4e9,
        _key("node_cpu_scaling_frequency_min_hertz", cpu="0"): 8e8,
        _key("node_cpu_scaling_frequency_max_hertz", cpu="0"): 3.6e9,
        _key("node_cpu_scaling_governor", cpu="0", governor="performance"): 0,
        _key("node_cpu_scaling_governor", cpu="0", governor="powersave"): 1,
    }
    thermal = _run(hardware.collect_thermal_zone, src)
    assert thermal == {
        _key("node_thermal_zone_temp", zone="0", type="x86_pkg_temp"): 51.0,
        _key("node_cooling_device_cur_state", name="3", type="Processor"): 2,
        _key("node_cooling_device_max_state", name="3", type="Processor"): 10,
    }
    power = _run(hardware.collect_powersupplyclass, src)
    assert power[_key("node_power_supply_online", power_supply="AC")] == 1
    assert power[_key("node_power_supply_voltage_volt", power_supply="BAT0")] == 12.0
    assert power[_key("node_power_supply_temp_celsius", power_supply="BAT0")] == 30.5
    info = {dict(k[1])["power_supply"]: dict(k[1]) for k in power if k[0].endswith("_info")}
    assert info["AC"]["type"] == "Mains" and info["BAT0"]["status"] == "Charging"


def test_registry_readers_see_refreshed_gauges_and_survive_a_failing_refresher() -> None:
    """The self-collector and ``/metrics`` read the same registry; both get values computed at
    the read, and a refresher that fails leaves the last value rather than failing the read."""
    reg = Registry()
    g = reg.gauge("backlog", "Things not yet done.")
    calls = iter([7.0, 9.0])

    def refresh() -> None:
        g.set(next(calls))

    def broken() -> None:
        raise RuntimeError("store closed")

    reg.on_read(broken)
    reg.on_read(refresh)
    assert "backlog 7\n" in reg.expose()
    assert [m.name for m in reg.metrics()] == ["backlog"]
    assert g.get() == 9.0
    assert "backlog 9\n" in reg.expose()  # this refresher is spent too: the last value stays
