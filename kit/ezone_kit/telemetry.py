"""OpenTelemetry set-up: spans always propagate; they are exported only when OTEL_TRACES_EXPORTER=otlp (or a test
adds a processor with `receive_spans`).

Trace context travels in outbox rows and Kafka headers (see `bus` and `outbox`), and in the queues kept in the
database (review requests, alerts for their deliveries: `start_span_continuing`), so one trace spans an HTTP request,
the relay, the consumer, whatever the next service does, and the email or webhook at the end (docs/architecture.md).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import event

from .settings import KitSettings

_log = logging.getLogger("ezone.telemetry")
_propagator = TraceContextTextMapPropagator()


# Whether anything receives this process's spans. A SQL statement's span is made only then: ~50 µs of CPU a
# statement, ~45 statements an alert's path, for spans that would go nowhere. The spans that carry trace context
# (requests, relay, consumers) are made either way.
_spans_received = False


def setup_tracing(service_name: str, settings: KitSettings) -> None:
    """Install an SDK tracer provider once per process (tests run several services in one)."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name or service_name}))
    trace.set_tracer_provider(provider)
    propagate.set_global_textmap(_propagator)
    if settings.otel_traces_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        receive_spans(BatchSpanProcessor(OTLPSpanExporter()))
        _log.info("exporting traces by OTLP to %s", settings.otel_exporter_otlp_endpoint or "the default endpoint")


def receive_spans(processor: SpanProcessor) -> None:
    """Send this process's spans to `processor` (an exporter's), SQL statements' spans included from now on."""
    global _spans_received
    trace.get_tracer_provider().add_span_processor(processor)
    _spans_received = True


def tracer(name: str = "ezone") -> trace.Tracer:
    return trace.get_tracer(name)


def current_trace_headers() -> dict[str, str]:
    """`traceparent`/`tracestate` of the active span, to store beside an event."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


def context_from_headers(carrier: dict[str, str]):
    return _propagator.extract(carrier)


def span_context_of(carrier: dict[str, str] | None) -> trace.SpanContext | None:
    """The remote span a stored `traceparent`/`tracestate` names, or None when there is none or it is malformed."""
    if not carrier:
        return None
    span_context = trace.get_current_span(_propagator.extract(carrier)).get_span_context()
    return span_context if span_context.is_valid else None


def start_span_continuing(name: str, causes: Sequence[dict[str, str]], *,
                          kind: trace.SpanKind = trace.SpanKind.INTERNAL,
                          attributes: dict[str, Any] | None = None) -> trace.Span:
    """A span for work taken from a queue in the database: the child of the first of `causes` (the trace context each
    cause stored with its request) and linked to the others, as the messaging conventions do for a batch. Started, not
    current; without any cause it is a root."""
    contexts = [context for carrier in causes if (context := span_context_of(carrier)) is not None]
    parent = trace.set_span_in_context(trace.NonRecordingSpan(contexts[0])) if contexts else None
    return tracer().start_span(name, context=parent, kind=kind, attributes=attributes,
                               links=[trace.Link(context) for context in contexts[1:]])


@contextmanager
def in_trace_of(carrier: dict[str, str]) -> Iterator[None]:
    """Work done inside makes spans and stores trace context (e.g. outbox rows) as a child of the span `carrier`
    names (a stored `traceparent`/`tracestate`)."""
    token = otel_context.attach(_propagator.extract(carrier))
    try:
        yield
    finally:
        otel_context.detach(token)


def trace_headers_of(span: trace.Span) -> dict[str, str]:
    """`traceparent`/`tracestate` naming `span`, to store with what it queues."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, trace.set_span_in_context(span))
    return carrier


def current_trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def trace_id_of(traceparent: str | None) -> str | None:
    if not traceparent:
        return None
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 else None


def instrument_engine(engine) -> None:  # noqa: ANN001 - a SQLAlchemy AsyncEngine
    """A CLIENT span per SQL statement of one engine, and its pool's connections as the metric
    `db.client.connections.usage` (state used | idle).

    OpenTelemetry's SQLAlchemy instrumentation does the same with attributes worked out again for every
    statement (from the URL, the cursor, the whole statement text split into words) and two metric updates
    per checkout; here the attributes are worked out once per engine and the pool is read only when
    metrics are collected. A statement's span costs a fraction of what it did (measured: ~100-150 µs
    less per statement and checkout).
    """
    sync_engine = engine.sync_engine
    url = sync_engine.url
    host = url.host or url.query.get("host")
    attributes: dict[str, str | int] = {"db.system": sync_engine.dialect.name}
    if url.database:
        attributes["db.name"] = url.database
    if url.username:
        attributes["db.user"] = url.username
    if isinstance(host, str) and host.startswith("/"):  # the directory of a unix socket
        attributes |= {"net.transport": "other", "net.peer.name": host}
    elif host:
        attributes |= {"net.transport": "ip_tcp", "net.peer.name": str(host), "net.peer.port": url.port or 5432}
    name_suffix = f" {url.database}" if url.database else ""
    db_tracer = tracer("ezone.db")

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _statement_started(_conn, _cursor, statement, _parameters, context, _executemany) -> None:  # noqa: ANN001
        # A statement outside any operation (a poll finding nothing, a gauge's count) belongs to no trace: its span
        # would be a trace of its own, one a second, that tells nobody anything.
        if not _spans_received or not trace.get_current_span().get_span_context().is_valid:
            return
        operation = statement.split(None, 1)[:1] or ["SQL"]
        context._ezone_span = db_tracer.start_span(
            operation[0] + name_suffix, kind=trace.SpanKind.CLIENT,
            attributes={**attributes, "db.statement": statement, "db.operation": operation[0]},
        )

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _statement_ended(_conn, _cursor, _statement, _parameters, context, _executemany) -> None:  # noqa: ANN001
        if (span := getattr(context, "_ezone_span", None)) is not None:
            span.end()

    @event.listens_for(sync_engine, "handle_error")
    def _statement_failed(error_context) -> None:  # noqa: ANN001
        if (span := getattr(error_context.execution_context, "_ezone_span", None)) is not None:
            span.set_status(Status(StatusCode.ERROR, str(error_context.original_exception)))
            span.end()

    _POOLS[sync_engine] = f"{url.drivername}://{url.host or ''}:{url.port or ''}/{url.database or ''}"
    global _connections_usage
    if _connections_usage is None:
        _connections_usage = metrics.get_meter("ezone.db").create_observable_up_down_counter(
            "db.client.connections.usage", callbacks=[_observe_pools], unit="connections",
            description="Connections in use or idle in the pool.",
        )


# Every instrumented engine of this process (tests run four services in one), with its `pool.name`.
_POOLS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_connections_usage: metrics.ObservableUpDownCounter | None = None


def _observe_pools(_options: metrics.CallbackOptions) -> Iterator[metrics.Observation]:
    # Engines on the same database (the services of one process) add up under one pool.name.
    counts: dict[tuple[str, str], int] = {}
    for sync_engine, pool_name in list(_POOLS.items()):
        pool = sync_engine.pool
        for state, connections in (("used", pool.checkedout()), ("idle", pool.checkedin())):
            counts[pool_name, state] = counts.get((pool_name, state), 0) + connections
    for (pool_name, state), connections in counts.items():
        yield metrics.Observation(connections, {"pool.name": pool_name, "state": state})
