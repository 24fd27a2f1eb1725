"""OpenTelemetry spans of HTTP requests, only when ``tracing.otlp_endpoint`` is configured.

OpenTelemetry is an optional dependency (the ``tracing`` extra). Until ``setup`` succeeds,
``span`` returns a shared no-op context manager, so an untraced bridge pays one global lookup
per request and imports nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from .config import TracingConfig
from .redact import redact_url

log = logging.getLogger(__name__)

_tracer: Any = None
_provider: Any = None
_NOOP = contextlib.nullcontext()


def setup(config: TracingConfig) -> bool:
    """Start exporting spans to ``config.traces_url()``; False (and a log line) if impossible."""
    global _tracer, _provider  # noqa: PLW0603 (process-wide, like the OpenTelemetry API itself)
    url = config.traces_url()
    if not url:
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError:
        log.error(
            "tracing.otlp_endpoint is set but OpenTelemetry is not installed; "
            "install grafana-agent-bridge[tracing]. Continuing without traces."
        )
        return False
    provider = TracerProvider(
        resource=Resource.create({"service.name": config.service_name}),
        sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    _provider = provider
    _tracer = provider.get_tracer("grafana_agent_bridge")
    log.info("exporting traces to %s", redact_url(url))
    return True


def shutdown() -> None:
    """Flush and stop the exporter (at daemon shutdown)."""
    global _tracer, _provider  # noqa: PLW0603
    if _provider is not None:
        with contextlib.suppress(Exception):
            _provider.shutdown()
    _tracer = _provider = None


def enabled() -> bool:
    return _tracer is not None


def span(name: str, **attributes: str | int | float) -> contextlib.AbstractContextManager[Any]:
    """A span around a unit of work (a no-op when tracing is off)."""
    if _tracer is None:
        return _NOOP
    return _traced(name, attributes)


@contextlib.contextmanager
def _traced(name: str, attributes: dict[str, str | int | float]) -> Iterator[Any]:
    with _tracer.start_as_current_span(name, attributes=attributes) as s:
        yield s
