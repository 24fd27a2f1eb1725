"""``limit_ratio``'s sampling: a series is in the sample when its labels' hash, scaled to
[0, 1), is below the ratio (or, for a negative ratio, at or above ``1 + ratio``), exactly as
Prometheus's ``HashRatioSampler`` decides, so the same series are chosen as there.

The hash is ``labels.Labels.Hash``: XXH64 (seed 0) of every name and value, each followed by
the byte 0xff. XXH64 is written out here (it is a few lines, and no allowed dependency has it).
"""

from __future__ import annotations

import struct

from ..labels import Labels

_M = (1 << 64) - 1
_P1 = 0x9E3779B185EBCA87
_P2 = 0xC2B2AE3D27D4EB4F
_P3 = 0x165667B19E3779F9
_P4 = 0x85EBCA77C2B2AE63
_P5 = 0x27D4EB2F165667C5


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M


def _round(acc: int, lane: int) -> int:
    acc = (acc + lane * _P2) & _M
    return (_rotl(acc, 31) * _P1) & _M


def _merge(acc: int, val: int) -> int:
    acc ^= _round(0, val)
    return (acc * _P1 + _P4) & _M


def xxh64(data: bytes) -> int:
    """XXH64 of ``data`` with seed 0."""
    n = len(data)
    i = 0
    if n >= 32:
        v1 = (_P1 + _P2) & _M
        v2 = _P2
        v3 = 0
        v4 = (-_P1) & _M
        while i + 32 <= n:
            a, b, c, d = struct.unpack_from("<4Q", data, i)
            v1, v2, v3, v4 = _round(v1, a), _round(v2, b), _round(v3, c), _round(v4, d)
            i += 32
        h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & _M
        for v in (v1, v2, v3, v4):
            h = _merge(h, v)
    else:
        h = _P5
    h = (h + n) & _M
    while i + 8 <= n:
        (k,) = struct.unpack_from("<Q", data, i)
        h ^= _round(0, k)
        h = (_rotl(h, 27) * _P1 + _P4) & _M
        i += 8
    if i + 4 <= n:
        (k,) = struct.unpack_from("<I", data, i)
        h ^= (k * _P1) & _M
        h = (_rotl(h, 23) * _P2 + _P3) & _M
        i += 4
    while i < n:
        h ^= (data[i] * _P5) & _M
        h = (_rotl(h, 11) * _P1) & _M
        i += 1
    h ^= h >> 33
    h = (h * _P2) & _M
    h ^= h >> 29
    h = (h * _P3) & _M
    h ^= h >> 32
    return h


def labels_hash(labels: Labels) -> int:
    """``labels.Labels.Hash()``."""
    return xxh64(b"".join(n.encode() + b"\xff" + v.encode() + b"\xff" for n, v in labels))


def in_sample(labels: Labels, ratio: float) -> bool:
    """Whether ``limit_ratio(ratio, ...)`` keeps the series (``AddRatioSample``)."""
    offset = labels_hash(labels) / float(_M)
    return (ratio >= 0 and offset < ratio) or (ratio < 0 and offset >= 1.0 + ratio)
