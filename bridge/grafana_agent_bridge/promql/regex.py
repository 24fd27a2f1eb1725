r"""RE2 (Go) regular expressions in Python's ``re``: the few syntax differences PromQL users hit.

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


_FLAGS = re.compile(r"\(\?([imsU]*(?:-[imsU]*)?)\)")


def _scope_inline_flags(pattern: str) -> str:
    """RE2's ``(?i)`` applies to the rest of the enclosing group (and to later alternatives);
    Python only accepts it at the very start. Rewrite it into scoped ``(?i:...)`` groups."""
    if "(?" not in pattern:
        return pattern
    out: list[str] = []
    stack: list[list[str]] = [[]]  # per open group: the flag groups opened inside it
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            out.append(pattern[i : j + 1])
            i = j + 1
            continue
        m = _FLAGS.match(pattern, i)
        if m:
            flags = m.group(1).replace("U", "")
            if flags and flags != "-":
                out.append(f"(?{flags}:")
                stack[-1].append(flags)
            i = m.end()
            continue
        if c == "(":
            stack.append([])
            out.append(c)
            i += 1
            continue
        if c == ")":
            out.append(")" * len(stack[-1]))
            if len(stack) > 1:
                stack.pop()
            out.append(c)
            i += 1
            continue
        if c == "|":
            opened = stack[-1]
            out.append(")" * len(opened))
            out.append("|")
            out.extend(f"(?{f}:" for f in opened)
            i += 1
            continue
        out.append(c)
        i += 1
    out.append(")" * len(stack[-1]))
    return "".join(out)


_QUOTED = re.compile(r"\\Q(.*?)(?:\\E|$)", re.DOTALL)


def _reject_perl_only(pattern: str) -> None:
    """RE2 has no lookaround and no backreferences; Prometheus rejects such patterns, so must
    we (Python would accept them and select different series)."""
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            if not in_class and i + 1 < n and pattern[i + 1] in "123456789":
                raise re.error(f"invalid escape sequence: \\{pattern[i + 1]}")
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern.startswith("^", i + 1):
                i += 1
            if pattern.startswith("]", i + 1):
                i += 1
        elif pattern.startswith(("(?=", "(?!", "(?<=", "(?<!", "(?P="), i):
            raise re.error("invalid or unsupported Perl syntax")
        i += 1


def translate(pattern: str) -> str:
    """Rewrite an RE2 pattern into an equivalent Python pattern (unchanged when already valid).

    Raises ``re.error`` for Perl-only syntax RE2 rejects (lookaround, backreferences).
    """
    if "\\Q" in pattern:
        pattern = _QUOTED.sub(lambda m: re.escape(m.group(1)), pattern)
    _reject_perl_only(pattern)
    out = _scope_inline_flags(pattern.replace("\\z", "\\Z"))

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
