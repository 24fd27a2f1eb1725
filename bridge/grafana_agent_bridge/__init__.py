"""grafana-agent-bridge: a per-machine Prometheus-compatible store that Grafana can query."""

__version__ = "0.1.0"
