"""One trace from an HTTP request, through the outbox and Kafka, into the consumer of the next service."""

from __future__ import annotations

import secrets

import pytest
from ezone_kit.telemetry import receive_spans
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.helpers import duggan, register_zone, scalar, wait_for_count


@pytest.fixture
def spans(zone_stack):
    exporter = InMemorySpanExporter()
    receive_spans(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


async def test_one_trace_id_spans_the_http_request_the_relay_and_the_consumer_in_the_next_service(zone_stack, zone_id, spans):
    await register_zone(zone_stack, zone_id)
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    response = await zone_stack.clients["plans"].post(
        f"/zones/{zone_id}/schools", json=duggan(), headers={**zone_stack.auth("admin", zone_id), "traceparent": traceparent}
    )
    assert response.status_code == 201, response.text
    school_id = response.json()["id"]

    event_id = await scalar(zone_stack, "SELECT id FROM plans.outbox WHERE key = :k", k=school_id)
    assert (await scalar(zone_stack, "SELECT traceparent FROM plans.outbox WHERE id = :id", id=event_id)).split("-")[1] == trace_id
    # Every consumer of the event has committed, so its span has ended (background ones fetch less often).
    for schema in ("results", "catalog", "notifications"):
        await wait_for_count(zone_stack, f"SELECT count(*) FROM {schema}.inbox WHERE event_id = :id", 1, id=event_id)
    assert await scalar(zone_stack, "SELECT trace_id FROM results.inbox WHERE event_id = :id", id=event_id) == trace_id

    ours = [s for s in spans.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id]
    kinds = {(s.kind, s.attributes.get("messaging.consumer.group.name")) for s in ours}
    assert (SpanKind.SERVER, None) in kinds, "the HTTP request span"
    assert any(s.kind == SpanKind.PRODUCER and s.attributes.get("messaging.message.id") == str(event_id) for s in ours)
    for group in ("ezone.results.events", "ezone.catalog.events", "ezone.notifications.events"):
        assert (SpanKind.CONSUMER, group) in kinds, f"the consumer span in {group}"
    assert any(s.kind == SpanKind.CLIENT and "INSERT" in (s.name or "") for s in ours), "SQL spans from the request"
