"""``redact``: the one way a URL is shown, and what counts as a line-breaking character."""

from __future__ import annotations

import pytest

from grafana_agent_bridge.redact import first_unsafe_char, redact_url, scrub


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://mimir:9009/api/v1/push", "http://mimir:9009/api/v1/push"),
        ("https://u:p@h/push", "https://***@h/push"),
        ("https://token@h/push", "https://***@h/push"),
        ("http://h/p?apikey=k&tenant=a", "http://h/p?apikey=***&tenant=***"),
        ("http://h/p?bare&x=1;y=2", "http://h/p?***&x=***;y=***"),
        ("http://h/p?a=1#frag", "http://h/p?a=***#***"),
        ("http://a@b@h:1/p", "http://***@h:1/p"),
        ("http://[::1]:9/p?k=v", "http://[::1]:9/p?k=***"),
        ("u:p@h/x", "***@h/x"),  # not a URL at all: still nothing before an "@"
        ("http://h/p?", "http://h/p?"),
    ],
)
def test_redact_url_masks_userinfo_and_every_query_value(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_scrub_masks_the_url_secrets_wherever_they_are_echoed() -> None:
    url = "http://fleet:pa%2Fss@h/p?apikey=k3y"
    text = "nonnumeric port: 'pa%2Fss@h'; user fleet, password pa/ss, key k3y"
    assert scrub(text, url) == "nonnumeric port: '***@h'; user ***, password ***, key ***"
    assert scrub("nothing secret", "http://h/p") == "nothing secret"


@pytest.mark.parametrize("char", ["\r", "\n", "\t", "\x00", "\x7f", "\x85", "\u2028", "\u202e"])
def test_line_breaking_and_invisible_characters_are_unsafe(char: str) -> None:
    assert first_unsafe_char(f"http://h/{char}x") == (9, repr(char))


def test_ordinary_text_is_safe() -> None:
    assert first_unsafe_char("http://h/p?q=é&x=%0A") is None
