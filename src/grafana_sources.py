"""Our datasource in every related Grafana: the ``grafana-source`` relations, both ways.

What each Grafana tells us (:func:`answers`: its UID and the datasource UID it gave each of our
units), what we publish to it (:func:`publish`: each unit's URL; from the leader the
``jsonData`` with the exemplar link to *that* Grafana's Tempo and the query token in
``secureJsonData``), and whether it answers from this unit (:func:`unreachable`). The wire
format is the library's (``charms.grafana_agent_bridge.v0.grafana_source``).
"""

from __future__ import annotations

import json
import logging

import ops

import exchange
from charms.grafana_agent_bridge.v0.grafana_source import (
    GrafanaSourceProvider,
    InvalidRemoteDataError,
)
from charms.grafana_agent_bridge.v0.remote_data import Ignored
from config import CharmConfig, unit_datasource_url
from datasources import GrafanaAnswer, Snapshot, json_data, secure_json_data
from workload import Workload

logger = logging.getLogger(__name__)

# Grafanas probed per hook at most (each probe may take the workload's 2-second timeout).
MAX_GRAFANA_PROBES = 4


def answers(provider: GrafanaSourceProvider) -> tuple[list[GrafanaAnswer], list[Ignored]]:
    """What every related Grafana says now; a bad answer counts as none, and is named."""
    result: list[GrafanaAnswer] = []
    ignored: list[Ignored] = []
    for relation in provider.relations:
        app = relation.app.name if relation.app else f"relation-{relation.id}"
        try:
            data = provider.read_source_data(relation)
        except InvalidRemoteDataError as e:
            ignored.append(Ignored(f"bad {e.key}", app))
            data = None
        if data is None:
            result.append(GrafanaAnswer(relation.id, app, None))
        else:
            result.append(
                GrafanaAnswer(relation.id, app, data.grafana_uid, data.uids_by_unit_number)
            )
    return result, ignored


def publish(
    provider: GrafanaSourceProvider,
    model: ops.Model,
    config: CharmConfig,
    snapshot: Snapshot,
    *,
    token: str | None,
    unit_number: int,
) -> list[Ignored]:
    """Publish our datasource on every grafana-source relation; the exchange data ignored."""
    grafana_uids = _grafana_uid_by_relation(snapshot)
    received = exchange.received(model)
    for relation in provider.relations:
        if config.datasource_url:
            url = unit_datasource_url(config.datasource_url, unit_number)
        else:
            url = provider.ingress_url(relation, config.port)
        if url is None:
            logger.warning("no ingress address for relation %s yet", relation.id)
            continue
        grafana_uid = grafana_uids.get(relation.id)
        if grafana_uid is None:
            # The jsonData depends on which Grafana this is (its own Tempo for exemplar
            # links), so until it has identified itself both extra keys stay null; this is
            # also the only shape the published v0 schema accepts (Optional[Json[Any]]).
            provider.update_source(relation, url=url)
            continue
        tempo_uid = exchange.correlated_uid(received.datasources, grafana_uid, "tempo")
        if tempo_uid is None and received.unreadable:
            # A garbled databag may be the Tempo we linked to: keep the link we published.
            tempo_uid = _published_tempo_uid(model, relation)
        provider.update_source(
            relation,
            url=url,
            extra_fields=json_data(config, tempo_uid, auth_header=bool(token)),
            secure_extra_fields=secure_json_data(token),
        )
    return list(received.ignored)


def _grafana_uid_by_relation(snapshot: Snapshot) -> dict[int, str]:
    result = {a.relation_id: a.grafana_uid for a in snapshot.answers if a.grafana_uid}
    if snapshot.record is not None:
        for grafana_uid, kept in snapshot.record.grafanas.items():
            result.setdefault(kept.relation_id, grafana_uid)
    return result


def _published_tempo_uid(model: ops.Model, relation: ops.Relation) -> str | None:
    """The exemplar link currently in our ``grafana_source_data`` (leader only)."""
    if not model.unit.is_leader():
        return None
    try:
        published = json.loads(relation.data[model.app].get("grafana_source_data", "{}"))
        return str(published["extra_fields"]["exemplarTraceIdDestinations"][0]["datasourceUid"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def unreachable(provider: GrafanaSourceProvider, workload: Workload) -> list[str]:
    """A line per related Grafana whose ``/api/health`` does not answer from this unit."""
    probed: dict[str, str | None] = {}
    problems: list[str] = []
    for relation in provider.relations:
        try:
            data = provider.read_source_data(relation)
        except InvalidRemoteDataError:
            continue  # already named in the status by the reconcile
        if data is None or not data.external_url or relation.app is None:
            continue
        url = data.external_url
        if url not in probed:
            if len(probed) >= MAX_GRAFANA_PROBES:
                break
            probed[url] = workload.grafana_unreachable_reason(url)
        if probed[url] is not None:
            problems.append(f"grafana {relation.app.name} {probed[url]}")
    return problems
