"""Self-monitoring the COS way: the ``cos-agent`` provider (limit 1).

The collector on the machine (the opentelemetry-collector subordinate, or the legacy
grafana-agent) requires ``cos-agent`` and reads, from our unit databag, what to scrape, which
rules and dashboards to pass to COS, and which snap log slots to read. The library
``charms.grafana_agent.v0.cos_agent`` (vendored under ``lib/``, as charm libraries are) writes
that databag on cos-agent relation-joined/-changed and on the refresh events given here; it
reads nothing from the collector unless tracing is requested, which we do not, so the remote
side's data never reaches it.

What we give the collector:

* one scrape job: the bridge's ``/metrics`` at ``127.0.0.1:<port>``. The collector is a
  subordinate on the same machine, and the bridge listens on loopback until it knows its query
  token (then on all interfaces), so loopback is the one address that always works; ``/metrics``
  needs no token and loopback is always in the bridge's allow-list.
* the rules in ``src/prometheus_alert_rules`` and the dashboard in ``src/grafana_dashboards``;
* no log slot: the snap's daemon logs to the journal (no log files to share), which the
  collector reads through ``/var/log/syslog`` on Ubuntu machines (docs/charm.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ops

from charms.grafana_agent.v0.cos_agent import COSAgentProvider
from config import DEFAULT_PORT

ENDPOINT = "cos-agent"
JOB_NAME = "grafana_agent_bridge"
METRICS_PATH = "/metrics"
RULES_DIR = "src/prometheus_alert_rules"
LOG_RULES_DIR = "src/loki_alert_rules"
DASHBOARDS_DIR = "src/grafana_dashboards"


def scrape_configs(port: int) -> list[dict[str, Any]]:
    """The scrape job of the bridge's own metrics (the library adds a stable name suffix)."""
    return [
        {
            "job_name": JOB_NAME,
            "metrics_path": METRICS_PATH,
            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
        }
    ]


def configured_port(config: ops.ConfigData) -> int:
    """The ``port`` option, or the default when it is not a valid port.

    Read on its own (not through ``config.load``) so an invalid *other* option does not stop
    the collector from scraping the bridge, which keeps running on its last settings.
    """
    value = config.get("port")
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    return DEFAULT_PORT


def provider(charm: ops.CharmBase, port: Callable[[], int]) -> COSAgentProvider:
    """The library's provider, refreshed on the events that can change what it publishes.

    Paths are absolute (from the charm directory): the library globs them relative to the
    working directory otherwise.
    """
    root = charm.charm_dir
    return COSAgentProvider(
        charm,
        relation_name=ENDPOINT,
        scrape_configs=lambda: scrape_configs(port()),
        metrics_rules_dir=str(root / RULES_DIR),
        logs_rules_dir=str(root / LOG_RULES_DIR),
        dashboard_dirs=[str(root / DASHBOARDS_DIR)],
        refresh_events=[charm.on.config_changed, charm.on.upgrade_charm],
    )
