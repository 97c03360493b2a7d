"""An event kept until its zone registers is processed, when the zone.registered comes, in its own trace, with a link
to the zone.registered that released it."""

from __future__ import annotations

import secrets
import uuid

import pytest
from ezone_kit.telemetry import receive_spans, trace_id_of
from ezone_schemas import ZoneRegistered
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.events import publish_as
from tests.helpers import scalar, wait_for_count
from tests.integration.test_unknown_zones import PROJECTING, consumed, registration


@pytest.fixture
def spans(zone_stack):
    exporter = InMemorySpanExporter()
    receive_spans(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def hex_trace(span_context) -> str:  # noqa: ANN001
    return format(span_context.trace_id, "032x")


async def test_a_kept_event_is_processed_in_its_own_trace_linked_to_the_zone_registration_that_released_it(
    zone_stack, zone_id, spans
):
    school = uuid.uuid4()
    [early] = await publish_as(zone_stack, registration(zone_id, school), source="/ezone/plans")
    kept_traces = {}
    for schema in PROJECTING.values():
        await consumed(zone_stack, schema, [early])
        # Kept with the trace context it came with.
        kept_traces[schema] = trace_id_of(await scalar(
            zone_stack, f"SELECT envelope->'headers'->>'traceparent' FROM {schema}.parked_events WHERE event_id = :e",
            e=early))
    [kept_trace] = set(kept_traces.values())
    assert kept_trace is not None

    registration_trace = secrets.token_hex(16)
    traceparent = f"00-{registration_trace}-{secrets.token_hex(8)}-01"
    response = await zone_stack.clients["plans"].post(
        "/zones", json={"id": zone_id, "name": f"Zone {zone_id}", "district": "Springfield"},
        headers={**zone_stack.auth("admin", zone_id), "traceparent": traceparent})
    assert response.status_code == 201, response.text
    for schema in PROJECTING.values():
        await wait_for_count(zone_stack, f"SELECT count(*) FROM {schema}.schools WHERE id = :s AND zone_id = :z", 1,
                             s=school, z=zone_id)

    finished = spans.get_finished_spans()
    for service in PROJECTING:
        group = f"ezone.{service}.events"
        processing = [s for s in finished if s.kind == SpanKind.CONSUMER
                      and s.attributes.get("messaging.consumer.group.name") == group]
        [registered] = [s for s in processing if s.attributes.get("cloudevents.event_type") == ZoneRegistered.ce_type
                        and hex_trace(s.context) == registration_trace]
        released = [s for s in processing if s.attributes.get("messaging.message.id") == str(early)
                    and any(link.context.span_id == registered.context.span_id for link in s.links)]
        assert len(released) == 1, f"{group}: one process span for the kept event, linked to its zone's registration"
        [span] = released
        assert hex_trace(span.context) == kept_trace, group
        assert span.parent is not None and hex_trace(span.parent) == kept_trace, group
        assert span.context.span_id != registered.context.span_id
        # The kept event's statements (its school's projection) run inside its span, not the registration's.
        assert any(s.kind == SpanKind.CLIENT and s.parent is not None and s.parent.span_id == span.context.span_id
                   and "schools" in s.attributes["db.statement"] for s in finished), group
