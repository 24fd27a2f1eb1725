"""Immutable blocks: the samples of a time range, compressed column-wise, with their labels.

A block is a directory ``blocks/<id>/`` with three files:

- ``chunks``: zstd frames, one per *group* of consecutive series (about
  ``block_group_samples`` samples each). Inside a group, timestamps are delta-of-delta
  encoded and zigzagged, values are XORed with their predecessor (Gorilla's ideas), and both
  columns are byte-shuffled (all first bytes, then all second bytes, ...) so that zstd sees the
  long runs of zero bytes that regular scrapes produce. Columnar numpy + zstd does in one call
  what a per-sample bit writer would do in Python millions of times.
- ``index``: zstd-compressed labels of every series plus, per series, its group, position in
  the group, sample count and time range.
- ``histograms`` (only when some series holds native histogram samples): their rows and
  timestamps, then the histograms (``histsamples.encode_many``); the samples themselves are
  markers in the value columns like any sample.
- ``meta.json``: time range, counts, and the CRC32 of the index and of every group, written
  last. A block is written in a temporary directory and renamed into place, so a crash never
  leaves a half-written block under its final name.

On load the CRCs are checked: a block whose meta or index is damaged is set aside (renamed
``*.corrupt``) and skipped; a damaged group only loses the series stored in it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import threading
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cramjam
import numpy as np
import numpy.typing as npt

from ..histogram.model import FloatHistogram
from ..labels import Labels
from . import histsamples
from .errors import NewerFormatError
from .state import fsync_dir, write_json

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_COLUMNS = 6  # per series in the index: group, start, count, mint, maxt, value mode


@dataclass
class BlockSeries:
    labels: Labels
    ts: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    hists: list[FloatHistogram | None] | None = None
    """As ``SeriesData.histograms``: the histogram of each marker sample."""


_HIST_HEAD = struct.Struct("<II")


def _encode_histograms(series: Sequence[BlockSeries]) -> bytes:
    """The ``histograms`` file: count, compressed (row, timestamp) columns, histograms."""
    rows: list[int] = []
    times: list[int] = []
    hists: list[FloatHistogram] = []
    for row, s in enumerate(series):
        if s.hists is None:
            continue
        for t, h in zip(s.ts.tolist(), s.hists):
            if h is not None:
                rows.append(row)
                times.append(t)
                hists.append(h)
    if not hists:
        return b""
    cols = np.array(rows, "<u4").tobytes() + np.array(times, "<i8").tobytes()
    packed = bytes(cramjam.zstd.compress(cols, level=3).read())
    return _HIST_HEAD.pack(len(hists), len(packed)) + packed + histsamples.encode_many(hists)


def _decode_histograms(data: bytes) -> dict[int, dict[int, bytes]]:
    """Row -> timestamp -> serialized histogram (decoded only when read)."""
    n, k = _HIST_HEAD.unpack_from(data, 0)
    cols = bytes(cramjam.zstd.decompress(data[8 : 8 + k]).read())
    if len(cols) != 12 * n:
        raise ValueError("histogram columns do not match their count")
    rows = np.frombuffer(cols, "<u4", n).tolist()
    times = np.frombuffer(cols, "<i8", n, 4 * n).tolist()
    raws = histsamples.split_many(data[8 + k :])
    if len(raws) != n:
        raise ValueError("histogram count does not match")
    out: dict[int, dict[int, bytes]] = {}
    for row, t, raw in zip(rows, times, raws):
        out.setdefault(row, {})[t] = raw
    return out


def _shuffle(a: npt.NDArray[np.uint64]) -> bytes:
    return a.view(np.uint8).reshape(-1, 8).T.tobytes()


def _unshuffle(b: bytes | memoryview, n: int) -> npt.NDArray[np.uint64]:
    planes = np.frombuffer(b, dtype=np.uint8, count=8 * n).reshape(8, n)
    return np.ascontiguousarray(planes.T).view(np.uint64).reshape(n)


def encode_timestamps(ts: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    """First value, first delta, then deltas of deltas; zigzagged so small negatives stay small."""
    enc = np.empty(len(ts), dtype=np.int64)
    if len(ts):
        enc[0] = ts[0]
    if len(ts) > 1:
        d = np.diff(ts)
        enc[1] = d[0]
        enc[2:] = np.diff(d)
    return _zigzag(enc)


def decode_timestamps(enc: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    z = _unzigzag(enc)
    if len(z) <= 1:
        return z.copy()
    deltas = np.cumsum(z[1:])
    out = np.empty(len(z), dtype=np.int64)
    out[0] = z[0]
    out[1:] = z[0] + np.cumsum(deltas)
    return out


XOR_MODE = 0
_MAX_DECIMALS = 6
_POW10 = [10.0**k for k in range(_MAX_DECIMALS + 1)]


def _decimal_mode(values: npt.NDArray[np.float64]) -> tuple[int, npt.NDArray[np.int64] | None]:
    """The fewest decimals ``k`` such that every value is exactly ``int / 10**k`` (mode k+1)."""
    if not len(values) or not bool(np.all(np.isfinite(values))):
        return XOR_MODE, None
    for k, scale in enumerate(_POW10):
        scaled = np.round(values * scale)
        if float(np.max(np.abs(scaled))) >= 2.0**53:
            break
        if np.array_equal((scaled / scale).view(np.uint64), values.view(np.uint64)):
            return k + 1, scaled.astype(np.int64)
    return XOR_MODE, None


def _zigzag(a: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    return ((a << 1) ^ (a >> 63)).view(np.uint64)


def _unzigzag(u: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    return (u >> np.uint64(1)).view(np.int64) ^ -(u & np.uint64(1)).view(np.int64)


def encode_values(values: npt.NDArray[np.float64]) -> tuple[int, npt.NDArray[np.uint64]]:
    """Values as small integers: decimal deltas when every value is a short decimal (counters,
    rounded gauges: the common case, and far smaller than XOR), else Gorilla's XOR."""
    mode, ints = _decimal_mode(values)
    if ints is not None:
        deltas = np.empty_like(ints)
        deltas[0] = ints[0]
        deltas[1:] = np.diff(ints)
        return mode, _zigzag(deltas)
    bits = np.ascontiguousarray(values).view(np.uint64)
    out = bits.copy()
    out[1:] ^= bits[:-1]
    return XOR_MODE, out


def decode_values(mode: int, enc: npt.NDArray[np.uint64]) -> npt.NDArray[np.float64]:
    if mode == XOR_MODE:
        return np.bitwise_xor.accumulate(enc).view(np.float64)
    ints = np.cumsum(_unzigzag(enc))
    return ints / _POW10[mode - 1]


def _encode_group(series: Sequence[BlockSeries], level: int) -> tuple[bytes, list[int]]:
    ts = np.concatenate([encode_timestamps(s.ts) for s in series])
    encoded = [encode_values(s.values) for s in series]
    vals = np.concatenate([e for _, e in encoded])
    frame = cramjam.zstd.compress(_shuffle(ts) + _shuffle(vals), level=level).read()
    return bytes(frame), [mode for mode, _ in encoded]


def _segmented_cumsum(
    a: npt.NDArray[np.int64], starts: npt.NDArray[np.int64], counts: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Prefix sums restarting at each series start (exact under int64 wrap-around)."""
    c = np.cumsum(a)
    base = np.zeros(len(starts), dtype=np.int64)
    base[1:] = c[starts[1:] - 1]
    return c - np.repeat(base, counts)


def _decode_group(frame: bytes, n: int) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    raw = bytes(cramjam.zstd.decompress(frame).read())
    if len(raw) != 16 * n:
        raise ValueError("group size does not match its sample count")
    return _unshuffle(raw[: 8 * n], n), _unshuffle(raw[8 * n :], n)


def _encode_index(rows: Sequence[tuple[Labels, int, int, int, int, int, int]]) -> bytes:
    """rows: (labels, group, start, count, mint, maxt, value mode)."""
    labels_doc = json.dumps([[list(p) for p in r[0]] for r in rows], separators=(",", ":"))
    table = np.array([r[1:] for r in rows], dtype="<i8").reshape(-1, _COLUMNS)
    head = struct.pack("<QQ", len(rows), len(labels_doc.encode()))
    body = head + labels_doc.encode() + table.tobytes()
    return cramjam.zstd.compress(body, level=3).read()


def _decode_index(data: bytes) -> tuple[list[Labels], npt.NDArray[np.int64]]:
    raw = bytes(cramjam.zstd.decompress(data).read())
    n, doc_len = struct.unpack_from("<QQ", raw, 0)
    doc = json.loads(raw[16 : 16 + doc_len])
    labels = [tuple((str(a), str(b)) for a, b in pairs) for pairs in doc]
    table = np.frombuffer(raw, dtype="<i8", count=_COLUMNS * n, offset=16 + doc_len)
    table = table.reshape(n, _COLUMNS)
    if len(labels) != n:
        raise ValueError("index label count mismatch")
    return labels, table.astype(np.int64)


def write_block(
    blocks_dir: Path,
    series: Sequence[BlockSeries],
    mint: int,
    maxt: int,
    *,
    group_samples: int,
    level: int,
) -> Path:
    """Write a block of ``series`` (each non-empty, ascending) atomically; returns its dir."""
    series = sorted(series, key=lambda s: s.labels)
    block_id = f"{mint:020d}-{uuid.uuid4().hex[:12]}"
    tmp = blocks_dir / f"{block_id}.tmp"
    tmp.mkdir(parents=True)
    try:
        rows: list[list] = []
        groups: list[list[int]] = []
        chunks_path = tmp / "chunks"
        with open(chunks_path, "wb") as f:
            offset = 0
            pending: list[BlockSeries] = []
            pending_n = 0

            def flush() -> None:
                nonlocal offset, pending, pending_n
                if not pending:
                    return
                frame, modes = _encode_group(pending, level)
                for row, mode in zip(rows[len(rows) - len(pending) :], modes):
                    row.append(mode)
                f.write(frame)
                groups.append([offset, len(frame), zlib.crc32(frame), pending_n, len(pending)])
                offset += len(frame)
                pending, pending_n = [], 0

            for s in series:
                if pending_n and pending_n + len(s.ts) > group_samples:
                    flush()
                rows.append(
                    [s.labels, len(groups), pending_n, len(s.ts), int(s.ts[0]), int(s.ts[-1])]
                )
                pending.append(s)
                pending_n += len(s.ts)
            flush()
            f.flush()
            os.fsync(f.fileno())
        hist_bytes = _encode_histograms(series)
        if hist_bytes:
            with open(tmp / "histograms", "wb") as f:
                f.write(hist_bytes)
                f.flush()
                os.fsync(f.fileno())
        index = _encode_index([tuple(r) for r in rows])
        with open(tmp / "index", "wb") as f:
            f.write(index)
            f.flush()
            os.fsync(f.fileno())
        meta = {
            "version": FORMAT_VERSION,
            "mint": mint,
            "maxt": maxt,
            "series": len(rows),
            "samples": int(sum(r[3] for r in rows)),
            "index_crc": zlib.crc32(index),
            "index_size": len(index),
            "groups": groups,
        }
        if hist_bytes:
            meta["hist_crc"] = zlib.crc32(hist_bytes)
            meta["hist_size"] = len(hist_bytes)
        write_json(tmp / "meta.json", meta)
        final = blocks_dir / block_id
        os.replace(tmp, final)
        fsync_dir(blocks_dir)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class CorruptBlockError(Exception):
    pass


class GroupCache:
    """Recently decoded block groups, bounded in bytes and shared by a store's blocks.

    Dashboards re-run the same queries every refresh; decoding a group costs ~100 ns per
    sample, keeping it costs 16 bytes per sample. Entries are never handed out directly
    (readers index them, which copies), so sharing them between threads is safe.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[tuple[str, int], _Decoded] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, int]) -> _Decoded | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: tuple[str, int], entry: _Decoded) -> None:
        size = entry[1].nbytes + entry[2].nbytes
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1].nbytes + old[2].nbytes
            self._entries[key] = entry
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted[1].nbytes + evicted[2].nbytes

    def drop_block(self, block_id: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == block_id]:
                entry = self._entries.pop(key)
                self._bytes -= entry[1].nbytes + entry[2].nbytes


_Decoded = tuple[int, npt.NDArray[np.int64], npt.NDArray[np.float64]]


class Block:
    """A loaded block: its labels mapped to store-wide series ids, chunks read on demand."""

    def __init__(self, path: Path, cache: GroupCache | None = None) -> None:
        self.path = path
        self.id = path.name
        self.cache = cache
        try:
            meta = json.loads((path / "meta.json").read_bytes())
            version = meta.get("version", FORMAT_VERSION) if isinstance(meta, dict) else 0
            if type(version) is int and version > FORMAT_VERSION:
                raise NewerFormatError(f"block format {version}", f"block {path}")
            index_bytes = (path / "index").read_bytes()
            if (
                len(index_bytes) != meta["index_size"]
                or zlib.crc32(index_bytes) != meta["index_crc"]
            ):
                raise CorruptBlockError("index checksum mismatch")
            labels, table = _decode_index(index_bytes)
            self.mint = int(meta["mint"])
            self.maxt = int(meta["maxt"])
            self.samples = int(meta["samples"])
            self.groups = [tuple(int(x) for x in g) for g in meta["groups"]]
            self._hist_meta: tuple[int, int] | None = (
                (int(meta["hist_size"]), int(meta["hist_crc"])) if "hist_size" in meta else None
            )
        except CorruptBlockError:
            raise
        except (OSError, ValueError, KeyError, TypeError, struct.error) as e:
            raise CorruptBlockError(str(e)) from e
        self.labels = labels
        self.table = table  # rows: group, start, count, mint, maxt, value mode
        # Store-wide ids of the rows, and the same sorted (with the row of each) for lookups:
        # numpy rather than dicts, since a long retention keeps hundreds of blocks loaded.
        self.sids: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._sorted_sids: npt.NDArray[np.int64] = self.sids
        self._sorted_rows: npt.NDArray[np.intp] = np.empty(0, dtype=np.intp)
        self._group_first_row: npt.NDArray[np.intp] | None = None
        self._hists: dict[int, dict[int, bytes]] | None = None
        self._hist_lock = threading.Lock()
        try:
            # Kept open for the block's lifetime: a query still reading after retention has
            # unlinked the files keeps working.
            self._chunks = open(path / "chunks", "rb")  # noqa: SIM115
            self.bad_groups = self._verify_groups()
            self.nbytes = sum(p.stat().st_size for p in path.iterdir())
        except OSError as e:
            raise CorruptBlockError(str(e)) from e

    def bind(
        self, intern: Callable[[Labels], int], canonical: Callable[[int], Labels] | None = None
    ) -> None:
        """Map the block's series to store-wide ids (after WAL replay has pinned its ids) and,
        with ``canonical``, share the index's label tuples instead of keeping this block's."""
        sids = [intern(lb) for lb in self.labels]
        if canonical is not None:
            self.labels = [canonical(sid) for sid in sids]
        self.sids = np.array(sids, dtype=np.int64)
        self._sorted_rows = np.argsort(self.sids, kind="stable")
        self._sorted_sids = self.sids[self._sorted_rows]

    def _rows(self, sids: Sequence[int] | npt.NDArray[np.int64]) -> tuple[np.ndarray, np.ndarray]:
        """(sids stored here, their rows), in the order given."""
        q = np.asarray(sids, dtype=np.int64)
        if not len(q) or not len(self._sorted_sids):
            return q[:0], np.empty(0, dtype=np.intp)
        pos = np.searchsorted(self._sorted_sids, q)
        pos[pos >= len(self._sorted_sids)] = 0
        hit = self._sorted_sids[pos] == q
        return q[hit], self._sorted_rows[pos[hit]]

    def _live(self, rows: np.ndarray, mint: int, maxt: int) -> np.ndarray:
        """Mask of ``rows`` with samples in the window, in readable groups."""
        tab = self.table[rows]
        live = (tab[:, 3] <= maxt) & (tab[:, 4] >= mint)
        if self.bad_groups:
            live &= ~np.isin(tab[:, 0], list(self.bad_groups))
        return live

    def sids_with_data(self, sids: Sequence[int], mint: int, maxt: int) -> set[int]:
        q, rows = self._rows(sids)
        return set(q[self._live(rows, mint, maxt)].tolist())

    @property
    def corrupt_series(self) -> int:
        return (
            int(np.isin(self.table[:, 0], list(self.bad_groups)).sum()) if self.bad_groups else 0
        )

    def _verify_groups(self) -> set[int]:
        bad: set[int] = set()
        size = os.fstat(self._chunks.fileno()).st_size
        for g, (offset, length, crc, _n, _s) in enumerate(self.groups):
            if offset + length > size or zlib.crc32(self._read(offset, length)) != crc:
                bad.add(g)
        if bad:
            log.error(
                "block %s: %d of %d chunk groups are corrupt; their series are skipped",
                self.path,
                len(bad),
                len(self.groups),
            )
        return bad

    def _read(self, offset: int, length: int) -> bytes:
        return os.pread(self._chunks.fileno(), length, offset)

    def close(self) -> None:
        self._chunks.close()

    def overlaps(self, mint: int, maxt: int) -> bool:
        return self.mint <= maxt and mint < self.maxt

    def read(
        self, sids: Sequence[int], mint: int, maxt: int
    ) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
        """Samples of ``sids`` (those stored here) with ``mint <= t <= maxt``."""
        q, rows = self._rows(sids)
        live = self._live(rows, mint, maxt)
        q, rows = q[live], rows[live]
        groups = self.table[rows, 0]
        by_group: dict[int, list[tuple[int, int]]] = {}
        for sid, i, g in zip(q.tolist(), rows.tolist(), groups.tolist()):
            by_group.setdefault(g, []).append((sid, i))
        out: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
        for g, members in by_group.items():
            try:
                first_row, ts, vals = self._cached_decode(g)
            except (OSError, ValueError) as e:
                log.error("block %s group %d unreadable (%s); skipping it", self.path, g, e)
                self.bad_groups.add(g)
                continue
            starts = self.table[first_row : first_row + self.groups[g][4], 1]
            mask = (ts >= mint) & (ts <= maxt)
            kept = np.add.reduceat(mask, starts).tolist()
            new_starts = (np.cumsum(kept) - kept).tolist()
            ts_kept, vals_kept = ts[mask], vals[mask]
            for sid, i in members:
                k = i - first_row
                c = kept[k]
                if c:
                    s = new_starts[k]
                    out[sid] = (ts_kept[s : s + c], vals_kept[s : s + c])
        return out

    def _histogram_table(self) -> dict[int, dict[int, bytes]]:
        """The ``histograms`` file, read and checked on first use (empty if there is none or
        it is damaged: its markers then read as NaN floats, logged)."""
        with self._hist_lock:
            if self._hists is not None:
                return self._hists
            table: dict[int, dict[int, bytes]] = {}
            if self._hist_meta is not None:
                size, crc = self._hist_meta
                try:
                    data = (self.path / "histograms").read_bytes()
                    if len(data) != size or zlib.crc32(data) != crc:
                        raise ValueError("checksum mismatch")
                    table = _decode_histograms(data)
                except (OSError, ValueError, histsamples.HistogramCorruptError) as e:
                    log.error("block %s: native histograms unreadable (%s)", self.path, e)
            self._hists = table
            return table

    def histograms(self, sid: int) -> Callable[[int], FloatHistogram | None]:
        """Looks up the histogram of ``sid``'s marker sample at a timestamp."""
        _, rows = self._rows([sid])
        by_t = self._histogram_table().get(int(rows[0]), {}) if len(rows) else {}

        def lookup(t: int) -> FloatHistogram | None:
            raw = by_t.get(t)
            if raw is None:
                return None
            try:
                return histsamples.decode_one(raw)
            except histsamples.HistogramCorruptError as e:
                log.error("block %s: a native histogram is unreadable (%s)", self.path, e)
                return None

        return lookup

    @property
    def has_histograms(self) -> bool:
        return self._hist_meta is not None

    def _cached_decode(self, g: int) -> _Decoded:
        if self.cache is None:
            return self._decode(g)
        key = (self.id, g)
        entry = self.cache.get(key)
        if entry is None:
            entry = self._decode(g)
            self.cache.put(key, entry)
        return entry

    def _decode(self, g: int) -> tuple[int, npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Every sample of group ``g`` at once: (first index row, timestamps, values).

        Per-series prefix sums and XOR chains are computed over the whole group in a few numpy
        passes, subtracting each series' running total at its start; int64 wrap-around is
        harmless there since the differences are exact modulo 2**64.
        """
        offset, length, crc, n, n_series = self.groups[g]
        frame = self._read(offset, length)
        if zlib.crc32(frame) != crc:
            raise ValueError("checksum mismatch")
        ts_enc, val_enc = _decode_group(frame, n)
        if self._group_first_row is None:
            self._group_first_row = np.searchsorted(self.table[:, 0], np.arange(len(self.groups)))
        first_row = int(self._group_first_row[g])
        rows = self.table[first_row : first_row + n_series]
        starts, counts, modes = rows[:, 1], rows[:, 2], rows[:, 5]
        with np.errstate(over="ignore"):
            z = _unzigzag(ts_enc)
            firsts = z[starts].copy()
            z[starts] = 0
            deltas = _segmented_cumsum(z, starts, counts)
            ts = _segmented_cumsum(deltas, starts, counts) + np.repeat(firsts, counts)
            values = np.empty(n, dtype=np.float64)
            xor = np.repeat(modes == XOR_MODE, counts)
            if xor.any():
                acc = np.bitwise_xor.accumulate(val_enc)
                before = np.zeros(len(starts), dtype=np.uint64)
                before[1:] = acc[starts[1:] - 1]
                values[xor] = (acc ^ np.repeat(before, counts)).view(np.float64)[xor]
            if not xor.all():
                ints = _segmented_cumsum(_unzigzag(val_enc), starts, counts)
                scale = np.repeat(np.array([*_POW10, 1.0])[modes - 1], counts)
                dec = ~xor
                values[dec] = ints[dec] / scale[dec]
        return first_row, ts, values

    def read_all(self) -> list[BlockSeries]:
        """Every readable series (for merging blocks)."""
        sids = self.sids.tolist()
        data = self.read(sids, np.iinfo(np.int64).min, np.iinfo(np.int64).max)
        out = []
        for row, sid in enumerate(sids):
            if sid in data:
                t, v = data[sid]
                v = v.copy()
                h = None
                if self.has_histograms:
                    h = histsamples.aligned(t, v, self.histograms(sid))
                out.append(BlockSeries(self.labels[row], t, v, h))
        return out
