"""WAL records and segments: codecs, and repair of torn or corrupted segments on open."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from store.helpers import as_dict, batch, lbl, write_scrapes

from grafana_agent_bridge.storage import STALE_NAN_BITS, Exemplar, MetricMetadata
from grafana_agent_bridge.store import NewerFormatError, Store, StoreOptions, wal

ALL = (-(2**62), 2**62)


def test_series_record_round_trip_with_unicode_and_empty_set() -> None:
    series = [(1, lbl("a", x="ünï\u2603", y="")), (2**40, ()), (7, (("k", "v" * 70_000),))]
    assert wal.decode_series(wal.encode_series(series)) == series


def test_series_record_bytes_do_not_depend_on_what_was_encoded_before() -> None:
    """The encoder remembers the text of the pairs it wrote; a record is still exactly the
    JSON that older versions wrote and read (``[[ref, [name, value, ...]], ...]``)."""
    encoder = wal.SeriesEncoder()
    odd = ("q", 'say "hi"\\ \n \ud800 ü')  # escapes, a newline, a lone surrogate
    first = [(1, (("__name__", "up"), odd)), (2, (("__name__", "up"), ("job", "x")))]
    again = [(3, (("__name__", "up"), ("job", "x"))), (4, (odd,))]
    for series in (first, again, first):
        flat = [[ref, [text for pair in labels for text in pair]] for ref, labels in series]
        expected = json.dumps(flat, ensure_ascii=False, separators=(",", ":"))
        assert encoder.encode(series) == expected.encode("utf-8", "surrogatepass")
        assert wal.decode_series(encoder.encode(series)) == series


def test_samples_record_round_trip_keeps_nan_bits() -> None:
    refs = np.array([1, 2, 1], np.uint64)
    ts = np.array([-5, 0, 2**62], np.int64)
    values = np.array([1.5, math.nan, 0.0])
    values.view(np.uint64)[2] = STALE_NAN_BITS
    r, t, v = wal.decode_samples(wal.encode_samples(refs, ts, values))
    assert r.tolist() == [1, 2, 1] and t.tolist() == ts.tolist()
    assert v.view(np.uint64).tolist() == values.view(np.uint64).tolist()


def test_compressed_samples_record_round_trip_and_is_small() -> None:
    n = 2000
    refs = np.arange(1, n + 1, dtype=np.uint64)
    ts = 1_700_000_000_000 + np.arange(n, dtype=np.int64) % 7
    values = np.round(np.random.default_rng(1).normal(50, 10, n), 2)
    values.view(np.uint64)[5] = STALE_NAN_BITS
    raw = wal.encode_samples_record(refs, ts, values)
    res = wal.scan(wal.MAGIC + raw)
    (rec,) = res.records
    r, t, v = wal.decode_sample_record(rec)
    assert r.tolist() == refs.tolist() and t.tolist() == ts.tolist()
    assert v.view(np.uint64).tolist() == values.view(np.uint64).tolist()
    assert len(raw) < 8 * n  # vs 24 bytes per sample uncompressed


def test_undecodable_compressed_record_is_corruption() -> None:
    bad = wal.encode_record(wal.RecordType.SAMPLES_ZSTD, b"\x02\x00\x00\x00garbage")
    (rec,) = wal.scan(wal.MAGIC + bad).records
    with pytest.raises(wal.CorruptRecordError):
        wal.decode_sample_record(rec)


def test_exemplar_and_metadata_records_round_trip() -> None:
    ex = [(3, Exemplar((("trace_id", "x"),), 2.5, 1234))]
    assert wal.decode_exemplars(wal.encode_exemplars(ex)) == ex
    meta = [MetricMetadata("up", "gauge", "Is it up.", "")]
    assert wal.decode_metadata(wal.encode_metadata(meta)) == meta


def _segment(records: list[bytes]) -> bytes:
    return wal.MAGIC + b"".join(records)


def _records() -> list[bytes]:
    return [
        wal.encode_record(wal.RecordType.SERIES, wal.encode_series([(1, lbl())])),
        wal.encode_record(
            wal.RecordType.SAMPLES,
            wal.encode_samples(
                np.array([1], np.uint64), np.array([10], np.int64), np.array([1.0])
            ),
        ),
    ]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda b: b[:-3], "torn record"),  # torn last record
        (lambda b: b[: len(b) - 30], "torn record"),
        (lambda b: _flip(b, len(b) - 2), "checksum mismatch"),  # bad content
        (lambda b: _set_len(b, 10**9), "bad record header"),  # bad length
        (lambda b: _set_len(b, 20), "checksum mismatch"),  # plausible but wrong length
        (lambda b: _set_type(b, 99), "checksum mismatch"),  # a type byte flipped: damage
    ],
)
def test_scan_stops_at_the_damage_and_keeps_the_prefix(damage, reason: str) -> None:
    recs = _records()
    good = _segment(recs)
    res = wal.scan(damage(good))
    assert res.corrupt is not None and res.corrupt.startswith(reason)
    assert [r.type for r in res.records] == [wal.RecordType.SERIES]
    assert res.good_end == len(wal.MAGIC) + len(recs[0])


def test_partial_header_after_the_last_record_is_a_torn_tail() -> None:
    good = _segment(_records())
    res = wal.scan(good + b"\x02\x00")
    assert res.corrupt is not None and res.corrupt.startswith("torn record header")
    assert len(res.records) == 2 and res.good_end == len(good)


def _last_record_offset(b: bytes) -> int:
    return len(wal.MAGIC) + len(_records()[0])


def _flip(b: bytes, at: int) -> bytes:
    return b[:at] + bytes([b[at] ^ 0x10]) + b[at + 1 :]


def _set_len(b: bytes, length: int) -> bytes:
    at = _last_record_offset(b) + 1
    return b[:at] + struct.pack("<I", length) + b[at + 4 :]


def _set_type(b: bytes, rtype: int) -> bytes:
    at = _last_record_offset(b)
    return b[:at] + bytes([rtype]) + b[at + 1 :]


def test_bad_segment_header_is_reported() -> None:
    res = wal.scan(b"garbage!" + _records()[0])
    assert res.corrupt == "bad segment header" and res.good_end == 0


def test_a_whole_record_of_an_unknown_type_is_a_newer_format_not_damage() -> None:
    good = _segment(_records())
    newer = good + wal.encode_record(99, b"from a later version")  # type: ignore[arg-type]
    with pytest.raises(NewerFormatError, match="record of type 99 at offset"):
        wal.scan(newer)
    with pytest.raises(NewerFormatError, match="WAL format 2"):
        wal.scan(b"GABWAL\x00\x02" + _records()[0])


def _filled_store(path: Path, segment_bytes: int = 1 << 30) -> int:
    s = Store.open(path, StoreOptions(wal_segment_bytes=segment_bytes))
    n = write_scrapes(s, 10, range(50))
    s.close()
    return n


def _segments(path: Path) -> list[Path]:
    return sorted(p for p in (path / "wal").iterdir() if p.name.isdigit())


def test_truncated_tail_keeps_prefix_reports_and_accepts_new_writes(tmp_path: Path) -> None:
    _filled_store(tmp_path)
    seg = [p for p in _segments(tmp_path) if p.stat().st_size > 100][-1]
    seg.write_bytes(seg.read_bytes()[:-5])  # a torn write in the middle of the last record
    s = Store.open(tmp_path, StoreOptions())
    st = s.stats()
    assert st.wal_corruptions == 1 and st.wal_bytes_dropped > 0
    got = as_dict(s.select([], *ALL))
    # All complete scrapes before the torn one are there, each series without gaps.
    assert len(got) == 10 and all(len(v) == 49 for v in got.values())
    assert s.append([batch(lbl("load", i="0"), [49 * 15_000], [49.0])]).accepted_samples == 1
    s.close()
    s = Store.open(tmp_path, StoreOptions())
    assert s.stats().wal_corruptions == 0  # the repair was persisted
    assert len(as_dict(s.select([], *ALL))[lbl("load", i="0")]) == 50
    s.close()


def test_bit_flip_mid_segment_drops_that_segment_tail_only(tmp_path: Path) -> None:
    _filled_store(tmp_path, segment_bytes=1024)
    segs = [p for p in _segments(tmp_path) if p.stat().st_size > 600]
    assert len(segs) >= 3
    victim = segs[1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    s = Store.open(tmp_path, StoreOptions())
    st = s.stats()
    assert st.wal_corruptions == 1 and 0 < st.wal_bytes_dropped < len(data)
    got = as_dict(s.select([], *ALL))
    # Later segments are still read (they carry their own series records): the newest
    # scrape is present, only samples in the damaged part of the victim are missing.
    assert all(v[-1][0] == 49 * 15_000 for v in got.values())
    assert 0 < 500 - sum(len(v) for v in got.values()) < 500
    s.close()


def test_unreadable_segment_header_removes_only_that_segment(tmp_path: Path) -> None:
    _filled_store(tmp_path, segment_bytes=1024)
    segs = _segments(tmp_path)
    segs[0].write_bytes(b"\0" * 64)
    s = Store.open(tmp_path, StoreOptions())
    assert s.stats().wal_corruptions == 1
    assert not segs[0].exists()
    assert len(as_dict(s.select([], *ALL))) == 10
    s.close()


def test_empty_wal_file_from_a_crash_at_creation_is_harmless(tmp_path: Path) -> None:
    _filled_store(tmp_path)
    last = _segments(tmp_path)[-1]
    (last.parent / wal.segment_name(int(last.name) + 1)).write_bytes(b"")
    s = Store.open(tmp_path, StoreOptions())
    assert len(as_dict(s.select([], *ALL))) == 10
    s.close()


def test_series_records_are_compressed_and_read_back(tmp_path: Path) -> None:
    """A new series costs its labels once in the WAL, compressed: the labels of a sender's
    series repeat each other, and the raw text was most of what a first request wrote."""
    job = (("instance", "host-1:9100"), ("job", "juju_model_0123456789abcdef_app_node"))
    series = [
        (i, (("__name__", f"node_metric_{i % 50}"), ("cpu", str(i)), *job)) for i in range(1, 2001)
    ]
    raw = wal.SeriesEncoder().encode(series)
    (rec,) = wal.scan(wal.MAGIC + wal.series_record(raw)).records
    assert rec.type == wal.RecordType.SERIES_ZSTD and len(rec.payload) < len(raw) // 10
    assert wal.decode_series_record(rec) == series
    s = Store.open(tmp_path, StoreOptions())
    s.append([batch(lbl("up", job="x"), [1000], [1.0])])
    s.close()
    (seg,) = [p for p in _segments(tmp_path) if p.stat().st_size > len(wal.MAGIC)]
    types = [r.type for r in wal.read_segment(seg).records]
    assert wal.RecordType.SERIES_ZSTD in types and wal.RecordType.SERIES not in types


def test_undecodable_compressed_series_record_is_corruption() -> None:
    (rec,) = wal.scan(wal.MAGIC + wal.encode_record(wal.RecordType.SERIES_ZSTD, b"junk")).records
    with pytest.raises(wal.CorruptRecordError):
        wal.decode_series_record(rec)


def test_wal_of_uncompressed_series_records_replays(tmp_path: Path) -> None:
    """Segments written before series records were compressed (plain JSON SERIES records,
    uncompressed SAMPLES) are read as before: an upgrade loses nothing."""
    (tmp_path / "wal").mkdir()
    old = _segment(
        [
            wal.encode_record(wal.RecordType.SERIES, wal.encode_series([(3, lbl("up", job="a"))])),
            wal.encode_record(
                wal.RecordType.SAMPLES,
                wal.encode_samples(
                    np.array([3, 3], np.uint64),
                    np.array([1000, 2000], np.int64),
                    np.array([1.0, 0.0]),
                ),
            ),
        ]
    )
    (tmp_path / "wal" / wal.segment_name(1)).write_bytes(old)
    s = Store.open(tmp_path, StoreOptions())
    assert s.stats().wal_corruptions == 0
    assert as_dict(s.select([], *ALL)) == {lbl("up", job="a"): [(1000, 1.0), (2000, 0.0)]}
    # New series get ids past the old refs, and the store keeps taking writes.
    assert s.append([batch(lbl("up", job="b"), [3000], [1.0])]).accepted_samples == 1
    s.close()
    s = Store.open(tmp_path, StoreOptions())
    assert len(as_dict(s.select([], *ALL))) == 2
    s.close()


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


@pytest.mark.parametrize("where", ["record", "segment", "block"])
def test_data_from_a_newer_version_stops_the_open_and_is_left_untouched(
    tmp_path: Path, where: str
) -> None:
    """After a downgrade (``snap revert``) what the newer revision wrote is not cut off as a
    corrupt tail or set aside as a corrupt block: the store does not open, changes no file,
    and once the newer data is gone again (the newer revision back) everything is there."""
    s = Store.open(tmp_path, StoreOptions(block_duration_ms=60_000 * 15))
    write_scrapes(s, 10, range(200))  # 50 min at 15 s: some of it cut into blocks
    s.compact()
    s.close()
    blocks = sorted(p for p in (tmp_path / "blocks").iterdir() if p.is_dir())
    assert blocks
    seg = _segments(tmp_path)[-1]
    if where == "record":
        original = seg.read_bytes()
        seg.write_bytes(original + wal.encode_record(42, b"x" * 100))  # type: ignore[arg-type]
    elif where == "segment":
        newer_seg = seg.with_name(f"{int(seg.name) + 1:08d}")
        newer_seg.write_bytes(b"GABWAL\x00\x02" + b"whatever a newer version writes")
    else:
        meta = json.loads((blocks[0] / "meta.json").read_text())
        original_meta = (blocks[0] / "meta.json").read_bytes()
        (blocks[0] / "meta.json").write_text(json.dumps({**meta, "version": 2}))
    before = _tree(tmp_path)
    with pytest.raises(NewerFormatError, match="written by a newer grafana-agent-bridge"):
        Store.open(tmp_path, StoreOptions())
    assert _tree(tmp_path) == before
    if where == "record":
        seg.write_bytes(original)
    elif where == "segment":
        newer_seg.unlink()
    else:
        (blocks[0] / "meta.json").write_bytes(original_meta)
    with Store.open(tmp_path, StoreOptions()) as s:
        got = as_dict(s.select([], *ALL))
        assert s.stats().wal_corruptions == 0 and s.stats().blocks_corrupt == 0
    assert len(got) == 10 and all(len(v) == 200 for v in got.values())
