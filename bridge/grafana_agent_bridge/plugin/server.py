"""Start the plugin the way Grafana's plugin loader (hashicorp go-plugin) expects.

Grafana starts the executable with a magic cookie and the protocol versions it speaks in the
environment, then waits (one minute) for one line on stdout naming the address of a gRPC server,
and pings it through the standard gRPC health service under the name ``plugin``. Everything the
plugin logs goes to stderr, which Grafana copies into its own log.
"""

from __future__ import annotations

import logging
import os
import random
import sys
from collections.abc import Mapping
from concurrent import futures
from dataclasses import dataclass
from typing import IO

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from grafana_agent_bridge.metrics import Registry
from grafana_agent_bridge.plugin.service import PluginMetrics, generic_handlers
from grafana_agent_bridge.stopsignals import StopSignals

log = logging.getLogger(__name__)

MAGIC_COOKIE_KEY = "grafana_plugin_type"
MAGIC_COOKIE_VALUE = "datasource"
CORE_PROTOCOL_VERSION = 1
APP_PROTOCOL_VERSION = 2
DEFAULT_MIN_PORT = 10000
DEFAULT_MAX_PORT = 25000
PORT_ATTEMPTS = 50
HEALTH_SERVICE = "plugin"
WORKERS = 8


class HandshakeError(Exception):
    """The environment is not Grafana's: the message says what is missing."""


@dataclass(frozen=True)
class Handshake:
    """What Grafana asked for through the environment."""

    min_port: int
    max_port: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Handshake:
        """Check the magic cookie and protocol versions; read the port range."""
        if env.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
            raise HandshakeError(
                "this is a Grafana backend plugin and is not meant to be run directly: "
                "Grafana starts it (missing magic cookie grafana_plugin_type=datasource)"
            )
        versions = {v.strip() for v in env.get("PLUGIN_PROTOCOL_VERSIONS", "").split(",")}
        if str(APP_PROTOCOL_VERSION) not in versions:
            raise HandshakeError(
                f"Grafana offers plugin protocol versions {sorted(versions)}, "
                f"this plugin speaks version {APP_PROTOCOL_VERSION}"
            )
        try:
            low = int(env.get("PLUGIN_MIN_PORT") or DEFAULT_MIN_PORT)
            high = int(env.get("PLUGIN_MAX_PORT") or DEFAULT_MAX_PORT)
        except ValueError as exc:
            raise HandshakeError(f"PLUGIN_MIN_PORT/PLUGIN_MAX_PORT: {exc}") from exc
        if not 0 < low <= high < 65536:
            raise HandshakeError(f"bad plugin port range {low}-{high}")
        return cls(low, high)


def handshake_line(port: int) -> str:
    """``CORE|APP|NETWORK|ADDRESS|PROTOCOL``: go-plugin's announcement of where to connect."""
    return f"{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|tcp|127.0.0.1:{port}|grpc"


def bind_in_range(server: grpc.Server, low: int, high: int) -> int:
    """Bind the server to a free loopback port within Grafana's range; return the port."""
    candidates = list(range(low, high + 1))
    random.shuffle(candidates)
    for port in candidates[:PORT_ATTEMPTS]:
        try:
            if server.add_insecure_port(f"127.0.0.1:{port}") == port:
                return port
        except RuntimeError:  # newer grpcio raises instead of returning 0
            continue
    raise HandshakeError(f"no free port in {low}-{high} after {PORT_ATTEMPTS} attempts")


def build_server(registry: Registry) -> tuple[grpc.Server, health.HealthServicer]:
    """The gRPC server with the pluginv2 services (counting in ``registry``, which
    CollectMetrics returns) and the health service registered."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=WORKERS))
    server.add_generic_rpc_handlers(generic_handlers(PluginMetrics(registry)))
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    return server, health_servicer


def serve(env: Mapping[str, str] | None = None, out: IO[str] | None = None) -> int:
    """Run until Grafana stops the plugin (SIGTERM/SIGINT, or it simply kills it)."""
    # [plugin.<id>] log_level = debug in grafana.ini arrives as GF_PLUGIN_LOG_LEVEL.
    level = logging.getLevelName(os.environ.get("GF_PLUGIN_LOG_LEVEL", "INFO").upper())
    logging.basicConfig(
        level=level if isinstance(level, int) else logging.INFO,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        handshake = Handshake.from_env(os.environ if env is None else env)
    except HandshakeError as exc:
        print(exc, file=sys.stderr)
        return 1
    server, health_servicer = build_server(Registry())  # the process's one registry
    try:
        port = bind_in_range(server, handshake.min_port, handshake.max_port)
    except HandshakeError as exc:
        print(exc, file=sys.stderr)
        return 1
    server.start()
    serving = health_pb2.HealthCheckResponse.SERVING
    health_servicer.set(HEALTH_SERVICE, serving)
    health_servicer.set("", serving)
    stop = StopSignals()
    stop.install()
    stream = sys.stdout if out is None else out
    stream.write(handshake_line(port) + "\n")
    stream.flush()  # stdout is block-buffered on a pipe; Grafana waits for this line
    log.info("plugin serving on 127.0.0.1:%d", port)
    stop.wait()
    health_servicer.enter_graceful_shutdown()
    server.stop(grace=5).wait()
    return 0
