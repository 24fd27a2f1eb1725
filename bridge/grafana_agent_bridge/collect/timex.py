"""Kernel clock discipline from adjtimex(2) (node_exporter's ``timex`` collector).

A read-only call (``modes`` 0): it tells whether NTP keeps the clock synchronised and by
how much it is off, which the node dashboards chart. Needs no privilege.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

from .families import Collected
from .hostfs import HostPaths

_TIME_ERROR = 5  # the clock is not synchronised
_STA_NANO = 0x2000  # offset and jitter are in ns rather than µs
_PPM16 = 1_000_000.0 * 65536.0  # freq, ppsfreq, stabil: ppm with a 16-bit fraction


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class Timex(ctypes.Structure):
    """``struct timex`` of <sys/timex.h> (LP64 and ILP32 layouts alike, by ctypes' rules)."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def adjtimex() -> tuple[int, Timex]:
    """The clock state and its parameters, without changing anything.

    Raises:
        OSError: the call failed (e.g. refused by a seccomp filter).
    """
    tx = Timex()
    state = _libc().adjtimex(ctypes.byref(tx))
    if state == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"adjtimex: {os.strerror(err)}")
    return state, tx


_METRICS = (  # name, type, help
    ("sync_status", "gauge", "Is clock synchronized to a reliable server (1 = yes, 0 = no)."),
    ("offset_seconds", "gauge", "Time offset in between local system and reference clock."),
    ("frequency_adjustment_ratio", "gauge", "Local clock frequency adjustment."),
    ("maxerror_seconds", "gauge", "Maximum error in seconds."),
    ("estimated_error_seconds", "gauge", "Estimated error in seconds."),
    ("status", "gauge", "Value of the status array bits."),
    ("loop_time_constant", "gauge", "Phase-locked loop time constant."),
    ("tick_seconds", "gauge", "Seconds between clock ticks."),
    ("pps_frequency_hertz", "gauge", "Pulse per second frequency."),
    ("pps_jitter_seconds", "gauge", "Pulse per second jitter."),
    ("pps_shift_seconds", "gauge", "Pulse per second interval duration."),
    (
        "pps_stability_hertz",
        "gauge",
        "Pulse per second stability, average of recent frequency changes.",
    ),
    ("pps_jitter_total", "counter", "Pulse per second count of jitter limit exceeded events."),
    ("pps_calibration_total", "counter", "Pulse per second count of calibration intervals."),
    ("pps_error_total", "counter", "Pulse per second count of calibration errors."),
    (
        "pps_stability_exceeded_total",
        "counter",
        "Pulse per second count of stability limit exceeded events.",
    ),
    ("tai_offset_seconds", "gauge", "International Atomic Time (TAI) offset."),
)


def timex_values(state: int, tx: Timex) -> dict[str, float]:
    """node_exporter's units: seconds, ratio and hertz rather than the kernel's scaled ints."""
    divisor = 1e9 if tx.status & _STA_NANO else 1e6
    return {
        "sync_status": 0.0 if state == _TIME_ERROR else 1.0,
        "offset_seconds": tx.offset / divisor,
        "frequency_adjustment_ratio": 1 + tx.freq / _PPM16,
        "maxerror_seconds": tx.maxerror / 1e6,
        "estimated_error_seconds": tx.esterror / 1e6,
        "status": float(tx.status),
        "loop_time_constant": float(tx.constant),
        "tick_seconds": tx.tick / 1e6,
        "pps_frequency_hertz": tx.ppsfreq / _PPM16,
        "pps_jitter_seconds": tx.jitter / divisor,
        "pps_shift_seconds": float(tx.shift),
        "pps_stability_hertz": tx.stabil / _PPM16,
        "pps_jitter_total": float(tx.jitcnt),
        "pps_calibration_total": float(tx.calcnt),
        "pps_error_total": float(tx.errcnt),
        "pps_stability_exceeded_total": float(tx.stbcnt),
        "tai_offset_seconds": float(tx.tai),
    }


def collect_timex(src: HostPaths, out: Collected) -> None:
    del src  # a system call, not a file
    values = timex_values(*adjtimex())
    for name, kind, help_text in _METRICS:
        out.family(f"node_timex_{name}", kind, help_text)
        out.add(f"node_timex_{name}", values[name])
