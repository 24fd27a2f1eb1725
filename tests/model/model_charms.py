"""The other applications of the simulated model, as minimal charms.

* :class:`GrafanaLikeCharm` is the Grafana side built on our library's consumer
  (:class:`GrafanaSourceConsumer`), with the ``grafana`` peer relation it keeps its sources in:
  what it answers is what the real Grafana answers (``grafana_uid`` of its leader,
  ``datasource_uids`` keyed by our units as it sees them).
* :class:`TempoLikeCharm` registers itself in Grafana as a ``tempo`` datasource (our library's
  provider side) and publishes what each Grafana assigned on ``grafana_datasource_exchange``
  with cosl's :class:`DatasourceExchange`, as the Tempo coordinator does; it has both exchange
  endpoints so the simulation can relate it to either of ours.

Both reconcile on every event, like real charms built on the same libraries.
"""

from __future__ import annotations

from typing import Any

import ops
from cosl.interfaces.datasource_exchange import DatasourceDict, DatasourceExchange

from charms.grafana_agent_bridge.v0.grafana_source import (
    GrafanaSourceConsumer,
    GrafanaSourceProvider,
)

GRAFANA_META: dict[str, Any] = {
    "name": "grafana",
    "requires": {"grafana-source": {"interface": "grafana_datasource"}},
    "peers": {"grafana": {"interface": "grafana_peers"}},
}

TEMPO_META: dict[str, Any] = {
    "name": "tempo",
    "provides": {
        "grafana-source": {"interface": "grafana_datasource"},
        "send-datasource": {"interface": "grafana_datasource_exchange"},
    },
    "requires": {"receive-datasource": {"interface": "grafana_datasource_exchange"}},
    "peers": {"tempo-peers": {"interface": "tempo_peers"}},
}


class GrafanaLikeCharm(ops.CharmBase):
    """Grafana's datasource bookkeeping, and nothing else."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.consumer = GrafanaSourceConsumer(
            self, grafana_base_url=f"http://{self.app.name}.cos.svc:3000"
        )


class TempoLikeCharm(ops.CharmBase):
    """A Tempo that registers in Grafana and shares its datasource UIDs on the exchange."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.source = GrafanaSourceProvider(self, "tempo")
        for event in (
            self.on.install,
            self.on.leader_elected,
            self.on.config_changed,
            self.on.update_status,
            self.on["grafana-source"].relation_joined,
            self.on["grafana-source"].relation_changed,
            self.on["grafana-source"].relation_departed,
            self.on["send-datasource"].relation_joined,
            self.on["receive-datasource"].relation_joined,
        ):
            framework.observe(event, self._reconcile)

    def _reconcile(self, _: ops.EventBase) -> None:
        number = self.unit.name.rpartition("/")[2]
        for relation in self.source.relations:
            self.source.update_source(relation, url=f"http://tempo-{number}.cos.svc:3200")
        if not self.unit.is_leader():
            return
        entries: list[DatasourceDict] = [
            {"type": "tempo", "uid": uid, "grafana_uid": grafana_uid}
            for grafana_uid, uids in sorted(self.source.get_source_uids().items())
            for uid in sorted(uids.values())
        ]
        DatasourceExchange(
            self, provider_endpoint="send-datasource", requirer_endpoint="receive-datasource"
        ).publish(entries)
