"""Write-ahead log: numbered segment files of CRC-checked records.

Why a WAL: an append is acknowledged (HTTP 204) only once its samples are in the log, written
to the OS with ``os.write``; the page cache survives ``kill -9`` of the daemon, so nothing
acknowledged is lost. Segments are fsynced when they are closed and on shutdown (as Prometheus
does), which bounds what a power cut can take.

Layout: ``wal/00000001``, ``wal/00000002``, ... each starting with an 8-byte magic, then
records ``type:u8 | length:u32 | crc32:u32 | payload``; the CRC covers type, length and payload
so a torn tail, a flipped bit or a garbage length are all detected. Sample records are columns
(refs, timestamps, values) written and read with numpy in one step each, which is what makes a
replay of millions of samples take well under a second.

Every segment starts with a series record naming all series live in the head when it was
opened, so a segment never needs an older one to resolve its series refs: old segments can be
deleted (retention, acknowledged by the feed) and a corrupt segment costs only its own tail.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cramjam
import numpy as np
import numpy.typing as npt

from ..histogram.model import FloatHistogram
from ..labels import Labels
from ..storage import Exemplar, MetricMetadata
from . import histsamples
from .errors import NewerFormatError
from .state import fsync_dir

log = logging.getLogger(__name__)

MAGIC = b"GABWAL\x00\x01"
"""A segment's first bytes: the name, then the format version (big-endian u16)."""
MAGIC_NAME = MAGIC[:6]
FORMAT_VERSION = int.from_bytes(MAGIC[6:], "big")
HEADER = struct.Struct("<BII")  # type, payload length, crc32
MAX_RECORD = 256 * 1024 * 1024
"""A length above this is certainly corruption (a write is never that large)."""


class RecordType(enum.IntEnum):
    SERIES = 1
    SAMPLES = 2
    EXEMPLARS = 3
    METADATA = 4
    SAMPLES_ZSTD = 5
    """Samples, columns byte-shuffled and zstd'd: ~3.6 instead of 24 bytes per sample."""
    SAMPLES_HIST = 6
    """A SAMPLES_ZSTD payload (length-prefixed) followed by the histograms of the samples whose
    value is the histogram marker, in order (``histsamples.encode_many``). One record, so a
    torn write never leaves a marker without its histogram (Prometheus's histogram records)."""
    SERIES_ZSTD = 7
    """A SERIES payload, zstd level 1 (``series_record``). The labels of a sender's series
    repeat each other (job, instance, juju_*), so ~420 bytes of JSON per node_exporter series
    become ~8: growing the segment file by the raw text cost the kernel ~1 us per new series,
    the compression ~0.1 us. SERIES records are still read (WALs written before)."""


SAMPLE_TYPES = (RecordType.SAMPLES, RecordType.SAMPLES_ZSTD, RecordType.SAMPLES_HIST)
SERIES_TYPES = (RecordType.SERIES, RecordType.SERIES_ZSTD)


class CorruptRecordError(Exception):
    """The payload of a record passed its CRC but does not decode (should never happen)."""


def _crc(type_and_len: bytes, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(type_and_len))


def encode_record(rtype: RecordType, payload: bytes) -> bytes:
    head = struct.pack("<BI", rtype, len(payload))
    return head + struct.pack("<I", _crc(head, payload)) + payload


# -- payload codecs -------------------------------------------------------------------------

_U32 = struct.Struct("<I")


def encode_series(series: Sequence[tuple[int, Labels]]) -> bytes:
    """Series definitions as JSON (``[[ref, [name, value, ...]], ...]``): the C JSON codec
    turns the 10 k series of a segment checkpoint around in milliseconds."""
    return SeriesEncoder().encode(series)


_JSON = json.JSONEncoder(ensure_ascii=False).encode


class SeriesEncoder:
    """``encode_series`` with the JSON text of every label pair it wrote remembered.

    Label pairs repeat across series (``job``, ``juju_model``, ... and every metric name),
    and the ingest path shares one pair object between all the label sets holding it, so a
    series record is mostly joining remembered text: about a third of the C JSON encoder's
    cost for a sender's first requests, where every series is new. Same bytes either way.
    """

    MAX_PAIRS = 200_000
    """Pairs remembered before starting over (bounds the memory of unique label values)."""

    def __init__(self) -> None:
        self._text: dict[tuple[str, str], str] = {}

    def _pair(self, pair: tuple[str, str]) -> str:
        if len(self._text) >= self.MAX_PAIRS:
            self._text.clear()
        text = self._text[pair] = _JSON(pair[0]) + "," + _JSON(pair[1])
        return text

    def encode(self, series: Sequence[tuple[int, Labels]]) -> bytes:
        text = self._text
        known = text.__getitem__
        parts = []
        for ref, labels in series:
            try:
                body = ",".join(map(known, labels))
            except KeyError:
                # Only the pairs not seen yet are encoded: a fresh encoder (every start) meets
                # a few new pairs in each of its first series, not a whole new label set.
                body = ",".join([text.get(pair) or self._pair(pair) for pair in labels])
            parts.append(f"[{int(ref)},[{body}]]")
        return ("[" + ",".join(parts) + "]").encode("utf-8", "surrogatepass")


def series_record(payload: bytes) -> bytes:
    """A SERIES_ZSTD record of a ``SeriesEncoder``/``encode_series`` payload."""
    return encode_record(
        RecordType.SERIES_ZSTD, bytes(cramjam.zstd.compress(payload, level=1).read())
    )


def decode_series_record(rec: Record) -> list[tuple[int, Labels]]:
    """The series of a SERIES or SERIES_ZSTD record."""
    if rec.type == RecordType.SERIES:
        return decode_series(rec.payload)
    try:
        payload = bytes(cramjam.zstd.decompress(bytes(rec.payload)).read())
    except Exception as e:  # cramjam raises its own error type
        raise CorruptRecordError(f"series record does not decompress: {e}") from e
    return decode_series(payload)


def decode_series(payload: bytes | memoryview) -> list[tuple[int, Labels]]:
    try:
        doc = json.loads(bytes(payload).decode("utf-8", "surrogatepass"))
        out: list[tuple[int, Labels]] = []
        for ref, flat in doc:
            if not isinstance(ref, int) or len(flat) % 2:  # the CRC already vouches for it
                raise CorruptRecordError("malformed series entry")
            out.append((ref, tuple(zip(flat[::2], flat[1::2], strict=True))))
        return out
    except (ValueError, TypeError) as e:
        raise CorruptRecordError(str(e)) from e


def encode_samples(
    refs: npt.NDArray[np.uint64], ts: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> bytes:
    n = len(refs)
    return b"".join(
        (
            _U32.pack(n),
            refs.astype("<u8", copy=False).tobytes(),
            ts.astype("<i8", copy=False).tobytes(),
            values.astype("<f8", copy=False).tobytes(),
        )
    )


def encode_samples_record(
    refs: npt.NDArray[np.uint64],
    ts: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    hists: Sequence[FloatHistogram] = (),
    hist_wire: Sequence[bytes | None] = (),
) -> bytes:
    """A compressed samples record: each 8-byte column stored byte plane by byte plane (the
    high bytes of refs and timestamps are nearly constant), then zstd level 1 (~40 ns/sample)."""
    n = len(refs)
    cols = (
        refs.astype("<u8", copy=False),
        ts.astype("<i8", copy=False),
        values.astype("<f8", copy=False),
    )
    planes = b"".join(
        np.ascontiguousarray(c).view(np.uint8).reshape(n, 8).T.tobytes() for c in cols
    )
    payload = _U32.pack(n) + bytes(cramjam.zstd.compress(planes, level=1).read())
    if not hists:
        return encode_record(RecordType.SAMPLES_ZSTD, payload)
    payload = _U32.pack(len(payload)) + payload + histsamples.encode_many(hists, hist_wire)
    return encode_record(RecordType.SAMPLES_HIST, payload)


def _inner_samples(payload: memoryview) -> memoryview:
    if len(payload) < 4:
        raise CorruptRecordError("short samples record")
    (k,) = _U32.unpack_from(payload, 0)
    if 4 + k > len(payload):
        raise CorruptRecordError("histogram samples record shorter than its samples")
    return payload[4 : 4 + k]


def decode_record_histograms(rec: Record, values: npt.NDArray[np.float64]) -> list[FloatHistogram]:
    """The histograms of a SAMPLES_HIST record, one per marker in ``values`` (its columns)."""
    if rec.type != RecordType.SAMPLES_HIST:
        return []
    inner = _inner_samples(rec.payload)
    try:
        hists = histsamples.decode_many(rec.payload[4 + len(inner) :])
    except histsamples.HistogramCorruptError as e:
        raise CorruptRecordError(str(e)) from e
    if len(hists) != int(histsamples.hist_mask(values).sum()):
        raise CorruptRecordError("histogram count does not match the samples' markers")
    return hists


def decode_sample_record(
    rec: Record,
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    if rec.type == RecordType.SAMPLES:
        return decode_samples(rec.payload)
    payload = rec.payload if rec.type == RecordType.SAMPLES_ZSTD else _inner_samples(rec.payload)
    if len(payload) < 4:
        raise CorruptRecordError("short samples record")
    (n,) = _U32.unpack_from(payload, 0)
    try:
        planes = bytes(cramjam.zstd.decompress(bytes(payload[4:])).read())
    except Exception as e:  # cramjam raises its own error type
        raise CorruptRecordError(f"samples record does not decompress: {e}") from e
    if len(planes) != 24 * n:
        raise CorruptRecordError("samples record length does not match its count")
    cols = np.frombuffer(planes, dtype=np.uint8).reshape(3, 8, n).transpose(0, 2, 1)
    refs = np.ascontiguousarray(cols[0]).view("<u8").reshape(n)
    ts = np.ascontiguousarray(cols[1]).view("<i8").reshape(n)
    values = np.ascontiguousarray(cols[2]).view("<f8").reshape(n)
    return refs, ts, values


def decode_samples(
    payload: bytes | memoryview,
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    if len(payload) < 4:
        raise CorruptRecordError("short samples record")
    (n,) = _U32.unpack_from(payload, 0)
    if len(payload) != 4 + 24 * n:
        raise CorruptRecordError("samples record length does not match its count")
    refs = np.frombuffer(payload, dtype="<u8", count=n, offset=4)
    ts = np.frombuffer(payload, dtype="<i8", count=n, offset=4 + 8 * n)
    values = np.frombuffer(payload, dtype="<f8", count=n, offset=4 + 16 * n)
    return refs, ts, values


def encode_exemplars(items: Sequence[tuple[int, Exemplar]]) -> bytes:
    doc = [[ref, [list(p) for p in ex.labels], ex.value, ex.timestamp] for ref, ex in items]
    # float('nan') etc. are valid exemplar values; json handles them with allow_nan.
    return json.dumps(doc, separators=(",", ":")).encode()


def decode_exemplars(payload: bytes | memoryview) -> list[tuple[int, Exemplar]]:
    try:
        doc = json.loads(bytes(payload))
        return [
            (int(ref), Exemplar(tuple((str(n), str(v)) for n, v in lbls), float(val), int(ts)))
            for ref, lbls, val, ts in doc
        ]
    except (ValueError, TypeError) as e:
        raise CorruptRecordError(str(e)) from e


def encode_metadata(items: Sequence[MetricMetadata]) -> bytes:
    doc = [[m.metric_family_name, m.type, m.help, m.unit] for m in items]
    return json.dumps(doc, separators=(",", ":")).encode()


def decode_metadata(payload: bytes | memoryview) -> list[MetricMetadata]:
    try:
        return [
            MetricMetadata(str(a), str(b), str(c), str(d))
            for a, b, c, d in json.loads(bytes(payload))
        ]
    except (ValueError, TypeError) as e:
        raise CorruptRecordError(str(e)) from e


# -- segments -------------------------------------------------------------------------------


def segment_name(index: int) -> str:
    return f"{index:08d}"


def list_segments(wal_dir: Path) -> list[int]:
    out = []
    for p in wal_dir.iterdir():
        if p.name.isdigit() and p.is_file():
            out.append(int(p.name))
    return sorted(out)


@dataclass
class Record:
    offset: int
    type: int
    payload: memoryview
    end: int


@dataclass
class ScanResult:
    records: list[Record]
    good_end: int
    """Offset just after the last valid record (where a repair truncates)."""
    corrupt: str | None
    """Why the scan stopped before the end of the data, or None if it read everything."""


def scan(data: bytes | memoryview, start: int = 0, stop: int | None = None) -> ScanResult:
    """Parse the records of one segment's bytes from ``start`` (a record boundary) to ``stop``."""
    buf = memoryview(data)
    end = len(buf) if stop is None else min(stop, len(buf))
    if start < len(MAGIC):
        head = bytes(buf[: len(MAGIC)])
        if head != MAGIC:
            if len(head) == len(MAGIC) and head.startswith(MAGIC_NAME):
                version = int.from_bytes(head[len(MAGIC_NAME) :], "big")
                if version > FORMAT_VERSION:
                    raise NewerFormatError(f"WAL format {version}", "a WAL segment")
            return ScanResult([], 0, "bad segment header")
        start = len(MAGIC)
    return _scan_from(buf[start:end], start)


_TYPES = {int(t) for t in RecordType}


def read_segment(path: Path, start: int = 0, stop: int | None = None) -> ScanResult:
    """Read and parse ``path`` from ``start`` to ``stop`` (end of file if None)."""
    with open(path, "rb") as f:
        if start <= len(MAGIC):
            data = f.read() if stop is None else f.read(stop)
            return scan(data, start, stop)
        f.seek(start)
        data = f.read(-1 if stop is None else max(0, stop - start))
    return _scan_from(memoryview(data), start)


def _scan_from(buf: memoryview, base: int) -> ScanResult:
    """Parse records from bytes that begin at file offset ``base`` (a record boundary)."""
    pos = 0
    records: list[Record] = []
    while pos < len(buf):
        at = base + pos
        if len(buf) - pos < HEADER.size:
            return ScanResult(records, at, f"torn record header at offset {at}")
        rtype, length, crc = HEADER.unpack_from(buf, pos)
        if length > MAX_RECORD:
            return ScanResult(records, at, f"bad record header at offset {at}")
        body = pos + HEADER.size
        if body + length > len(buf):
            return ScanResult(records, at, f"torn record at offset {at}")
        payload = buf[body : body + length]
        if _crc(bytes(buf[pos : pos + 5]), payload) != crc:
            return ScanResult(records, at, f"checksum mismatch at offset {at}")
        if rtype not in _TYPES:
            # Whole and checksummed, so no damage: a record type from a newer version.
            raise NewerFormatError(f"a record of type {rtype} at offset {at}", "a WAL segment")
        records.append(Record(at, rtype, payload, base + body + length))
        pos = body + length
    return ScanResult(records, base + pos, None)


class SegmentWriter:
    """The single open segment that appends go to (callers serialize access)."""

    def __init__(self, wal_dir: Path, index: int, *, create: bool) -> None:
        self.dir = wal_dir
        self.index = index
        self.path = wal_dir / segment_name(index)
        flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT | os.O_EXCL if create else 0)
        self.fd = os.open(self.path, flags, 0o644)
        if create:
            try:
                self._write_all(MAGIC)
                fsync_dir(wal_dir)
            except OSError:
                # No half-made segment may stay behind: the next attempt reuses its number.
                os.close(self.fd)
                self.path.unlink(missing_ok=True)
                raise
        self.size = os.fstat(self.fd).st_size

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def write(self, data: bytes) -> tuple[int, int]:
        """Append ``data`` (whole records); on failure restore the old size and re-raise."""
        start = self.size
        try:
            self._write_all(data)
        except OSError:
            try:
                os.ftruncate(self.fd, start)
            except OSError:
                log.exception("could not cut a partial WAL write back in %s", self.path)
            raise
        self.size = start + len(data)
        return start, self.size

    def close(self, *, sync: bool = True) -> None:
        if self.fd < 0:
            return
        try:
            if sync:
                os.fsync(self.fd)
        finally:
            os.close(self.fd)
            self.fd = -1


def iter_sample_records(records: Sequence[Record]) -> Iterator[Record]:
    return (r for r in records if r.type in SAMPLE_TYPES)
