"""From query text to a checked syntax tree, and what the evaluator reads off that tree.

``promql-parser`` (Rust) does the parsing; this module bounds its input first (very deep input
crashes it), accepts Prometheus 2.x's ``holt_winters`` name, and turns the tree's matchers,
durations and ``@`` times into the bridge's own types. Shared by the evaluator and the API's
``match[]`` handling so both read a selector alike.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone

import promql_parser as pp

from ..labels import METRIC_NAME, Matcher, MatchType
from . import querytext
from .errors import ParseError
from .querytext import TextLimits

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def td_ms(td: timedelta | None) -> int:
    """A parsed duration in milliseconds (0 when absent)."""
    if td is None:
        return 0
    return td.days * 86_400_000 + td.seconds * 1000 + td.microseconds // 1000


def dt_ms(dt: datetime) -> int:
    """A parsed ``@`` time in milliseconds since the epoch."""
    return td_ms(dt - _EPOCH)


def _register_legacy_functions() -> None:
    """Accept ``holt_winters`` (Prometheus 2.x name of double_exponential_smoothing)."""
    with contextlib.suppress(ValueError):  # already registered (module reloaded)
        pp.register_extra_functions(
            [
                pp.Function(
                    "holt_winters",
                    [pp.ValueType.Matrix, pp.ValueType.Scalar, pp.ValueType.Scalar],
                    pp.ValueType.Vector,
                )
            ]
        )


_register_legacy_functions()


def parse(query: str, limits: TextLimits | None = None) -> pp.Expr:
    """The syntax tree of ``query``, after checking its length and nesting against
    ``limits`` (the parser crashes the process on very deep input).

    Raises:
        ParseError: over a limit, or not valid PromQL.
    """
    querytext.check(query, limits or TextLimits())
    try:
        return pp.parse(query)
    except BaseException as e:  # the Rust extension may raise ValueError or a panic exception
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise ParseError(str(e)) from None


TRIM_OPS = ("</", ">/")
"""Prometheus's histogram trim operators (``TRIM_UPPER``/``TRIM_LOWER``), which the parser
package does not know."""

_STAND_INS = ("==", "!=", ">=", "<=")


def _code_spans(query: str) -> list[tuple[int, int]]:
    """(start, end) of the parts of ``query`` outside string literals."""
    spans: list[tuple[int, int]] = []
    i, start, n = 0, 0, len(query)
    while i < n:
        c = query[i]
        if c in "\"'`":
            spans.append((start, i))
            j = i + 1
            while j < n and query[j] != c:
                j += 2 if c != "`" and query[j] == "\\" else 1
            i = j + 1
            start = i
            continue
        i += 1
    spans.append((start, n))
    return spans


def parse_with_trims(
    query: str, limits: TextLimits | None = None
) -> tuple[pp.Expr, dict[str, str]]:
    """``parse``, also accepting the trim operators ``</`` and ``>/``: each is written as a
    comparison operator the query does not otherwise use (they share its precedence) and the
    returned map says which stand-in means which trim.

    Raises:
        ParseError: as ``parse``; or every stand-in is taken.
    """
    spans = _code_spans(query)
    code = "".join(query[a:b] for a, b in spans)
    used = [t for t in TRIM_OPS if t in code]
    if not used:
        return parse(query, limits), {}
    free = [op for op in _STAND_INS if op not in code]
    if len(free) < len(used):
        raise ParseError("trim operators cannot be combined with every comparison operator")
    mapping = dict(zip(used, free, strict=False))
    parts: list[str] = []
    prev = 0
    for a, b in spans:
        parts.append(query[prev:a])
        chunk = query[a:b]
        for trim, stand_in in mapping.items():
            chunk = chunk.replace(trim, stand_in)
        parts.append(chunk)
        prev = b
    parts.append(query[prev:])
    return parse("".join(parts), limits), {v: k for k, v in mapping.items()}


_MATCH_OPS = {
    "Equal": MatchType.EQUAL,
    "NotEqual": MatchType.NOT_EQUAL,
    "Re": MatchType.REGEX,
    "NotRe": MatchType.NOT_REGEX,
}


def selector_matcher_sets(vs: pp.VectorSelector) -> list[list[Matcher]]:
    """The store matchers of a parsed selector: one list per ``or`` alternative (usually one).

    Regexes get RE2 semantics (``labels.Matcher``); the metric name becomes a ``__name__``
    matcher. Shared by query evaluation and the API's ``match[]`` so both select alike.
    """

    def conv(ms: list[pp.Matcher]) -> list[Matcher]:
        out = []
        for m in ms:
            op = _MATCH_OPS[str(m.op).rsplit(".", 1)[-1]]
            try:
                out.append(Matcher(m.name, op, m.value))
            except Exception as e:
                raise ParseError(f"invalid regular expression {m.value!r}: {e}") from None
        if vs.name is not None and not any(x.name == METRIC_NAME for x in out):
            out.insert(0, Matcher(METRIC_NAME, MatchType.EQUAL, vs.name))
        return out

    groups = vs.matchers.or_matchers
    if groups:
        return [conv(list(g)) for g in groups]
    return [conv(list(vs.matchers.matchers))]


def expr_type(node: pp.Expr) -> str:
    """The static type of an expression: vector, matrix, scalar or string."""
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    if isinstance(node, (pp.VectorSelector, pp.AggregateExpr)):
        return "vector"
    if isinstance(node, (pp.MatrixSelector, pp.SubqueryExpr)):
        return "matrix"
    if isinstance(node, pp.NumberLiteral):
        return "scalar"
    if isinstance(node, pp.StringLiteral):
        return "string"
    if isinstance(node, pp.UnaryExpr):
        return expr_type(node.expr)
    if isinstance(node, pp.Call):
        return str(node.func.return_type).rsplit(".", 1)[-1].lower()
    if isinstance(node, pp.BinaryExpr):
        if expr_type(node.lhs) == "scalar" and expr_type(node.rhs) == "scalar":
            return "scalar"
        return "vector"
    return "vector"


def at_kind(at: pp.AtModifier) -> str:
    """``Start``, ``End`` or ``At`` (a fixed time) for an ``@`` modifier."""
    return str(at.type).rsplit(".", 1)[-1]
