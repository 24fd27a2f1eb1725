"""The forwarder against the real store and a real HTTP receiver behind the fault proxy.

The receiver is the proxy's recording mode (it decodes with the bridge's own decoder); the
end-to-end tests in ``tests/e2e/test_forward*.py`` use a real Prometheus instead.
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from grafana_agent_bridge.config import (
    ForwardConfig,
    ForwardTarget,
    derived_target_name,
    legacy_target_name,
)
from grafana_agent_bridge.forward import ForwardManager
from grafana_agent_bridge.forward.backoff import Backoff, parse_retry_after
from grafana_agent_bridge.forward.batching import plan_requests
from grafana_agent_bridge.forward.progress import Mark
from grafana_agent_bridge.labels import make_labels
from grafana_agent_bridge.metrics import Registry
from grafana_agent_bridge.remote_write import decode_write_request, encode_write_request
from grafana_agent_bridge.storage import (
    Exemplar,
    FeedBatch,
    FeedPosition,
    MetricMetadata,
    SeriesBatch,
    SeriesData,
)
from grafana_agent_bridge.store import Store, StoreOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
import itertools

from faultproxy import DROP, PASS, SWALLOW, Fault, FaultProxy

T0 = 1_700_000_000_000


def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "data", StoreOptions())
    yield s
    s.close()


@pytest.fixture
def receiver() -> Iterator[FaultProxy]:
    p = FaultProxy()
    yield p
    p.close()


def fill(store: Store, series: int, writes: int, per_write: int, start: int = 0) -> int:
    """Append ``writes`` requests of ``per_write`` samples to each of ``series`` series."""
    for w in range(writes):
        batch = []
        for i in range(series):
            t0 = T0 + (start + w * per_write) * 1000
            ts = np.arange(t0, t0 + per_write * 1000, 1000, dtype=np.int64)
            vals = (ts - T0) / 1000.0 + i
            batch.append(SeriesBatch(make_labels({"__name__": "m", "i": str(i)}), ts, vals))
        res = store.append(batch)
        assert not res.rejections
    return series * writes * per_write


ExemplarLog = dict[tuple, list[tuple[tuple, float, int]]]


def fill_with_exemplars(
    store: Store, series: int, writes: int, per_write: int, start: int = 0
) -> tuple[int, ExemplarLog]:
    """``fill``, with a trace-id exemplar on each series' first sample of every write, and
    after every write one exemplar in a write of its own, without samples. Returns the samples
    and the exemplars per series in append order."""
    total = 0
    exemplars: ExemplarLog = {}
    for w in range(writes):
        t0 = T0 + (start + w * per_write) * 1000
        ts = np.arange(t0, t0 + per_write * 1000, 1000, dtype=np.int64)
        batch = []
        for i in range(series):
            labels = make_labels({"__name__": "m", "i": str(i)})
            ex = Exemplar(make_labels({"trace_id": f"{start + w:04x}{i:028x}"}), float(i), t0)
            batch.append(SeriesBatch(labels, ts, (ts - T0) / 1000.0 + i, [ex]))
            exemplars.setdefault(labels, []).append((ex.labels, ex.value, ex.timestamp))
        res = store.append(batch)
        assert not res.rejections and res.accepted_exemplars == series
        total += series * per_write
        labels = make_labels({"__name__": "m", "i": str(w % series)})
        ex = Exemplar(make_labels({"trace_id": f"late{start + w:028x}"}), -1.0, int(ts[-1]))
        empty = np.empty(0, np.int64)
        res = store.append([SeriesBatch(labels, empty, empty.astype(np.float64), [ex])])
        assert res.accepted_exemplars == 1
        exemplars[labels].append((ex.labels, ex.value, ex.timestamp))
    return total, exemplars


def items_per_request(bodies: list[bytes]) -> list[int]:
    """Samples + exemplars of each remote-write request body."""
    out = []
    for body in bodies:
        decoded = decode_write_request(body)
        out.append(sum(len(s.timestamps) + len(s.exemplars) for s in decoded.series))
    return out


def config(url: str, **kw: object) -> ForwardConfig:
    defaults: dict[str, object] = {
        "max_samples_per_send": 500,
        "min_backoff": timedelta(milliseconds=10),
        "max_backoff": timedelta(milliseconds=200),
    }
    defaults.update(kw)
    return ForwardConfig(targets=[ForwardTarget(name="up", url=url)], **defaults)  # type: ignore[arg-type]


def assert_complete_and_ordered(store: Store, received: FaultProxy, *, duplicates: bool = False):
    stored = {s.labels: s for s in store.select([], 0, 2**62)}
    got = received.received.samples
    assert set(got) == set(stored)
    for labels, s in stored.items():
        samples = got[labels]
        ts = [t for t, _ in samples]
        if duplicates:  # one restart: the series goes back once, then ascends again
            descents = sum(1 for a, b in itertools.pairwise(ts) if b <= a)
            assert descents <= 1, labels
            uniq = dict(samples)
            assert sorted(uniq) == s.timestamps.tolist()
        else:
            assert ts == s.timestamps.tolist(), labels
            assert [v for _, v in samples] == s.values.tolist()


def test_delivers_everything_in_per_series_order(store: Store, receiver: FaultProxy) -> None:
    total = fill(store, series=40, writes=10, per_write=25)
    reg = Registry()
    fm = ForwardManager(store, config(receiver.url), reg).start()
    try:
        wait_until(fm.caught_up)
    finally:
        fm.stop()
    assert receiver.received.total() == total
    assert_complete_and_ordered(store, receiver)
    assert fm.stats.sent.get("up") == total
    # Requests respect max_samples_per_send.
    assert all(s.nbytes > 0 for s in receiver.seen)
    assert receiver.received.requests >= total / 500
    assert store.register("forward-up") == store.end()


def test_keeps_forwarding_what_arrives_later(store: Store, receiver: FaultProxy) -> None:
    fm = ForwardManager(store, config(receiver.url), Registry()).start()
    try:
        total = 0
        for round_ in range(5):
            total += fill(store, series=5, writes=1, per_write=10, start=round_ * 10)
            wait_until(lambda want=total: receiver.received.total() == want)
    finally:
        fm.stop()
    assert_complete_and_ordered(store, receiver)


def test_retries_5xx_429_and_network_errors(store: Store, receiver: FaultProxy) -> None:
    total = fill(store, series=10, writes=4, per_write=50)
    receiver.fail_next(2, Fault.answer(503, "overloaded"))
    receiver.fail_next(2, DROP)
    receiver.fail_next(1, Fault.answer(500))
    receiver.fail_next(1, Fault.answer(429, "slow down", retry_after="1"))
    reg = Registry()
    fm = ForwardManager(store, config(receiver.url), reg, shards=1).start()
    try:
        wait_until(fm.caught_up)
    finally:
        fm.stop()
    assert_complete_and_ordered(store, receiver)
    assert fm.stats.sent.get("up") == total
    assert fm.stats.retried.get("up") > 0
    assert fm.stats.dropped.get("up", "rejected") == 0
    attempts = [s.retry_attempt for s in receiver.seen]
    assert attempts[:7] == [None, "1", "2", "3", "4", "5", "6"]
    # Retry-After: 1 was honoured (not the 10..200 ms backoff).
    gap = receiver.seen[6].at - receiver.seen[5].at
    assert 0.9 <= gap < 2.0, gap
    assert fm.stats.requests.get("up", "network") == 2
    assert fm.stats.requests.get("up", "5xx") == 3
    assert fm.stats.requests.get("up", "429") == 1


def test_backoff_doubles_up_to_the_cap(store: Store, receiver: FaultProxy) -> None:
    fill(store, series=1, writes=1, per_write=10)
    receiver.set_mode(Fault.answer(500, "down"))
    cfg = config(
        receiver.url,
        min_backoff=timedelta(milliseconds=40),
        max_backoff=timedelta(milliseconds=320),
    )
    fm = ForwardManager(store, cfg, Registry(), shards=1).start()
    try:
        wait_until(lambda: len(receiver.seen) >= 7)
        receiver.set_mode(PASS)
        wait_until(fm.caught_up)
    finally:
        fm.stop()
    times = [s.at for s in receiver.seen[:7]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    expected = [0.04, 0.08, 0.16, 0.32, 0.32, 0.32]
    for gap, want in zip(gaps, expected):
        assert want * 0.9 <= gap <= want + 0.25, (gaps, expected)  # +request time


def test_4xx_is_dropped_counted_and_logged(
    store: Store, receiver: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    fill(store, series=1, writes=1, per_write=100)
    receiver.fail_next(1, Fault.answer(400, "out of order sample"))
    fm = ForwardManager(store, config(receiver.url), Registry(), shards=1)
    with caplog.at_level(logging.WARNING):
        fm.start()
        try:
            wait_until(fm.caught_up)
            second = fill(store, series=1, writes=1, per_write=100, start=100)
            wait_until(lambda: receiver.received.total() == second)
            wait_until(fm.caught_up)
        finally:
            fm.stop()
    assert fm.stats.failed.get("up") == 100
    assert fm.stats.dropped.get("up", "rejected") == 100
    assert fm.stats.requests.get("up", "4xx") == 1
    assert "out of order sample" in caplog.text
    assert "HTTP 400" in caplog.text
    # Only the rejected request is missing; the cursor moved past it.
    got = [t for t, _ in next(iter(receiver.received.samples.values()))]
    assert got == [T0 + i * 1000 for i in range(100, 200)]
    assert store.register("forward-up") == store.end()


def test_restart_resumes_without_gaps_or_duplicates(store: Store, receiver: FaultProxy) -> None:
    first = fill(store, series=5, writes=4, per_write=20)
    fm = ForwardManager(store, config(receiver.url), Registry()).start()
    wait_until(fm.caught_up)
    fm.stop()
    assert receiver.received.total() == first
    second = fill(store, series=5, writes=4, per_write=20, start=80)
    fm = ForwardManager(store, config(receiver.url), Registry()).start()
    try:
        wait_until(lambda: receiver.received.total() >= first + second)
        wait_until(fm.caught_up)
    finally:
        fm.stop()
    assert receiver.received.total() == first + second
    assert_complete_and_ordered(store, receiver)


def crash(fm: ForwardManager) -> None:
    """Stop the sender's threads the way ``kill -9`` would: nothing persisted on the way out."""
    for sender in fm.senders:
        sender._halt(5)


@pytest.mark.parametrize("delivered_before_crash", [False, True])
def test_resume_after_a_crash_resends_exactly_the_batch_in_flight(
    store: Store, tmp_path: Path, delivered_before_crash: bool
) -> None:
    """Against a receiver that, like Prometheus, rejects a whole request holding an old sample:
    whether or not the in-flight batch had reached it, everything arrives exactly once."""
    receiver = FaultProxy(strict=True)
    state = tmp_path / "fwd"
    cfg = config(receiver.url, max_samples_per_send=50)
    try:
        first = fill(store, series=4, writes=5, per_write=25)
        fm = ForwardManager(store, cfg, Registry(), state_dir=state).start()
        wait_until(fm.caught_up)
        acked_before = store.register("forward-up")
        # The next batch gets in flight and the crash happens before the sender hears back.
        receiver.set_mode(SWALLOW if delivered_before_crash else Fault("stall", stall_s=30))
        before = receiver.arrivals
        second = fill(store, series=4, writes=2, per_write=25, start=125)
        wait_until(lambda: receiver.arrivals > before)
        time.sleep(0.3)
        crash(fm)
        receiver.set_mode(PASS)
        reg = Registry()
        fm2 = ForwardManager(store, cfg, reg, state_dir=state).start()
        try:
            wait_until(fm2.caught_up)
            third = fill(store, series=4, writes=1, per_write=25, start=175)
            wait_until(lambda: receiver.received.total() == first + second + third)
            wait_until(fm2.caught_up)
        finally:
            fm2.stop()
        assert_complete_and_ordered(store, receiver)  # every sample once, in order
        assert fm2.stats.resent.get("up") == second
        assert fm2.stats.failed.get("up") == 0
        assert acked_before < store.register("forward-up")
    finally:
        receiver.close()


class CountingFeed:
    """The real store, with its reads counted."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.read_samples = 0

    def register(self, consumer: str) -> FeedPosition:
        return self.store.register(consumer)

    def read(self, position: FeedPosition, max_samples: int) -> FeedBatch:
        batch = self.store.read(position, max_samples)
        self.read_samples += sum(len(s.timestamps) for s in batch.series)
        return batch

    def acknowledge(self, consumer: str, position: FeedPosition) -> None:
        self.store.acknowledge(consumer, position)

    def end(self) -> FeedPosition:
        return self.store.end()

    def samples_after(self, position: FeedPosition) -> int:
        return self.store.samples_after(position)

    def rename_consumer(self, old: str, new: str) -> bool:
        return self.store.rename_consumer(old, new)

    def metadata(self) -> dict[str, list[MetricMetadata]]:
        return self.store.metadata()

    def state_dir(self) -> Path:
        return self.store.state_dir()


def test_outage_reads_only_a_bounded_window(store: Store, receiver: FaultProxy) -> None:
    receiver.set_mode(DROP)
    feed = CountingFeed(store)
    reg = Registry()
    fm = ForwardManager(feed, config(receiver.url), reg, shards=2).start()
    try:
        total = 0
        for k in range(10):
            total += fill(store, series=50, writes=2, per_write=20, start=k * 40)
        time.sleep(0.6)
        # One batch (shards x max_samples_per_send, plus the rest of the last record) at a time.
        assert feed.read_samples <= 2 * 500 + 50
        wait_until(lambda: fm.stats.pending.get("up") == total)
        assert fm.stats.lag.get("up") > 0
        receiver.set_mode(PASS)
        wait_until(fm.caught_up, timeout=20)
        wait_until(lambda: fm.stats.pending.get("up") == 0)
        wait_until(lambda: fm.stats.lag.get("up") == 0)
    finally:
        fm.stop()
    assert_complete_and_ordered(store, receiver)
    text = reg.expose()
    assert 'bridge_forward_samples_sent_total{target="up"} ' + str(total) in text


def test_a_scrape_sees_the_backlog_of_the_write_just_before_it(
    store: Store, receiver: FaultProxy
) -> None:
    """Whoever waits for ``pending == 0`` after its last write must not stop waiting while that
    write is still undelivered: the gauge is computed at the read, not by a periodic tick."""
    receiver.set_mode(DROP)
    reg = Registry()
    fm = ForwardManager(store, config(receiver.url), reg, ack_interval_s=3600.0).start()
    try:
        wait_until(lambda: fm.senders[0].delivered_position is not None)
        total = 0
        for k in range(5):
            total += fill(store, series=3, writes=1, per_write=2, start=k * 2)
            text = reg.expose()  # no pause: the periodic update has not run in between
            assert f'bridge_forward_samples_pending{{target="up"}} {total}' in text, k
        receiver.set_mode(PASS)
        wait_until(lambda: 'samples_pending{target="up"} 0\n' in reg.expose(), timeout=20)
        assert fm.stats.sent.get("up") == total
    finally:
        fm.stop()


def test_stop_is_prompt_while_upstream_stalls(store: Store, receiver: FaultProxy) -> None:
    fill(store, series=2, writes=1, per_write=10)
    receiver.set_mode(Fault("stall", stall_s=60))
    fm = ForwardManager(store, config(receiver.url), Registry()).start()
    wait_until(lambda: len(receiver.seen) == 0 and fm.stats.requests.get("up", "network") == 0)
    time.sleep(0.3)
    t0 = time.monotonic()
    fm.stop(timeout_s=5)
    assert time.monotonic() - t0 < 2.0
    assert store.register("forward-up") == FeedPosition(1, 0)


def test_refused_connections_are_retried(store: Store, receiver: FaultProxy) -> None:
    total = fill(store, series=3, writes=2, per_write=10)
    receiver.refuse()
    fm = ForwardManager(store, config(receiver.url), Registry()).start()
    try:
        wait_until(lambda: fm.stats.requests.get("up", "network") >= 3)
        receiver.accept()
        wait_until(fm.caught_up)
    finally:
        fm.stop()
    assert receiver.received.total() == total


def test_headers_and_auth_are_sent(store: Store) -> None:
    seen: dict[str, str] = {}

    class Spy(FaultProxy):
        def _record(self, h, body):  # type: ignore[no-untyped-def]
            seen.update(h.headers.items())
            return super()._record(h, body)

    spy = Spy()
    try:
        fill(store, series=1, writes=1, per_write=3)
        target = ForwardTarget(
            name="up", url=spy.url, bearer_token="s3cret", headers={"X-Scope-OrgID": "fleet"}
        )
        fm = ForwardManager(store, ForwardConfig(targets=[target]), Registry()).start()
        wait_until(fm.caught_up)
        fm.stop()
    finally:
        spy.close()
    assert seen["Authorization"] == "Bearer s3cret"
    assert seen["X-Scope-OrgID"] == "fleet"
    assert seen["Content-Encoding"] == "snappy"
    assert seen["X-Prometheus-Remote-Write-Version"] == "0.1.0"


def test_metadata_is_forwarded(store: Store, receiver: FaultProxy) -> None:
    meta = [MetricMetadata("m", "gauge", "A test gauge.", "seconds")]
    store.append(
        [SeriesBatch(make_labels({"__name__": "m"}), np.array([T0]), np.array([1.0]))], meta
    )
    fm = ForwardManager(store, config(receiver.url), Registry(), metadata_interval_s=0.1)
    fm.start()
    try:
        wait_until(lambda: "m" in receiver.received.metadata)
    finally:
        fm.stop()
    assert receiver.received.metadata["m"] == ("gauge", "A test gauge.", "seconds")
    assert fm.stats.metadata.get("up") >= 1


def test_exemplars_are_forwarded_in_order_with_their_series(store: Store) -> None:
    receiver = FaultProxy(keep_bodies=True)
    try:
        total, exemplars = fill_with_exemplars(store, series=6, writes=8, per_write=5)
        reg = Registry()
        fm = ForwardManager(store, config(receiver.url, max_samples_per_send=16), reg).start()
        try:
            wait_until(fm.caught_up)
        finally:
            fm.stop()
        assert receiver.received.total() == total
        assert_complete_and_ordered(store, receiver)
        assert receiver.received.exemplars == exemplars  # each series' exemplars, in order
        sent = sum(len(v) for v in exemplars.values())
        assert fm.stats.exemplars_sent.get("up") == sent
        assert f'bridge_forward_exemplars_sent_total{{target="up"}} {sent}' in reg.expose()
        # Exemplars count towards max_samples_per_send, as in Prometheus.
        assert receiver.bodies is not None
        sizes = items_per_request(receiver.bodies)
        assert max(sizes) <= 16 and sum(sizes) == total + sent
    finally:
        receiver.close()


def test_resume_after_a_crash_resends_the_same_requests_with_exemplars(
    store: Store, tmp_path: Path
) -> None:
    """The in-flight batch, exemplars included, goes out again as byte-identical requests."""
    receiver = FaultProxy(strict=True, keep_bodies=True)
    state = tmp_path / "fwd"
    cfg = config(receiver.url, max_samples_per_send=30)
    try:
        # 4 x 29 samples and then 4 exemplars fill a read of 4 shards x 30: the batch in flight
        # ends with an exemplar record, which a re-read must not leave out.
        first, exemplars = fill_with_exemplars(store, series=4, writes=5, per_write=29)
        fm = ForwardManager(store, cfg, Registry(), state_dir=state).start()
        wait_until(fm.caught_up)
        receiver.set_mode(SWALLOW)  # delivered, but the sender never hears back
        assert receiver.bodies is not None
        before = len(receiver.bodies)
        second, more = fill_with_exemplars(store, series=4, writes=2, per_write=29, start=145)
        wait_until(lambda: receiver.arrivals > before)
        time.sleep(0.3)
        crash(fm)
        swallowed = set(receiver.bodies[before:])
        mark = Mark.parse((state / "forward-up.progress").read_text())
        assert mark.in_flight_exemplars > 0 and mark.in_flight_samples > 0
        receiver.set_mode(PASS)
        after = len(receiver.bodies)
        fm2 = ForwardManager(store, cfg, Registry(), state_dir=state).start()
        try:
            wait_until(fm2.caught_up)
        finally:
            fm2.stop()
        # Every shard was stuck on its first request of the batch: each went out again as is.
        assert swallowed <= set(receiver.bodies[after:])
        assert receiver.received.total() == first + second
        assert_complete_and_ordered(store, receiver)
        for labels, exs in more.items():
            exemplars[labels] += exs
        assert receiver.received.exemplars == exemplars
        assert fm2.stats.failed.get("up") == 0
    finally:
        receiver.close()


def test_a_mark_from_before_exemplars_were_forwarded_still_parses() -> None:
    old = Mark.parse("3 100 3 900 250 4\n")
    assert (old.in_flight_samples, old.shards, old.in_flight_exemplars) == (250, 4, 0)
    new = Mark(FeedPosition(3, 100), FeedPosition(3, 900), 250, 4, 7)
    assert Mark.parse(new.dump()) == new


def test_a_down_target_does_not_hold_back_another(store: Store, receiver: FaultProxy) -> None:
    down = FaultProxy()
    down.set_mode(DROP)
    cfg = ForwardConfig(
        targets=[
            ForwardTarget(name="up", url=receiver.url),
            ForwardTarget(name="down", url=down.url),
        ]
    )
    fm = ForwardManager(store, cfg, Registry()).start()
    try:
        total = fill(store, series=5, writes=3, per_write=10)
        wait_until(lambda: receiver.received.total() == total)
        wait_until(lambda: fm.stats.pending.get("down") == total)
        assert fm.stats.sent.get("down") == 0
        down.set_mode(PASS)
        wait_until(lambda: down.received.total() == total)
    finally:
        fm.stop()
        down.close()
    assert store.register("forward-up") == store.register("forward-down") == store.end()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.parametrize("trust", ["skip-verify", "ca-file", "untrusted"])
def test_https_targets(
    store: Store, certificate: tuple[Path, Path], trust: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = FaultProxy(tls=certificate)
    if trust == "ca-file":  # the system trust store, pointed at our CA as OpenSSL allows
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    target = ForwardTarget(
        name="up", url=receiver.url, tls_insecure_skip_verify=trust == "skip-verify"
    )
    cfg = ForwardConfig(targets=[target], max_backoff=timedelta(milliseconds=100))
    total = fill(store, series=2, writes=2, per_write=5)
    fm = ForwardManager(store, cfg, Registry()).start()
    try:
        if trust == "untrusted":
            wait_until(lambda: fm.stats.requests.get("up", "network") >= 3)
            assert receiver.received.total() == 0
        else:
            wait_until(lambda: receiver.received.total() == total)
    finally:
        fm.stop()
        receiver.close()


# -- pure helpers -------------------------------------------------------------------------


def test_plan_requests_merges_series_and_respects_the_limit() -> None:
    a = make_labels({"__name__": "a"})
    b = make_labels({"__name__": "b"})

    def sd(labels, lo: int, hi: int) -> SeriesData:  # type: ignore[no-untyped-def]
        ts = np.arange(lo, hi, dtype=np.int64)
        return SeriesData(labels, ts, ts.astype(np.float64))

    reqs = plan_requests([sd(a, 0, 5), sd(b, 0, 3), sd(a, 5, 12)], limit=4)
    assert [sum(len(s.timestamps) for s in r) for r in reqs] == [4, 4, 4, 3]
    a_ts = [t for r in reqs for s in r if s.labels == a for t in s.timestamps.tolist()]
    assert a_ts == list(range(12))
    assert all(len({s.labels for s in r}) == len(r) for r in reqs)


def test_plan_requests_puts_exemplars_after_their_series_samples() -> None:
    a = make_labels({"__name__": "a"})
    b = make_labels({"__name__": "b"})
    ts = np.arange(0, 3, dtype=np.int64)
    exs = [
        (x, Exemplar(make_labels({"trace_id": str(k)}), 1.0, k)) for k, x in enumerate([a, a, b])
    ]
    reqs = plan_requests([SeriesData(a, ts, ts.astype(np.float64))], limit=4, exemplars=exs)
    # a: 3 samples + 2 exemplars, then b (exemplars only): 6 items in requests of at most 4.
    assert [[(s.labels, len(s.timestamps), len(s.exemplars)) for s in r] for r in reqs] == [
        [(a, 3, 1)],
        [(a, 0, 1), (b, 0, 1)],
    ]
    again = plan_requests([SeriesData(a, ts, ts.astype(np.float64))], 4, exs)
    assert [encode_write_request(r) for r in reqs] == [encode_write_request(r) for r in again]


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 1_700_000_000.0
    date = "Tue, 14 Nov 2023 22:13:30 GMT"  # now + 10 s
    assert parse_retry_after(date, now=now) == pytest.approx(10.0)
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now=now) == 0.0
    assert parse_retry_after("999999") == 600.0


def test_backoff_sequence() -> None:
    b = Backoff(0.03, 5.0)
    seq = [b.next_delay() for _ in range(10)]
    assert seq[:4] == [0.03, 0.06, 0.12, 0.24]
    assert seq[-1] == 5.0
    b.reset()
    assert b.next_delay() == 0.03


def test_retention_during_an_outage_is_counted_as_dropped(tmp_path: Path) -> None:
    """An outage longer than local retention loses the oldest data, and says how much."""
    options = StoreOptions(
        retention_time_ms=3 * 60_000,
        block_duration_ms=60_000,
        wal_segment_bytes=64 * 1024,
        compact_automatically=False,
    )
    store = Store.open(tmp_path / "data", options)
    receiver = FaultProxy()
    receiver.set_mode(DROP)
    fm = ForwardManager(store, config(receiver.url), Registry())
    try:
        fm.start()
        # 20 minutes of data, one sample per series every 5 s, across many WAL segments.
        labels = [make_labels({"__name__": "r", "i": str(i)}) for i in range(400)]
        for k in range(240):
            ts = np.array([T0 + k * 5000], dtype=np.int64)
            store.append([SeriesBatch(lb, ts, np.array([float(k)])) for lb in labels])
        store.compact()
        lost = store.stats().feed_samples_lost
        assert lost > 0
        receiver.set_mode(PASS)
        wait_until(fm.caught_up, timeout=20)
    finally:
        fm.stop()
        receiver.close()
        store.close()
    dropped = fm.stats.dropped.get("up", "retention")
    # The store counts from the last acknowledged position; the batch the sender already held
    # in memory still went out, so it drops at most that much less.
    assert lost - 2 * 500 * 4 <= dropped <= lost
    assert receiver.received.total() + dropped == 240 * 400
    for samples in receiver.received.samples.values():  # what is left is the newest, in order
        ts = [t for t, _ in samples]
        assert ts == sorted(ts)
        assert ts[-1] == T0 + 239 * 5000


def _with_credentials(url: str) -> str:
    return url.replace("http://", "http://fleet:s3cretpw@", 1) + "?apikey=k3y"


def test_state_saved_under_a_name_with_credentials_is_migrated(
    store: Store, receiver: FaultProxy, tmp_path: Path
) -> None:
    """Earlier versions derived the target name from the URL's userinfo too, putting the
    password in file names; the new name takes over the cursor: nothing re-sent, nothing lost."""
    url = _with_credentials(receiver.url)
    state = tmp_path / "fwd"
    legacy = legacy_target_name(url)
    assert "s3cretpw" in legacy
    old = ForwardConfig(targets=[ForwardTarget(name=legacy, url=url)])  # as the old version
    first = fill(store, series=3, writes=2, per_write=5)
    fm = ForwardManager(store, old, Registry(), state_dir=state).start()
    wait_until(fm.caught_up)
    fm.stop()
    assert any("s3cretpw" in p.name for p in [*state.iterdir(), *store.path.rglob("*")])
    second = fill(store, series=3, writes=2, per_write=5, start=10)
    new = ForwardConfig.model_validate({"targets": [{"url": url}]})
    (target,) = new.targets
    assert target.name == derived_target_name(url) and "s3cretpw" not in target.name
    fm = ForwardManager(store, new, Registry(), state_dir=state).start()
    try:
        wait_until(fm.caught_up)
    finally:
        fm.stop()
    assert receiver.received.total() == first + second  # the cursor carried over: no re-send
    assert_complete_and_ordered(store, receiver)
    names = [p.name for p in [*state.iterdir(), *store.path.rglob("*")]]
    assert not [n for n in names if "s3cretpw" in n or "fleet" in n], names
    assert f"forward-{target.name}.progress" in names


def test_url_credentials_are_sent_as_basic_auth_and_never_logged(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    seen: dict[str, str] = {}

    class Spy(FaultProxy):
        def _handle(self, h):  # type: ignore[no-untyped-def]
            seen.update(h.headers.items())
            return super()._handle(h)

    spy = Spy()
    spy.set_mode(Fault.answer(401, "bad key k3y for fleet:s3cretpw"))
    caplog.set_level(logging.DEBUG)
    try:
        fill(store, series=1, writes=1, per_write=3)
        cfg = ForwardConfig.model_validate({"targets": [{"url": _with_credentials(spy.url)}]})
        fm = ForwardManager(store, cfg, Registry()).start()
        wait_until(lambda: "Authorization" in seen)
        wait_until(lambda: "rejected" in caplog.text)
        fm.stop()
    finally:
        spy.close()
    assert seen["Authorization"] == "Basic " + base64.b64encode(b"fleet:s3cretpw").decode()
    assert "s3cretpw" not in caplog.text and "k3y" not in caplog.text, caplog.text
    assert "bad key *** for ***" in caplog.text  # the upstream's echo of them is masked too
