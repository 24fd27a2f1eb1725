"""Realistic benchmark data: what node_exporter on a COS-managed machine really sends.

Each host is one scrape target (node_exporter with the collectors the grafana-agent machine
charm enables: the defaults plus systemd, logind, processes, sysctl), relabelled as COS does:
``instance`` = ``<model>_<model uuid>_<application>_<unit>``, ``job`` =
``juju_<model>_<model uuid>_<agent application>_node-exporter``, plus ``juju_model``,
``juju_model_uuid``, ``juju_application``, ``juju_unit`` and ``juju_charm``; and the five
series the scraper adds per target (``up``, ``scrape_duration_seconds``, ...).

Values have the precision real ones have, because that is what decides compression:

- CPU seconds are USER_HZ ticks / 100 (``12345.67`` is not exact in binary: a full mantissa);
  disk times are milliseconds / 1000; schedstat and pressure are ns / 1e9 and us / 1e6;
- memory and filesystem gauges are large integers in kB or 4 KiB pages;
- packet/byte/switch counters are integers advancing by varying amounts; error counters
  rarely move;
- load averages are 2-decimal, temperatures whole or 0.05 degrees, scrape and GC durations
  are arbitrary floats (no compression possible), ``node_time_seconds`` is a ns clock;
- a few hundred systemd unit-state and info series stay constant.

Timestamps follow Prometheus's scraper (``scrape/target.go``, ``scrape/scrape.go``): every
target is scraped on a fixed interval with a phase of ``(hash(target) ^ seed) mod interval``
pinned to absolute time, and the scrape loop snaps each timestamp to that grid (its 2 ms
alignment tolerance absorbs timer jitter), so a target's timestamps are exactly
``phase + k * interval``. The remote-write sender then ships samples in time order, a request
per 2,000 samples or per 5 s ``batch_send_deadline``, whichever comes first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from benchlib import build_payloads

Gen = Callable[[np.random.Generator, int, int, float], np.ndarray]
"""(rng, scrapes, series, interval seconds) -> values shaped (scrapes, series)."""

MODEL = "production"
MODEL_UUID = str(uuid.UUID(int=0x5A1E_C0DE_0000_4000_8000_00000000C05E))
AGENT_APP = "grafana-agent"
APPS = ("ceph-osd", "nova-compute", "mysql-innodb-cluster", "ubuntu", "kafka")
JOB = f"juju_{MODEL}_{MODEL_UUID}_{AGENT_APP}_node-exporter"


# -- value generators (vectorised over scrapes x series) ---------------------------------------


def const(values: list[float] | float) -> Gen:
    def gen(rng: np.random.Generator, k: int, m: int, dt: float) -> np.ndarray:
        v = np.resize(np.asarray(values, dtype=np.float64), m)
        return np.broadcast_to(v, (k, m)).copy()

    return gen


def counter(rate: float, *, start: float = 1e6, scale: float = 1.0, sparse: float = 1.0) -> Gen:
    """An integer counter (``scale`` = 1), or ticks/ms/ns turned into seconds (``scale`` =
    0.01 / 0.001 / 1e-9), advancing ``rate`` units per second on average; with ``sparse`` < 1
    only that fraction of scrapes sees any increase (errors, drops)."""

    def gen(rng: np.random.Generator, k: int, m: int, dt: float) -> np.ndarray:
        inc = rng.poisson(rate * dt * rng.uniform(0.3, 1.7, size=m), size=(k, m))
        if sparse < 1.0:
            inc = inc * (rng.random((k, m)) < sparse)
        base = np.floor(rng.uniform(0.5, 1.5, size=m) * start)
        return (base + np.cumsum(inc, axis=0)) * scale

    return gen


def walk(base: float, step: float, *, unit: float = 1.0, lo: float = 0.0) -> Gen:
    """A gauge doing a random walk in whole ``unit``s (bytes in kB or pages, counts)."""

    def gen(rng: np.random.Generator, k: int, m: int, dt: float) -> np.ndarray:
        b = np.round(base * rng.uniform(0.5, 1.5, size=m) / unit)
        steps = np.round(rng.normal(0, step / unit, size=(k, m)))
        return np.maximum(b + np.cumsum(steps, axis=0), lo / unit) * unit

    return gen


def smooth(mean: float, sd: float, *, quantum: float, alpha: float = 0.2) -> Gen:
    """An autocorrelated gauge rounded to ``quantum`` (load averages 0.01, temperatures)."""

    def gen(rng: np.random.Generator, k: int, m: int, dt: float) -> np.ndarray:
        x = np.empty((k, m))
        level = mean * rng.uniform(0.5, 1.5, size=m)
        cur = level.copy()
        for i in range(k):
            cur = cur + alpha * (level - cur) + rng.normal(0, sd, size=m)
            x[i] = cur
        out = np.round(np.maximum(x, 0) / quantum) * quantum
        return np.round(out, 6) if quantum < 1 else out

    return gen


def noise(median: float, spread: float = 0.5) -> Gen:
    """Arbitrary positive floats (durations): every bit of the mantissa differs."""

    def gen(rng: np.random.Generator, k: int, m: int, dt: float) -> np.ndarray:
        return median * rng.lognormal(0, spread, size=(k, m))

    return gen


def choice(options: list[float]) -> Gen:
    """A gauge jumping between a few values (CPU frequency steps), mostly staying put."""

    def gen(rng: np.random.Generator, k: int, m: int, dt: float) -> np.ndarray:
        pick = rng.integers(0, len(options), size=(k, m))
        keep = rng.random((k, m)) < 0.7
        for i in range(1, k):
            pick[i] = np.where(keep[i], pick[i - 1], pick[i])
        return np.asarray(options, dtype=np.float64)[pick]

    return gen


def clock() -> Gen:
    """``node_time_seconds``: the host's clock at scrape time, in ns / 1e9 (filled in by
    :meth:`NodeWorkload.columns` from the timestamps; this leaves the sub-ms part)."""

    def gen(rng: np.random.Generator, k: int, m: int, dt: float) -> np.ndarray:
        return rng.integers(0, 1_000_000, size=(k, m)) * 1e-9

    return gen


# -- the per-host catalogue ---------------------------------------------------------------------

CPUS = 4
CPU_MODES = {  # share of the CPU's ticks
    "idle": 0.84, "user": 0.08, "system": 0.04, "iowait": 0.012, "softirq": 0.01,
    "steal": 0.006, "nice": 0.001, "irq": 0.0,
}  # fmt: skip
FILESYSTEMS = [
    ("/dev/sda1", "ext4", "/"), ("/dev/sda15", "vfat", "/boot/efi"), ("tmpfs", "tmpfs", "/run"),
    ("tmpfs", "tmpfs", "/run/lock"), ("tmpfs", "tmpfs", "/run/user/1000"),
]  # fmt: skip
DISKS = ["sda", "sdb", "dm-0"]
NICS = ["lo", "ens3", "ens4"]
MEMINFO_CONST = [
    "MemTotal", "SwapTotal", "CommitLimit", "VmallocTotal", "Hugepagesize", "DirectMap4k",
    "DirectMap2M", "DirectMap1G", "HugePages_Total", "HugePages_Free", "HugePages_Rsvd",
    "HugePages_Surp", "Bounce", "NFS_Unstable", "WritebackTmp", "HardwareCorrupted",
    "ShmemHugePages", "ShmemPmdMapped", "FileHugePages", "FilePmdMapped", "VmallocChunk",
    "Hugetlb",
]  # fmt: skip
MEMINFO_MOVING = [
    "MemFree", "MemAvailable", "Buffers", "Cached", "SwapCached", "Active", "Inactive",
    "Active_anon", "Inactive_anon", "Active_file", "Inactive_file", "Unevictable", "Mlocked",
    "SwapFree", "Dirty", "Writeback", "AnonPages", "Mapped", "Shmem", "KReclaimable", "Slab",
    "SReclaimable", "SUnreclaim", "KernelStack", "PageTables", "Committed_AS", "VmallocUsed",
    "Percpu", "AnonHugePages",
]  # fmt: skip
COLLECTORS = [
    "arp", "bcache", "bonding", "btrfs", "conntrack", "cpu", "cpufreq", "diskstats", "dmi", "edac",
    "entropy", "fibrechannel", "filefd", "filesystem", "hwmon", "infiniband", "ipvs", "loadavg",
    "logind", "mdadm", "meminfo", "netclass", "netdev", "netstat", "nfs", "nfsd", "nvme", "os",
    "powersupplyclass", "pressure", "processes", "rapl", "schedstat", "selinux", "sockstat",
    "softnet", "stat", "sysctl", "systemd", "tapestats", "textfile", "thermal_zone", "time",
    "timex", "udp_queues", "uname", "vmstat", "xfs", "zfs",
]  # fmt: skip
NETSTAT_COUNTERS = [
    ("Tcp_ActiveOpens", 0.5), ("Tcp_PassiveOpens", 0.8), ("Tcp_InSegs", 400.0),
    ("Tcp_OutSegs", 380.0), ("Tcp_RetransSegs", 0.3), ("Tcp_InErrs", 0.0), ("Tcp_OutRsts", 0.2),
    ("Udp_InDatagrams", 20.0), ("Udp_OutDatagrams", 20.0), ("Udp_InErrors", 0.0),
    ("Udp_NoPorts", 0.05), ("Udp_RcvbufErrors", 0.0), ("Udp_SndbufErrors", 0.0),
    ("Udp6_InDatagrams", 1.0), ("Udp6_OutDatagrams", 1.0), ("Udp6_InErrors", 0.0),
    ("Udp6_NoPorts", 0.0), ("Icmp_InMsgs", 0.2), ("Icmp_OutMsgs", 0.2), ("Icmp_InErrors", 0.0),
    ("Icmp6_InMsgs", 0.1), ("Icmp6_OutMsgs", 0.1), ("Icmp6_InErrors", 0.0),
    ("TcpExt_ListenDrops", 0.0), ("TcpExt_ListenOverflows", 0.0), ("TcpExt_SyncookiesSent", 0.0),
    ("TcpExt_SyncookiesRecv", 0.0), ("TcpExt_SyncookiesFailed", 0.0),
    ("TcpExt_TCPSynRetrans", 0.01), ("TcpExt_TCPTimeouts", 0.05), ("TcpExt_TCPOFOQueue", 0.1),
    ("IpExt_InOctets", 9e4), ("IpExt_OutOctets", 8e4), ("Ip6_InOctets", 200.0),
    ("Ip6_OutOctets", 200.0),
]  # fmt: skip


@dataclass(frozen=True)
class Family:
    """One metric name, its label sets (beyond the target's), and how its values move."""

    name: str
    labelsets: tuple[dict[str, str], ...]
    gen: Gen


def _f(name: str, gen: Gen, labelsets: list[dict[str, str]] | None = None) -> Family:
    return Family(name, tuple(labelsets or [{}]), gen)


def host_families(systemd_units: int = 70) -> list[Family]:
    """What one node_exporter target exposes (about 1,000 series with 70 systemd units)."""
    cpus = [str(c) for c in range(CPUS)]
    fams: list[Family] = []
    for mode, share in CPU_MODES.items():
        fams.append(
            _f(
                "node_cpu_seconds_total",
                counter(100 * share, start=8.6e7 * share + 1, scale=0.01) if share else const(0.0),
                [{"cpu": c, "mode": mode} for c in cpus],
            )
        )
    fams += [
        _f(
            "node_cpu_guest_seconds_total",
            const(0.0),
            [{"cpu": c, "mode": m} for c in cpus for m in ("nice", "user")],
        ),
        _f(
            "node_cpu_scaling_frequency_hertz",
            choice([1.2e9, 1.8e9, 2.394e9, 2.8e9, 3.1e9]),
            [{"cpu": c} for c in cpus],
        ),
        _f("node_cpu_scaling_frequency_max_hertz", const(3.5e9), [{"cpu": c} for c in cpus]),
        _f("node_cpu_scaling_frequency_min_hertz", const(4e8), [{"cpu": c} for c in cpus]),
        _f(
            "node_schedstat_running_seconds_total",
            counter(6e8, start=8e14, scale=1e-9),
            [{"cpu": c} for c in cpus],
        ),
        _f(
            "node_schedstat_waiting_seconds_total",
            counter(2e7, start=3e13, scale=1e-9),
            [{"cpu": c} for c in cpus],
        ),
        _f("node_schedstat_timeslices_total", counter(900, start=4e9), [{"cpu": c} for c in cpus]),
        _f("node_softnet_processed_total", counter(150, start=2e8), [{"cpu": c} for c in cpus]),
        _f("node_softnet_dropped_total", const(0.0), [{"cpu": c} for c in cpus]),
        _f(
            "node_softnet_times_squeezed_total",
            counter(0.01, start=50, sparse=0.05),
            [{"cpu": c} for c in cpus],
        ),
        _f("node_load1", smooth(0.8, 0.15, quantum=0.01)),
        _f("node_load5", smooth(0.8, 0.05, quantum=0.01)),
        _f("node_load15", smooth(0.8, 0.02, quantum=0.01)),
        _f("node_context_switches_total", counter(2500, start=4e9)),
        _f("node_intr_total", counter(1800, start=3e9)),
        _f("node_forks_total", counter(8, start=2e7)),
        _f("node_boot_time_seconds", const(1.699e9)),
        _f("node_time_seconds", clock()),
        _f("node_procs_running", walk(2, 1, lo=1)),
        _f("node_procs_blocked", walk(0.2, 0.3)),
        _f("node_entropy_available_bits", const(256.0)),
        _f("node_entropy_pool_size_bits", const(256.0)),
        _f("node_filefd_allocated", walk(3000, 20)),
        _f("node_filefd_maximum", const(9.223372036854776e18)),
        _f("node_nf_conntrack_entries", walk(400, 10)),
        _f("node_nf_conntrack_entries_limit", const(262144.0)),
        _f("node_sysctl_net_ipv4_neigh_default_gc_thresh3", const(1024.0)),
        _f(
            "node_uname_info",
            const(1.0),
            [
                {
                    "machine": "x86_64",
                    "nodename": "juju-node",
                    "release": "5.15.0-91-generic",
                    "sysname": "Linux",
                    "version": "#101-Ubuntu SMP",
                    "domainname": "(none)",
                }
            ],
        ),
        _f(
            "node_os_info",
            const(1.0),
            [
                {
                    "id": "ubuntu",
                    "name": "Ubuntu",
                    "version_id": "22.04",
                    "version_codename": "jammy",
                }
            ],
        ),
        _f("node_os_version", const(22.04), [{"id": "ubuntu", "version_codename": "jammy"}]),
        _f(
            "node_exporter_build_info",
            const(1.0),
            [{"goversion": "go1.20.3", "version": "1.5.0", "revision": "1b48970f"}],
        ),
        _f("node_textfile_scrape_error", const(0.0)),
        _f("node_arp_entries", walk(6, 0.3), [{"device": "ens3"}]),
    ]
    for n in MEMINFO_CONST:
        size = {
            "MemTotal": 16 << 30,
            "SwapTotal": 2 << 30,
            "CommitLimit": 10 << 30,
            "VmallocTotal": 34359738367 << 10,
            "Hugepagesize": 2 << 20,
            "DirectMap4k": 300 << 20,
            "DirectMap2M": 12 << 30,
            "DirectMap1G": 4 << 30,
        }
        fams.append(_f(f"node_memory_{n}_bytes", const(float(size.get(n, 0)))))
    for n in MEMINFO_MOVING:
        fams.append(_f(f"node_memory_{n}_bytes", walk(2e9 if "Mem" in n else 2e8, 4e5, unit=1024)))
    for dev, fs, mnt in FILESYSTEMS:
        lb = [{"device": dev, "fstype": fs, "mountpoint": mnt}]
        root = mnt == "/"
        fams += [
            _f("node_filesystem_size_bytes", const(1.0359e11 if root else 1.6e9), lb),
            _f(
                "node_filesystem_avail_bytes",
                walk(4.1e10, 2e5, unit=4096) if root else const(1.59e9),
                lb,
            ),
            _f(
                "node_filesystem_free_bytes",
                walk(4.6e10, 2e5, unit=4096) if root else const(1.59e9),
                lb,
            ),
            _f("node_filesystem_files", const(6451200.0 if root else 2e6), lb),
            _f("node_filesystem_files_free", walk(5.2e6, 3) if root else const(1.99e6), lb),
            _f("node_filesystem_readonly", const(0.0), lb),
            _f("node_filesystem_device_error", const(0.0), lb),
        ]
    for dev in DISKS:
        lb = [{"device": dev}]
        fams += [
            _f("node_disk_reads_completed_total", counter(3, start=3e6), lb),
            _f("node_disk_reads_merged_total", counter(0.5, start=4e5), lb),
            _f("node_disk_read_bytes_total", counter(40, start=2e8, scale=512.0), lb),
            _f("node_disk_read_time_seconds_total", counter(4, start=2e6, scale=0.001), lb),
            _f("node_disk_writes_completed_total", counter(25, start=4e7), lb),
            _f("node_disk_writes_merged_total", counter(12, start=3e7), lb),
            _f("node_disk_written_bytes_total", counter(600, start=1e9, scale=512.0), lb),
            _f("node_disk_write_time_seconds_total", counter(30, start=6e7, scale=0.001), lb),
            _f("node_disk_io_now", walk(0.3, 0.5), lb),
            _f("node_disk_io_time_seconds_total", counter(25, start=3e7, scale=0.001), lb),
            _f(
                "node_disk_io_time_weighted_seconds_total", counter(35, start=7e7, scale=0.001), lb
            ),
            _f("node_disk_discards_completed_total", counter(0.01, start=2e4, sparse=0.02), lb),
            _f("node_disk_discards_merged_total", const(0.0), lb),
            _f("node_disk_discarded_sectors_total", counter(50, start=1e8, sparse=0.02), lb),
            _f(
                "node_disk_discard_time_seconds_total",
                counter(1, start=3e4, scale=0.001, sparse=0.02),
                lb,
            ),
            _f("node_disk_flush_requests_total", counter(2, start=3e6), lb),
            _f(
                "node_disk_flush_requests_time_seconds_total",
                counter(1, start=2e6, scale=0.001),
                lb,
            ),
            _f("node_disk_info", const(1.0), [{"device": dev, "major": "8", "minor": "0"}]),
        ]
    for dev in NICS:
        lb = [{"device": dev}]
        for d in ("receive", "transmit"):
            rate = 9e4 if d == "receive" else 8e4
            fams += [
                _f(f"node_network_{d}_bytes_total", counter(rate, start=5e11), lb),
                _f(f"node_network_{d}_packets_total", counter(rate / 600, start=7e8), lb),
                _f(f"node_network_{d}_errs_total", const(0.0), lb),
                _f(f"node_network_{d}_drop_total", counter(0.02, start=900, sparse=0.1), lb),
                _f(f"node_network_{d}_fifo_total", const(0.0), lb),
                _f(f"node_network_{d}_compressed_total", const(0.0), lb),
                _f(
                    f"node_network_{d}_{'frame' if d == 'receive' else 'colls'}_total",
                    const(0.0),
                    lb,
                ),
                _f(
                    f"node_network_{d}_{'multicast' if d == 'receive' else 'carrier'}_total",
                    counter(0.05, start=1e4, sparse=0.2) if d == "receive" else const(0.0),
                    lb,
                ),
            ]
        for name in (
            "up",
            "carrier",
            "address_assign_type",
            "device_id",
            "dormant",
            "flags",
            "iface_id",
            "iface_link",
            "iface_link_mode",
            "net_dev_group",
            "protocol_type",
            "transmit_queue_length",
            "carrier_changes_total",
            "carrier_up_changes_total",
            "carrier_down_changes_total",
            "mtu_bytes",
        ):
            fams.append(
                _f(f"node_network_{name}", const(1500.0 if name == "mtu_bytes" else 1.0), lb)
            )
        fams.append(
            _f(
                "node_network_info",
                const(1.0),
                [
                    {
                        "device": dev,
                        "address": "fa:16:3e:00:00:01",
                        "operstate": "up",
                        "broadcast": "ff:ff:ff:ff:ff:ff",
                        "duplex": "",
                        "ifalias": "",
                    }
                ],
            )
        )
    for name, rate in NETSTAT_COUNTERS:
        gen = (
            counter(rate, start=1e7)
            if rate >= 0.05
            else (counter(rate, start=100, sparse=0.05) if rate else const(0.0))
        )
        fams.append(_f(f"node_netstat_{name}", gen))
    fams.append(_f("node_netstat_Tcp_CurrEstab", walk(60, 2)))
    for name, base in (
        ("TCP_alloc", 80),
        ("TCP_inuse", 60),
        ("TCP_mem", 20),
        ("TCP_orphan", 0),
        ("TCP_tw", 30),
        ("UDP_inuse", 8),
        ("UDP_mem", 4),
        ("UDPLITE_inuse", 0),
        ("RAW_inuse", 0),
        ("FRAG_inuse", 0),
        ("FRAG_memory", 0),
        ("TCP6_inuse", 10),
        ("UDP6_inuse", 4),
        ("RAW6_inuse", 1),
        ("FRAG6_inuse", 0),
        ("FRAG6_memory", 0),
        ("sockets_used", 700),
    ):
        fams.append(_f(f"node_sockstat_{name}", walk(base, base / 20) if base else const(0.0)))
    fams += [
        _f("node_sockstat_TCP_mem_bytes", walk(8e4, 4096, unit=4096)),
        _f("node_sockstat_UDP_mem_bytes", walk(1.6e4, 4096, unit=4096)),
    ]
    for name, rate in (
        ("pgfault", 4000),
        ("pgmajfault", 0.5),
        ("pgpgin", 20),
        ("pgpgout", 300),
        ("pswpin", 0),
        ("pswpout", 0),
        ("oom_kill", 0),
    ):
        fams.append(_f(f"node_vmstat_{name}", counter(rate, start=1e9) if rate else const(0.0)))
    for name, gen in (
        ("offset_seconds", noise(2e-5, 1.0)),
        ("frequency_adjustment_ratio", noise(1.00001, 1e-6)),
        ("maxerror_seconds", noise(0.2, 0.3)),
        ("estimated_error_seconds", noise(5e-4, 0.3)),
        ("sync_status", const(1.0)),
        ("tai_offset_seconds", const(0.0)),
        ("tick_seconds", const(0.01)),
        ("status", const(8193.0)),
        ("loop_time_constant", const(7.0)),
        ("pps_calibration_total", const(0.0)),
        ("pps_error_total", const(0.0)),
        ("pps_frequency_hertz", const(0.0)),
        ("pps_jitter_seconds", const(0.0)),
        ("pps_jitter_total", const(0.0)),
        ("pps_shift_seconds", const(0.0)),
        ("pps_stability_exceeded_total", const(0.0)),
        ("pps_stability_hertz", const(0.0)),
    ):
        fams.append(_f(f"node_timex_{name}", gen))
    for name, rate in (
        ("cpu_waiting", 5e4),
        ("io_waiting", 3e4),
        ("io_stalled", 2e4),
        ("memory_waiting", 100),
        ("memory_stalled", 50),
    ):
        fams.append(
            _f(f"node_pressure_{name}_seconds_total", counter(rate, start=5e10, scale=1e-6))
        )
    chips = [("platform_coretemp_0", f"temp{i}") for i in range(1, CPUS + 2)]
    fams += [
        _f(
            "node_hwmon_temp_celsius",
            smooth(48, 1.0, quantum=1.0),
            [{"chip": c, "sensor": s} for c, s in chips],
        ),
        _f(
            "node_hwmon_temp_celsius",
            smooth(38, 0.3, quantum=0.05),
            [{"chip": "nvme_nvme0", "sensor": "temp1"}],
        ),
        _f(
            "node_hwmon_temp_crit_celsius",
            const(100.0),
            [{"chip": c, "sensor": s} for c, s in chips],
        ),
        _f(
            "node_hwmon_temp_max_celsius",
            const(84.0),
            [{"chip": c, "sensor": s} for c, s in chips],
        ),
        _f(
            "node_hwmon_chip_names",
            const(1.0),
            [
                {"chip": "platform_coretemp_0", "chip_name": "coretemp"},
                {"chip": "nvme_nvme0", "chip_name": "nvme"},
            ],
        ),
        _f(
            "node_thermal_zone_temp",
            smooth(27.8, 0.3, quantum=1.0),
            [{"type": "acpitz", "zone": "0"}],
        ),
    ]
    fams += [
        _f("node_processes_state", walk(20, 1), [{"state": s} for s in "DIRSZ"]),
        _f("node_processes_threads", walk(600, 5)),
        _f("node_processes_pids", walk(300, 3)),
        _f("node_processes_max_processes", const(4194304.0)),
        _f("node_processes_max_threads", const(127917.0)),
        _f(
            "node_logind_sessions",
            const(1.0),
            [
                {"class": c, "remote": r, "seat": "", "type": t}
                for c in ("user", "greeter")
                for r in ("true", "false")
                for t in ("tty", "x11")
            ],
        ),
        _f(
            "node_systemd_units",
            const([150.0, 40.0, 2.0, 0.0, 0.0]),
            [{"state": s} for s in ("active", "inactive", "failed", "activating", "deactivating")],
        ),
        _f("node_systemd_system_running", const(1.0)),
        _f("node_systemd_version", const(249.11), [{"version": "249.11-0ubuntu3.11"}]),
    ]
    states = ("activating", "active", "deactivating", "failed", "inactive")
    units = [
        {"name": f"unit-{u:03d}.service", "state": s, "type": "simple"}
        for u in range(systemd_units)
        for s in states
    ]
    fams.append(
        _f(
            "node_systemd_unit_state",
            const([1.0 if s == "active" else 0.0 for _ in range(systemd_units) for s in states]),
            units,
        )
    )
    fams += [
        _f(
            "node_scrape_collector_duration_seconds",
            noise(4e-4, 1.0),
            [{"collector": c} for c in COLLECTORS],
        ),
        _f("node_scrape_collector_success", const(1.0), [{"collector": c} for c in COLLECTORS]),
        _f(
            "go_gc_duration_seconds",
            noise(6e-5, 0.6),
            [{"quantile": q} for q in ("0", "0.25", "0.5", "0.75", "1")],
        ),
        _f("go_gc_duration_seconds_sum", counter(2e-4, start=40, scale=1.0)),
        _f("go_gc_duration_seconds_count", counter(0.2, start=5e4)),
        _f("go_goroutines", walk(8, 0.5, lo=5)),
        _f("go_threads", const(9.0)),
        _f("go_info", const(1.0), [{"version": "go1.20.3"}]),
        _f("go_memstats_last_gc_time_seconds", noise(1.7e9, 1e-9)),
        _f("process_cpu_seconds_total", counter(1.5, start=2e5, scale=0.01)),
        _f("process_max_fds", const(1048576.0)),
        _f("process_open_fds", walk(10, 0.5, lo=8)),
        _f("process_resident_memory_bytes", walk(2.4e7, 1e5, unit=4096)),
        _f("process_start_time_seconds", const(1699000123.45)),
        _f("process_virtual_memory_bytes", walk(7.4e8, 1e5, unit=4096)),
        _f("process_virtual_memory_max_bytes", const(1.8446744073709552e19)),
        _f(
            "promhttp_metric_handler_errors_total",
            const(0.0),
            [{"cause": "encoding"}, {"cause": "gathering"}],
        ),
        _f("promhttp_metric_handler_requests_in_flight", const(1.0)),
        _f(
            "promhttp_metric_handler_requests_total",
            counter(1 / 15, start=5e4, sparse=1.0),
            [{"code": "200"}],
        ),
        _f(
            "promhttp_metric_handler_requests_total",
            const(0.0),
            [{"code": "500"}, {"code": "503"}],
        ),
    ]
    for name in (
        "alloc_bytes",
        "heap_alloc_bytes",
        "heap_inuse_bytes",
        "heap_idle_bytes",
        "heap_released_bytes",
        "heap_sys_bytes",
        "next_gc_bytes",
        "stack_inuse_bytes",
        "mspan_inuse_bytes",
        "other_sys_bytes",
        "sys_bytes",
        "heap_objects",
    ):
        fams.append(_f(f"go_memstats_{name}", walk(4e6, 2e5, unit=8)))
    for name in ("alloc_bytes_total", "mallocs_total", "frees_total", "lookups_total"):
        fams.append(_f(f"go_memstats_{name}", counter(3e4, start=1e10)))
    for name in (
        "buck_hash_sys_bytes",
        "gc_sys_bytes",
        "mcache_inuse_bytes",
        "mcache_sys_bytes",
        "mspan_sys_bytes",
        "stack_sys_bytes",
    ):
        fams.append(_f(f"go_memstats_{name}", const(1.5e6)))
    # The series the scraper itself adds for every target.
    fams += [
        _f("up", const(1.0)),
        _f("scrape_duration_seconds", noise(0.04, 0.3)),
        _f("scrape_samples_scraped", const(0.0)),  # filled in with the target's size
        _f("scrape_samples_post_metric_relabeling", const(0.0)),
        _f("scrape_series_added", const(0.0)),
    ]
    return fams


def fnv64a(data: bytes) -> int:
    """FNV-1a, 64 bit: the hash Prometheus uses for a target's scrape phase."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


@dataclass
class NodeWorkload:
    """``n_series`` series of node_exporter targets (the last host cut short if needed)."""

    n_series: int = 10_000
    scrapes: int = 480
    step_ms: int = 15_000
    start_ms: int = 1_699_999_200_000  # a multiple of 2 h: blocks start full
    per_request: int = 2_000
    batch_deadline_ms: int = 5_000
    seed: int = 7
    name: str = "node_exporter"

    def __post_init__(self) -> None:
        self.families = host_families()
        self.per_host = sum(len(f.labelsets) for f in self.families)
        self.hosts = -(-self.n_series // self.per_host)

    def describe(self) -> str:
        return (
            f"node_exporter + COS labels: {self.hosts} host(s) x {self.per_host} series "
            f"(cut to {self.n_series}), full-precision floats, per-target scrape phase"
        )

    def host_labels(self, h: int) -> dict[str, str]:
        app = APPS[h % len(APPS)]
        unit = f"{app}/{h // len(APPS)}"
        return {
            "instance": f"{MODEL}_{MODEL_UUID}_{app}_{unit}",
            "job": JOB,
            "juju_application": app,
            "juju_charm": app,
            "juju_model": MODEL,
            "juju_model_uuid": MODEL_UUID,
            "juju_unit": unit,
        }

    def labels(self) -> list[tuple[tuple[str, str], ...]]:
        out = []
        for h in range(self.hosts):
            target = self.host_labels(h)
            for fam in self.families:
                for ls in fam.labelsets:
                    out.append(tuple(sorted({**ls, **target, "__name__": fam.name}.items())))
        return out[: self.n_series]

    def phases_ms(self) -> np.ndarray:
        """Each host's scrape phase in ms: ``(fnv64a(target) ^ seed) mod interval``, the way
        Prometheus spreads targets (its seed comes from the host name and external labels)."""
        seed = fnv64a(b"cos-prometheus-0")
        step_ns = self.step_ms * 1_000_000
        return np.array(
            [
                ((fnv64a(self.host_labels(h)["instance"].encode()) ^ seed) % step_ns) // 1_000_000
                for h in range(self.hosts)
            ],
            dtype=np.int64,
        )

    def columns(self) -> tuple[np.ndarray, np.ndarray]:
        """(timestamps, values), each shaped (scrapes, n_series)."""
        rng = np.random.default_rng(self.seed)
        k, dt = self.scrapes, self.step_ms / 1000
        ts_host = self.start_ms + self.phases_ms()[None, :] + np.arange(k)[:, None] * self.step_ms
        cols = []
        for _h in range(self.hosts):
            for fam in self.families:
                cols.append(fam.gen(rng, k, len(fam.labelsets), dt))
        values = np.concatenate(cols, axis=1)
        host_of = np.repeat(np.arange(self.hosts), self.per_host)
        ts = ts_host[:, host_of]
        names = [dict(lb)["__name__"] for lb in self.labels()]
        names += [""] * (len(host_of) - len(names))
        for j, name in enumerate(names):
            if name == "node_time_seconds":
                values[:, j] += ts[:, j] / 1000
            elif name.startswith("scrape_samples_"):
                values[:, j] = self.per_host - 5
        return ts[:, : self.n_series].copy(), values[:, : self.n_series].copy()

    def payloads(self) -> tuple[list[tuple[bytes, int]], int]:
        """Bodies in time order across targets: a request per ``per_request`` samples or per
        ``batch_deadline_ms`` (Prometheus's max_samples_per_send / batch_send_deadline)."""
        ts, values = self.columns()
        return build_payloads(
            self.labels(),
            ts,
            values,
            per_request=self.per_request,
            deadline_ms=self.batch_deadline_ms,
            time_order=True,
        )

    @property
    def job_selector(self) -> str:
        return f'{{job="{JOB}"}}'

    @property
    def one_series(self) -> str:
        return f'node_memory_MemFree_bytes{{instance="{self.host_labels(0)["instance"]}"}}'
