"""Network interfaces: /proc/net/dev counters and /sys/class/net properties.

node_exporter's ``netdev`` and ``netclass`` collectors (same names, ``device`` label).
"""

from __future__ import annotations

from .families import Collected
from .hostfs import HostPaths, read_int

_NET_FIELDS = ("bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast")
_NET_TX_FIELDS = ("bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed")

# /sys/class/net/<dev>/<file> → node_network_<name>, type. Files the kernel refuses to read
# (carrier, speed, duplex of a link that is down) are left out, as node_exporter does.
_CLASS_NUMBERS = (
    ("addr_assign_type", "address_assign_type", "gauge"),
    ("carrier", "carrier", "gauge"),
    ("carrier_changes", "carrier_changes_total", "counter"),
    ("carrier_up_count", "carrier_up_changes_total", "counter"),
    ("carrier_down_count", "carrier_down_changes_total", "counter"),
    ("dev_id", "device_id", "gauge"),
    ("dormant", "dormant", "gauge"),
    ("flags", "flags", "gauge"),
    ("ifindex", "iface_id", "gauge"),
    ("iflink", "iface_link", "gauge"),
    ("link_mode", "iface_link_mode", "gauge"),
    ("mtu", "mtu_bytes", "gauge"),
    ("name_assign_type", "name_assign_type", "gauge"),
    ("netdev_group", "net_dev_group", "gauge"),
    ("speed", "speed_bytes", "gauge"),
    ("tx_queue_len", "transmit_queue_length", "gauge"),
    ("type", "protocol_type", "gauge"),
)
_IFF_UP = 1


def collect_netdev(src: HostPaths, out: Collected) -> None:
    for i, f in enumerate((*_NET_FIELDS, *_NET_TX_FIELDS)):
        direction = "receive" if i < len(_NET_FIELDS) else "transmit"
        out.family(
            f"node_network_{direction}_{f}_total",
            "counter",
            f"Network device statistic {direction}_{f}.",
        )
    out.family(
        "node_network_receive_nohandler_total",
        "counter",
        "Network device statistic receive_nohandler.",
    )
    for line in src.proc_text("net/dev").splitlines()[2:]:
        device, _, rest = line.partition(":")
        values = rest.split()
        if len(values) < 16:
            continue
        device = device.strip()
        for i, f in enumerate(_NET_FIELDS):
            out.add(f"node_network_receive_{f}_total", float(values[i]), device=device)
        for i, f in enumerate(_NET_TX_FIELDS):
            out.add(f"node_network_transmit_{f}_total", float(values[8 + i]), device=device)
        # Not in /proc/net/dev; node_exporter reads it over netlink, the same kernel counter.
        try:
            nohandler = src.sys_text(f"class/net/{device}/statistics/rx_nohandler")
        except OSError:
            continue
        out.add("node_network_receive_nohandler_total", float(nohandler), device=device)


def collect_netclass(src: HostPaths, out: Collected) -> None:
    """Link state and properties of every interface, including those that are down."""
    out.family("node_network_up", "gauge", "Value is 1 if operstate is 'up', 0 otherwise.")
    out.family(
        "node_network_info",
        "gauge",
        "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
    )
    for _, name, kind in _CLASS_NUMBERS:
        out.family(f"node_network_{name}", kind, f"Network device property: {name}")
    base = src.sys / "class/net"
    for path in sorted(base.iterdir()):
        if not path.is_dir():  # bonding_masters is a file
            continue
        device = path.name
        text = {}
        for attr in ("address", "broadcast", "duplex", "operstate", "ifalias"):
            try:
                text[attr] = (path / attr).read_text().strip()
            except OSError:
                text[attr] = ""
        numbers: dict[str, int] = {}
        for attr, _, _ in _CLASS_NUMBERS:
            try:
                numbers[attr] = read_int((path / attr).read_text())
            except (OSError, ValueError):
                continue
        out.add("node_network_up", 1.0 if text["operstate"] == "up" else 0.0, device=device)
        flags = numbers.get("flags")
        admin = "unknown" if flags is None else ("up" if flags & _IFF_UP else "down")
        out.add("node_network_info", 1.0, device=device, adminstate=admin, **text)
        for attr, name, _ in _CLASS_NUMBERS:
            if attr not in numbers:
                continue
            value = float(numbers[attr])
            if attr == "speed":
                value = float(int(numbers[attr] * 1000 * 1000 / 8))  # Mbit/s → bytes/s
            out.add(f"node_network_{name}", value, device=device)
