"""``match[]`` selectors and the selectors inside a query, as label matchers for the store.

Every text is parsed under the engine's length and nesting limits (``TextLimits``): the parser
crashes the process on very deep input, whichever endpoint hands it over.
"""

from __future__ import annotations

from collections.abc import Iterator

import promql_parser as pp

from ..labels import Matcher
from ..promql.errors import ParseError
from ..promql.parser import parse, selector_matcher_sets
from ..promql.querytext import TextLimits
from .params import bad_data


def _parse(text: str, limits: TextLimits, param: str) -> pp.Expr:
    try:
        return parse(text, limits)
    except ParseError as e:
        raise bad_data(f'invalid parameter "{param}": {e}') from None


def vector_matcher_sets(vs: pp.VectorSelector) -> list[list[Matcher]]:
    """One matcher list per ``or`` alternative, exactly as query evaluation selects."""
    try:
        return selector_matcher_sets(vs)
    except ParseError as e:
        raise bad_data(str(e)) from None


def parse_match(text: str, limits: TextLimits) -> list[list[Matcher]]:
    """A ``match[]`` value: a bare series selector, which must not match everything."""
    expr = _parse(text, limits, "match[]")
    if not isinstance(expr, pp.VectorSelector):
        raise bad_data(f'invalid parameter "match[]": {text!r} is not a series selector')
    sets = vector_matcher_sets(expr)
    for ms in sets:
        if all(m.matches_empty() for m in ms):
            raise bad_data(
                'invalid parameter "match[]": vector selector must contain at least one '
                "non-empty matcher"
            )
    return sets


def parse_matches(values: list[str], limits: TextLimits) -> list[list[Matcher]]:
    out: list[list[Matcher]] = []
    for v in values:
        out.extend(parse_match(v, limits))
    return out


def format_promql(query: str, limits: TextLimits) -> str:
    """``query`` in the parser's canonical, indented layout."""
    expr = _parse(query, limits, "query")
    try:
        return expr.prettify()
    except BaseException as e:
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise bad_data(f'invalid parameter "query": {e}') from None


def query_selectors(query: str, limits: TextLimits) -> list[list[Matcher]]:
    """Every vector selector in a PromQL query, for ``query_exemplars``."""
    expr = _parse(query, limits, "query")
    return [ms for vs in _walk(expr) for ms in vector_matcher_sets(vs)]


def _walk(node: object) -> Iterator[pp.VectorSelector]:
    if isinstance(node, pp.VectorSelector):
        yield node
        return
    for attr in ("expr", "lhs", "rhs", "param", "vector_selector"):
        child = getattr(node, attr, None)
        if child is not None:
            yield from _walk(child)
    for arg in getattr(node, "args", None) or ():
        yield from _walk(arg)
