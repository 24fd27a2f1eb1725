"""The guarded path every remote value takes: bounds before parsing, then shape checks."""

from __future__ import annotations

import ipaddress
import json
import time

import pytest

from charms.grafana_agent_bridge.v0.remote_data import (
    MAX_DEPTH,
    RemoteDataError,
    TooWideNetworkError,
    clean_text,
    http_url,
    load_json,
    narrow_network,
    nesting_depth,
)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("", 0),
        ("1", 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('["[[[[", "]]", {"k": "\\"[["}]', 2),  # brackets inside strings do not count
        ('"unterminated [[[[', 0),
        ("]]]]", 0),
    ],
)
def test_nesting_depth_counts_brackets_outside_strings(text: str, depth: int):
    assert nesting_depth(text) == depth


def test_too_deep_json_is_refused_before_parsing():
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(RemoteDataError, match="nested 100000 levels deep"):
        load_json(deep, max_chars=1 << 20)
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert load_json(ok) == json.loads(ok)


@pytest.mark.parametrize(
    "text",
    [
        '"\\"' * (1 << 20),  # every quote escaped: a rescanning tokenizer would be quadratic
        "[" * (4 << 20),
        '{"a":' * (1 << 20),
        '"' + "x" * (4 << 20),
    ],
    ids=["escaped-quotes", "brackets", "objects", "unterminated"],
)
def test_the_depth_scan_is_linear_on_hostile_text(text: str):
    started = time.perf_counter()
    nesting_depth(text)
    assert time.perf_counter() - started < 2.0  # measured ~0.1-0.3 s on 2 cores


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("x" * (1 << 20 + 1), "characters long"),
        ("{oops", "is not JSON"),
        ("9" * 5000, "not usable JSON"),  # int() refuses more than 4300 digits
        (7, "not text"),
    ],
)
def test_load_json_refuses_with_a_reason_that_does_not_echo_the_value(raw: object, reason: str):
    with pytest.raises(RemoteDataError, match=reason) as caught:
        load_json(raw)
    assert len(str(caught.value)) < 100


@pytest.mark.parametrize(
    "value", ["", "a\x00b", "\u202egrafana", "x\u200f", "\udcff", "\ue000", 5, None, "u" * 257]
)
def test_clean_text_refuses_what_cannot_be_shown_or_published(value: object):
    with pytest.raises(RemoteDataError):
        clean_text(value)


def test_clean_text_accepts_printable_unicode():
    assert clean_text("juju_cos_1234_grafana-agent-bridge_0") == (
        "juju_cos_1234_grafana-agent-bridge_0"
    )
    assert clean_text("Grafana Ünïcode ²") == "Grafana Ünïcode ²"


@pytest.mark.parametrize(
    "url",
    [
        "tempo:4318",
        "file:///etc/passwd",
        "http://",
        "http://[::1/api/v1/write",
        "http://h:99999/",
        "http://a,b/",
        "http://a b/",
        "http://\u202etempo/",
        "http://tempo\x00/",
        "ftp://x/y",
        4318,
        "http://" + "a" * 3000,
    ],
)
def test_http_url_refuses_what_the_bridge_or_a_comma_list_would(url: object):
    with pytest.raises(RemoteDataError):
        http_url(url)


@pytest.mark.parametrize(
    "url", ["http://tempo:4318", "https://[fd00::1]:9009/api/v1/push", "http://10.0.0.1/x?y=1"]
)
def test_http_url_keeps_a_good_url_unchanged(url: str):
    assert http_url(url) == url


@pytest.mark.parametrize(
    "network",
    ["0.0.0.0/0", "10.0.0.0/7", "::/0", "2001:db8::/31", "::ffff:0.0.0.0/96", "::/64"],
)
def test_too_wide_networks_are_refused(network: str):
    with pytest.raises(TooWideNetworkError) as caught:
        narrow_network(network)
    assert caught.value.network == str(ipaddress.ip_network(network, strict=False))


@pytest.mark.parametrize(
    "network", ["10.0.0.0/8", "10.1.2.3", "2001:db8::/32", "fd00::1", "::ffff:10.0.0.0/104"]
)
def test_narrow_networks_are_kept(network: str):
    assert narrow_network(network) == ipaddress.ip_network(network, strict=False)


@pytest.mark.parametrize("value", ["juju-host-1", "", "10.0.0.0/33", "\x00"])
def test_non_addresses_are_refused_but_not_as_too_wide(value: str):
    with pytest.raises(RemoteDataError) as caught:
        narrow_network(value)
    assert not isinstance(caught.value, TooWideNetworkError)
