"""The delivery worker on a real database, SMTP server and HTTP receivers: concurrency, the last attempt, a process
killed mid-delivery, cancellation, and set-based planning. Also the helpers the other delivery tests share."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from ezone_kit.service import Kit
from ezone_notifications.alerts.records import RaisedAlert
from ezone_notifications.bootstrap import definition
from ezone_notifications.config import Settings
from ezone_notifications.deliveries.planning import cancel_deliveries, plan_deliveries
from ezone_notifications.deliveries.worker import delivery_worker
from ezone_notifications.models import alerts
from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from ezone.stack import SmtpSink, free_port, wait_for
from tests.stack import Stack, new_database, stack_settings

from .support import member_auth

pytestmark = pytest.mark.usefixtures("metric_reader")  # installed before any kit makes its instruments

# Deliveries retried within a test's patience. The lease outlasts a call, as Settings requires.
FAST = {
    "ezone_delivery_backoff_s": 0.05, "ezone_delivery_backoff_max_s": 0.5, "ezone_delivery_timeout_s": 1.0,
    "ezone_delivery_lease_s": 2.0, "ezone_delivery_poll_interval_s": 0.1, "ezone_delivery_max_attempts": 4,
    "ezone_delivery_concurrency": 4,
}
HANG = 0  # a receiver's answer: none, ever


def new_member(label: str = "member") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@members.example"


def raised_alert(zone_id: str, recipient: str, severity: str = "warning", *, event_id: uuid.UUID | None = None,
                 created_at: datetime | None = None, title: str = "Duggan: math off track") -> RaisedAlert:
    event_id = event_id or uuid.uuid4()
    return RaisedAlert(
        id=uuid.uuid5(event_id, recipient), zone_id=zone_id, recipient=recipient, audience="board", severity=severity,
        title=title, body="Math proficiency 18% vs goal 30%; participation 91% (below 95%).", school_id=None,
        source_event_id=event_id, source_type="review.completed", trace_id=None,
        created_at=created_at or datetime.now(UTC), links={"review": "http://127.0.0.1:8002/reviews/1"})


async def raise_by_hand(kit: Kit, *raised: RaisedAlert) -> None:
    """What alert raising does: the alerts and their deliveries in one transaction."""
    async with kit.sessions() as session, session.begin():
        await session.execute(insert(alerts), [{
            "id": a.id, "zone_id": a.zone_id, "recipient": a.recipient, "audience": a.audience, "severity": a.severity,
            "rule_names": ["by-hand"], "title": a.title, "body": a.body, "links": a.links, "school_id": a.school_id,
            "source_event_id": a.source_event_id, "source_type": a.source_type, "created_at": a.created_at,
        } for a in raised])
        await plan_deliveries(session, kit.settings, raised)


async def rows(kit: Kit, statement: str, **params: object) -> list[Any]:
    async with kit.engine.connect() as conn:
        return list((await conn.execute(text(statement), params)).all())


async def deliveries_of_alert(kit: Kit, alert_id: uuid.UUID) -> list[Any]:
    return await rows(kit, "SELECT * FROM notifications.deliveries WHERE alert_id = :a ORDER BY channel", a=alert_id)


async def attempts_of(kit: Kit, delivery_id: uuid.UUID) -> list[Any]:
    return await rows(kit, "SELECT * FROM notifications.delivery_attempts WHERE delivery_id = :d ORDER BY attempt", d=delivery_id)


async def wait_for_delivery(kit: Kit, alert_id: uuid.UUID, channel: str, status: str, timeout_s: float = 20) -> Any:
    async def reached() -> Any:
        return next((d for d in await deliveries_of_alert(kit, alert_id) if d.channel == channel and d.status == status), None)

    return await wait_for(reached, timeout_s, what=f"the {channel} delivery of {alert_id} to be {status}")


async def wait_for_mail(sink: SmtpSink, to: str, count: int = 1, timeout_s: float = 20) -> list[EmailMessage]:
    async def arrived() -> list[EmailMessage] | None:
        received = sink.received(to)
        return received if len(received) >= count else None

    return await wait_for(arrived, timeout_s, what=f"{count} email(s) to {to}")


@dataclass
class Received:
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float = field(default_factory=time.monotonic)


class WebhookReceiver:
    """A webhook endpoint on a free local port. It records every request and answers with `answers` in turn
    (HANG: never), then 200; each answer after `delay_s`."""

    def __init__(self, *answers: int, delay_s: float = 0.0) -> None:
        self.requests: list[Received] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._answers = list(answers)
        self._delay_s = delay_s
        self._handlers: set[asyncio.Task] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/ezone"

    async def __aenter__(self) -> WebhookReceiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._handlers.add(asyncio.current_task())
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in head[1:] if line)}
            self.requests.append(Received(headers, await reader.readexactly(int(headers.get("content-length", "0")))))
            answer = self._answers.pop(0) if self._answers else 200
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                if answer == HANG:
                    await asyncio.Event().wait()
                await asyncio.sleep(self._delay_s)
            finally:
                self.in_flight -= 1
            writer.write(f"HTTP/1.1 {answer} Answer\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n"
                         f"Connection: close\r\n\r\nanswer!".encode())
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the sender went away, or the receiver is closing: the request stays recorded
        finally:
            writer.close()
            self._handlers.discard(asyncio.current_task())

    async def wait_for_requests(self, count: int, timeout_s: float = 20) -> list[Received]:
        async def arrived() -> bool:
            return len(self.requests) >= count

        await wait_for(arrived, timeout_s, what=f"{count} request(s) at the webhook receiver")
        return self.requests


@contextlib.asynccontextmanager
async def delivery_stack(postgres, broker, key_dir, smtp_sink: SmtpSink, **overrides: object) -> AsyncIterator[Stack]:  # noqa: ANN001
    """The notifications API and a delivery worker with `FAST` settings, on a database of their own. No consumers or
    relay: on the shared broker they would join the shared stack's consumer group and take its events."""
    settings = {**FAST, "ezone_smtp_host": smtp_sink.host, "ezone_smtp_port": smtp_sink.port,
                "ezone_run_consumers": False, "ezone_run_relay": False, **overrides}
    stack = Stack(await new_database(postgres), broker.bootstrap_servers, key_dir, settings)
    await stack.start(only=("notifications",))
    worker = asyncio.create_task(delivery_worker(stack.kits["notifications"]))
    try:
        yield stack
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await stack.stop()


async def register_webhook(stack: Stack, zone_id: str, owner: str, url: str, role: str = "board",
                           schools: list[str] | None = None, **body: object) -> dict:
    response = await stack.clients["notifications"].post(
        f"/zones/{zone_id}/webhooks", json={"url": url, **body}, headers=member_auth(stack, zone_id, owner, role, schools))
    assert response.status_code == 201, response.text
    return response.json()


async def test_sends_run_at_most_the_configured_number_at_once(postgres, broker, key_dir, smtp_sink, zone_id):
    async with WebhookReceiver(delay_s=0.4) as receiver, delivery_stack(postgres, broker, key_dir, smtp_sink) as stack:
        kit = stack.kits["notifications"]
        member = f"principal-{uuid.uuid4().hex[:8]}"  # no email address: webhooks only
        await register_webhook(stack, zone_id, member, receiver.url, role="school",
                               schools=["00000000-0000-0000-0000-000000000001"])
        raised = [raised_alert(zone_id, member, "critical") for _ in range(10)]
        await raise_by_hand(kit, *raised)

        await receiver.wait_for_requests(10)
        assert receiver.most_in_flight == FAST["ezone_delivery_concurrency"]
        for alert in raised:
            await wait_for_delivery(kit, alert.id, "webhook", "sent")


async def test_after_the_last_attempt_a_delivery_is_failed_and_tried_no_more(postgres, broker, key_dir, smtp_sink, zone_id):
    attempts = FAST["ezone_delivery_max_attempts"]
    async with WebhookReceiver(*[503] * 10) as receiver, delivery_stack(postgres, broker, key_dir, smtp_sink) as stack:
        kit = stack.kits["notifications"]
        member = new_member()
        await register_webhook(stack, zone_id, member, receiver.url)
        alert = raised_alert(zone_id, member, "critical")
        await raise_by_hand(kit, alert)

        failed = await wait_for_delivery(kit, alert.id, "webhook", "failed")
        assert (failed.attempts, failed.last_status_code) == (attempts, 503)
        assert failed.last_error.startswith("HTTP 503")
        assert [(a.attempt, a.outcome, a.status_code) for a in await attempts_of(kit, failed.id)] == [
            (n, "failed", 503) for n in range(1, attempts + 1)]
        await asyncio.sleep(1.0)  # several polls and backoffs later
        assert len(receiver.requests) == attempts
        assert (await wait_for_delivery(kit, alert.id, "email", "sent")).attempts == 1  # the other channel is unaffected


WORKER_PROCESS = """
import asyncio
from ezone_kit.service import Kit
from ezone_notifications.bootstrap import definition
from ezone_notifications.config import Settings
from ezone_notifications.deliveries.worker import delivery_worker
asyncio.run(delivery_worker(Kit(definition, Settings())))
"""


async def test_a_worker_killed_mid_delivery_leaves_it_to_be_sent_again_with_the_same_id_when_its_lease_ends(
    postgres, broker, key_dir, smtp_sink, zone_id
):
    lease_s = 4.0
    settings = {**FAST, "ezone_delivery_timeout_s": 3.0, "ezone_delivery_lease_s": lease_s,
                "ezone_smtp_host": smtp_sink.host, "ezone_smtp_port": smtp_sink.port}
    database_url = await new_database(postgres)
    kit = Kit(definition, Settings(**stack_settings(database_url, broker.bootstrap_servers, key_dir, **settings)))
    member = new_member()
    alert = raised_alert(zone_id, member, "critical")
    async with WebhookReceiver(HANG) as receiver:
        try:
            async with kit.engine.begin() as conn:
                await conn.execute(text(
                    "INSERT INTO notifications.webhook_endpoints (id, zone_id, owner, url, secret, severities, created_by)"
                    " VALUES (gen_random_uuid(), :zone, :owner, :url, 'whsec_kill', '[\"critical\"]', :owner)"),
                    {"zone": zone_id, "owner": member, "url": receiver.url})
            await raise_by_hand(kit, alert)

            env = {**os.environ, **{key.upper(): str(value) for key, value in settings.items()},
                   "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
            process = subprocess.Popen([sys.executable, "-c", WORKER_PROCESS], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                [first] = await receiver.wait_for_requests(1)
            finally:
                process.send_signal(signal.SIGKILL)  # mid-delivery: the receiver has the request, and never answered
                process.wait(10)
            claimed = await wait_for_delivery(kit, alert.id, "webhook", "pending")
            assert claimed.attempts == 1 and claimed.next_attempt_at > datetime.now(UTC)
            assert await attempts_of(kit, claimed.id) == []  # the dead process recorded nothing

            worker = asyncio.create_task(delivery_worker(kit))
            try:
                sent = await wait_for_delivery(kit, alert.id, "webhook", "sent", timeout_s=lease_s + 10)
            finally:
                worker.cancel()
                await asyncio.gather(worker, return_exceptions=True)
        finally:
            await kit.engine.dispose()
    assert len(receiver.requests) == 2
    again = receiver.requests[1]
    assert again.headers["ezone-delivery"] == first.headers["ezone-delivery"] == str(sent.id)
    assert again.body == first.body
    assert again.at - first.at >= lease_s - 0.5  # not before the lease ran out
    assert sent.attempts == 2


async def test_a_superseded_alerts_deferred_and_held_deliveries_are_cancelled_and_never_sent(
    postgres, broker, key_dir, smtp_sink, zone_id
):
    async with delivery_stack(postgres, broker, key_dir, smtp_sink) as stack:
        kit = stack.kits["notifications"]
        member = new_member()
        response = await stack.clients["notifications"].put(
            f"/zones/{zone_id}/members/me/preferences", headers=member_auth(stack, zone_id, member),
            json={"timezone": "UTC", "channels": {"critical": ["email"], "warning": ["email"], "info": ["email"]},
                  "quiet_hours": {"start": "00:00", "end": "23:59:59"}})
        assert response.status_code == 200, response.text
        deferred, held = raised_alert(zone_id, member, "warning"), raised_alert(zone_id, member, "info")
        await raise_by_hand(kit, deferred, held)
        assert {(d.alert_id, d.status) for d in await rows(kit, "SELECT * FROM notifications.deliveries")} == {
            (deferred.id, "pending"), (held.id, "held_for_digest")}

        async with kit.sessions() as session, session.begin():
            await cancel_deliveries(session, [deferred.id, held.id])
        assert {d.status for d in await rows(kit, "SELECT * FROM notifications.deliveries")} == {"cancelled"}
        await asyncio.sleep(0.5)
        assert smtp_sink.received(member) == []


async def test_a_delivery_already_in_flight_when_its_alert_is_superseded_is_recorded_as_sent_and_announced(
    postgres, broker, key_dir, smtp_sink, zone_id
):
    # The answer takes 2 s, well within the sender's patience: the alert is superseded while it is on its way.
    async with WebhookReceiver(200, delay_s=2.0) as receiver, delivery_stack(
            postgres, broker, key_dir, smtp_sink, ezone_delivery_timeout_s=10, ezone_delivery_lease_s=30) as stack:
        kit, member = stack.kits["notifications"], new_member()
        await register_webhook(stack, zone_id, member, receiver.url)
        alert = raised_alert(zone_id, member, "critical")
        await raise_by_hand(kit, alert)
        await receiver.wait_for_requests(1)

        async with kit.sessions() as session, session.begin():
            await cancel_deliveries(session, [alert.id])

        sent = await wait_for_delivery(kit, alert.id, "webhook", "sent")
        assert (sent.attempts, sent.last_status_code) == (1, 200)
        announced = await rows(kit, "SELECT payload FROM notifications.outbox WHERE ce_type = :t",
                               t="org.ezone.notifications.alert.delivered.v1")
        assert [row.payload["delivery_id"] for row in announced if row.payload["channel"] == "webhook"] == [str(sent.id)]
        assert len(receiver.requests) == 1


async def test_planning_a_fan_out_of_12600_alerts_takes_two_statements_and_planning_it_again_adds_nothing(
    postgres, key_dir, zone_id
):
    database_url = await new_database(postgres)
    settings = Settings(**stack_settings(database_url, "127.0.0.1:1", key_dir))
    engine = create_async_engine(database_url)
    sessions = async_sessionmaker(engine)
    board = [new_member(f"seat-{n}") for n in range(1, 8)]
    async with engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO notifications.webhook_endpoints (id, zone_id, owner, url, secret, severities, created_by)"
            " SELECT gen_random_uuid(), :zone, owner, 'https://hooks.example.org/' || coalesce(owner, 'zone'), 's',"
            " '[\"critical\", \"warning\"]', 'test' FROM unnest(ARRAY[NULL, :seat1]::text[]) AS owner"),
            {"zone": zone_id, "seat1": board[0]})
    now = datetime.now(UTC)
    events = [uuid.uuid4() for _ in range(1800)]
    raised = [raised_alert(zone_id, member, "warning", event_id=e, created_at=now) for e in events for member in board]
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001 - SQLAlchemy's event signature
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        for _ in range(2):
            started = time.perf_counter()
            async with sessions() as session, session.begin():
                await plan_deliveries(session, settings, raised)
            seconds = time.perf_counter() - started
            assert seconds < 15, f"planning took {seconds:.1f}s"
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    async with engine.connect() as conn:
        counts = dict((await conn.execute(text(
            "SELECT channel || '/' || (recipient IS NULL)::text, count(*) FROM notifications.deliveries"
            " WHERE zone_id = :z GROUP BY 1"), {"z": zone_id})).all())
    await engine.dispose()
    # Every member's email, seat 1's own endpoint for each alert, the zone's endpoint once per event.
    assert counts == {"email/false": len(raised), "webhook/false": len(events), "webhook/true": len(events)}
    planning = [s for s in statements if "notifications." in s]
    assert len(planning) == 2 * 2, planning
