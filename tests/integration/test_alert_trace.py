"""One trace from the SIS's POST to the board member's email and webhook: through the review queue (a database
trigger), Kafka, the alert and the delivery worker; a second batch coalesced into the same review is a link."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

import pytest
from ezone_kit.telemetry import receive_spans, tracer
from ezone_schemas import AlertDelivered, ReviewCompleted, topics
from ezone_schemas.vocabulary import ReviewStatus
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from ezone.stack import SmtpSink
from tests.helpers import scalar, wait_for_count
from tests.integration.notifications.support import member_auth, seed_zone
from tests.integration.notifications.test_delivery_worker import (
    Received,
    WebhookReceiver,
    register_webhook,
    wait_for_mail,
)
from tests.integration.results.review_support import fresh_years
from tests.results_data import NOT_TESTED_REASONS, student_results
from tests.stack import Stack

pytestmark = pytest.mark.usefixtures("metric_reader")

# Spans that start a trace by design: an HTTP request's (its client may send no `traceparent`). Scheduled work (digests
# coming due, housekeeping, the relay's look at the broker) makes no span of its own; every other span a service
# exports continues something (a parent) or names what it serves (links).
ROOTS_BY_DESIGN = {SpanKind.SERVER}


@pytest.fixture
def spans(zone_stack):
    exporter = InMemorySpanExporter()
    receive_spans(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def hex_trace(span: ReadableSpan) -> str:
    return format(span.context.trace_id, "032x")


def low_participation_batch(school_id: uuid.UUID, year: str, seed: int) -> list[dict]:
    """30 math results, 6 of them not tested: 80% participation, which the default policy flags (an alert for the
    board, by its default rules)."""
    rows = student_results([school_id], students_per_school=30, school_year=year, subject="MATH", seed=seed)
    for row in rows[:6]:
        for tested_only in ("scale_score", "performance_level", "proficient", "growth_percentile"):
            row.pop(tested_only, None)
        row["not_tested_reason"] = NOT_TESTED_REASONS[0]
    return rows


async def post_batch(stack: Stack, zone_id: str, school_id: uuid.UUID, rows: list[dict], trace_id: str) -> None:
    response = await stack.clients["results"].post(
        f"/zones/{zone_id}/results", json={"rows": rows},
        headers={"Authorization": f"Bearer {stack.token('sis', zone_id, [str(school_id)])}",
                 "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
    assert response.status_code == 201, response.text


async def hold_reviews(stack: Stack, zone_id: str, school_id: uuid.UUID, year: str) -> None:
    """The key's last review looks as if it was made just now (an hour ahead): requests for it wait out the cooldown,
    and coalesce meanwhile, as a burst of batches does."""
    async with stack.kits["results"].engine.begin() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO results.reviews (id, zone_id, school_id, school_year, subject, version, status, metrics,"
            " goals, flags, batch_ids, created_at) VALUES ($1, $2, $3, $4, 'MATH', 0, 'meeting', '[]', '[]', '[]', '[]',"
            " now() + interval '1 hour')", (uuid.uuid4(), zone_id, school_id, year))


async def release_reviews(stack: Stack, school_id: uuid.UUID, year: str) -> None:
    async with stack.kits["results"].engine.begin() as conn:
        await conn.exec_driver_sql(
            "DELETE FROM results.reviews WHERE school_id = $1 AND school_year = $2 AND version = 0", (school_id, year))


@dataclass
class AlertedBoth:
    """What `alert_by_email_and_webhook` did: the member alerted, the trace ids the two batches were posted with, the
    request the webhook receiver got, and the member's alerts as the inbox API shows them."""

    zone_id: str
    school_id: uuid.UUID
    year: str
    member: str
    first: str
    second: str
    hook: Received
    alerts: list[dict]


async def alert_by_email_and_webhook(stack: Stack, smtp_sink: SmtpSink, zone_id: str) -> AlertedBoth:
    """Two batches for one school, year and subject, posted by the SIS in traces of their own while the key cools
    down, so one review coalesces them; its integrity flag alerts a board member by email and by webhook."""
    with tracer("tests").start_as_current_span("test: the zone is seeded"):  # the test's own events have a parent
        zone = await seed_zone(stack, zone_id)
    await wait_for_count(stack, "SELECT count(*) FROM results.schools WHERE id = :s", 1, s=zone.school_id)
    member = zone.board[0]
    _, year = fresh_years()
    first, second = secrets.token_hex(16), secrets.token_hex(16)
    async with WebhookReceiver() as receiver:
        await register_webhook(stack, zone_id, member, receiver.url)
        await hold_reviews(stack, zone_id, zone.school_id, year)
        await post_batch(stack, zone_id, zone.school_id, low_participation_batch(zone.school_id, year, 0), first)
        await post_batch(stack, zone_id, zone.school_id, low_participation_batch(zone.school_id, year, 1), second)
        queued = await scalar(stack, "SELECT jsonb_array_length(trace_contexts) FROM results.review_requests"
                                     " WHERE school_id = :s AND school_year = :y", s=zone.school_id, y=year)
        assert queued == 2, "both batches' trace contexts wait in one review request"
        await release_reviews(stack, zone.school_id, year)

        await wait_for_mail(smtp_sink, member)
        [hook] = await receiver.wait_for_requests(1)
        await wait_for_count(stack, "SELECT count(*) FROM notifications.deliveries d JOIN notifications.alerts a"
                                    " ON a.id = d.alert_id WHERE a.recipient = :m AND a.zone_id = :z"
                                    " AND d.status = 'sent'", 2, m=member, z=zone_id)
    # Sent: the spans of everything before have ended.
    await wait_for_count(stack, "SELECT count(*) FROM notifications.outbox WHERE ce_type = :t AND sent_at IS NOT NULL"
                                " AND payload->>'recipient' = :m", 2, t=AlertDelivered.ce_type, m=member)
    alerts = (await stack.clients["notifications"].get(
        f"/zones/{zone_id}/alerts", headers=member_auth(stack, zone_id, member))).json()["items"]
    return AlertedBoth(zone_id, zone.school_id, year, member, first, second, hook, alerts)


async def test_one_trace_runs_from_the_sis_post_through_the_review_and_the_alert_to_the_email_and_the_webhook(
    zone_stack, smtp_sink, zone_id, spans
):
    done = await alert_by_email_and_webhook(zone_stack, smtp_sink, zone_id)
    first, second = done.first, done.second

    ours = [span for span in spans.get_finished_spans() if hex_trace(span) == first]
    named: dict[str, list[ReadableSpan]] = {}
    for span in ours:
        named.setdefault(span.name, []).append(span)
    assert any(span.kind == SpanKind.SERVER and span.attributes.get("http.request.method", span.attributes.get(
        "http.method")) == "POST" for span in ours), "the SIS's POST"

    [review] = named["review"]
    assert {k: review.attributes[k] for k in ("ezone.school.id", "ezone.subject", "ezone.school_year",
                                              "ezone.review.version")} == {
        "ezone.school.id": str(done.school_id), "ezone.subject": "MATH", "ezone.school_year": done.year,
        "ezone.review.version": 1}
    assert review.attributes["ezone.review.status"] in {status.value for status in ReviewStatus}
    assert [format(link.context.trace_id, "032x") for link in review.links] == [second], "the coalesced batch"

    [send] = [s for s in named[f"send {topics.RESULTS}"]
              if s.attributes["cloudevents.event_type"] == ReviewCompleted.ce_type]
    assert send.kind == SpanKind.PRODUCER and send.parent.span_id == review.context.span_id
    assert (send.attributes["messaging.operation.name"], send.attributes["messaging.operation.type"]) == (
        "send", "send")
    assert send.attributes["server.address"] and send.attributes["messaging.destination.name"] == topics.RESULTS

    [process] = [s for s in named[f"process {topics.RESULTS}"]
                 if s.attributes["messaging.consumer.group.name"] == "ezone.notifications.events"
                 and s.attributes["messaging.message.id"] == send.attributes["messaging.message.id"]]
    assert process.kind == SpanKind.CONSUMER and process.parent.span_id == send.context.span_id
    assert [link.context.span_id for link in process.links] == [send.context.span_id], "the creation context"
    assert (process.attributes["messaging.operation.name"], process.attributes["messaging.operation.type"]) == (
        "process", "process")
    assert process.attributes["server.address"]
    inbox = [s for s in ours if s.kind == SpanKind.CLIENT and s.parent is not None
             and s.parent.span_id == process.context.span_id and "inbox" in s.attributes.get("db.statement", "")]
    assert inbox, "the consumer's inbox statement inside its process span"

    [compose] = named["compose alerts"]
    assert compose.parent.span_id == process.context.span_id
    [alert] = done.alerts
    assert alert["trace_id"] == first, "the inbox API names the trace"

    [email] = [s for s in named["send email"] if s.attributes["ezone.alert.id"] == alert["id"]]
    [webhook] = [s for s in named["POST"] if s.attributes["ezone.alert.id"] == alert["id"]]
    for attempt in (email, webhook):
        assert attempt.kind == SpanKind.CLIENT and attempt.parent.span_id == compose.context.span_id
    assert email.attributes["ezone.delivery.channel"] == "email"
    assert webhook.attributes["http.response.status_code"] == 200
    assert done.hook.headers["traceparent"].split("-")[1:3] == [first, format(webhook.context.span_id, "016x")]


async def test_every_span_the_services_export_has_a_parent_or_a_link_unless_it_starts_a_trace_by_design(
    zone_stack, smtp_sink, zone_id, spans
):
    await alert_by_email_and_webhook(zone_stack, smtp_sink, zone_id)
    exported = [span for span in spans.get_finished_spans() if span.instrumentation_scope.name != "tests"]
    assert {span.name for span in exported} >= {"review", "compose alerts", "send email", "POST"}
    orphans = [(span.name, span.kind, dict(span.attributes)) for span in exported
               if span.parent is None and not span.links and span.kind not in ROOTS_BY_DESIGN]
    assert not orphans, f"spans with neither a parent nor a link: {orphans}"
