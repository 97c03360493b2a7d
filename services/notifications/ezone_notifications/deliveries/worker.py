"""The delivery worker: sends due emails and webhooks, records every attempt, retries with backoff, makes digests.

A delivery is claimed by a lease, not by a transaction held open over the network: one short transaction moves the
due rows' `next_attempt_at` a lease ahead and counts the attempt, the call happens outside any transaction, and a
second short transaction records the outcome — of every send that finished meanwhile, together. A process killed
mid-delivery leaves its rows claimed; when the lease runs out they are due again and any worker sends them — the same
delivery id, so the receiver can tell it is a repeat. Each delivery is its own task (at most
EZONE_DELIVERY_CONCURRENCY at once), so a slow or failing endpoint holds up nothing else. SMTP sessions are kept
open between messages.

Woken by NOTIFY on `ezone_notifications_deliveries` (a trigger on inserts, so only once they commit), with a poll
every EZONE_DELIVERY_POLL_INTERVAL_S for retries, deferred deliveries and digests coming due. SKIP LOCKED lets any
number of workers (one per replica) share the rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import httpx
from ezone_kit.db import asyncpg_dsn
from ezone_kit.service import Kit
from ezone_kit.telemetry import in_trace_of, start_span_continuing, trace_headers_of
from ezone_schemas import AlertDelivered
from opentelemetry import trace
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from ..config import Settings
from .content import AlertContent, alert_email, digest_email, webhook_body
from .digests import build_due_digests
from .sending import Outcome, SmtpConnections, describe, send_webhook
from .timing import retry_delay

_log = logging.getLogger("ezone.notifications.deliveries")

NOTIFY_CHANNEL = "ezone_notifications_deliveries"
MAX_BACKOFF_S = 10.0  # of the worker itself, while the database is unreachable

_CLAIM = text("""
    WITH claimed AS (
        UPDATE notifications.deliveries d
        SET next_attempt_at = now() + make_interval(secs => :lease), attempts = d.attempts + 1
        WHERE d.id IN (SELECT id FROM notifications.deliveries WHERE status = 'pending' AND next_attempt_at <= now()
                       ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED)
        RETURNING d.id, d.zone_id, d.alert_id, d.digest_id, d.recipient, d.channel, d.endpoint_id, d.address, d.attempts
    )
    SELECT c.*, e.secret, g.local_date, g.alert_ids AS digest_alert_ids
    FROM claimed c
    LEFT JOIN notifications.webhook_endpoints e ON e.id = c.endpoint_id
    LEFT JOIN notifications.digests g ON g.id = c.digest_id
""")

_ALERTS = text("""
    SELECT a.*, s.name AS school_name FROM notifications.alerts a
    LEFT JOIN notifications.schools s ON s.id = a.school_id
    WHERE a.id = ANY(:ids)
""").bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))

_ATTEMPT = text("""
    INSERT INTO notifications.delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, status_code, error)
    VALUES (:id, :attempt, :started_at, :duration_ms, :outcome, :status_code, :error)
""")

# Sent, whoever's attempt it was, once: also when its alert was superseded (cancelled) while it was on its way, since
# it arrived all the same.
_SENT = text("""
    UPDATE notifications.deliveries d
    SET status = 'sent', sent_at = now(), last_status_code = s.status_code, last_error = NULL
    FROM unnest(CAST(:ids AS uuid[]), CAST(:status_codes AS int[])) AS s(id, status_code)
    WHERE d.id = s.id AND d.status IN ('pending', 'cancelled') RETURNING d.id
""")

# Only the newest claim decides what happens next: a stale attempt's failure must not cut another sender's lease short.
_FAILED = text("""
    UPDATE notifications.deliveries
    SET status = :status, next_attempt_at = now() + make_interval(secs => :delay), last_status_code = :status_code,
        last_error = :error
    WHERE id = :id AND status = 'pending' AND attempts = :attempt
""")

_UNDELIVERABLE = text("""
    UPDATE notifications.deliveries SET status = 'cancelled', last_error = :error WHERE id = :id AND status = 'pending'
""")


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker holds the lease of, with everything needed to send it."""

    id: uuid.UUID
    zone_id: str
    recipient: str | None
    channel: str
    address: str
    attempt: int
    secret: str | None  # None: the endpoint was deleted
    alert: AlertContent | None
    digest: tuple[date, list[AlertContent]] | None
    # The trace context of each alert it carries: its attempts continue the first's trace and link the others.
    causes: list[dict[str, str]] = field(default_factory=list)


async def claim_due(kit: Kit, limit: int) -> list[Claimed]:
    settings: Settings = kit.settings
    async with kit.sessions() as session, session.begin():
        rows = (await session.execute(_CLAIM, {"lease": settings.ezone_delivery_lease_s, "limit": limit})).all()
        if not rows:
            return []
        wanted = {row.alert_id for row in rows if row.alert_id} | {
            uuid.UUID(alert) for row in rows for alert in (row.digest_alert_ids or ())}
        found = (await session.execute(_ALERTS, {"ids": list(wanted)})).all()
    alerts = {row.id: AlertContent.from_row(row) for row in found}
    traces = {row.id: {name: value for name, value in (("traceparent", row.traceparent), ("tracestate", row.tracestate))
                       if value} for row in found}
    claimed = []
    for row in rows:
        digest = _digest(row, alerts)
        carried = [row.alert_id] if row.alert_id else [alert.id for alert in digest[1]] if digest else []
        claimed.append(Claimed(
            id=row.id, zone_id=row.zone_id, recipient=row.recipient, channel=row.channel, address=row.address,
            attempt=row.attempts, secret=row.secret, alert=alerts.get(row.alert_id), digest=digest,
            causes=[traces[alert_id] for alert_id in carried if traces.get(alert_id)]))
    return claimed


def _digest(row: Any, alerts: dict[uuid.UUID, AlertContent]) -> tuple[date, list[AlertContent]] | None:
    if row.digest_id is None:
        return None
    listed = [uuid.UUID(alert_id) for alert_id in row.digest_alert_ids]
    return row.local_date, [alerts[alert_id] for alert_id in listed if alert_id in alerts]


def _undeliverable(claimed: Claimed) -> str | None:
    if claimed.channel == "webhook" and claimed.secret is None:
        return "the webhook endpoint was deleted"
    if claimed.alert is None and not (claimed.digest and claimed.digest[1]):
        return "the alert no longer exists"
    return None


async def _send(kit: Kit, http: httpx.AsyncClient, smtp: SmtpConnections, claimed: Claimed) -> Outcome:
    settings: Settings = kit.settings
    if claimed.channel == "webhook":
        assert claimed.alert is not None and claimed.secret is not None
        body = webhook_body(claimed.id, claimed.alert, zone_wide=claimed.recipient is None)
        return await send_webhook(http, claimed.address, claimed.secret, claimed.id, body)
    if claimed.digest is not None:
        local_date, alerts = claimed.digest
        message = digest_email(settings, claimed.id, claimed.address, claimed.zone_id, local_date, alerts)
    else:
        assert claimed.alert is not None
        message = alert_email(settings, claimed.id, claimed.address, claimed.alert)
    return await smtp.send(message)


@dataclass(frozen=True)
class Attempt:
    """One finished send, waiting to be recorded."""

    claimed: Claimed
    outcome: Outcome
    started: datetime
    duration_ms: int
    trace_context: dict[str, str]  # the attempt's span: what follows from it (`alert.delivered`) continues its trace


class Recorder:
    """Writes the outcomes of finished sends: whatever finished while the last write ran goes in the next, together."""

    def __init__(self, kit: Kit) -> None:
        self._kit = kit
        self._waiting: list[Attempt] = []
        self._wake = asyncio.Event()

    def add(self, attempt: Attempt) -> None:
        self._waiting.append(attempt)
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await self.flush()

    async def flush(self) -> None:
        self._wake.clear()
        attempts, self._waiting = self._waiting, []
        if not attempts:
            return
        try:
            await _record(self._kit, attempts)
        except Exception as exc:  # noqa: BLE001 - the leases bring the deliveries back
            _log.warning("%d delivery outcome(s) not recorded (%s); they are retried when their leases end",
                         len(attempts), describe(exc))


async def deliver(kit: Kit, http: httpx.AsyncClient, smtp: SmtpConnections, recorder: Recorder, claimed: Claimed) -> None:
    """Send one claimed delivery and hand the outcome to the recorder. Never raises: a failure is the delivery's, not
    the worker's."""
    with trace.use_span(_attempt_span(kit.settings, claimed), end_on_exit=True) as span:
        await _deliver(kit, http, smtp, recorder, claimed, span)


def _attempt_span(settings: Settings, claimed: Claimed) -> trace.Span:
    """A CLIENT span per attempt, in the trace of the alert it carries: `POST` (an HTTP client's, whose request carries
    it as `traceparent`) for a webhook, `send email` for an SMTP send."""
    attributes: dict[str, Any] = {
        "ezone.delivery.id": str(claimed.id), "ezone.delivery.channel": claimed.channel,
        "ezone.delivery.attempt": claimed.attempt, "ezone.zone.id": claimed.zone_id,
    }
    if claimed.alert is not None:
        attributes["ezone.alert.id"] = str(claimed.alert.id)
    if claimed.channel == "webhook":
        url = httpx.URL(claimed.address)  # the path and query may hold the receiver's token: only where it goes
        attributes |= {"http.request.method": "POST", "url.scheme": url.scheme, "server.address": url.host,
                       "server.port": url.port or (443 if url.scheme == "https" else 80)}
        name = "POST"
    else:
        attributes |= {"server.address": settings.ezone_smtp_host, "server.port": settings.ezone_smtp_port}
        name = "send email"
    return start_span_continuing(name, claimed.causes, kind=trace.SpanKind.CLIENT, attributes=attributes)


async def _deliver(kit: Kit, http: httpx.AsyncClient, smtp: SmtpConnections, recorder: Recorder, claimed: Claimed,
                   span: trace.Span) -> None:
    settings: Settings = kit.settings
    try:
        reason = _undeliverable(claimed)
        if reason is not None:
            async with kit.sessions() as session, session.begin():
                await session.execute(_UNDELIVERABLE, {"id": claimed.id, "error": reason})
            return
        started, clock = datetime.now(UTC), time.perf_counter()
        try:
            async with asyncio.timeout(settings.ezone_delivery_timeout_s):
                outcome = await _send(kit, http, smtp, claimed)
        except TimeoutError:
            outcome = Outcome(False, None, f"no answer within {settings.ezone_delivery_timeout_s:g}s")
        except Exception as exc:  # noqa: BLE001 - e.g. a template error: recorded like any failed attempt
            _log.exception("delivery %s failed before it was sent", claimed.id)
            outcome = Outcome(False, None, describe(exc))
        if outcome.status_code is not None:
            span.set_attribute("http.response.status_code" if claimed.channel == "webhook" else "ezone.smtp.reply_code",
                               outcome.status_code)
        if not outcome.sent:
            span.set_status(trace.Status(trace.StatusCode.ERROR, outcome.error))
        recorder.add(Attempt(claimed, outcome, started, round(1000 * (time.perf_counter() - clock)),
                             trace_headers_of(span)))
    except Exception as exc:  # noqa: BLE001 - the lease brings the delivery back
        _log.warning("delivery %s: not sent (%s); it is retried when its lease ends", claimed.id, describe(exc))


def delivered_event(claimed: Claimed) -> AlertDelivered:
    alerts = [claimed.alert] if claimed.alert is not None else (claimed.digest[1] if claimed.digest else [])
    schools = {alert.school_id for alert in alerts}
    return AlertDelivered(
        delivery_id=claimed.id, zone_id=claimed.zone_id, recipient=claimed.recipient, channel=claimed.channel,
        alert_ids=[alert.id for alert in alerts], school_id=schools.pop() if len(schools) == 1 else None,
        attempts=claimed.attempt, delivered_at=datetime.now(UTC),
    )


async def _record(kit: Kit, attempts: list[Attempt]) -> None:
    """Every attempt, and what follows from it, in one transaction."""
    settings: Settings = kit.settings
    # The attempts' statements are shared: in a span continuing the first attempt's trace, linking the others.
    recording = start_span_continuing("record delivery outcomes", [a.trace_context for a in attempts])
    with trace.use_span(recording, end_on_exit=True):
        failed = await _record_in_span(kit, settings, attempts)
    for a in failed:
        _log.info("delivery %s (%s) attempt %d failed: %s", a.claimed.id, a.claimed.channel, a.claimed.attempt,
                  a.outcome.error)


async def _record_in_span(kit: Kit, settings: Settings, attempts: list[Attempt]) -> list[Attempt]:
    async with kit.sessions() as session, session.begin():
        await session.execute(_ATTEMPT, [{
            "id": a.claimed.id, "attempt": a.claimed.attempt, "started_at": a.started, "duration_ms": a.duration_ms,
            "outcome": "sent" if a.outcome.sent else "failed", "status_code": a.outcome.status_code,
            "error": a.outcome.error,
        } for a in attempts])
        sent = [a for a in attempts if a.outcome.sent]
        if sent:
            marked = set((await session.execute(_SENT, {
                "ids": [a.claimed.id for a in sent], "status_codes": [a.outcome.status_code for a in sent]})).scalars())
            # Announced only by the sender that marked it sent (a second sender's attempt finds it sent), each in its
            # attempt's trace.
            rows = []
            for a in sent:
                if a.claimed.id in marked:
                    with in_trace_of(a.trace_context):
                        rows += kit.outbox.rows([delivered_event(a.claimed)])
            await kit.outbox.insert_rows(session, rows)
        failed = [a for a in attempts if not a.outcome.sent]
        if failed:
            await session.execute(_FAILED, [_failure(settings, a) for a in failed])
    return failed


def _failure(settings: Settings, attempt: Attempt) -> dict[str, Any]:
    claimed, outcome = attempt.claimed, attempt.outcome
    final = claimed.attempt >= settings.ezone_delivery_max_attempts
    delay = 0.0 if final else retry_delay(claimed.attempt, settings.ezone_delivery_backoff_s,
                                          settings.ezone_delivery_backoff_max_s)
    return {"id": claimed.id, "attempt": claimed.attempt, "status": "failed" if final else "pending", "delay": delay,
            "status_code": outcome.status_code, "error": outcome.error}


async def delivery_worker(kit: Kit) -> None:
    settings: Settings = kit.settings
    wake = asyncio.Event()
    listener: asyncpg.Connection | None = None
    in_flight: set[asyncio.Task[None]] = set()
    backoff = 0.0
    digests_checked = float("-inf")
    smtp = SmtpConnections(settings)
    recorder = Recorder(kit)
    recording = asyncio.create_task(recorder.run(), name="delivery-recorder")
    async with httpx.AsyncClient(timeout=settings.ezone_delivery_timeout_s, follow_redirects=False) as http:
        try:
            while True:
                wake.clear()  # what is queued from here on wakes the next wait
                try:
                    if listener is None or listener.is_closed():
                        listener = await asyncpg.connect(asyncpg_dsn(settings.database_url))
                        await listener.add_listener(NOTIFY_CHANNEL, lambda *_: wake.set())
                    if time.monotonic() - digests_checked >= settings.ezone_delivery_poll_interval_s:
                        await build_due_digests(kit.sessions, settings, datetime.now(UTC))
                        digests_checked = time.monotonic()
                    while (free := settings.ezone_delivery_concurrency - len(in_flight)) > 0:
                        claimed = await claim_due(kit, free)
                        for delivery in claimed:
                            task = asyncio.create_task(deliver(kit, http, smtp, recorder, delivery),
                                                   name=f"delivery-{delivery.id}")
                            in_flight.add(task)
                            task.add_done_callback(in_flight.discard)
                        if len(claimed) < free:
                            break
                    backoff = 0.0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the worker outlives database outages
                    backoff = min(MAX_BACKOFF_S, max(0.25, backoff * 2))
                    _log.warning("delivery worker: %s; retrying in %.1fs", describe(exc), backoff)
                    if listener is not None and listener.is_closed():
                        listener = None
                    await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))
                    continue
                await _until_woken(wake, in_flight, settings.ezone_delivery_poll_interval_s)
        finally:
            # Cancelled sends record nothing: their leases bring them back, as after a crash. Finished ones are recorded.
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            recording.cancel()
            await asyncio.gather(recording, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(recorder.flush(), settings.ezone_delivery_timeout_s)
            await smtp.close()
            if listener is not None:
                listener.terminate()


async def _until_woken(wake: asyncio.Event, in_flight: set[asyncio.Task[None]], poll_s: float) -> None:
    """Until new deliveries are queued, a send finishes (a free slot), or the poll interval passes."""
    woken = asyncio.create_task(wake.wait())
    try:
        await asyncio.wait({woken, *in_flight}, timeout=poll_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        woken.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await woken
