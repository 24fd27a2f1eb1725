"""Protocol statistics: /proc/net/{netstat,snmp,snmp6,sockstat,softnet_stat,udp,tcp,arp}.

node_exporter's ``netstat``, ``sockstat``, ``softnet``, ``udp_queues``, ``arp``, ``conntrack``
and ``tcpstat`` collectors, with its default field selection.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter

from .families import Collected
from .hostfs import HostPaths

NETSTAT_FIELDS = re.compile(
    r"^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)"
    r"|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)"
    r"|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)"
    r"|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$"
)
"""The protocol counters node_exporter exports by default (its --collector.netstat.fields)."""

_SOCKSTAT_FIELDS = ("inuse", "orphan", "tw", "alloc", "mem", "memory")

_TCP_STATES = {  # include/net/tcp_states.h
    1: "established",
    2: "syn_sent",
    3: "syn_recv",
    4: "fin_wait1",
    5: "fin_wait2",
    6: "time_wait",
    7: "close",
    8: "close_wait",
    9: "last_ack",
    10: "listen",
    11: "closing",
}

_CONNTRACK_STATS = ("found", "invalid", "ignore", "insert", "insert_failed", "drop")
_CONNTRACK_STATS += ("early_drop", "search_restart")


def collect_netstat(src: HostPaths, out: Collected) -> None:
    """IP, ICMP, TCP and UDP counters (untyped in node_exporter), v4 and v6."""
    stats: dict[str, str] = {}
    for table in ("net/netstat", "net/snmp"):
        lines = src.proc_text(table).splitlines()
        for header, values in zip(lines[::2], lines[1::2]):
            names, numbers = header.split(), values.split()
            if len(names) != len(numbers) or not names:
                raise ValueError(f"{table}: field count mismatch for {names[:1]}")
            protocol = names[0].rstrip(":")
            for name, number in zip(names[1:], numbers[1:]):
                stats[f"{protocol}_{name}"] = number
    try:
        snmp6 = src.proc_text("net/snmp6")
    except FileNotFoundError:  # IPv6 disabled
        snmp6 = ""
    for line in snmp6.splitlines():
        fields = line.split()
        six = fields[0].find("6") if len(fields) >= 2 else -1
        if six != -1:
            stats[f"{fields[0][: six + 1]}_{fields[0][six + 1 :]}"] = fields[1]
    for key, number in stats.items():
        if NETSTAT_FIELDS.match(key):
            protocol, _, name = key.partition("_")
            out.family(f"node_netstat_{key}", "unknown", f"Statistic {protocol}{name}.")
            out.add(f"node_netstat_{key}", float(number))


def collect_sockstat(src: HostPaths, out: Collected) -> None:
    """Sockets by protocol and state; ``mem`` is in pages, so ``mem_bytes`` is added."""
    lines = src.proc_text("net/sockstat").splitlines()
    with contextlib.suppress(FileNotFoundError):  # IPv6 disabled
        lines += src.proc_text("net/sockstat6").splitlines()
    for line in lines:
        protocol, _, rest = line.partition(":")
        fields = rest.split()
        values = dict(zip(fields[::2], fields[1::2]))
        if protocol == "sockets":
            if "used" in values:
                out.family("node_sockstat_sockets_used", "gauge", "Number of IPv4 sockets in use.")
                out.add("node_sockstat_sockets_used", float(values["used"]))
            continue
        pairs = [(f, float(values[f])) for f in _SOCKSTAT_FIELDS if f in values]
        if "mem" in values:
            pairs.append(("mem_bytes", float(values["mem"]) * src.page_size))
        for field, value in pairs:
            name = f"node_sockstat_{protocol}_{field}"
            out.family(name, "gauge", f"Number of {protocol} sockets in state {field}.")
            out.add(name, value)


def collect_softnet(src: HostPaths, out: Collected) -> None:
    """Per-CPU packet processing (hex columns; the CPU is column 13 since Linux 5.14)."""
    columns = (  # column, metric, type, help
        (0, "processed_total", "counter", "Number of processed packets"),
        (1, "dropped_total", "counter", "Number of dropped packets"),
        (
            2,
            "times_squeezed_total",
            "counter",
            "Number of times processing packets ran out of quota",
        ),
        (
            8,
            "cpu_collision_total",
            "counter",
            "Number of collision occur while obtaining device lock while transmitting",
        ),
        (9, "received_rps_total", "counter", "Number of times cpu woken up received_rps"),
        (10, "flow_limit_count_total", "counter", "Number of times flow limit has been reached"),
        (11, "backlog_len", "gauge", "Softnet backlog status"),
    )
    for _, name, kind, help_text in columns:
        out.family(f"node_softnet_{name}", kind, help_text)
    for row, line in enumerate(src.proc_text("net/softnet_stat").splitlines()):
        values = [int(v, 16) for v in line.split()]
        if len(values) < 9:
            raise ValueError(f"softnet_stat: {len(values)} columns, expected at least 9")
        cpu = str(values[12] if len(values) >= 13 else row)
        for column, name, _, _ in columns:
            # Columns an older kernel lacks read 0, as in node_exporter.
            present = column < len(values) and (column != 11 or len(values) >= 13)
            out.add(f"node_softnet_{name}", float(values[column] if present else 0), cpu=cpu)


def collect_udp_queues(src: HostPaths, out: Collected) -> None:
    """Bytes queued on all UDP sockets, by direction and IP version."""
    out.family(
        "node_udp_queues",
        "gauge",
        "Number of allocated memory in the kernel for UDP datagrams in bytes.",
    )
    found = 0
    for table, ip in (("net/udp", "v4"), ("net/udp6", "v6")):
        try:
            lines = src.proc_table(table)
        except FileNotFoundError:
            continue
        found += 1
        tx = rx = 0
        for line in lines[1:]:
            fields = line.split()
            if len(fields) > 4:
                tx_text, _, rx_text = fields[4].partition(":")
                tx += int(tx_text, 16)
                rx += int(rx_text, 16)
        out.add("node_udp_queues", float(tx), queue="tx", ip=ip)
        out.add("node_udp_queues", float(rx), queue="rx", ip=ip)
    if not found:
        raise FileNotFoundError(f"{src.proc / 'net/udp'}")


def collect_tcpstat(src: HostPaths, out: Collected) -> None:
    """TCP sockets by state plus queued bytes, v4 and v6 together (off by default in
    node_exporter, which asks netlink; the /proc tables hold the same sockets)."""
    out.family("node_tcp_connection_states", "gauge", "Number of connection states.")
    states: Counter[str] = Counter()
    queued = {"tx_queued_bytes": 0, "rx_queued_bytes": 0}
    for table in ("net/tcp", "net/tcp6"):
        try:
            lines = src.proc_table(table)
        except FileNotFoundError:
            if table == "net/tcp":
                raise
            continue
        for line in lines[1:]:
            fields = line.split()
            if len(fields) < 5:
                continue
            states[_TCP_STATES.get(int(fields[3], 16), "unknown")] += 1
            tx_text, _, rx_text = fields[4].partition(":")
            queued["tx_queued_bytes"] += int(tx_text, 16)
            queued["rx_queued_bytes"] += int(rx_text, 16)
    for state, count in (*states.items(), *queued.items()):
        out.add("node_tcp_connection_states", float(count), state=state)


def collect_arp(src: HostPaths, out: Collected) -> None:
    """Neighbour entries per device (the kernel leaves NOARP entries out of the table)."""
    out.family("node_arp_entries", "gauge", "ARP entries by device")
    devices: Counter[str] = Counter()
    for line in src.proc_table("net/arp")[1:]:
        fields = line.split()
        if len(fields) >= 6:
            devices[fields[5]] += 1
    for device, count in devices.items():
        out.add("node_arp_entries", float(count), device=device)


def collect_conntrack(src: HostPaths, out: Collected) -> None:
    """Connection-tracking table use and limit, and its per-CPU statistics summed."""
    count = float(src.proc_text("sys/net/netfilter/nf_conntrack_count"))
    limit = float(src.proc_text("sys/net/netfilter/nf_conntrack_max"))
    out.family(
        "node_nf_conntrack_entries",
        "gauge",
        "Number of currently allocated flow entries for connection tracking.",
    )
    out.add("node_nf_conntrack_entries", count)
    out.family(
        "node_nf_conntrack_entries_limit", "gauge", "Maximum size of connection tracking table."
    )
    out.add("node_nf_conntrack_entries_limit", limit)
    lines = src.proc_text("net/stat/nf_conntrack").splitlines()
    header = lines[0].split()
    totals: Counter[str] = Counter()
    for line in lines[1:]:
        for name, text in zip(header, line.split()):
            totals[name] += int(text, 16)
    for name in _CONNTRACK_STATS:
        metric = f"node_nf_conntrack_stat_{name}"
        out.family(metric, "gauge", f"Connection tracking statistic {name}.")
        out.add(metric, float(totals[name]))
