"""Bounds on a PromQL text, checked before the parser sees it.

The parser (``promql-parser``, Rust) recurses once per level of the syntax tree: about ten
thousand nested parentheses, or five thousand chained ``+1``, overflow its stack and kill the
whole process with SIGSEGV, and its time grows faster than linearly with depth long before
that, holding the GIL. The evaluator recurses the same way. So the text's length and an upper
bound of its tree depth are computed by a linear scan first, and a query over either limit is
refused with an error that names the limit and its config key.

The depth bound is conservative: every operator token may add a tree level (a left-associative
chain ``a + b + c`` is as deep as it has operators), and so may every bracket pair (a
parenthesis, a call) and every ``[...]`` (a range or subquery wrapping what precedes it).
Inside ``{...}`` nothing counts, since ``=``/``!=``/``=~`` there are label matchers. Strings
and comments are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ParseError

DEFAULT_MAX_QUERY_LENGTH = 1 << 20
DEFAULT_MAX_NESTING_DEPTH = 200

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = frozenset(")]}")
_OPERATOR_CHARS = frozenset("+-*/%^=!<>")
_OPERATOR_WORDS = frozenset(("and", "or", "unless", "atan2"))
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:")


@dataclass(frozen=True)
class TextLimits:
    """The ``query.max_query_length`` and ``query.max_nesting_depth`` settings."""

    max_length: int = DEFAULT_MAX_QUERY_LENGTH
    max_depth: int = DEFAULT_MAX_NESTING_DEPTH


def check(query: str, limits: TextLimits) -> None:
    """Raise ``ParseError`` when ``query`` is longer or (possibly) deeper than ``limits``."""
    if len(query) > limits.max_length:
        raise ParseError(
            f"query is {len(query)} characters long, over the limit of {limits.max_length} "
            "(query.max_query_length)"
        )
    if depth_bound(query, stop_above=limits.max_depth) > limits.max_depth:
        raise ParseError(
            f"query is nested more than {limits.max_depth} levels deep (query.max_nesting_depth)"
        )


class _Group:
    """An open bracket group: operators seen directly in it, its deepest closed child."""

    __slots__ = ("child", "closer", "ops")

    def __init__(self, closer: str) -> None:
        self.closer = closer
        self.ops = 0
        self.child = 0


def depth_bound(query: str, stop_above: int | None = None) -> int:
    """An upper bound of the depth of ``query``'s syntax tree, in one pass over the text.

    A closed group is ``operators in it + its deepest child + 1`` deep. Stops early (returning
    a value over ``stop_above``) once the groups open at that point alone exceed it.
    """
    stack = [_Group("")]
    open_depth = 0  # what the open groups add up to so far, for the early stop
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c in "\"'`":
            i = _skip_string(query, i)
            continue
        if c == "#":
            j = query.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        top = stack[-1]
        if c in _OPEN:
            if c == "[" and top.closer != "}":
                # A range or subquery wraps the expression before it: one more level there.
                top.ops += 1
                open_depth += 1
            stack.append(_Group(_OPEN[c]))
            open_depth += 1
        elif c in _CLOSE:
            if len(stack) > 1:
                stack.pop()
                open_depth -= 1 + top.ops
                stack[-1].child = max(stack[-1].child, top.ops + top.child + 1)
        elif top.closer != "}":
            if c in _OPERATOR_CHARS:
                top.ops += 1
                open_depth += 1
            elif c in _WORD_CHARS:
                j = i
                while j < n and query[j] in _WORD_CHARS:
                    j += 1
                if query[i:j].lower() in _OPERATOR_WORDS:
                    top.ops += 1
                    open_depth += 1
                i = j
                continue
        if stop_above is not None and open_depth > stop_above:
            return open_depth
        i += 1
    # Groups left open (a syntax error the parser will report) count as closed at the end.
    depth = 0
    for group in reversed(stack):
        depth = group.ops + max(group.child, depth) + 1
    return depth - 1  # the outermost "group" is the query itself, not a bracket


def _skip_string(query: str, start: int) -> int:
    """The index after the string literal opening at ``start`` (backticks have no escapes)."""
    quote = query[start]
    i = start + 1
    n = len(query)
    while i < n:
        c = query[i]
        if c == "\\" and quote != "`":
            i += 2
            continue
        if c == quote:
            return i + 1
        i += 1
    return n
