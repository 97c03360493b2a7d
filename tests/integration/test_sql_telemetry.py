"""SQL statements as CLIENT spans of the request that ran them, and the pool's connections as a metric."""

from __future__ import annotations

import uuid

import pytest
from ezone_kit import db, telemetry
from ezone_kit.settings import KitSettings
from ezone_kit.telemetry import instrument_engine, receive_spans, setup_tracing, tracer
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.integration.test_metrics import points


@pytest.fixture
def spans():
    setup_tracing("ezone-test", KitSettings())
    exporter = InMemorySpanExporter()
    receive_spans(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


@pytest.fixture
async def engine(postgres, metric_reader):
    name = f"ezone_sql_{uuid.uuid4().hex[:8]}"
    await postgres.ensure_database(name)
    engine = db.create_engine(KitSettings(database_url=postgres.url(name)))
    instrument_engine(engine)
    yield engine
    await engine.dispose()


async def test_each_statement_is_a_client_span_of_the_request_named_by_its_operation(engine, spans):
    database = engine.url.database
    with tracer("test").start_as_current_span("request") as request:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            with pytest.raises(DBAPIError):
                await conn.execute(text("SELECT * FROM no_such_table"))

    statements = [s for s in spans.get_finished_spans() if s.parent and s.parent.span_id == request.get_span_context().span_id]
    assert [(s.name, s.kind, s.status.status_code) for s in statements] == [
        (f"SELECT {database}", SpanKind.CLIENT, StatusCode.UNSET), (f"SELECT {database}", SpanKind.CLIENT, StatusCode.ERROR)]
    ok, failed = statements
    assert ok.attributes["db.system"] == "postgresql" and ok.attributes["db.name"] == database
    assert ok.attributes["db.statement"] == "SELECT 1" and ok.attributes["net.peer.name"] == engine.url.query["host"]
    assert "no_such_table" in failed.status.description


async def test_statements_make_no_spans_until_something_receives_spans(engine, monkeypatch):
    setup_tracing("ezone-test", KitSettings())
    monkeypatch.setattr(telemetry, "_spans_received", False)  # as in a service that exports nothing
    watching = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(watching))  # unknown to the kit

    def statements() -> list[str]:
        # This engine's only: a zone started by an earlier test may still be consuming in this process.
        return [s.attributes["db.statement"] for s in watching.get_finished_spans()
                if s.kind == SpanKind.CLIENT and s.attributes.get("db.name") == engine.url.database]

    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    assert statements() == []

    receive_spans(SimpleSpanProcessor(InMemorySpanExporter()))
    async with engine.connect() as conn:
        with tracer("test").start_as_current_span("request"):
            await conn.execute(text("SELECT 2"))
    assert statements() == ["SELECT 2"]
    watching.shutdown()


async def test_a_statement_outside_any_span_makes_none(engine, spans):
    """A poll that finds nothing, a gauge's count: a trace of one statement each would tell nobody anything."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 3"))
        with tracer("test").start_as_current_span("request"):
            await conn.execute(text("SELECT 4"))
    statements = [s.attributes["db.statement"] for s in spans.get_finished_spans()
                  if s.kind == SpanKind.CLIENT and s.attributes.get("db.name") == engine.url.database]
    assert statements == ["SELECT 4"]


async def test_the_pools_connections_in_use_and_idle_are_reported(engine, metric_reader):
    def usage() -> dict[str, int]:
        return {p.attributes["state"]: p.value for p in points(metric_reader, "db.client.connections.usage")
                if p.attributes["pool.name"].endswith(f"/{engine.url.database}")}

    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        assert usage() == {"used": 1, "idle": 0}
    assert usage() == {"used": 0, "idle": 1}
