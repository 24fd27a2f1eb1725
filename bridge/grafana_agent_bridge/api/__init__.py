"""The bridge's HTTP API: remote-write ingest and the Prometheus query API Grafana uses."""

from .http import BridgeHTTPServer
from .query import PROMETHEUS_COMPAT_VERSION, QueryAPI, Response
from .write import WriteAPI

__all__ = ["PROMETHEUS_COMPAT_VERSION", "BridgeHTTPServer", "QueryAPI", "Response", "WriteAPI"]
