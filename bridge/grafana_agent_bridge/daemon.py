"""The daemon: store, PromQL engine, HTTP server, collection, forwarding and tracing, wired,
and the process's life from start to stop.

Everything is built here, once: the metrics registry every part records into, the one
``Lifecycle`` (starting → serving → draining → stopped) that readiness, the HTTP edge and ingest
answer from, and the parts themselves. Start order follows dependencies (listen first, then the
store: replaying its WAL may take a while and nothing can be answered before it is done; the
phase moves to serving once the API has its endpoints). Shutdown runs in reverse so that every
write acknowledged with 204 is in the WAL before the store closes: drain (readiness and new
writes answer 503), stop the HTTP loop, let requests in progress finish, stop collectors and
forwarding, close the store; then the phase is stopped.
"""

from __future__ import annotations

import errno
import gc
import logging
import resource
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import __version__, collect, tracing
from .api import BridgeHTTPServer, QueryAPI, WriteAPI
from .api.http import WebLimits
from .api.otlp import OTLPMetricsAPI
from .config import BridgeConfig, ConfigError, duration_ms
from .forward import ForwardManager
from .labels import LabelLimits
from .lifecycle import Lifecycle, Phase
from .metrics import Registry
from .otlp.decode import Bounds as OTLPBounds
from .otlp.naming import Namer
from .otlp.translate import Settings as OTLPSettings
from .promql import Engine
from .promql.querytext import TextLimits
from .redact import redact_url
from .remote_write import DecodeLimits, RequestLimits
from .stopsignals import StopSignals
from .store import NewerFormatError, Store, StoreLockedError, StoreOptions
from .store import progress as store_progress
from .store.metrics import register_store_metrics
from .store.progress import OpenCancelledError

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 10.0
RESERVED_FDS = 128
"""File descriptors kept for the store (WAL, blocks), forwarding and logs, outside
``web.max_connections``."""


def raise_open_files_limit() -> int:
    """Raise the soft open-files limit to the hard one and return it.

    systemd starts a snap's service with a soft limit of 1,024 (and a far higher hard limit),
    which a thousand clients would exhaust; the hard limit is the operator's real bound.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as e:
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, hard, e)
    return soft


def web_limits(config: BridgeConfig, open_files: int) -> WebLimits:
    """``web`` and ``ingest.max_concurrent_writes``; the connection cap fits ``open_files``."""
    w = config.web
    max_connections = w.max_connections
    fitting = max(1, open_files - RESERVED_FDS)
    if open_files != resource.RLIM_INFINITY and max_connections > fitting:
        log.warning(
            "web.max_connections lowered from %d to %d to fit the open-files limit of %d",
            max_connections,
            fitting,
            open_files,
        )
        max_connections = fitting
    return WebLimits(
        read_header_timeout_s=w.read_header_timeout.total_seconds(),
        read_timeout_s=w.read_timeout.total_seconds(),
        idle_timeout_s=w.idle_timeout.total_seconds(),
        max_connections=max_connections,
        max_concurrent_writes=config.ingest.max_concurrent_writes,
    )


def store_options(config: BridgeConfig) -> StoreOptions:
    s = config.storage
    return StoreOptions(
        retention_time_ms=duration_ms(s.retention_time),
        retention_size_bytes=s.retention_size,
        block_duration_ms=duration_ms(s.block_duration),
        wal_segment_bytes=s.wal_segment_size,
        max_head_series=s.max_head_series,
        label_limits=label_limits(config),
    )


def label_limits(config: BridgeConfig) -> LabelLimits:
    s = config.storage
    return LabelLimits(
        max_labels_per_series=s.max_labels_per_series,
        max_label_name_length=s.max_label_name_length,
        max_label_value_length=s.max_label_value_length,
        max_exemplar_labels_length=s.max_exemplar_labels_length,
    )


def primary_ip() -> str:
    """The address other machines most likely reach this one at (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only selects the outgoing interface
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def _targets_shown(config: BridgeConfig) -> str:
    """The forward targets as the banner and logs show them: credentials masked."""
    return ", ".join(f"{t.name} ({redact_url(t.url)})" for t in config.forward.targets)


class ListenError(OSError):
    """The HTTP address cannot be listened on; the message names it and what to do."""

    def __init__(self, address: str, cause: OSError) -> None:
        hints = {
            errno.EADDRINUSE: "another process listens there (another bridge?): stop it, or "
            "choose another port with --listen-address or listen_address",
            errno.EACCES: "ports below 1024 need privileges: choose one above 1024",
            errno.EADDRNOTAVAIL: "that address is not one of this machine's",
        }
        hint = hints.get(cause.errno or 0, "")
        reason = cause.strerror or str(cause)
        super().__init__(f"cannot listen on {address}: {reason}" + (f" ({hint})" if hint else ""))


class Daemon:
    """One running bridge. ``start`` returns once it serves; ``stop`` is idempotent."""

    def __init__(self, config: BridgeConfig, *, registry: Registry | None = None) -> None:
        """``registry``: where every part records its metrics, shown at ``/metrics`` (a new
        one unless given)."""
        self.config = config
        self.registry = registry or Registry()
        # Registered before the store opens, so /metrics shows it throughout the replay.
        store_progress.progress_gauge(self.registry)
        self.lifecycle = Lifecycle()
        self.store: Store | None = None
        self.http: BridgeHTTPServer | None = None
        self.write_api: WriteAPI | None = None
        self.collection: collect.Collection | None = None
        self.forwarder: ForwardManager | None = None
        self._http_thread: threading.Thread | None = None
        self._stop_lock = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, should_stop: Callable[[], bool] | None = None) -> None:
        """Listen, open the store, serve; ``should_stop`` cuts a long WAL replay short."""
        cfg = self.config
        if tracing.setup(cfg.tracing):
            log.info("tracing requests to %s", redact_url(cfg.tracing.traces_url()))
        q = cfg.query
        # Listen first: a taken port fails at once rather than after a long WAL replay, and
        # during the replay clients get 503 (retry later) instead of "connection refused".
        host, port = cfg.listen
        ssl_context = self._ssl_context()
        try:
            self.http = BridgeHTTPServer(
                (host, port),
                lifecycle=self.lifecycle,
                registry=self.registry,
                auth_token=q.resolve_auth_token(),
                allowed_networks=cfg.ingest.allowed_networks(),
                max_body_bytes=cfg.ingest.max_body_bytes,
                ssl_context=ssl_context,
                index_text=self.banner,
                limits=web_limits(cfg, raise_open_files_limit()),
            )
        except OSError as e:  # the port taken, or not an address of this machine
            raise ListenError(cfg.listen_address, e) from None
        self._http_thread = threading.Thread(target=self.http.serve_forever, name="http")
        self._http_thread.start()
        data_dir = Path(cfg.data_dir)
        log.info("opening the store in %s (replaying the write-ahead log)", data_dir.resolve())
        started = time.monotonic()
        self.store = Store.open(
            data_dir, store_options(cfg), should_stop=should_stop, registry=self.registry
        )
        log.info("store ready in %.2fs", time.monotonic() - started)
        register_store_metrics(self.store, self.registry)
        engine = Engine(
            self.store,
            lookback_delta_ms=duration_ms(q.lookback_delta),
            max_samples=q.max_samples,
            timeout_s=q.timeout.total_seconds(),
            max_memory_bytes=q.max_memory,
            text_limits=TextLimits(q.max_query_length, q.max_nesting_depth),
        )
        query_api = QueryAPI(
            engine,
            self.store,
            timeout_s=q.timeout.total_seconds(),
            max_points_per_series=q.max_points_per_series,
            config_yaml=cfg.redacted_yaml,
            flags=self._flags,
            registry=self.registry,
        )
        self.write_api = WriteAPI(
            self.store,
            label_limits=label_limits(cfg),
            request_limits=RequestLimits(
                max_series_per_request=cfg.ingest.max_series_per_request,
                max_samples_per_request=cfg.ingest.max_samples_per_request,
            ),
            max_series=cfg.storage.max_head_series,
            decode_limits=DecodeLimits(
                max_decoded_bytes=cfg.ingest.max_decoded_bytes,
                max_decoded_elements=cfg.ingest.max_decoded_elements,
            ),
            lifecycle=self.lifecycle,
            registry=self.registry,
        )
        self.http.attach(query_api, self.write_api, self._otlp_api())
        self.lifecycle.advance(Phase.SERVING)
        log.info("serving the Prometheus API and remote write on %s", self.listen_url())
        jobs = collect.build_jobs(cfg.collect, self.registry, self._self_instance())
        self.collection = collect.Collection(jobs, self.store, self.registry)
        self.collection.start()
        self._start_forwarding()

    def _otlp_api(self) -> OTLPMetricsAPI:
        """OTLP metrics ingest, into the same store (and so the same forwarding) as remote
        write, under the same ``ingest`` limits."""
        cfg = self.config
        assert self.store is not None
        o = cfg.otlp
        settings = OTLPSettings(
            namer=Namer(o.translation_strategy),
            promote_resource_attributes=frozenset(o.promote_resource_attributes),
            promote_all_resource_attributes=o.promote_all_resource_attributes,
            ignore_resource_attributes=frozenset(o.ignore_resource_attributes),
            keep_identifying_resource_attributes=o.keep_identifying_resource_attributes,
            promote_scope_metadata=o.promote_scope_metadata,
            allow_delta_temporality=o.allow_delta_temporality,
            lookback_delta_ms=duration_ms(cfg.query.lookback_delta),
            max_samples=cfg.ingest.max_samples_per_request,
        )
        bounds = OTLPBounds(cfg.ingest.max_decoded_bytes, cfg.ingest.max_decoded_elements)
        return OTLPMetricsAPI(
            self.store, settings, bounds, lifecycle=self.lifecycle, registry=self.registry
        )

    def _start_forwarding(self) -> None:
        """Send everything stored to each ``forward.targets`` entry, from the change feed."""
        if not self.config.forward.targets:
            return
        assert self.store is not None
        self.forwarder = ForwardManager(
            self.store,
            self.config.forward,
            self.registry,
            state_dir=Path(self.config.data_dir) / "forward-state",
        )
        self.forwarder.start()
        log.info("forwarding to %s", _targets_shown(self.config))

    def stop(self) -> None:
        """Drain and stop (from any phase); a second call waits for the first, then returns."""
        with self._stop_lock:
            if self.lifecycle.phase is Phase.STOPPED:
                return
            self.lifecycle.drain()  # no-op if already draining
            try:
                self._shut_down()
            finally:
                self.lifecycle.advance(Phase.STOPPED)

    def _shut_down(self) -> None:
        log.info("shutting down")
        if self.http is not None:
            if self._http_thread is not None and self._http_thread.is_alive():
                self.http.shutdown()  # waits for serve_forever, so only if it runs
            if not self.http.drain(DRAIN_TIMEOUT_S):
                log.warning("requests still running after %.0fs; closing anyway", DRAIN_TIMEOUT_S)
            self.http.server_close()
        if self.collection is not None:
            self.collection.stop()
        if self.forwarder is not None:
            try:
                self.forwarder.stop()
            except Exception:
                log.exception("stopping forwarding failed")
        if self.store is not None:
            self.store.close()
        tracing.shutdown()
        log.info("stopped")

    # --- what it tells people --------------------------------------------------------------

    def _scheme(self) -> str:
        return "https" if self.config.tls.enabled else "http"

    def listen_url(self) -> str:
        host, _ = self.config.listen
        port = self.http.port if self.http else self.config.listen[1]
        shown = host or "0.0.0.0"
        if ":" in shown:
            shown = f"[{shown}]"
        return f"{self._scheme()}://{shown}:{port}"

    def grafana_url(self) -> str:
        """The datasource URL to give Grafana: this machine's address, not a wildcard."""
        host, _ = self.config.listen
        port = self.http.port if self.http else self.config.listen[1]
        if host in ("", "0.0.0.0", "::"):
            host = primary_ip()
        if ":" in host:
            host = f"[{host}]"
        return f"{self._scheme()}://{host}:{port}"

    def _self_instance(self) -> str:
        port = self.http.port if self.http else self.config.listen[1]
        return f"{socket.gethostname()}:{port}"

    def banner(self) -> str:
        targets = self.config.forward.targets
        forwarding = (
            f"Forwarding to: {_targets_shown(self.config)}"
            if targets
            else "Forwarding to: nothing (no forward targets configured)."
        )
        return (
            f"grafana-agent-bridge {__version__} is serving on {self.listen_url()}\n"
            f"Add this URL in Grafana as a Prometheus datasource: {self.grafana_url()}\n"
            f"{collect.describe(self.config.collect)}\n"
            f"{forwarding}\n"
            f"Remote write endpoint: {self.grafana_url()}/api/v1/write\n"
        )

    def _flags(self) -> dict[str, str]:
        c = self.config
        return {
            "web.listen-address": c.listen_address,
            "storage.tsdb.path": c.data_dir,
            "storage.tsdb.retention.time": str(
                c.model_dump(mode="json")["storage"]["retention_time"]
            ),
            "query.lookback-delta": str(c.model_dump(mode="json")["query"]["lookback_delta"]),
            "query.timeout": str(c.model_dump(mode="json")["query"]["timeout"]),
            "query.max-samples": str(c.query.max_samples),
        }

    def _ssl_context(self) -> ssl.SSLContext | None:
        tls = self.config.tls
        if not tls.enabled:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
        return ctx


GC_GEN0_THRESHOLD = 10_000
"""Allocations between young-generation collections (Python's default, 700, suits small
programs): creating 50k series triggered ~400 young and 3 full collections, a quarter of
the creation cost; every full one walks the whole head."""


def tune_gc() -> None:
    """Set the cyclic garbage collector up for a long-running daemon with a big heap.

    What start-up made (modules, configuration, a replayed head) is frozen out of the
    collector's walks: it lives as long as the process or is freed by reference counting,
    which freezing does not stop. Young collections are rarer (``GC_GEN0_THRESHOLD``), so
    fewer of them promote into the full collections that walk every series.
    """
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def run(config: BridgeConfig, *, print_banner: bool = True) -> int:
    """Run the daemon until SIGTERM/SIGINT; the exit status for the CLI.

    The signal handler only records the request; the main thread stops the daemon, so a
    signal during start-up (a long WAL replay) still ends with the store closed.
    """
    daemon = Daemon(config)
    stop = StopSignals()
    stop.install()
    try:
        daemon.start(should_stop=lambda: stop.requested)
    except OpenCancelledError as e:
        log.info("received %s: %s; the next start replays from there", stop.name, e)
        daemon.stop()
        return 0
    except (OSError, ConfigError, StoreLockedError, NewerFormatError) as e:  # port taken, ...
        log.error("cannot start: %s", e)
        daemon.stop()
        return 1
    except Exception:
        log.exception("cannot start")
        daemon.stop()
        return 1
    tune_gc()
    if print_banner and not stop.requested:
        print(daemon.banner(), flush=True)
    stop.wait()
    log.info("received %s", stop.name)
    daemon.stop()
    return 0
