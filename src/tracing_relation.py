"""Both ``tracing`` relations (the charm's own traces and the bridge's), read safely.

The wire format is the tracing interface v2 (what Tempo and grafana-agent speak): the requirer
application databag holds ``receivers``, a JSON list of protocol names; the provider answers
with ``receivers``, a JSON list of ``{"protocol": {"name", "type"}, "url"}``.

The charm does not use the libraries' observers for this (``ops.tracing.Tracing``,
``TracingEndpointRequirer``): they parse the provider's databag with a bare ``json.loads`` in
their own event handlers, so 5,000 nested brackets raise RecursionError and fail every hook
of the unit. Here the provider's answer goes through ``remote_data`` and the library's
pydantic model, and a bad one is dropped and reported.
"""

from __future__ import annotations

import json
import logging

import ops
import pydantic
from charmlibs.interfaces.tracing import Receiver

from charms.grafana_agent_bridge.v0.remote_data import (
    Ignored,
    RemoteDataError,
    http_url,
    load_json,
)

logger = logging.getLogger(__name__)

PROTOCOL = "otlp_http"
RECEIVERS_KEY = "receivers"
REQUEST = json.dumps([PROTOCOL])
"""Our request, byte for byte what ``TracingRequirerAppData`` writes."""
MAX_RECEIVERS_CHARS = 64 << 10


def request_otlp_http(relation: ops.Relation, app: ops.Application) -> None:
    """Ask the provider for an OTLP HTTP receiver (leader; written only when it differs)."""
    bag = relation.data[app]
    if bag.get(RECEIVERS_KEY) != REQUEST:
        bag[RECEIVERS_KEY] = REQUEST


def otlp_http_endpoint(relation: ops.Relation) -> str:
    """The provider's OTLP HTTP receiver URL; "" when it offers none (yet).

    Raises:
        RemoteDataError: the provider's ``receivers`` is unusable, or its ``otlp_http``
            receiver has a URL the bridge would refuse (no http(s) scheme, no host).
    """
    if relation.app is None:
        return ""
    raw = relation.data[relation.app].get(RECEIVERS_KEY)
    if not raw:
        return ""
    items = load_json(raw, max_chars=MAX_RECEIVERS_CHARS)
    if not isinstance(items, list):
        raise RemoteDataError("is not a JSON list")
    for item in items:  # pyright: ignore[reportUnknownVariableType]
        try:
            receiver = Receiver.model_validate(item)
        except pydantic.ValidationError:
            raise RemoteDataError("holds an entry that is not a receiver") from None
        if receiver.protocol.name == PROTOCOL:
            return http_url(receiver.url)
    return ""


def endpoint(model: ops.Model, endpoint_name: str, what: str) -> tuple[str, list[Ignored]]:
    """The provider's OTLP HTTP receiver on a tracing relation, or "" (no tracing).

    The leader asks for it; a bad answer is dropped, logged and returned as ignored
    ("bad <what> endpoint") for the status.
    """
    relation = model.get_relation(endpoint_name)
    if relation is None:
        return "", []
    if model.unit.is_leader():
        request_otlp_http(relation, model.app)
    try:
        return otlp_http_endpoint(relation), []
    except RemoteDataError as e:
        source = relation.app.name if relation.app else f"relation-{relation.id}"
        logger.warning("ignoring the %s receivers of %s: they %s", endpoint_name, source, e)
        return "", [Ignored(f"bad {what} endpoint", source)]


def traces_url(base: str) -> str | None:
    """Where ops sends the charm's own traces, from the receiver's base URL."""
    return f"{base.rstrip('/')}/v1/traces" if base else None
