"""Attacks on the query side of the real daemon: queries that used to crash it (deep PromQL),
freeze it (backtracking regexes), exhaust its memory (fine-grained subqueries) or run without
end (metadata requests). Each attack must be refused or bounded, and the daemon must survive
(``Target.assert_survived``: ready within 2 s, acknowledged samples intact, peak RSS bounded).

Every request has a client timeout, so on a daemon that hangs the test fails instead of hanging.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from attack_support import PROBE_METRIC, Target
from forward_support import http_get, http_post

from grafana_agent_bridge.labels import make_labels
from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import SeriesBatch

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
QUERY_TIMEOUT_S = 3
"""``query.timeout`` of the daemon under attack: short, so deadline tests end quickly."""
REQUEST_TIMEOUT_S = 30.0
"""Client-side bound on every attack request (the pre-fix daemon answered none of them)."""
RSS_BOUND_MIB = 400
"""The daemon with a few thousand series idles well under 200 MiB; a refused attack must not
more than double that (the pre-fix subquery attack peaked at 2.5 GiB)."""


def query_config(**keys: object) -> str:
    body = "".join(f"  {k}: {v}\n" for k, v in {"timeout": f"{QUERY_TIMEOUT_S}s", **keys}.items())
    return "query:\n" + body


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    t = Target(tmp_path / "bridge")
    t.bridge.config.write_text(t.bridge.config.read_text() + query_config())
    t.start()
    yield t
    t.stop()


def post_form(
    t: Target, path: str, params: list[tuple[str, str]], timeout: float = REQUEST_TIMEOUT_S
) -> tuple[int, dict[str, object], float]:
    """POST a form; the status, the decoded JSON envelope and the seconds it took."""
    body = urllib.parse.urlencode(params).encode()
    started = time.monotonic()
    status, raw = http_post(t.url, path, body, FORM, timeout=timeout)
    return status, json.loads(raw), time.monotonic() - started


def get(
    t: Target, path: str, params: list[tuple[str, str]], timeout: float = REQUEST_TIMEOUT_S
) -> tuple[int, dict[str, object], float]:
    """GET with the parameters in the URL; a URL too long for the HTTP server gets its plain
    4xx (``{}`` as the body) before any endpoint sees it."""
    started = time.monotonic()
    status, raw = http_get(t.url, f"{path}?{urllib.parse.urlencode(params)}", timeout=timeout)
    took = time.monotonic() - started
    if status == 414:
        return status, {}, took
    return status, json.loads(raw), took


def push(t: Target, batches: list[SeriesBatch]) -> None:
    status, answer = http_post(
        t.url, "/api/v1/write", encode_write_request(batches), REMOTE_WRITE_HEADERS, timeout=10
    )
    assert status == 204, (status, answer[:300])


def one_sample(labels: dict[str, str], ts_ms: int, value: float = 1.0) -> SeriesBatch:
    return SeriesBatch(make_labels(labels), np.array([ts_ms], dtype=np.int64), np.array([value]))


# -- item 1: deep PromQL crashed the parser ---------------------------------------------------

DEEP = "(" * 10_000 + PROBE_METRIC + ")" * 10_000
CHAINED = PROBE_METRIC + "+1" * 5_000


def promql_endpoints(t: Target, q: str) -> Iterator[tuple[str, tuple[int, dict, float]]]:
    """Every endpoint that parses PromQL, each given ``q``."""
    now = t.now_ms / 1000
    window = [("start", f"{now - 600:.3f}"), ("end", f"{now:.3f}")]
    yield "query", post_form(t, "/api/v1/query", [("query", q)])
    ranged = [("query", q), *window, ("step", "15")]
    yield "query_range", post_form(t, "/api/v1/query_range", ranged)
    yield "series", post_form(t, "/api/v1/series", [("match[]", q), *window])
    yield "labels", post_form(t, "/api/v1/labels", [("match[]", q), *window])
    yield "label values", get(t, "/api/v1/label/series/values", [("match[]", q), *window])
    yield "format_query", post_form(t, "/api/v1/format_query", [("query", q)])
    yield "query_exemplars", post_form(t, "/api/v1/query_exemplars", [("query", q), *window])


@pytest.mark.parametrize(
    ("query", "limit_key"),
    [
        pytest.param(DEEP, "query.max_nesting_depth", id="10k-parentheses"),
        pytest.param(CHAINED, "query.max_nesting_depth", id="5k-chained-plus"),
        pytest.param("x" + " " * (1 << 21), "query.max_query_length", id="2MiB-long"),
    ],
)
def test_deep_or_long_promql_is_refused_before_parsing(
    target: Target, query: str, limit_key: str
) -> None:
    slowest = 0.0
    for endpoint, (status, body, took) in promql_endpoints(target, query):
        slowest = max(slowest, took)
        assert took < 1.0, f"{endpoint} took {took:.2f}s to refuse"
        if status == 414 and len(query) > 65536:
            continue  # the URL itself is refused (label values is GET only)
        assert status == 400, (endpoint, status, body)
        assert body["errorType"] == "bad_data", (endpoint, body)
        assert limit_key in str(body["error"]), (endpoint, body)
    peak = target.assert_survived(RSS_BOUND_MIB)
    print(
        f"{len(query)}-char query refused on 7 endpoints, slowest {slowest:.3f}s, "
        f"peak {peak:.0f} MiB"
    )


# -- item 2: backtracking regexes froze the daemon -------------------------------------------

PATHOLOGICAL = [
    pytest.param('{__name__=~"(.*.*.*.*)*y"}', id="matcher"),
    pytest.param('label_replace(attack_regex, "a", "$1", "b", "(p+)+q")', id="label_replace"),
]


def push_regex_bait(t: Target) -> None:
    """A label value Python's backtracking ``re`` needs 2^32 steps to reject against
    ``(p+)+q`` (the metric names themselves are bait for ``(.*.*.*.*)*y``)."""
    push(t, [one_sample({"__name__": "attack_regex", "b": "p" * 32}, t.now_ms - 5_000)])


@pytest.mark.parametrize("query", PATHOLOGICAL)
def test_pathological_regex_does_not_freeze_ingest(target: Target, query: str) -> None:
    push_regex_bait(target)
    answers: list[tuple[int, dict, float]] = []
    attack = threading.Thread(
        target=lambda: answers.append(post_form(target, "/api/v1/query", [("query", query)])),
        daemon=True,
    )
    attack.start()
    time.sleep(0.2)  # the query is in flight (or already answered)
    # Ingest and readiness keep working while (or after) the query runs.
    started = time.monotonic()
    push(target, [one_sample({"__name__": "attack_during", "n": "1"}, target.now_ms)])
    assert time.monotonic() - started < 2.0, "ingest stalled behind the regex query"
    target.assert_ready()
    attack.join(REQUEST_TIMEOUT_S)
    assert answers, "the regex query was not answered"
    status, body, took = answers[0]
    assert status == 200, body
    assert took < QUERY_TIMEOUT_S, f"the regex query took {took:.1f}s"
    peak = target.assert_survived(RSS_BOUND_MIB)
    print(f"{query}: answered in {took:.3f}s, peak {peak:.0f} MiB")


def test_regex_semantics_stay_prometheus(target: Target) -> None:
    """RE2 with Prometheus's rules: fully anchored, ``.`` matches newline, $1 expansion."""
    push_regex_bait(target)
    status, body, _ = post_form(
        target,
        "/api/v1/query",
        [("query", 'label_replace(attack_regex, "a", "<$1|${2}>", "b", "(p+?)(p*)")')],
    )
    assert status == 200, body
    (series,) = body["data"]["result"]  # type: ignore[index]
    assert series["metric"]["a"] == "<p|" + "p" * 31 + ">"
    status, body, _ = post_form(target, "/api/v1/query", [("query", '{__name__=~"attack_pr"}')])
    assert status == 200 and body["data"]["result"] == [], body  # type: ignore[index]
    status, body, _ = post_form(target, "/api/v1/query", [("query", '{b=~"p(?=p)"}')])
    assert status == 400 and body["errorType"] == "bad_data", body
    target.assert_survived(RSS_BOUND_MIB)


def test_sigterm_is_honoured_during_a_regex_query(target: Target) -> None:
    push_regex_bait(target)
    for spec in PATHOLOGICAL:
        query = str(spec.values[0])
        threading.Thread(
            target=lambda q=query: _ignore_errors(
                lambda: post_form(target, "/api/v1/query", [("query", q)], timeout=10)
            ),
            daemon=True,
        ).start()
    time.sleep(0.3)
    target.assert_survived(RSS_BOUND_MIB)
    proc = target.bridge.proc
    assert proc is not None
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    try:
        code = proc.wait(10)
    except Exception:
        proc.kill()
        proc.wait()
        raise AssertionError("SIGTERM was not honoured within 10 s") from None
    assert code == 0, target.bridge.log_text()[-2000:]
    print(f"exited {time.monotonic() - started:.2f}s after SIGTERM")
    target.bridge.proc = None


def _ignore_errors(fn: Callable[[], object]) -> None:
    """The daemon may stop before it answers: that is the point of the test."""
    with contextlib.suppress(Exception):
        fn()


# -- item 6: memory of dense subquery arrays -------------------------------------------------


@pytest.mark.parametrize("window", ["12h", "1d"])
def test_fine_subquery_is_refused_before_allocating(target: Target, window: str) -> None:
    query = f'max_over_time({PROBE_METRIC}{{series="s000"}}[{window}:1ms])'
    status, body, took = post_form(target, "/api/v1/query", [("query", query)])
    assert status == 422, body
    assert body["errorType"] == "execution", body
    assert "too many samples" in str(body["error"]), body
    assert took < 1.0, f"refused only after {took:.2f}s"
    peak = target.assert_survived(RSS_BOUND_MIB)
    print(f"{query}: refused in {took:.3f}s, peak RSS {peak:.0f} MiB")


# -- item 8: metadata endpoints had no slot and no deadline -----------------------------------

MANY_SERIES = 20_000


def push_many_series(t: Target) -> None:
    for first in range(0, MANY_SERIES, 2_000):
        push(
            t,
            [
                one_sample({"__name__": f"meta_{i % 50}", "id": str(i)}, t.now_ms - 5_000)
                for i in range(first, first + 2_000)
            ],
        )


def metadata_attacks(t: Target) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Requests that each make the store walk every series hundreds of times."""
    every = [("match[]", f'{{__name__=~"meta_.+", id!="{i}"}}') for i in range(400)]
    selectors = " or ".join(f'{{__name__=~"meta_.+", id!="{i}"}}' for i in range(120))
    return [
        ("POST", "/api/v1/series", every),
        ("POST", "/api/v1/labels", every),
        ("GET", "/api/v1/label/id/values", every),
        ("POST", "/api/v1/query_exemplars", [("query", selectors)]),
    ]


def test_metadata_endpoints_have_a_slot_and_a_deadline(target: Target) -> None:
    push_many_series(target)
    results: list[tuple[str, int, dict, float]] = []
    errors: list[BaseException] = []

    def run(method: str, path: str, params: list[tuple[str, str]]) -> None:
        try:
            send = post_form if method == "POST" else get
            status, body, took = send(target, path, params)
            results.append((path, status, body, took))
        except BaseException as e:  # a client timeout: the daemon did not answer in time
            errors.append(e)

    # Twice as many requests as query slots, all at once.
    threads = [
        threading.Thread(target=run, args=a, daemon=True) for a in metadata_attacks(target) * 2
    ]
    started = time.monotonic()
    for th in threads:
        th.start()
    time.sleep(0.5)
    target.assert_ready()
    for th in threads:
        th.join(REQUEST_TIMEOUT_S)
    elapsed = time.monotonic() - started
    assert not errors, errors
    assert len(results) == len(threads)
    for path, status, body, took in results:
        # How far a request gets before the deadline depends on the machine's speed: each
        # either finished or was cut off as a timeout, and none ran past the deadline.
        assert status == 200 or (status == 503 and body["errorType"] == "timeout"), (
            path,
            status,
            body,
        )
        # Within the timeout (+ the wait for a slot) + slack for a loaded 2-core machine.
        assert took < 2 * QUERY_TIMEOUT_S + 4, f"{path} took {took:.1f}s"
    timed_out = {path for path, status, _, _ in results if status == 503}
    # The series walks (400 selectors over 20k series each) cannot finish in 3 s here.
    assert {"/api/v1/series", "/api/v1/labels", "/api/v1/label/id/values"} <= timed_out, results
    print(f"{len(threads)} metadata attacks refused within {elapsed:.1f}s")
    target.assert_survived(RSS_BOUND_MIB)
