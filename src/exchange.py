"""The ``grafana_datasource_exchange`` side: bulk publication and correlation.

The databag model and its serialisation are cosl's (``DSExchangeAppData``), so what we write
is byte-for-byte what Tempo, Mimir and Prometheus read. We do the writing ourselves rather than
with ``DatasourceExchange.publish``, because that rewrites every databag on every call and we
promise not to touch a databag whose content is already right (no relation-changed storms).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import ops
from cosl.interfaces.datasource_exchange import DSExchangeAppData, GrafanaDatasource
from cosl.interfaces.utils import DataValidationError

logger = logging.getLogger(__name__)

PROVIDER_ENDPOINT = "send-datasource"
REQUIRER_ENDPOINT = "receive-datasource"


def exchange_relations(model: ops.Model) -> list[ops.Relation]:
    """Every exchange relation on both endpoints, in relation-id order."""
    relations = [
        relation
        for endpoint in (PROVIDER_ENDPOINT, REQUIRER_ENDPOINT)
        for relation in model.relations.get(endpoint, ())
        if relation.app is not None
    ]
    return sorted(relations, key=lambda r: r.id)


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


def received(model: ops.Model) -> Received:
    """Read every remote exchange databag with cosl's model; invalid ones are skipped."""
    datasources: list[GrafanaDatasource] = []
    unreadable = False
    for relation in exchange_relations(model):
        assert relation.app is not None  # exchange_relations keeps only those with an app
        bag = relation.data[relation.app]
        if not bag:
            continue
        try:
            datasources.extend(DSExchangeAppData.load(bag).datasources)
        except DataValidationError:
            logger.warning("ignoring invalid exchange data from %s", relation.app.name)
            unreadable = True
    return Received(tuple(sorted(datasources, key=lambda ds: ds.uid)), unreadable)


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
