"""Routes and the table that finds one: method + path → endpoint, with what the edge enforces.

A ``Route`` names its methods, its path and its endpoint, and declares what must hold before the
endpoint runs: a bearer token (``auth``), a client inside ``ingest.allowed_networks``
(``write_allow_list``), the phases it is open in, one of the ``max_concurrent_writes`` slots
(``write_slot``), the body it reads and at most how much (``body``, ``max_body``), and whether a
client hanging up cancels it (``watch_disconnect``). ``http`` enforces these in one order for
every route; ``RouteTable`` answers the requests that match no route (404, or 405 naming the
methods the path has). The bridge's own table is in ``routes``.

Paths are exact (``/api/v1/query``), carry named parts (``/api/v1/label/{name}/values``: any
non-empty text, URL-decoded, slashes included, as Prometheus's router reads it) or end in
``/*`` (everything under a prefix that no other route takes). ``HEAD`` is allowed wherever
``GET`` is.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from ..lifecycle import Phase
from . import encoding
from .params import ApiError, Params
from .query import Response, fail

ALL_PHASES = frozenset(Phase)
SERVING = frozenset({Phase.SERVING})

NOT_FOUND = Response(404, b"404 page not found\n", "text/plain; charset=utf-8")


class Body(enum.Enum):
    """What a route reads of a request's body before its endpoint runs."""

    NONE = "none"
    FORM = "form"
    """A POST's ``application/x-www-form-urlencoded`` parameters, merged into ``params``."""
    RAW = "raw"
    """The bytes as sent (remote write)."""


@dataclass(frozen=True)
class Request:
    """What an endpoint gets: the parameters (URL query, then form body), named path parts and,
    for ``Body.RAW`` routes, the body and the headers."""

    method: str
    path: str
    params: Params
    args: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str | None = None
    content_encoding: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    """All request headers, names in lower case (for ``Body.RAW`` routes)."""


Endpoint = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    methods: tuple[str, ...]
    path: str
    endpoint: Endpoint
    label: str = ""
    """The ``handler`` label of the HTTP metrics (the path unless given: one per route, never
    per request, so the label's values stay few)."""
    auth: bool = False
    write_allow_list: bool = False
    open_in: frozenset[Phase] = ALL_PHASES
    write_slot: bool = False
    body: Body = Body.NONE
    max_body: int = 0
    watch_disconnect: bool = False

    @property
    def handler_label(self) -> str:
        return self.label or self.path

    def allows(self, method: str) -> bool:
        return method in self.methods or (method == "HEAD" and "GET" in self.methods)


@dataclass(frozen=True)
class Match:
    route: Route
    args: Mapping[str, str]


@dataclass(frozen=True)
class Refusal:
    """No route takes the request: the answer, and the metrics label it is counted under."""

    label: str
    response: Response


def allow_header(methods: Iterable[str]) -> str:
    shown: list[str] = []
    for m in methods:
        if m not in shown:
            shown.append(m)
        if m == "GET" and "HEAD" not in shown:
            shown.append("HEAD")
    return ", ".join(shown)


def method_not_allowed(methods: Iterable[str]) -> Response:
    return Response(
        405,
        encoding.error("bad_data", "method not allowed"),
        headers={"Allow": allow_header(methods)},
    )


_PART = re.compile(r"\{(\w+)\}")


class _Pattern:
    """A path with ``{name}`` parts, each matching non-empty text (slashes included)."""

    def __init__(self, path: str) -> None:
        pieces = _PART.split(path)
        regex = "".join(
            re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+)" for i, p in enumerate(pieces)
        )
        self.regex = re.compile(regex)

    def match(self, path: str) -> dict[str, str] | None:
        m = self.regex.fullmatch(path)
        if m is None:
            return None
        return {k: unquote(v) for k, v in m.groupdict().items()}


class RouteTable:
    """All routes; ``find`` picks the one for a request or says why there is none."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(routes)
        self._exact: dict[str, list[Route]] = {}
        self._patterns: list[tuple[_Pattern, list[Route]]] = []
        self._prefixes: dict[str, list[Route]] = {}
        by_pattern: dict[str, list[Route]] = {}
        seen: set[tuple[str, str]] = set()
        for r in self.routes:
            for m in r.methods:
                if (m, r.path) in seen:
                    raise ValueError(f"two routes answer {m} {r.path}")
                seen.add((m, r.path))
            if r.path.endswith("/*"):
                self._prefixes.setdefault(r.path[:-1], []).append(r)
            elif _PART.search(r.path):
                by_pattern.setdefault(r.path, []).append(r)
            else:
                self._exact.setdefault(r.path, []).append(r)
        self._patterns = [(_Pattern(p), rs) for p, rs in by_pattern.items()]
        # The longest prefix first, so a narrower catch-all wins over a wider one.
        self._prefix_order = sorted(self._prefixes, key=len, reverse=True)

    def _candidates(self, path: str) -> tuple[list[Route], dict[str, str]]:
        exact = self._exact.get(path)
        if exact is not None:
            return exact, {}
        for pattern, routes in self._patterns:
            args = pattern.match(path)
            if args is not None:
                return routes, args
        for prefix in self._prefix_order:
            if path.startswith(prefix):
                return self._prefixes[prefix], {}
        return [], {}

    def find(self, method: str, path: str) -> Match | Refusal:
        routes, args = self._candidates(path)
        if not routes:
            return Refusal("other", NOT_FOUND)
        for r in routes:
            if r.allows(method):
                return Match(r, args)
        methods = [m for r in routes for m in r.methods]
        return Refusal(routes[0].handler_label, method_not_allowed(methods))


def call(route: Route, request: Request) -> Response:
    """The endpoint's answer; an ``ApiError`` it raises becomes Prometheus's error envelope."""
    try:
        return route.endpoint(request)
    except ApiError as e:
        return fail(e)
