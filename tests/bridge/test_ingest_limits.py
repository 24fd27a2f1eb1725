"""Limits on what one remote-write request may make the bridge do, and the bounded 400 answer:
counts checked before decoding, the valid part of the request still stored, every reason
naming its configuration key, the answer small however large the rejected labels."""

from __future__ import annotations

import json
from pathlib import Path

import cramjam
import numpy as np
import pytest

from grafana_agent_bridge import remote_write
from grafana_agent_bridge.api.write import WriteAPI, abbreviate
from grafana_agent_bridge.config import BridgeConfig, ConfigError, parse_config
from grafana_agent_bridge.daemon import label_limits, store_options
from grafana_agent_bridge.labels import LabelLimits, Labels, make_labels
from grafana_agent_bridge.remote_write import (
    LabelCache,
    RequestLimits,
    WriteRequest,
    decode_write_request,
    encode_write_request,
)
from grafana_agent_bridge.storage import SeriesBatch
from grafana_agent_bridge.store import Store, StoreOptions

T0 = 1_700_000_000_000


def _batch(labels: Labels, times: list[int]) -> SeriesBatch:
    return SeriesBatch(labels, np.array(times, np.int64), np.ones(len(times)))


def _many(n: int, samples: int = 1) -> bytes:
    return encode_write_request(
        _batch(make_labels({"__name__": "m", "i": str(i)}), list(range(1, samples + 1)))
        for i in range(n)
    )


def test_series_after_the_per_request_limit_are_refused_in_one_rejection() -> None:
    got = decode_write_request(_many(10, samples=3), limits=RequestLimits(4, 0))
    assert [dict(s.labels)["i"] for s in got.series] == ["0", "1", "2", "3"]
    (rejected,) = got.rejections
    assert rejected.kind == "series_per_request" and rejected.count == 18
    assert "ingest.max_series_per_request" in rejected.reason
    assert "10 series" in rejected.reason and "last 6 series" in rejected.reason
    assert got.samples == 30


def test_the_series_that_crosses_the_sample_limit_and_those_after_it_are_refused() -> None:
    got = decode_write_request(_many(5, samples=4), limits=RequestLimits(0, 10))
    assert len(got.series) == 2  # 8 samples; the third series would make 12
    (rejected,) = got.rejections
    assert rejected.kind == "samples_per_request" and rejected.count == 12
    assert "ingest.max_samples_per_request" in rejected.reason


def test_a_request_within_the_limits_is_untouched() -> None:
    got = decode_write_request(_many(5, samples=4), limits=RequestLimits(5, 20))
    assert len(got.series) == 5 and not got.rejections


def test_the_label_count_is_checked_before_any_label_is_decoded() -> None:
    req = WriteRequest()
    ts = req.timeseries.add()
    for k in range(100):
        ts.labels.add(name=f"l{k}", value="v")
    ts.samples.add(value=1.0, timestamp=1)
    body = bytes(cramjam.snappy.compress_raw(req.SerializeToString()))
    # A label that is not even decodable: the count alone must decide.
    cache = LabelCache(limits=LabelLimits(max_labels_per_series=10))
    raw = [b"\xff\xff"] * 100
    assert cache.get(raw).kind == "labels_per_series"  # type: ignore[union-attr]
    got = decode_write_request(body, cache=cache)
    assert got.rejections[0].kind == "labels_per_series"
    assert "storage.max_labels_per_series" in got.rejections[0].reason


def test_huge_label_sets_are_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = LabelCache(limits=LabelLimits(max_label_value_length=0))
    big = remote_write.Label(name="__name__", value="x" * 100_000).SerializeToString()
    assert cache.get([big]) == (("__name__", "x" * 100_000),)
    assert not cache._cache
    monkeypatch.setattr(remote_write, "_CACHE_BYTES", 100)
    for i in range(20):
        cache.get([remote_write.Label(name="__name__", value=f"m{i:02d}").SerializeToString()])
    assert 0 < cache._bytes <= 100


def test_abbreviate_keeps_the_metric_name_and_counts_what_it_leaves_out() -> None:
    labels = make_labels({"__name__": "n" * 100, **{f"a{k}": "v" * 100 for k in range(20)}})
    shown = abbreviate(labels)
    name = next(iter(shown.items()))
    assert name[0] == "__name__" and name[1].startswith("nnn") and len(name[1]) <= 33
    assert shown["…"] == f"{21 - (len(shown) - 1)} more labels"
    assert all(len(k) <= 33 and len(v) <= 33 for k, v in shown.items())
    assert abbreviate(make_labels({"__name__": "up", "job": "node"})) == {
        "__name__": "up",
        "job": "node",
    }


@pytest.fixture
def api(tmp_path: Path):
    store = Store.open(tmp_path, StoreOptions(compact_automatically=False, max_head_series=50))
    yield WriteAPI(store, request_limits=RequestLimits(1000, 0))
    store.close()


def _rejected(api: WriteAPI, reason: str) -> float:
    return api.metrics.rejected.get(reason)


def test_the_400_answer_is_bounded_and_says_what_and_how_many(api: WriteAPI) -> None:
    fat = [
        make_labels(
            {"__name__": "fat", "i": str(i), **{f"l{k:02d}": "x" * 2000 for k in range(60)}}
        )
        for i in range(200)
    ]
    before = _rejected(api, "head_series")
    body = encode_write_request(_batch(lb, [T0]) for lb in fat)
    answer = api.handle(body, None, "snappy")
    assert answer.status == 400
    assert len(answer.body) <= 8 * 1024, len(answer.body)
    doc = json.loads(answer.body)
    assert doc["error"].startswith("150 rejected (50 valid samples stored): 150 head_series")
    assert "storage.max_head_series" in doc["error"]
    assert doc["data"]["acceptedSamples"] == 50
    listed = doc["data"]["rejections"]
    assert sum(r["count"] for r in listed) + doc["data"]["unlisted"] == 150
    assert listed[0]["kind"] == "head_series" and listed[0]["labels"]["__name__"] == "fat"
    assert _rejected(api, "head_series") == before + 150


def test_rejections_are_counted_by_reason_in_samples(api: WriteAPI) -> None:
    before = _rejected(api, "series_per_request"), _rejected(api, "label_value_length")
    body = encode_write_request(
        [_batch(make_labels({"__name__": "v", "i": "x" * 5000}), [T0, T0 + 1])]
        + [_batch(make_labels({"__name__": "s", "i": str(i)}), [T0]) for i in range(1002)]
    )
    answer = api.handle(body, None, "snappy")
    assert answer.status == 400
    assert _rejected(api, "series_per_request") == before[0] + 3
    assert _rejected(api, "label_value_length") == before[1] + 2


def test_limit_keys_have_documented_defaults_and_reach_the_store() -> None:
    cfg = BridgeConfig()
    assert cfg.storage.max_head_series == 250_000
    assert label_limits(cfg) == LabelLimits()  # the config defaults are the code defaults
    assert (cfg.ingest.max_series_per_request, cfg.ingest.max_samples_per_request) == (
        RequestLimits().max_series_per_request,
        RequestLimits().max_samples_per_request,
    )
    cfg = parse_config(
        "storage:\n  max_head_series: 7\n  max_label_value_length: 9\n"
        "ingest:\n  max_series_per_request: 0\n"
    )
    opts = store_options(cfg)
    assert opts.max_head_series == 7 and opts.label_limits.max_label_value_length == 9
    assert cfg.ingest.max_series_per_request == 0
    with pytest.raises(ConfigError, match=r"storage\.max_head_series"):
        parse_config("storage:\n  max_head_series: -1\n")
    with pytest.raises(ConfigError, match=r"storage\.max_labels_per_series"):
        parse_config("storage:\n  max_labels_per_series: true\n")


def test_the_label_cache_is_no_larger_than_the_head_may_grow(tmp_path: Path) -> None:
    store = Store.open(tmp_path, StoreOptions(compact_automatically=False, max_head_series=10))
    try:
        api = WriteAPI(store, max_series=10)
        for k in range(5):  # 100 new series, 90 of them refused by the head limit
            body = encode_write_request(
                _batch(make_labels({"__name__": "c", "i": f"{k}-{i}"}), [T0]) for i in range(20)
            )
            api.handle(body, None, "snappy")
        assert 0 < len(api._label_cache._cache) <= 10
        assert WriteAPI(store)._label_cache._limit == remote_write.LABEL_CACHE_ENTRIES
    finally:
        store.close()


def test_pairs_that_passed_before_do_not_let_a_long_one_through() -> None:
    """A label set made of pairs that passed before passes at once; one long pair among them
    is still refused, however many sets holding the others were checked first."""
    limits = LabelLimits(max_label_value_length=16)
    fine = make_labels({"__name__": "up", "job": "node"})
    assert limits.check(fine) is None
    assert limits.check(fine) is None  # remembered
    long = make_labels({"__name__": "up", "job": "node", "host": "h" * 17})
    problem = limits.check(long)
    assert problem is not None and problem.kind == "label_value_length"
    assert limits.check(make_labels({"__name__": "up", "job": "x" * 4 * 17})) is not None
    assert limits.check(long[:1] + long[2:]) is None
