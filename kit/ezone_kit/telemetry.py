"""OpenTelemetry set-up: spans always propagate; they are exported only when OTEL_TRACES_EXPORTER=otlp.

Trace context travels in outbox rows and Kafka headers (see `bus` and `outbox`), so one trace
spans an HTTP request, the relay, the consumer and whatever the next service does.
"""

from __future__ import annotations

import logging

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .settings import KitSettings

_log = logging.getLogger("ezone.telemetry")
_propagator = TraceContextTextMapPropagator()


def setup_tracing(service_name: str, settings: KitSettings) -> None:
    """Install an SDK tracer provider once per process (tests run several services in one)."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name or service_name}))
    if settings.otel_traces_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _log.info("exporting traces by OTLP to %s", settings.otel_exporter_otlp_endpoint or "the default endpoint")
    trace.set_tracer_provider(provider)
    propagate.set_global_textmap(_propagator)


def tracer(name: str = "ezone") -> trace.Tracer:
    return trace.get_tracer(name)


def current_trace_headers() -> dict[str, str]:
    """`traceparent`/`tracestate` of the active span, to store beside an event."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


def context_from_headers(carrier: dict[str, str]):
    return _propagator.extract(carrier)


def current_trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def trace_id_of(traceparent: str | None) -> str | None:
    if not traceparent:
        return None
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 else None


def instrument_engine(engine) -> None:  # noqa: ANN001 - a SQLAlchemy AsyncEngine
    """SQL spans for one engine (the instrumentor's `instrument()` is once per process; engines are per service)."""
    from opentelemetry import metrics
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    connections_usage = metrics.get_meter("ezone.db").create_up_down_counter(
        "db.client.connections.usage", unit="connections", description="Connections in use or idle in the pool."
    )
    EngineTracer(tracer("ezone.db"), engine.sync_engine, connections_usage)
