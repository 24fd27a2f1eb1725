#!/usr/bin/env python3
"""The grafana-agent-bridge machine charm.

Every event runs one reconcile that computes the desired relation data from scratch and writes
only what differs; the status is computed in one collect-status handler. Each concern has its
own small ``_reconcile_*`` method, called in dependency order from :meth:`_reconcile`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import ops
from cosl.reconciler import all_events, observe_events

import exchange
from charms.grafana_agent_bridge.v0.grafana_source import GrafanaSourceProvider, unit_number
from config import CharmConfig, ConfigError, load, unit_datasource_url
from datasources import (
    DATASOURCE_TYPE,
    GrafanaAnswer,
    UidRecord,
    json_data,
    next_record,
    waiting_for,
)

logger = logging.getLogger(__name__)

PEER_RELATION = "peers"
GRAFANA_SOURCE_RELATION = "grafana-source"
UID_RECORD_KEY = "datasource-uids"

# Stop and remove tear the unit down: reconciling towards "up" then is pointless.
RECONCILE_EVENTS = all_events - {ops.StopEvent, ops.RemoveEvent}


@dataclass(frozen=True)
class Snapshot:
    """What this unit can see of the datasource lifecycle during one hook."""

    live_units: set[int] | None
    """Unit numbers of the live units (peers plus self); None without the peer relation."""
    planned_units: int
    answers: list[GrafanaAnswer]
    record: UidRecord | None
    """The UID record as it should be now; None without the peer relation."""


class GrafanaAgentBridgeCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self._departing: set[str] = set()
        # The charm's own traces go to Tempo over OTLP HTTP; buffered until related.
        self.tracing = ops.tracing.Tracing(self, tracing_relation_name="charm-tracing")
        self.grafana_source = GrafanaSourceProvider(
            self, DATASOURCE_TYPE, relation_name=GRAFANA_SOURCE_RELATION
        )
        observe_events(self, RECONCILE_EVENTS, self._on_event)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)
        framework.observe(self.on.list_datasources_action, self._on_list_datasources)
        framework.observe(self.on.query_action, self._on_query)

    # -- reconcile ------------------------------------------------------------------------

    def _on_event(self, event: ops.EventBase) -> None:
        if (
            isinstance(event, ops.RelationDepartedEvent)
            and event.relation.name == PEER_RELATION
            and event.departing_unit is not None
        ):
            # Juju still lists the departing unit during its relation-departed hook.
            self._departing.add(event.departing_unit.name)
        self._reconcile()

    def _reconcile(self) -> None:
        snapshot = self._snapshot()
        self._reconcile_uid_record(snapshot)
        self._reconcile_exchange(snapshot)
        config = self._config()
        if config is None:
            return  # Bad config changes nothing that depends on it; the status says why.
        self._reconcile_grafana_sources(config, snapshot)
        # The workload (snap, ports, remote-write, tracing, query auth) plugs in here.

    def _config(self) -> CharmConfig | None:
        try:
            return load(self.config)
        except ConfigError as e:
            logger.error("invalid config: %s", e)
            return None

    @property
    def _unit_number(self) -> int:
        number = unit_number(self.unit.name)
        assert number is not None  # Juju unit names are always <app>/<n>
        return number

    def _live_units(self) -> set[int] | None:
        peer = self.model.get_relation(PEER_RELATION)
        if peer is None:
            return None
        names = ({unit.name for unit in peer.units} | {self.unit.name}) - self._departing
        return {n for n in map(unit_number, names) if n is not None}

    def _answers(self) -> list[GrafanaAnswer]:
        answers: list[GrafanaAnswer] = []
        for relation in self.grafana_source.relations:
            app = relation.app.name if relation.app else f"relation-{relation.id}"
            data = self.grafana_source.source_data(relation)
            if data is None:
                answers.append(GrafanaAnswer(relation.id, app, None))
            else:
                answers.append(
                    GrafanaAnswer(relation.id, app, data.grafana_uid, data.uids_by_unit_number)
                )
        return answers

    def _snapshot(self) -> Snapshot:
        live = self._live_units()
        planned = self.app.planned_units()
        answers = self._answers()
        peer = self.model.get_relation(PEER_RELATION)
        if peer is None or live is None:
            return Snapshot(live, planned, answers, None)
        previous = UidRecord.from_json(peer.data[self.app].get(UID_RECORD_KEY, ""))
        return Snapshot(live, planned, answers, next_record(previous, answers, live, planned))

    def _reconcile_uid_record(self, snapshot: Snapshot) -> None:
        peer = self.model.get_relation(PEER_RELATION)
        if not self.unit.is_leader() or peer is None or snapshot.record is None:
            return
        raw = snapshot.record.to_json()
        if peer.data[self.app].get(UID_RECORD_KEY) != raw:
            peer.data[self.app][UID_RECORD_KEY] = raw

    def _reconcile_exchange(self, snapshot: Snapshot) -> None:
        if not self.unit.is_leader():
            return
        relations = exchange.exchange_relations(self.model)
        if snapshot.record is None:
            # No peer relation (install, remove): we know nothing, so only make sure every
            # databag holds `datasources`, never overwrite what was published.
            relations = [r for r in relations if "datasources" not in r.data[self.app]]
        written = exchange.publish(
            self.app,
            relations,
            exchange.databag_for(snapshot.record.entries() if snapshot.record else []),
        )
        if written:
            logger.info("published datasources on exchange relations %s", written)

    def _grafana_uid_by_relation(self, snapshot: Snapshot) -> dict[int, str]:
        result = {a.relation_id: a.grafana_uid for a in snapshot.answers if a.grafana_uid}
        if snapshot.record is not None:
            for grafana_uid, kept in snapshot.record.grafanas.items():
                result.setdefault(kept.relation_id, grafana_uid)
        return result

    def _reconcile_grafana_sources(self, config: CharmConfig, snapshot: Snapshot) -> None:
        grafana_uids = self._grafana_uid_by_relation(snapshot)
        received = exchange.received(self.model)
        for relation in self.grafana_source.relations:
            if config.datasource_url:
                url = unit_datasource_url(config.datasource_url, self._unit_number)
            else:
                url = self.grafana_source.ingress_url(relation, config.port)
            if url is None:
                logger.warning("no ingress address for relation %s yet", relation.id)
                continue
            grafana_uid = grafana_uids.get(relation.id)
            if grafana_uid is None:
                # The jsonData depends on which Grafana this is (its own Tempo for exemplar
                # links), so until it has identified itself both extra keys stay null; this is
                # also the only shape the published v0 schema accepts (Optional[Json[Any]]).
                self.grafana_source.update_source(relation, url=url)
                continue
            tempo_uid = exchange.correlated_uid(received.datasources, grafana_uid, "tempo")
            if tempo_uid is None and received.unreadable:
                # A garbled databag may be the Tempo we linked to: keep the link we published.
                tempo_uid = self._published_tempo_uid(relation)
            self.grafana_source.update_source(
                relation,
                url=url,
                extra_fields=json_data(config, tempo_uid),
                secure_extra_fields=self._datasource_secure_fields(),
            )

    def _published_tempo_uid(self, relation: ops.Relation) -> str | None:
        """The exemplar link currently in our ``grafana_source_data`` (leader only)."""
        if not self.unit.is_leader():
            return None
        try:
            published = json.loads(relation.data[self.app].get("grafana_source_data", "{}"))
            return str(
                published["extra_fields"]["exemplarTraceIdDestinations"][0]["datasourceUid"]
            )
        except (ValueError, KeyError, IndexError, TypeError):
            return None

    def _datasource_secure_fields(self) -> dict[str, str] | None:
        """Grafana's ``secureJsonData``: the query API's auth header, once the workload has one."""
        return None

    # -- status ---------------------------------------------------------------------------

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        try:
            load(self.config)
        except ConfigError as e:
            event.add_status(ops.BlockedStatus(f"invalid config: {e}"))
        snapshot = self._snapshot()
        if snapshot.record is None or snapshot.live_units is None:
            event.add_status(ops.WaitingStatus("waiting for the peer relation"))
            return
        waits: list[str] = []
        missing = snapshot.planned_units - len(snapshot.live_units)
        if missing > 0:
            waits.append(f"{missing} planned unit(s) to join")
        for waiting in waiting_for(snapshot.record, snapshot.answers, snapshot.live_units):
            units = ", ".join(str(n) for n in waiting.missing_units)
            plural = "s" if len(waiting.missing_units) > 1 else ""
            waits.append(f"UIDs from grafana {waiting.app} for unit{plural} {units}")
        if waits:
            event.add_status(ops.WaitingStatus("waiting for " + "; ".join(waits)))
            return
        published = len(snapshot.record.entries())
        grafanas = len(snapshot.answers)
        if grafanas == 0:
            event.add_status(ops.ActiveStatus("no Grafana related"))
        else:
            event.add_status(
                ops.ActiveStatus(f"{published} datasource(s) published for {grafanas} Grafana(s)")
            )

    # -- actions --------------------------------------------------------------------------

    def _on_list_datasources(self, event: ops.ActionEvent) -> None:
        snapshot = self._snapshot()
        if snapshot.record is None or snapshot.live_units is None:
            event.fail("the peer relation does not exist yet")
            return
        rows: list[dict[str, str | bool]] = []
        known = {r.relation_id: (g, r) for g, r in snapshot.record.grafanas.items()}
        for answer in snapshot.answers:
            grafana_uid, kept = known.get(answer.relation_id, ("", None))
            uids = kept.uids if kept else {}
            published = snapshot.record.published.get(grafana_uid, {})
            for number in sorted(snapshot.live_units | uids.keys()):
                uid = uids.get(number, "")
                rows.append(
                    {
                        "grafana": answer.app,
                        "grafana_uid": grafana_uid,
                        "unit": f"{self.app.name}/{number}",
                        "uid": uid,
                        "published": bool(uid) and published.get(number) == uid,
                    }
                )
        event.set_results(
            {
                "datasources": json.dumps(rows, indent=2),
                "published": len(snapshot.record.entries()),
            }
        )

    def _on_query(self, event: ops.ActionEvent) -> None:
        event.fail(
            "query is not available yet: this charm revision does not run the bridge workload"
        )


if __name__ == "__main__":  # pragma: nocover
    ops.main(GrafanaAgentBridgeCharm)
