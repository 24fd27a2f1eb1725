"""The ``otlp`` interface, provider role (``receive-otlp``), as functions over databags.

Wire format: the library ``charmlibs-interfaces-otlp`` (0.5.0) is the reference, since the
opentelemetry-collector charm's ``send-otlp`` uses its requirer:

* provider (us) application databag: ``endpoints`` = JSON list of the library's
  :class:`OtlpEndpoint` (``protocol``, ``endpoint``, ``telemetries``, ``insecure``). The sender
  keeps one endpoint per relation (gRPC over HTTP) and gives it to an ``otlphttp`` exporter,
  which appends ``/v1/metrics`` to the URL: so we advertise ``http://<address>:<port>/api/v1/otlp``
  with ``protocol: http`` and ``telemetries: [metrics]``, the only signal the bridge stores.
* requirer (sender) application databag: ``rules`` = a JSON string (ops's ``Relation.save``
  JSON-encodes every field) holding base64 of LZMA of JSON
  ``{"promql": {"groups": [...]}, "logql": {...}}``, and ``metadata`` (the sender's topology).

The application databag holds one list for the whole application, so only the leader writes
it, with its own address: every OTLP sender of a relation sends to that one unit (remote-write
senders, by contrast, write to every unit).

The library's own reader (``OtlpProvider.rules``) is not used on remote data: a ``rules`` value
that is not LZMA raises ``LZMAError`` out of its validator (a failed hook), and a small value may
decompress to gigabytes. :func:`promql_groups` bounds every step instead: the encoded length,
the decompressed length, then ``remote_data.load_json``'s length and depth limits. What it cannot
use is returned as :class:`Ignored` for the unit status; nothing here raises on remote data.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import lzma
from collections.abc import Iterable, Mapping
from typing import Any

import ops
from charmlibs.interfaces.otlp import OtlpEndpoint

from charms.grafana_agent_bridge.v0.remote_data import Ignored, RemoteDataError, load_json

logger = logging.getLogger(__name__)

ENDPOINT = "receive-otlp"
ENDPOINTS_KEY = "endpoints"
RULES_KEY = "rules"
BASE_PATH = "/api/v1/otlp"
"""OTLP/HTTP exporters append ``/v1/metrics``: the bridge serves ``/api/v1/otlp/v1/metrics``."""
MAX_RULES_CHARS = 1 << 20
"""The encoded ``rules`` value: compressed rules of every charm behind a collector fit easily."""
MAX_RULES_JSON_CHARS = 4 << 20
"""The decompressed rules, as for ``alert_rules`` on remote-write."""


def endpoints(url: str) -> list[dict[str, Any]]:
    """The ``endpoints`` list the leader publishes: the unit's OTLP/HTTP metrics endpoint.

    ``url`` is ``http://<ingress address>:<port>`` + :data:`BASE_PATH`. Built with the
    library's model, so what we write is what its requirer validates. ``insecure`` says the
    endpoint has no TLS (the bridge serves plain HTTP).
    """
    endpoint = OtlpEndpoint(protocol="http", endpoint=url, telemetries=["metrics"], insecure=True)
    return [endpoint.model_dump(mode="json")]


def published_endpoints(app_databag: Mapping[str, str]) -> object:
    """What our own ``endpoints`` key holds now, parsed; None when absent or not JSON."""
    raw = app_databag.get(ENDPOINTS_KEY)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def publish(relation: ops.Relation, app: ops.Application, url: str) -> bool:
    """Write our endpoint into ``relation``'s application databag (leader) when it differs.

    Per relation rather than the library's all-relations ``publish()``: the address differs per
    relation under cross-model relations (the public address), and an unchanged value is not
    written again (a settled model makes no relation-set calls).
    """
    wanted = endpoints(url)
    bag = relation.data[app]
    if published_endpoints(bag) == wanted:
        return False
    bag[ENDPOINTS_KEY] = json.dumps(wanted)
    return True


def decode_rules(raw: str) -> Any:
    """The JSON inside a ``rules`` value (a JSON string of base64 of LZMA), within the bounds.

    Raises:
        RemoteDataError: too long, not a JSON string, not base64, not LZMA, too large once
            decompressed, not UTF-8, or not JSON within ``load_json``'s bounds.
    """
    encoded = load_json(raw, max_chars=MAX_RULES_CHARS)
    if not isinstance(encoded, str):
        raise RemoteDataError("is not a JSON string")
    try:
        packed = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise RemoteDataError("is not base64") from None
    decompressor = lzma.LZMADecompressor()
    try:
        # One byte more than allowed tells "too large" from "exactly at the limit".
        data = decompressor.decompress(packed, max_length=MAX_RULES_JSON_CHARS + 1)
    except lzma.LZMAError:
        raise RemoteDataError("is not LZMA-compressed") from None
    if len(data) > MAX_RULES_JSON_CHARS:
        raise RemoteDataError(f"decompresses to more than {MAX_RULES_JSON_CHARS} bytes")
    if not decompressor.eof:
        raise RemoteDataError("is truncated LZMA data")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteDataError("is not UTF-8 once decompressed") from None
    return load_json(text, max_chars=MAX_RULES_JSON_CHARS)


def promql_groups(app_databag: Mapping[str, str]) -> list[dict[str, Any]]:
    """The PromQL rule groups a sender published, unchanged; [] when none.

    LogQL rules are not used: the bridge stores metrics only and has no Loki to pass them to.

    Raises:
        RemoteDataError: ``rules`` is unreadable, or its ``promql`` is not
            ``{"groups": [{"rules": [...]}, ...]}``.
    """
    raw = app_databag.get(RULES_KEY)
    if not raw:
        return []
    data = decode_rules(raw)
    if not isinstance(data, dict):
        raise RemoteDataError("is not a JSON object")
    promql: Any = data.get("promql")  # pyright: ignore[reportUnknownMemberType]
    if promql is None:
        return []
    if not isinstance(promql, dict):
        raise RemoteDataError("has a promql that is not a JSON object")
    groups: Any = promql.get("groups", [])  # pyright: ignore[reportUnknownMemberType]
    if not isinstance(groups, list) or not all(
        isinstance(g, dict) and isinstance(g.get("rules"), list)  # pyright: ignore[reportUnknownMemberType]
        for g in groups  # pyright: ignore[reportUnknownVariableType]
    ):
        raise RemoteDataError("has a promql that is not {'groups': [{'rules': [...]}, ...]}")
    return groups  # pyright: ignore[reportUnknownVariableType]


def sender_groups(
    senders: Iterable[tuple[str, Mapping[str, str]]],
) -> tuple[list[dict[str, Any]], list[Ignored]]:
    """Every OTLP sender's PromQL groups, in relation order, for the upstream ``alert_rules``.

    ``senders`` are (application name, app databag) pairs. A sender whose rules are unreadable
    is left out and returned as :class:`Ignored` (its rules are dropped upstream until it
    publishes readable ones, rather than freezing every sender's rules).
    """
    groups: list[dict[str, Any]] = []
    ignored: list[Ignored] = []
    for app, bag in senders:
        try:
            groups.extend(promql_groups(bag))
        except RemoteDataError as e:
            logger.warning("ignoring the %s of %s: it %s", RULES_KEY, app, e)
            ignored.append(Ignored(f"bad otlp {RULES_KEY}", app))
    return groups, ignored
