"""Masking secrets before anything leaves the process: the one way URLs are shown.

A configured URL may carry credentials in its userinfo (``user:pass@``) or in query parameters
(``?apikey=...``), and nothing tells which parameter is secret; so every place that shows,
logs, labels or names something after a URL uses ``redact_url``, which masks the userinfo and
every query-parameter value. Standard library only: ``config`` imports it.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote_plus

__all__ = ["MASK", "first_unsafe_char", "one_line", "redact_url", "redacted_netloc", "scrub"]

MASK = "***"
"""What a secret is replaced with wherever it would be shown."""

_AUTHORITY_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*:)?//(?P<authority>[^/?#]*)")


def redacted_netloc(netloc: str) -> str:
    """``host:port`` of a URL's authority with any ``userinfo@`` replaced by ``***@``."""
    _userinfo, at, hostport = netloc.rpartition("@")
    return f"{MASK}@{hostport}" if at else hostport


def redact_url(url: str) -> str:
    """``url`` with the userinfo and every query-parameter value (and any fragment) masked.

    ``http://u:p@h:9009/push?apikey=k&x`` becomes ``http://***@h:9009/push?apikey=***&***``:
    a parameter without ``=`` may itself be a token, so it is masked too. Works on text that
    is not a valid URL as well (error messages show those), and never raises.
    """
    rest, hash_, _fragment = url.partition("#")
    rest, question, query = rest.partition("?")
    m = _AUTHORITY_RE.match(rest)
    if m is not None:
        scheme = m.group("scheme") or ""
        rest = f"{scheme}//{redacted_netloc(m.group('authority'))}{rest[m.end() :]}"
    elif "@" in rest:  # no "//": still never show what precedes an "@"
        rest = f"{MASK}@{rest.rpartition('@')[2]}"
    if question:
        rest += "?" + "".join(_mask_param(p) for p in re.split(r"([&;])", query))
    if hash_:
        rest += f"#{MASK}"
    return rest


def scrub(text: str, url: str) -> str:
    """``text`` (an error message, a response body) with every secret piece of ``url`` masked:
    its user name, password and query values, as written and percent-decoded."""
    userinfo = ""
    m = _AUTHORITY_RE.match(url.partition("#")[0].partition("?")[0])
    if m is not None:
        userinfo = m.group("authority").rpartition("@")[0]
    query = url.partition("#")[0].partition("?")[2]
    pieces = {*userinfo.split(":", 1), userinfo}
    pieces |= {p.partition("=")[2] if "=" in p else p for p in re.split(r"[&;]", query)}
    pieces |= {unquote_plus(p) for p in pieces}
    for piece in sorted(pieces - {""}, key=len, reverse=True):
        text = text.replace(piece, MASK)
    return text


def _mask_param(part: str) -> str:
    if part in ("", "&", ";"):
        return part
    name, eq, _value = part.partition("=")
    return f"{name}={MASK}" if eq else MASK


_UNSAFE = ("Cc", "Cf", "Zl", "Zp")


def one_line(text: str) -> str:
    """``text`` with every character ``first_unsafe_char`` objects to written as a Python
    escape (a line feed as backslash-n), so it can be shown inside one log or error line."""
    return "".join(repr(ch)[1:-1] if unicodedata.category(ch) in _UNSAFE else ch for ch in text)


def first_unsafe_char(text: str) -> tuple[int, str] | None:
    """Position and ``repr`` of the first character that would break a log or header line.

    Control characters (CR, LF, TAB, NUL, DEL, C1), Unicode line/paragraph separators and
    invisible format characters (bidi overrides, zero-width) all let a value forge or hide
    log lines; none belongs in a URL or an HTTP header value.
    """
    for i, ch in enumerate(text):
        if unicodedata.category(ch) in _UNSAFE:
            return i, repr(ch)
    return None
