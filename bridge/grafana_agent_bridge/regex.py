"""PromQL's regular expressions: RE2 (linear time), with Prometheus's matching rules.

Prometheus compiles label matchers and ``label_replace`` patterns as ``^(?s:pattern)$`` with
Go's RE2-derived engine, so matching is linear in the text and a pattern like ``(.*.*.*)*y``
cannot stall the process. Python's backtracking ``re`` can take exponential time on such a
pattern while holding the GIL (freezing ingest and signal handling alike), so the bridge uses
the RE2 library itself: same syntax (no lookaround, no backreferences, quoted literals, POSIX
classes, scoped ``(?i)``), same linear-time guarantee. Patterns are fully anchored and ``.``
matches a newline, as in Prometheus 3.x.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import re2

_META = frozenset("\\.+*?()[]{}^$")
"""RE2 metacharacters besides ``|``: a pattern without any is a set of literal alternatives."""

MAX_PROGRAM_MEMORY = 8 << 20
"""RE2's own per-pattern memory budget (its default): a pattern whose compiled program would
need more is refused ("pattern too large") instead of growing without bound."""


class RegexError(ValueError):
    """The pattern is not valid RE2 syntax (Go's regexp rejects the same ones)."""


class Match(Protocol):
    """What ``label_replace`` needs of a match: its groups, numbered from 1."""

    def group(self, index: int, /) -> str | None: ...


def _options(*, capture: bool) -> Any:  # re2 ships no type information
    opts = re2.Options()
    opts.dot_nl = True  # Prometheus wraps every pattern in (?s:...)
    opts.log_errors = False  # a user's bad pattern is an API error, not a log line
    opts.never_capture = not capture  # capture groups cost time; matchers never read them
    opts.max_mem = MAX_PROGRAM_MEMORY
    return opts


def _compile(pattern: str, *, capture: bool) -> Any:
    try:
        return re2.compile(f"(?:{pattern})", _options(capture=capture))
    except re2.error as e:
        reason = e.args[0] if e.args else "invalid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise RegexError(f"error parsing regexp: {reason}") from None


def compile_matcher(pattern: str) -> Callable[[str], bool]:
    """A predicate "``value`` fully matches ``pattern``", for label matchers.

    Literal alternations (``a|b|c``, what Grafana's multi-value variables produce) and the
    match-all patterns ``.*``/``.+`` skip the regex engine; everything else is RE2.

    Raises:
        RegexError: the pattern is not valid RE2 syntax.
    """
    if pattern == ".*":
        return _always
    if pattern == ".+":
        return _non_empty
    if not any(c in _META for c in pattern):
        literals = frozenset(pattern.split("|"))
        return literals.__contains__
    rx = _compile(pattern, capture=False)

    def matches(value: str) -> bool:
        # Bytes skip the wrapper's offset bookkeeping; surrogates (never in stored labels)
        # become invalid UTF-8, which simply does not match.
        return rx.fullmatch(value.encode("utf-8", "surrogatepass")) is not None

    return matches


def _always(_value: str) -> bool:
    return True


def _non_empty(value: str) -> bool:
    return value != ""


class Regex:
    """A fully anchored pattern with capture groups, as ``label_replace`` uses it."""

    def __init__(self, pattern: str) -> None:
        """Raises ``RegexError`` when the pattern is not valid RE2 syntax."""
        self.pattern = pattern
        self._rx = _compile(pattern, capture=True)
        self.groups: int = self._rx.groups
        self.names: Mapping[str, int] = dict(self._rx.groupindex)

    def groups_of(self, text: str) -> Sequence[str | None] | None:
        """Group 0 (the whole text) to ``groups`` when ``text`` fully matches, else ``None``."""
        m: Match | None = self._rx.fullmatch(text)
        if m is None:
            return None
        return [m.group(i) for i in range(self.groups + 1)]


def compile_anchored(pattern: str) -> Regex:
    """``Regex(pattern)``; raises ``RegexError``."""
    return Regex(pattern)
