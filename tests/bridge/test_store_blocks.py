"""Blocks: round trip, compaction from the head, corruption handling, and restart."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
from store.helpers import as_dict, batch, eq, lbl, write_scrapes

from grafana_agent_bridge.labels import Matcher, MatchType
from grafana_agent_bridge.storage import STALE_NAN
from grafana_agent_bridge.store import Store, StoreOptions
from grafana_agent_bridge.store.block import Block, BlockSeries, write_block

ALL = (-(2**62), 2**62)
MINUTE = 60_000


def _series(n: int, samples: int, seed: int = 1) -> list[BlockSeries]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ts = 1_700_000_000_000 + np.arange(samples, dtype=np.int64) * 15_000
        ts += rng.integers(-3, 4, samples)
        kind = i % 3
        if kind == 0:
            v = np.full(samples, float(i))
        elif kind == 1:
            v = np.cumsum(rng.integers(0, 100, samples)).astype(np.float64)
        else:
            v = np.round(rng.normal(50, 10, samples), 2)
        if i == 4:
            v[3] = STALE_NAN
            v[5] = math.nan
        out.append(BlockSeries(lbl("b", i=str(i)), ts, v))
    return out


def test_block_round_trip_is_bit_exact_and_small(tmp_path: Path) -> None:
    series = _series(60, 240)
    series.append(BlockSeries(lbl("single"), np.array([5], np.int64), np.array([1.0])))
    path = write_block(tmp_path, series, 0, 2**62, group_samples=1000, level=3)
    block = Block(path)
    ids: dict = {}
    block.bind(lambda lb: ids.setdefault(lb, len(ids) + 1))
    assert len(block.groups) > 10  # the group size limit splits the block
    got = block.read(list(ids.values()), *ALL)
    for s in series:
        t, v = got[ids[s.labels]]
        assert t.tolist() == s.ts.tolist()
        assert v.view(np.uint64).tolist() == s.values.view(np.uint64).tolist()
    # Windowing inside a block is inclusive on both ends.
    s0 = series[0]
    t, _ = block.read([ids[s0.labels]], int(s0.ts[10]), int(s0.ts[20]))[ids[s0.labels]]
    assert t.tolist() == s0.ts[10:21].tolist()
    samples = sum(len(s.ts) for s in series)
    assert block.nbytes / samples < 2.5  # well under the 16 raw bytes per sample


def test_block_write_is_atomic_no_tmp_left(tmp_path: Path) -> None:
    write_block(tmp_path, _series(3, 10), 0, 1, group_samples=100, level=1)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def _store(path: Path, **kw) -> Store:
    opts = dict(block_duration_ms=10 * MINUTE, compact_automatically=False)
    opts.update(kw)
    return Store.open(path, StoreOptions(**opts))


def test_compaction_moves_data_to_blocks_and_queries_span_both(tmp_path: Path) -> None:
    s = _store(tmp_path)
    write_scrapes(s, 20, range(100))  # 25 minutes at 15 s
    before = as_dict(s.select([], *ALL))
    assert s.compact() == 1  # head spans 1.5 block durations once: one block [0, 10m)
    st = s.stats()
    assert st.blocks == 1 and st.block_samples == 20 * 40 and st.head_samples == 20 * 60
    assert as_dict(s.select([], *ALL)) == before
    assert as_dict(s.select([eq("i", "3")], 9 * MINUTE, 11 * MINUTE)) == {
        lbl("load", i="3"): [(k * 15_000, 3000.0 + k) for k in range(36, 45)]
    }
    assert s.label_values("i", [], 0, 5 * MINUTE) == sorted(str(i) for i in range(20))
    # Data older than the cut block is now out of bounds.
    res = s.append([batch(lbl("late"), [MINUTE], [1.0])])
    assert [r.reason for r in res.rejections] == ["out of bounds"]
    s.close()
    s = _store(tmp_path)  # replay must not duplicate what the block holds
    assert as_dict(s.select([], *ALL)) == before
    assert s.stats().head_samples == 20 * 60
    s.close()


def test_forced_compaction_and_automatic_compaction(tmp_path: Path) -> None:
    s = _store(tmp_path / "a")
    write_scrapes(s, 5, range(100))
    s.compact(force=True)
    assert s.stats().head_samples == 0 and s.stats().block_samples == 500
    assert sum(len(d.timestamps) for d in s.select([], *ALL)) == 500
    s.close()
    s = _store(tmp_path / "b", compact_automatically=True)
    write_scrapes(s, 5, range(200))  # 50 minutes: four blocks are due
    deadline = time.monotonic() + 20
    while s.stats().blocks < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    s.close()
    s = _store(tmp_path / "b")
    assert s.stats().blocks == 4  # [0,10m) .. [30m,40m); 40m+ stays in the head
    assert sum(len(d.timestamps) for d in s.select([], *ALL)) == 1000
    s.close()


def _block_dirs(path: Path) -> list[Path]:
    return sorted(p for p in (path / "blocks").iterdir() if p.is_dir())


def test_corrupt_chunk_group_loses_only_its_series(tmp_path: Path) -> None:
    s = _store(tmp_path, block_group_samples=100)
    write_scrapes(s, 20, range(40))
    s.compact(force=True)
    s.close()
    (block,) = _block_dirs(tmp_path)
    chunks = block / "chunks"
    data = bytearray(chunks.read_bytes())
    data[10] ^= 0xFF  # inside the first group
    chunks.write_bytes(bytes(data))
    s = _store(tmp_path)
    assert s.stats().blocks_corrupt == 1
    got = as_dict(s.select([], *ALL))
    assert 0 < len(got) < 20 and all(len(v) == 40 for v in got.values())
    # The store keeps serving and accepting data.
    assert s.append([batch(lbl("new"), [10**9], [1.0])]).accepted_samples == 1
    s.close()


@pytest.mark.parametrize("victim", ["index", "meta.json"])
def test_corrupt_block_index_or_meta_is_set_aside(tmp_path: Path, victim: str) -> None:
    s = _store(tmp_path)
    write_scrapes(s, 5, range(100))
    assert s.compact() == 1
    s.close()
    (block,) = _block_dirs(tmp_path)
    f = block / victim
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x55
    f.write_bytes(bytes(data))
    s = _store(tmp_path)
    assert s.stats().blocks_corrupt == 1 and s.stats().blocks == 0
    assert (tmp_path / "blocks" / (block.name + ".corrupt")).exists()
    # The head part (from the WAL) is still served.
    assert sum(len(d.timestamps) for d in s.select([], *ALL)) == 5 * 60
    s.close()


def test_unfinished_block_from_a_crash_is_removed(tmp_path: Path) -> None:
    s = _store(tmp_path)
    write_scrapes(s, 5, range(10))
    s.close()
    (tmp_path / "blocks" / "123-abc.tmp").mkdir()
    s = _store(tmp_path)
    assert not (tmp_path / "blocks" / "123-abc.tmp").exists()
    assert sum(len(d.timestamps) for d in s.select([], *ALL)) == 50
    s.close()


def test_regex_selector_reads_only_matching_series_from_blocks(tmp_path: Path) -> None:
    s = _store(tmp_path)
    write_scrapes(s, 30, range(100))
    s.compact(force=True)
    got = s.select([Matcher("i", MatchType.REGEX, "1.")], *ALL)
    assert sorted(d.labels for d in got) == sorted(lbl("load", i=str(i)) for i in range(10, 20))
    s.close()


def test_repeated_block_reads_hit_the_bounded_group_cache(tmp_path: Path) -> None:
    from grafana_agent_bridge.store.block import GroupCache

    series = _series(30, 200)
    path = write_block(tmp_path, series, 0, 2**62, group_samples=1000, level=1)
    cache = GroupCache(max_bytes=3 * 1000 * 16)  # room for about three groups
    block = Block(path, cache)
    ids: dict = {}
    block.bind(lambda lb: ids.setdefault(lb, len(ids) + 1))
    first = block.read([1, 2], *ALL)
    again = block.read([1, 2], *ALL)
    assert cache.hits >= 1
    for sid in (1, 2):
        assert first[sid][0].tolist() == again[sid][0].tolist()
        assert first[sid][1].view(np.uint64).tolist() == again[sid][1].view(np.uint64).tolist()
    block.read(list(ids.values()), *ALL)  # touches every group: the oldest are evicted
    assert cache._bytes <= cache.max_bytes
