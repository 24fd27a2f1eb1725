"""A minimal Grafana-side charm built on our GrafanaSourceConsumer, to test the requirer role."""

from __future__ import annotations

import ops

from charms.grafana_agent_bridge.v0.grafana_source import GrafanaSourceConsumer

GRAFANA_META = {
    "name": "grafana",
    "requires": {"grafana-source": {"interface": "grafana_datasource"}},
    "peers": {"grafana": {"interface": "grafana_peers"}},
}


class GrafanaLikeCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.consumer = GrafanaSourceConsumer(self, grafana_base_url="http://grafana:3000")
