#!/usr/bin/env python3
"""The grafana-agent-bridge machine charm.

Every event runs one reconcile that computes the desired relation data from scratch and writes
only what differs; the status is computed in one collect-status handler. Each concern has its
own small ``_reconcile_*`` method, called in dependency order from :meth:`_reconcile`. What a
hook reads (config, the peer relation and the Grafana answers, the query token) is read once,
into a :class:`HookContext` that the reconcile, the status and the actions share.

The side subjects live in their own modules: the query token's lifecycle in ``query_token``,
the peer databags (typed) in ``peers``, the exchange entries in ``exchange``, the UID rules in
``datasources``, the remote-write wire format in ``remote_write``, installing and configuring
the snap (and its status line) in ``snap_sync``.

The workload (the grafana-agent-bridge snap and its HTTP API) is reached only through
:class:`workload.Workload`; the charm drives the snap with ``snap set`` keys, never its
configuration file (docs/configuration.md, "The charm's contract").

Remote relation data is untrusted (docs/charm.md, "Trust model"): every remote value is read
through ``charms.grafana_agent_bridge.v0.remote_data``; what cannot be used is dropped, logged
and named in the unit status ("ignored bad tracing endpoint from tempo"), and never stops the
security settings (token, allow-list, listen address) from reaching the bridge.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import ops
from cosl.reconciler import all_events, observe_events

import exchange
import grafana_sources
import otlp_relation
import query_token
import remote_write
import self_monitoring
import snap_source
import snap_sync
import tracing_relation
import unit_status
from charms.grafana_agent_bridge.v0.grafana_source import (
    GrafanaSourceProvider,
    ingress_url,
    unit_number,
)
from charms.grafana_agent_bridge.v0.remote_data import Ignored, RemoteDataError
from config import CharmConfig, ConfigError, load
from datasources import (
    DATASOURCE_TYPE,
    GrafanaAnswer,
    Snapshot,
    listing,
    next_record,
)
from peers import PEER_RELATION, QUERY_TOKEN_SECRET_KEY, Peers
from workload import QueryError, SnapWorkload, Workload

logger = logging.getLogger(__name__)

GRAFANA_SOURCE_RELATION = "grafana-source"
WORKLOAD_TRACING_RELATION = "workload-tracing"
CHARM_TRACING_RELATION = "charm-tracing"
QUERY_TOKEN_LABEL = query_token.LABEL
__all__ = ["QUERY_TOKEN_LABEL", "QUERY_TOKEN_SECRET_KEY", "GrafanaAgentBridgeCharm"]

# Stop and remove tear the unit down: reconciling towards "up" then is pointless.
RECONCILE_EVENTS = all_events - {ops.StopEvent, ops.RemoveEvent}


@dataclass(frozen=True)
class HookContext:
    """What one hook reads of its config, the relations and the query token: read once.

    The reconcile computes it first; the collect-status handler and the actions reuse it, so
    every step of a hook sees the same inputs and no secret or databag is read twice.
    """

    config: CharmConfig | None
    """None when the config is invalid (:attr:`config_error` says why)."""
    config_error: str
    peers: Peers | None
    """The peer relation, typed; None before it exists (install) and after (remove)."""
    snapshot: Snapshot
    token: str | None
    """The query token: "" when off, None while not known (or the config is invalid)."""


class GrafanaAgentBridgeCharm(ops.CharmBase):
    _stored = ops.StoredState()

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self._departing: set[str] = set()
        self._ignored: dict[Ignored, None] = {}
        """Remote values dropped during this hook, in order, for the status."""
        self.grafana_source = GrafanaSourceProvider(
            self, DATASOURCE_TYPE, relation_name=GRAFANA_SOURCE_RELATION
        )
        # Our metrics, rules and dashboard for the collector on the machine (its library writes
        # our cos-agent unit databag on its own events; see self_monitoring).
        self.cos_agent = self_monitoring.provider(
            self, lambda: self_monitoring.configured_port(self.config)
        )
        # Both tracing relations (the charm's own traces, buffered by ops until related, and
        # the bridge's) are read in the reconcile by tracing_relation, not by the libraries'
        # observers: those raise on hostile provider data (see tracing_relation).
        self.workload: Workload = SnapWorkload()
        self._stored.set_default(installed_source="")
        self.snap = snap_sync.SnapSync(self.workload, self.unit, self._stored)
        self._hook: HookContext | None = None
        # Before the reconcile: a rotated token must be in place when the reconcile reads it.
        framework.observe(self.on.secret_rotate, self._on_secret_rotate)
        framework.observe(self.on.remove, self._on_remove)
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

    def _ignore(self, items: Iterable[Ignored]) -> None:
        for item in items:
            self._ignored[item] = None

    def _reconcile(self) -> None:
        self._reconcile_charm_tracing()
        hook = self._context(maintain=True)
        self._reconcile_departures(hook)
        self._reconcile_uid_record(hook)
        self._reconcile_exchange(hook.snapshot)
        if hook.config is None:
            return  # Bad config changes nothing that depends on it; the status says why.
        self._reconcile_grafana_sources(hook.config, hook.snapshot, hook.token)
        self._reconcile_remote_write(hook.config)
        self._reconcile_workload(hook.config, hook.token)

    def _context(self, *, maintain: bool = False) -> HookContext:
        """This hook's inputs, read on first use (``maintain``: the leader may create the token).

        Remote values found bad while reading are named in the status, in reading order.
        """
        if self._hook is not None:
            return self._hook
        peers = Peers.of(self.model, self._departing)
        snapshot = self._snapshot(peers)
        try:
            config, config_error = load(self.config), ""
        except ConfigError as e:
            logger.error("invalid config: %s", e)
            config, config_error = None, str(e)
        token = None
        if config is not None:
            token = query_token.current(
                self.model,
                peers,
                enabled=config.query_auth,
                rotation=config.query_auth_rotation,
                maintain=maintain,
            )
            if peers is not None:
                self._ignore(peers.ignored)
        self._hook = HookContext(config, config_error, peers, snapshot, token)
        return self._hook

    @property
    def _unit_number(self) -> int:
        number = unit_number(self.unit.name)
        assert number is not None  # Juju unit names are always <app>/<n>
        return number

    def _answers(self) -> list[GrafanaAnswer]:
        answers, ignored = grafana_sources.answers(self.grafana_source)
        self._ignore(ignored)
        return answers

    def _snapshot(self, peers: Peers | None) -> Snapshot:
        live = peers.live_units() if peers is not None else None
        planned = self.app.planned_units()
        answers = self._answers()
        if peers is None or live is None:
            return Snapshot(live, planned, answers, None)
        departing = peers.departing_now() | peers.departures_seen()
        self._ignore(peers.ignored)
        record = next_record(peers.uid_record(), answers, live, planned, departing)
        return Snapshot(live, planned, answers, record)

    def _reconcile_departures(self, hook: HookContext) -> None:
        """Note the units seen to depart in this unit's peer databag, while Grafana lists them."""
        if hook.peers is not None:
            hook.peers.note_departures({n for a in hook.snapshot.answers for n in a.uids_by_unit})

    def _reconcile_uid_record(self, hook: HookContext) -> None:
        if self.unit.is_leader() and hook.peers is not None and hook.snapshot.record is not None:
            hook.peers.write_uid_record(hook.snapshot.record)

    def _reconcile_exchange(self, snapshot: Snapshot) -> None:
        if not self.unit.is_leader():
            return
        relations = exchange.exchange_relations(self.model)
        if snapshot.record is None:
            # No peer relation (install, remove): we know nothing, so only make sure every
            # databag holds `datasources`, never overwrite what was published.
            relations = [r for r in relations if "datasources" not in r.data[self.app]]
        databag = exchange.databag_for(exchange.entries(snapshot.record))
        written = exchange.publish(self.app, relations, databag)
        if written:
            logger.info("published datasources on exchange relations %s", written)

    def _reconcile_grafana_sources(
        self, config: CharmConfig, snapshot: Snapshot, token: str | None
    ) -> None:
        self._ignore(
            grafana_sources.publish(
                self.grafana_source,
                self.model,
                config,
                snapshot,
                token=token,
                unit_number=self._unit_number,
            )
        )

    # -- query authentication -------------------------------------------------------------

    def _on_secret_rotate(self, event: ops.SecretRotateEvent) -> None:
        query_token.rotate(event, leader=self.unit.is_leader())

    # -- remote write ---------------------------------------------------------------------

    def _remote_units_data(self, endpoint: str) -> list[tuple[str, ops.RelationDataContent]]:
        """(unit name, databag) of every remote unit on the endpoint, in a stable order."""
        return [
            (unit.name, relation.data[unit])
            for relation in sorted(self.model.relations.get(endpoint, ()), key=lambda r: r.id)
            for unit in sorted(relation.units, key=lambda u: u.name)
        ]

    def _reconcile_remote_write(self, config: CharmConfig) -> None:
        for relation in self.model.relations.get(remote_write.RECEIVE_ENDPOINT, ()):
            url = ingress_url(self.model, relation, config.port, path=remote_write.WRITE_PATH)
            if url is None:
                continue
            bag = relation.data[self.unit]
            for key, value in remote_write.unit_databag(url).items():
                if bag.get(key) != value:
                    bag[key] = value
        if not self.unit.is_leader():
            return
        otlp_groups = self._reconcile_otlp(config)
        senders = sorted(
            self.model.relations.get(remote_write.RECEIVE_ENDPOINT, ()), key=lambda r: r.id
        )
        rules, ignored = remote_write.upstream_alert_rules(
            (
                (relation.app.name, relation.data[relation.app])
                for relation in senders
                if relation.app is not None
            ),
            otlp_groups,
        )
        self._ignore(ignored)
        for relation in self.model.relations.get(remote_write.SEND_ENDPOINT, ()):
            bag = relation.data[self.app]
            if bag.get(remote_write.ALERT_RULES_KEY, "") != rules:
                bag[remote_write.ALERT_RULES_KEY] = rules

    def _reconcile_otlp(self, config: CharmConfig) -> list[dict[str, Any]]:
        """Publish our OTLP endpoint on every receive-otlp relation (leader); their rules."""
        relations = sorted(
            self.model.relations.get(otlp_relation.ENDPOINT, ()), key=lambda r: r.id
        )
        for relation in relations:
            url = ingress_url(self.model, relation, config.port, path=otlp_relation.BASE_PATH)
            if url is not None:
                otlp_relation.publish(relation, self.app, url)
        groups, ignored = otlp_relation.sender_groups(
            (relation.app.name, relation.data[relation.app])
            for relation in relations
            if relation.app is not None
        )
        self._ignore(ignored)
        return groups

    # -- workload -------------------------------------------------------------------------

    def _snap_settings(self, config: CharmConfig, token: str | None) -> dict[str, str | None]:
        """The snap keys the charm manages, from the config and the relations (fail closed
        until the token is known: see ``snap_sync``)."""
        allowed, ignored = remote_write.allowed_clients(
            self._remote_units_data(remote_write.RECEIVE_ENDPOINT)
            + self._remote_units_data(otlp_relation.ENDPOINT)
        )
        self._ignore(ignored)
        forward, ignored = remote_write.forward_urls(
            self._remote_units_data(remote_write.SEND_ENDPOINT)
        )
        self._ignore(ignored)
        return snap_sync.managed_settings(
            config,
            token,
            allowed_clients=allowed,
            forward_urls=forward,
            tracing_endpoint=self._tracing_endpoint(WORKLOAD_TRACING_RELATION, "tracing"),
        )

    def _tracing_endpoint(self, endpoint: str, what: str) -> str:
        url, ignored = tracing_relation.endpoint(self.model, endpoint, what)
        self._ignore(ignored)
        return url

    def _reconcile_charm_tracing(self) -> None:
        """Where ops sends the charm's own traces: the provider's OTLP HTTP receiver."""
        base = self._tracing_endpoint(CHARM_TRACING_RELATION, "charm-tracing")
        ops.tracing.set_destination(url=tracing_relation.traces_url(base), ca=None)

    def _reconcile_workload(self, config: CharmConfig, token: str | None) -> None:
        self.unit.set_ports(config.port)
        if self.snap.ensure_installed(snap_source.wanted(self.model, config.snap_channel)):
            self.snap.apply(self._snap_settings(config, token))

    def _on_remove(self, _: ops.RemoveEvent) -> None:
        self.snap.remove()

    # -- status ---------------------------------------------------------------------------

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        event.add_status(unit_status.top(self._unit_statuses(), self._ignored))

    def _unit_statuses(self) -> list[ops.StatusBase]:
        """Every status that applies, in the order ops should see them."""
        statuses: list[ops.StatusBase] = []
        later: list[ops.StatusBase] = []  # workload waits, after the datasource waits
        problems: list[str] = []  # peers that do not answer: forwarding targets, Grafanas
        active_tail = ""
        hook = self._context()
        config = hook.config
        if config is None:
            statuses.append(ops.BlockedStatus(f"invalid config: {hook.config_error}"))
        else:
            workload = self.snap.status(config.port, hook.token)
            if isinstance(workload, ops.BlockedStatus):
                statuses.append(workload)
            elif workload is not None:
                later.append(workload)
            else:
                forwarding = self.workload.forwarding_health(config.port)
                names = self._upstream_names() if forwarding is not None else {}
                problems += unit_status.forwarding_problems(forwarding, names)
                active_tail = unit_status.forwarding_summary(forwarding)
            problems += grafana_sources.unreachable(self.grafana_source, self.workload)
        if problems:
            # Waiting, not Blocked: an outage elsewhere needs no action on this charm, and the
            # status clears by itself once the peer answers again (docs/charm.md, "Status").
            later.append(ops.WaitingStatus("; ".join(problems)))
        return unit_status.with_datasources(statuses, later, hook.snapshot, active_tail)

    def _upstream_names(self) -> dict[str, str]:
        """The bridge's target name -> the related unit that gave its URL."""
        names: dict[str, str] = {}
        for unit, bag in self._remote_units_data(remote_write.SEND_ENDPOINT):
            try:
                url = remote_write.upstream_url(bag)
            except RemoteDataError:
                continue  # already named in the status by the reconcile
            if url is not None:
                names.setdefault(remote_write.bridge_target_name(url), unit)
        return names

    # -- actions --------------------------------------------------------------------------

    def _on_list_datasources(self, event: ops.ActionEvent) -> None:
        snapshot = self._context().snapshot
        if snapshot.record is None or snapshot.live_units is None:
            event.fail("the peer relation does not exist yet")
            return
        rows = listing(snapshot.record, snapshot.answers, snapshot.live_units, self.app.name)
        event.set_results(
            {
                "datasources": json.dumps(rows, indent=2),
                "published": len(exchange.entries(snapshot.record)),
            }
        )

    def _on_query(self, event: ops.ActionEvent) -> None:
        hook = self._context()
        config, token = hook.config, hook.token
        if config is None:
            event.fail(f"invalid config: {hook.config_error}")
            return
        if token is None:
            event.fail("the query token is not known yet: the leader has not shared it")
            return
        expr = str(event.params.get("query", "")).strip()
        if not expr:
            event.fail("the query parameter is empty")
            return
        time = event.params.get("time")
        try:
            data = self.workload.query(config.port, token, expr, str(time) if time else None)
        except QueryError as e:
            event.fail(str(e))
            return
        event.set_results(
            {
                "result-type": str(data.get("resultType", "")),
                "result": json.dumps(data.get("result", []), separators=(",", ":")),
            }
        )


if __name__ == "__main__":  # pragma: nocover
    ops.main(GrafanaAgentBridgeCharm)
