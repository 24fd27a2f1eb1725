"""Attacks on the bridge's memory through what it is asked to store: more series than the head
may hold, huge label names and values, thousands of labels, huge exemplar labels, requests
with far more series than any sender batches, and writes whose 400 answer would repeat huge
rejected label sets in full.

Each test runs the real daemon (``attack_support.Target``), attacks it over loopback a bounded
number of times, and asserts that the over-limit part is refused with a 400 naming the limit
and its configuration key, that the valid part of the same request is stored (the bridge's
partial-write rule), that the answer stays small, and that the daemon survived with its
pre-attack samples and a peak RSS under the stated bound.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path

import numpy as np
from attack_support import Target
from forward_support import http_get, http_post

from grafana_agent_bridge.labels import Labels, make_labels
from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import Exemplar, SeriesBatch

RSS_BOUND_MIB = 160
"""The daemon idles near 65 MiB and peaks under 100 MiB in these attacks (the 4 MiB label
values are decoded once per request); 160 leaves room for the request buffers but not for
keeping huge labels or an unbounded head."""

ANSWER_BOUND = 8 * 1024
"""The most a 400 answer may take, however much was rejected and however large its labels."""

MIB = 1 << 20


def _batch(labels: Labels, t_ms: int, value: float = 1.0, exemplars=()) -> SeriesBatch:
    return SeriesBatch(
        labels,
        np.array([t_ms], dtype=np.int64),
        np.array([value], dtype=np.float64),
        list(exemplars),
    )


def _write(target: Target, series: list[SeriesBatch]) -> tuple[int, bytes, int]:
    """POST one remote-write request; (status, answer body, request size)."""
    body = encode_write_request(series)
    status, answer = http_post(target.url, "/api/v1/write", body, REMOTE_WRITE_HEADERS, 60)
    return status, answer, len(body)


def _error(answer: bytes) -> dict:
    doc = json.loads(answer)
    assert doc["status"] == "error" and doc["errorType"] == "bad_data", doc
    return doc


def _instant(target: Target, query: str, at_ms: int | None = None) -> list[dict]:
    params = {"query": query}
    if at_ms is not None:
        params["time"] = f"{at_ms / 1000:.3f}"
    q = urllib.parse.urlencode(params)
    status, body = http_get(target.url, f"/api/v1/query?{q}", timeout=30)
    assert status == 200, body[:300]
    return json.loads(body)["data"]["result"]


def _target(tmp_path: Path, **storage: object) -> Target:
    return Target(tmp_path / "bridge", storage=storage or None).start()


def test_more_series_than_the_head_limit_are_refused_without_growing(tmp_path: Path) -> None:
    limit = 1_000
    target = _target(tmp_path, max_head_series=limit)
    try:
        now = target.now_ms
        statuses = []
        for r in range(10):  # 10,000 new series against a head of 1,000
            series = [
                _batch(make_labels({"__name__": "churn", "pod": f"p{r}-{i}"}), now)
                for i in range(1_000)
            ]
            # A sample of an existing series rides along: the limit must not cost it.
            series.append(
                _batch(make_labels({"__name__": "attack_probe", "series": "s000"}), now, 42.0)
            )
            status, answer, _ = _write(target, series)
            statuses.append(status)
            if status == 400:
                doc = _error(answer)
                assert "storage.max_head_series" in doc["error"], doc["error"][:500]
                assert len(answer) <= ANSWER_BOUND, len(answer)
        assert statuses[-1] == 400 and statuses.count(400) >= 9, statuses
        head = target.bridge.metric("bridge_store_head_series")
        assert head <= limit, head
        stored = _instant(target, "count(churn)")
        assert int(stored[0]["value"][1]) == limit - 5  # the probe's 5 series count too
        probe = _instant(target, 'attack_probe{series="s000"}')
        assert float(probe[0]["value"][1]) == 42.0
        refused = target.bridge.metrics()
        by_reason = {
            k: v for k, v in refused.items() if k.startswith("bridge_ingest_rejections_total")
        }
        assert any("head_series" in k and v >= 9_000 for k, v in by_reason.items()), by_reason
        target.assert_survived(RSS_BOUND_MIB)
        # What was refused never reached the WAL: a restart replays only the bounded head.
        target.stop()
        target.bridge.start()
        replay = target.bridge.metric("bridge_store_replay_seconds")
        assert target.bridge.metric("bridge_store_head_series") <= limit
        print(f"replay after the attack: {replay:.2f}s")
    finally:
        target.stop()


def test_huge_label_values_and_names_are_refused(tmp_path: Path) -> None:
    target = _target(tmp_path)
    try:
        now = target.now_ms
        for _ in range(3):
            huge_value = make_labels({"__name__": "big", "blob": "v" * (4 * MIB)})
            huge_name = make_labels({"__name__": "big", "n" * (256 * 1024): "x"})
            ok = make_labels({"__name__": "big", "blob": "small"})
            status, answer, _ = _write(
                target, [_batch(huge_value, now), _batch(huge_name, now), _batch(ok, now)]
            )
            assert status == 400, (status, answer[:300])
            doc = _error(answer)
            assert "storage.max_label_value_length" in doc["error"], doc["error"][:500]
            assert "storage.max_label_name_length" in doc["error"], doc["error"][:500]
            assert len(answer) <= ANSWER_BOUND, len(answer)
            now += 1000
        assert [r["metric"].get("blob") for r in _instant(target, "big")] == ["small"]
        target.assert_survived(RSS_BOUND_MIB)
    finally:
        target.stop()


def test_thousands_of_labels_are_refused(tmp_path: Path) -> None:
    target = _target(tmp_path)
    try:
        wide = make_labels({"__name__": "wide", **{f"l{i:05d}": "x" for i in range(10_000)}})
        ok = make_labels({"__name__": "wide", "l00000": "y"})
        status, answer, _ = _write(
            target, [_batch(wide, target.now_ms), _batch(ok, target.now_ms)]
        )
        assert status == 400, (status, answer[:300])
        doc = _error(answer)
        assert "storage.max_labels_per_series" in doc["error"], doc["error"][:500]
        assert len(answer) <= ANSWER_BOUND, len(answer)
        assert [r["metric"].get("l00000") for r in _instant(target, "wide")] == ["y"]
        target.assert_survived(RSS_BOUND_MIB)
    finally:
        target.stop()


def test_huge_exemplar_labels_are_refused_and_the_sample_kept(tmp_path: Path) -> None:
    target = _target(tmp_path)
    try:
        now = target.now_ms
        labels = make_labels({"__name__": "traced"})
        for k in range(3):
            t = now + k * 1000
            huge = Exemplar(make_labels({"trace_id": "t" * MIB}), 1.0, t)
            status, answer, _ = _write(target, [_batch(labels, t, float(k), [huge])])
            assert status == 400, (status, answer[:300])
            doc = _error(answer)
            assert "storage.max_exemplar_labels_length" in doc["error"], doc["error"][:500]
            assert len(answer) <= ANSWER_BOUND, len(answer)
        # A well-sized exemplar (Prometheus's 128-character budget) is still taken.
        fine = Exemplar(make_labels({"trace_id": "a" * 100}), 5.0, now + 5000)
        status, answer, _ = _write(target, [_batch(labels, now + 5000, 5.0, [fine])])
        assert status == 204, answer[:300]
        q = urllib.parse.urlencode(
            {"query": "traced", "start": f"{now / 1000 - 60}", "end": f"{now / 1000 + 60}"}
        )
        status, body = http_get(target.url, f"/api/v1/query_exemplars?{q}")
        assert status == 200, body[:300]
        stored = [e for item in json.loads(body)["data"] for e in item["exemplars"]]
        assert [e["labels"]["trace_id"] for e in stored] == ["a" * 100]
        assert float(_instant(target, "traced", now + 5000)[0]["value"][1]) == 5.0
        target.assert_survived(RSS_BOUND_MIB)
    finally:
        target.stop()


def test_requests_with_too_many_series_are_cut_at_the_limit(tmp_path: Path) -> None:
    target = Target(tmp_path / "bridge")
    # The per-request limits are ingest keys; lower them so the attack stays cheap.
    config = target.bridge.config
    config.write_text(
        config.read_text() + "ingest:\n  max_series_per_request: 500\n"
        "  max_samples_per_request: 2000\n"
    )
    target.start()
    try:
        now = target.now_ms
        series = [
            _batch(make_labels({"__name__": "many", "i": f"{i:05d}"}), now) for i in range(20_000)
        ]
        t0 = time.monotonic()
        status, answer, _ = _write(target, series)
        took = time.monotonic() - t0
        assert status == 400, (status, answer[:300])
        doc = _error(answer)
        assert "ingest.max_series_per_request" in doc["error"], doc["error"][:500]
        assert "19500" in doc["error"], doc["error"][:500]
        assert len(answer) <= ANSWER_BOUND, len(answer)
        assert int(_instant(target, "count(many)")[0]["value"][1]) == 500
        # One series with more samples than a request may carry: cut at the sample limit.
        ts = np.arange(now - 10_000_000, now, 1000, dtype=np.int64)  # 10,000 samples
        long = SeriesBatch(make_labels({"__name__": "long"}), ts, np.ones(len(ts)))
        status, answer, _ = _write(target, [long])
        assert status == 400, (status, answer[:300])
        assert "ingest.max_samples_per_request" in _error(answer)["error"]
        print(f"20,000-series request answered in {took:.2f}s")
        target.assert_survived(RSS_BOUND_MIB)
    finally:
        target.stop()


def test_the_400_answer_stays_small_however_large_the_rejected_labels(tmp_path: Path) -> None:
    target = _target(tmp_path)
    try:
        now = target.now_ms
        # Valid but large label sets: 60 labels of 2,000 bytes each (120 KB per series).
        fat = [
            make_labels(
                {
                    "__name__": "fat",
                    "i": str(i),
                    **{f"l{k:02d}": f"{k:02d}" * 1000 for k in range(58)},
                }
            )
            for i in range(40)
        ]
        status, answer, _ = _write(target, [_batch(lb, now) for lb in fat])
        assert status == 204, answer[:300]
        # The same series again, older: every sample is out of order, all 40 are rejected.
        status, answer, size = _write(target, [_batch(lb, now - 60_000) for lb in fat])
        assert status == 400, (status, answer[:300])
        doc = _error(answer)
        print(f"400 answer {len(answer)} bytes for a {size}-byte request")
        assert len(answer) <= ANSWER_BOUND, f"{len(answer)} bytes for a {size}-byte request"
        assert len(answer) <= size
        assert "40 rejected" in doc["error"] and "out of order sample" in doc["error"]
        listed = doc["data"]["rejections"]
        assert 0 < len(listed) < 40 and doc["data"]["unlisted"] == 40 - len(listed)
        assert all(r["reason"] == "out of order sample" for r in listed)
        # Each listed label set is abbreviated but still names the series.
        assert all(r["labels"]["__name__"] == "fat" for r in listed)
        target.assert_survived(RSS_BOUND_MIB)
    finally:
        target.stop()
