"""RE2 (Go) regular expressions in Python's ``re``: the few syntax differences PromQL users hit.

Prometheus anchors every label regex and lets ``.`` match newlines; ``labels.Matcher`` does
both. Here we only rewrite RE2 spellings Python lacks (``\\z``, POSIX classes like
``[[:digit:]]``) so that the same pattern selects the same series.
"""

from __future__ import annotations

import re

_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}

_POSIX_RE = re.compile(r"\[:(\^?)([a-z]+):\]")


def translate(pattern: str) -> str:
    """Rewrite an RE2 pattern into an equivalent Python pattern (unchanged when already valid)."""
    out = pattern.replace("\\z", "\\Z")

    def posix(m: re.Match[str]) -> str:
        cls = _POSIX.get(m.group(2))
        if cls is None or m.group(1):
            return m.group(0)
        return cls

    if "[:" in out:
        out = _POSIX_RE.sub(posix, out)
    return out


def compile_anchored(pattern: str) -> re.Pattern[str]:
    """A fully anchored pattern, as label_replace and matchers use it; raises ``re.error``."""
    return re.compile(f"(?:{translate(pattern)})\\Z", re.DOTALL)
