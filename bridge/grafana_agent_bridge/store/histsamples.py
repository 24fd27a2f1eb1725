"""Native histogram samples inside the store: how they sit beside the float columns.

A histogram sample occupies its place in a series' float columns like any sample (its
timestamp in ``ts``, a *marker* in ``values``), and the histogram itself lives in a side table
keyed by series and timestamp. So ordering, duplicates, retention, block cutting and the
feed's record positions work unchanged for both kinds, and a series may switch between floats
and histograms sample by sample as Prometheus allows. The marker is a NaN with a payload no
float sample can carry into the store (ingest rewrites such a float to Prometheus's normal
NaN, ``canonical_floats``).

On disk (WAL records, block files) histograms are stored as serialized ``prometheus.Histogram``
messages (integer deltas when the counts are whole numbers, which is Prometheus's own compact
form), length-prefixed and zstd-compressed together.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence

import cramjam
import numpy as np
import numpy.typing as npt

from ..histogram.codec import HistogramDecodeError, HistogramSample, decode_histogram, to_proto
from ..histogram.model import FloatHistogram

HIST_BITS = 0x7FF0000000000003
"""The float column's entry where a histogram sample sits."""
HIST_MARK: float = struct.unpack("<d", struct.pack("<Q", HIST_BITS))[0]
NORMAL_NAN: float = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000001))[0]
"""Prometheus's ``value.NormalNaN``: what a float sample carrying the marker's bits becomes."""

_U32 = struct.Struct("<I")


class HistogramCorruptError(ValueError):
    """Stored histogram bytes that do not decode (the CRC around them passed)."""


def hist_mask(values: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    return values.view(np.uint64) == np.uint64(HIST_BITS)


def is_mark(value: float) -> bool:
    return math.isnan(value) and struct.pack("<d", value) == struct.pack("<Q", HIST_BITS)


def canonical_floats(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``values`` with any float that carries the marker's bits replaced by the normal NaN."""
    mask = hist_mask(values)
    if not mask.any():
        return values
    out = values.copy()
    out[mask] = NORMAL_NAN
    return out


def encode_one(h: FloatHistogram) -> bytes:
    """One histogram as a ``prometheus.Histogram`` (integer form when its counts allow)."""
    return to_proto(HistogramSample(0, h, True)).SerializeToString()


def decode_one(raw: bytes) -> FloatHistogram:
    try:
        return decode_histogram(raw).histogram
    except HistogramDecodeError as e:
        raise HistogramCorruptError(str(e)) from e


def encode_many(hists: Sequence[FloatHistogram], wire: Sequence[bytes | None] = ()) -> bytes:
    """Length-prefixed serialized histograms, zstd-compressed as one frame. ``wire``: empty,
    or for each histogram the ``prometheus.Histogram`` it was decoded from (taken as is:
    encoding one costs more than the rest of its way into the store) or None."""
    parts: list[bytes] = []
    for i, h in enumerate(hists):
        raw = wire[i] if wire else None
        if raw is None:
            raw = encode_one(h)
        parts.append(_U32.pack(len(raw)))
        parts.append(raw)
    return bytes(cramjam.zstd.compress(b"".join(parts), level=3).read())


def split_many(data: bytes | memoryview) -> list[bytes]:
    """The serialized histograms of an ``encode_many`` frame, not yet decoded."""
    try:
        raw = bytes(cramjam.zstd.decompress(bytes(data)).read())
    except Exception as e:  # cramjam raises its own error type
        raise HistogramCorruptError(f"histograms do not decompress: {e}") from e
    out: list[bytes] = []
    pos = 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise HistogramCorruptError("truncated histogram length")
        (n,) = _U32.unpack_from(raw, pos)
        pos += 4
        if pos + n > len(raw):
            raise HistogramCorruptError("truncated histogram")
        out.append(raw[pos : pos + n])
        pos += n
    return out


def decode_many(data: bytes | memoryview) -> list[FloatHistogram]:
    return [decode_one(raw) for raw in split_many(data)]


def aligned(
    ts: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    lookup: Callable[[int], FloatHistogram | None],
) -> list[FloatHistogram | None] | None:
    """``SeriesData.histograms`` for these columns: None when no sample is a histogram.

    A marker whose histogram cannot be found (a damaged side table) becomes a float NaN
    rather than a histogram that does not exist."""
    mask = hist_mask(values)
    if not mask.any():
        return None
    out: list[FloatHistogram | None] = [None] * len(ts)
    for i in np.flatnonzero(mask).tolist():
        h = lookup(int(ts[i]))
        if h is None:
            values[i] = NORMAL_NAN
        out[i] = h
    return out
