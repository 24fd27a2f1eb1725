"""This machine's basic metrics from /proc and /sys, under node_exporter's names and labels.

Only what a dashboard for "is this machine healthy" needs (CPU, memory, load, filesystems,
network), so that a Grafana node-exporter dashboard works on the bridge's data unchanged.
Each reader tolerates a missing or unreadable file (containers hide some): that part is skipped
and the rest is still collected.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

from .families import Collected

log = logging.getLogger(__name__)

CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")

# node_exporter's default exclusions (collector/filesystem_linux.go).
_FS_TYPES_EXCLUDED = re.compile(
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|"
    r"iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|"
    r"erofs|sysfs|tracefs)$"
)
_MOUNTS_EXCLUDED = re.compile(
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
)
# node_exporter's default: whole disks only (no partitions, RAM disks, loop devices).
_DISKS_EXCLUDED = re.compile(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")
_NET_FIELDS = ("bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast")
_NET_TX_FIELDS = ("bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed")


class HostCollector:
    def __init__(self, proc: str = "/proc", sys: str = "/sys", rootfs: str = "/") -> None:
        self.proc = Path(proc)
        self.sys = Path(sys)
        # Where the host's root filesystem is visible. A strict snap runs in its own mount
        # namespace on the core base, so its "/" is not the host's: there the host's mounts
        # come from PID 1's mount table and are measured under the hostfs path, while the
        # labels keep the host's own mountpoints (node_exporter's --path.rootfs).
        self.rootfs = Path(rootfs)
        self.user_hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._warned: set[str] = set()

    def collect(self) -> Collected:
        out = Collected()
        for part in (
            self._uname,
            self._cpu,
            self._memory,
            self._load,
            self._filesystems,
            self._network,
            self._disks,
        ):
            try:
                part(out)
            except (OSError, ValueError, IndexError) as e:
                if part.__name__ not in self._warned:  # say it once, not every interval
                    self._warned.add(part.__name__)
                    log.warning("host metrics: skipping %s: %s", part.__name__.lstrip("_"), e)
        return out

    def _uname(self, out: Collected) -> None:
        # Dashboards made for node_exporter pick their instance list from node_uname_info.
        u = os.uname()
        out.family("node_uname_info", "gauge", "Labeled system information as provided by uname.")
        out.add(
            "node_uname_info",
            1.0,
            sysname=u.sysname,
            release=u.release,
            version=u.version,
            machine=u.machine,
            nodename=u.nodename,
            domainname="(none)",
        )
        out.family("node_time_seconds", "gauge", "System time in seconds since epoch (1970).")
        out.add("node_time_seconds", time.time())

    def _read(self, relative: str) -> str:
        return (self.proc / relative).read_text()

    def _cpu(self, out: Collected) -> None:
        out.family("node_cpu_seconds_total", "counter", "Seconds the CPUs spent in each mode.")
        lines = self._read("stat").splitlines()
        for line in lines:
            if not line.startswith("cpu") or line.startswith("cpu "):
                continue
            fields = line.split()
            cpu = fields[0][3:]
            for mode, ticks in zip(CPU_MODES, fields[1:]):
                out.add("node_cpu_seconds_total", int(ticks) / self.user_hz, cpu=cpu, mode=mode)
        for line in lines:
            if line.startswith("btime "):
                out.family("node_boot_time_seconds", "gauge", "Node boot time, in unixtime.")
                out.add("node_boot_time_seconds", float(line.split()[1]))

    def _memory(self, out: Collected) -> None:
        for line in self._read("meminfo").splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if not parts:
                continue
            value = float(parts[0])
            if len(parts) > 1 and parts[1] == "kB":
                value *= 1024
                name = f"node_memory_{_metric_part(key)}_bytes"
            else:
                name = f"node_memory_{_metric_part(key)}"
            out.family(name, "gauge", f"Memory information field {name[12:]}.")
            out.add(name, value)

    def _load(self, out: Collected) -> None:
        fields = self._read("loadavg").split()
        for name, text in zip(("node_load1", "node_load5", "node_load15"), fields):
            out.family(name, "gauge", f"{name[9:]}m load average.")
            out.add(name, float(text))

    def _filesystems(self, out: Collected) -> None:
        names = {
            "size_bytes": "Filesystem size in bytes.",
            "free_bytes": "Filesystem free space in bytes.",
            "avail_bytes": "Filesystem space available to non-root users in bytes.",
            "files": "Filesystem total file nodes.",
            "files_free": "Filesystem total free file nodes.",
            "readonly": "Filesystem read-only status.",
        }
        for suffix, help_text in names.items():
            out.family(f"node_filesystem_{suffix}", "gauge", help_text)
        seen: set[tuple[str, str]] = set()
        host_view = self.rootfs != Path("/")
        mount_table = self._read("1/mounts" if host_view else "self/mounts")
        for line in mount_table.splitlines():
            fields = line.split()
            if len(fields) < 4:
                continue
            device, mountpoint, fstype, options = fields[:4]
            mountpoint = _unescape_mount(mountpoint)
            if _FS_TYPES_EXCLUDED.match(fstype) or _MOUNTS_EXCLUDED.match(mountpoint):
                continue
            if (device, mountpoint) in seen:
                continue
            seen.add((device, mountpoint))
            try:
                st = os.statvfs(self.rootfs / mountpoint.lstrip("/") if host_view else mountpoint)
            except OSError:
                continue
            labels = {"device": device, "fstype": fstype, "mountpoint": mountpoint}
            ro = "ro" in options.split(",")
            out.add("node_filesystem_size_bytes", st.f_blocks * st.f_frsize, **labels)
            out.add("node_filesystem_free_bytes", st.f_bfree * st.f_frsize, **labels)
            out.add("node_filesystem_avail_bytes", st.f_bavail * st.f_frsize, **labels)
            out.add("node_filesystem_files", st.f_files, **labels)
            out.add("node_filesystem_files_free", st.f_ffree, **labels)
            out.add("node_filesystem_readonly", 1.0 if ro else 0.0, **labels)

    def _network(self, out: Collected) -> None:
        for i, f in enumerate((*_NET_FIELDS, *_NET_TX_FIELDS)):
            direction = "receive" if i < len(_NET_FIELDS) else "transmit"
            out.family(
                f"node_network_{direction}_{f}_total",
                "counter",
                f"Network device statistic {direction}_{f}.",
            )
        for line in self._read("net/dev").splitlines()[2:]:
            device, _, rest = line.partition(":")
            values = rest.split()
            if len(values) < 16:
                continue
            device = device.strip()
            for i, f in enumerate(_NET_FIELDS):
                out.add(f"node_network_receive_{f}_total", float(values[i]), device=device)
            for i, f in enumerate(_NET_TX_FIELDS):
                out.add(f"node_network_transmit_{f}_total", float(values[8 + i]), device=device)

    def _disks(self, out: Collected) -> None:
        fields = {  # column in /proc/diskstats (after major, minor, name) → metric, scale
            0: ("node_disk_reads_completed_total", 1.0),
            2: ("node_disk_read_bytes_total", 512.0),
            3: ("node_disk_read_time_seconds_total", 0.001),
            4: ("node_disk_writes_completed_total", 1.0),
            6: ("node_disk_written_bytes_total", 512.0),
            7: ("node_disk_write_time_seconds_total", 0.001),
            9: ("node_disk_io_time_seconds_total", 0.001),
        }
        for name, _ in fields.values():
            out.family(name, "counter", f"Disk statistic {name[10:]}.")
        for line in self._read("diskstats").splitlines():
            parts = line.split()
            if len(parts) < 14 or _DISKS_EXCLUDED.match(parts[2]):
                continue
            stats = parts[3:]
            for column, (name, scale) in fields.items():
                out.add(name, float(stats[column]) * scale, device=parts[2])


def _metric_part(key: str) -> str:
    """``Active(anon)`` → ``Active_anon``, as node_exporter names meminfo fields."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", key.replace("(", "_").replace(")", "")).strip("_")


def _unescape_mount(path: str) -> str:
    r"""/proc/mounts escapes space, tab, newline and backslash as octal (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)
