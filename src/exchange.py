"""The ``grafana_datasource_exchange`` side: bulk publication and correlation.

The databag model and its serialisation are cosl's (``DSExchangeAppData``), so what we write
is byte-for-byte what Tempo, Mimir and Prometheus read. We do the writing ourselves rather than
with ``DatasourceExchange.publish``, because that rewrites every databag on every call and we
promise not to touch a databag whose content is already right (no relation-changed storms).

Reading is ours too: the other side's ``datasources`` goes through ``remote_data`` (size and
nesting bounds before parsing, printable strings only) and then cosl's entry model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import ops
import pydantic
from cosl.interfaces.datasource_exchange import DSExchangeAppData, GrafanaDatasource

from charms.grafana_agent_bridge.v0.remote_data import (
    Ignored,
    RemoteDataError,
    clean_text,
    load_json,
)
from datasources import DATASOURCE_TYPE, UidRecord

logger = logging.getLogger(__name__)

PROVIDER_ENDPOINT = "send-datasource"
REQUIRER_ENDPOINT = "receive-datasource"
DATASOURCES_KEY = "datasources"


def exchange_relations(model: ops.Model) -> list[ops.Relation]:
    """Every exchange relation on both endpoints, in relation-id order."""
    relations = [
        relation
        for endpoint in (PROVIDER_ENDPOINT, REQUIRER_ENDPOINT)
        for relation in model.relations.get(endpoint, ())
        if relation.app is not None
    ]
    return sorted(relations, key=lambda r: r.id)


def entries(record: UidRecord | None) -> list[dict[str, str]]:
    """Our exchange entries: every published UID of every Grafana, sorted by uid (stable).

    Only the last *complete* set of each Grafana is published (``datasources.next_record``);
    without a record (no peer relation yet) there is nothing to publish.
    """
    if record is None:
        return []
    items = [
        {"type": DATASOURCE_TYPE, "uid": uid, "grafana_uid": grafana_uid}
        for grafana_uid, uids in record.published.items()
        for uid in uids.values()
    ]
    return sorted(items, key=lambda e: (e["uid"], e["grafana_uid"]))


def databag_for(entries: Iterable[dict[str, str]]) -> dict[str, str]:
    """The exact app databag for these entries: always ``datasources``, ``"[]"`` included."""
    ordered = sorted(entries, key=lambda e: (e["uid"], e["grafana_uid"]))
    model = DSExchangeAppData(datasources=json.dumps(ordered))  # type: ignore[call-arg]
    return dict(model.dump())


def publish(app: ops.Application, relations: Iterable[ops.Relation], databag: dict[str, str]):
    """Write ``databag`` where it differs; returns the ids of the relations written (leader)."""
    written: list[int] = []
    for relation in relations:
        bag = relation.data[app]
        if dict(bag) == databag:
            continue
        for stale in set(bag) - set(databag):
            bag[stale] = ""
        bag.update({k: v for k, v in databag.items() if bag.get(k) != v})
        written.append(relation.id)
    return written


@dataclass(frozen=True)
class Received:
    datasources: tuple[GrafanaDatasource, ...]
    """What the other applications published, sorted by uid (as cosl sorts them)."""
    unreadable: bool
    """Some remote databag holds something invalid: what it meant is unknown, not empty."""
    ignored: tuple[Ignored, ...] = ()


def parse_datasources(raw: object) -> list[GrafanaDatasource]:
    """One remote ``datasources`` value.

    Raises:
        RemoteDataError: not a JSON list of ``{type, uid, grafana_uid}`` printable strings.
    """
    items = load_json(raw)
    if not isinstance(items, list):
        raise RemoteDataError("is not a JSON list")
    result: list[GrafanaDatasource] = []
    for item in items:  # pyright: ignore[reportUnknownVariableType]
        try:
            datasource = GrafanaDatasource.model_validate(item)
        except pydantic.ValidationError:
            raise RemoteDataError("holds an entry that is not a datasource") from None
        for text in (datasource.type, datasource.uid, datasource.grafana_uid):
            clean_text(text)
        result.append(datasource)
    return result


def received(model: ops.Model) -> Received:
    """Read every remote exchange databag; invalid ones are skipped and reported."""
    datasources: list[GrafanaDatasource] = []
    ignored: list[Ignored] = []
    for relation in exchange_relations(model):
        assert relation.app is not None  # exchange_relations keeps only those with an app
        bag = relation.data[relation.app]
        if not bag:
            continue
        try:
            datasources.extend(parse_datasources(bag.get(DATASOURCES_KEY)))
        except RemoteDataError as e:
            logger.warning("ignoring the %s of %s: it %s", DATASOURCES_KEY, relation.app.name, e)
            ignored.append(Ignored(f"bad {DATASOURCES_KEY}", relation.app.name))
    ordered = tuple(sorted(datasources, key=lambda ds: ds.uid))
    return Received(ordered, bool(ignored), tuple(ignored))


def correlated_uid(
    datasources: Sequence[GrafanaDatasource], grafana_uid: str, datasource_type: str
) -> str | None:
    """The first datasource of a type registered in *this* Grafana (same ``grafana_uid``).

    Only a datasource in the same Grafana can be the target of a link from ours; the order is
    cosl's (sorted by uid), so the choice is stable.
    """
    for datasource in datasources:
        if datasource.type == datasource_type and datasource.grafana_uid == grafana_uid:
            return datasource.uid
    return None
