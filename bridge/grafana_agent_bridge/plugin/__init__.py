"""Grafana backend-plugin mode: the bridge's query path served over Grafana's plugin protocol.

Grafana starts the plugin, talks gRPC (``pluginv2`` services) to it, and the plugin queries the
Prometheus-compatible URL in the datasource settings. Modules: ``server`` (handshake and gRPC),
``service`` (QueryData, CheckHealth, CallResource), ``querymodel`` (Grafana's step and range
rules), ``upstream`` (HTTP client), ``frames`` (Arrow data frames), ``install`` (plugin directory).
"""
