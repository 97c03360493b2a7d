"""Raising alerts from an event: the zone's rules pick severity and audiences, each recipient gets exactly one.

The alert id is derived from (source event id, recipient) and inserted with ON CONFLICT DO NOTHING, in the
consumer's transaction with the inbox row: however often the event is redelivered, a recipient has one alert,
and deliveries are planned only for alerts that are new. A newer alert of a thread (a school's reviews of one
subject and year) supersedes the thread's older unread alerts; an older one arriving late is stored already
superseded and pushed nowhere. A review the zone's policy counts as history (`current: false`) alerts no one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from ezone_kit.consumer import HandlerContext
from ezone_kit.telemetry import current_trace_headers, current_trace_id, trace_id_of, tracer
from ezone_schemas import AlertRaised, Event, ReviewCompleted, SchoolTierChanged
import orjson
from sqlalchemy import Date, bindparam, text, update
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..config import Settings
from ..deliveries.planning import cancel_deliveries, plan_deliveries
from ..models import alerts
from ..rules.engine import Rule, event_name, matches, most_severe
from .composer import Composition, compose
from .records import RaisedAlert

_ALERT_NAMESPACE = uuid.UUID("0b9a7f0e-5d43-4b8e-9a52-7c1d2e3f4a5b")
_INSERT_ALERTS = pg_insert(alerts).on_conflict_do_nothing(index_elements=[alerts.c.id]).returning(alerts.c.id)


def alert_id(source_event_id: uuid.UUID, recipient: str) -> uuid.UUID:
    return uuid.uuid5(_ALERT_NAMESPACE, f"{source_event_id}:{recipient}")


@dataclass(frozen=True)
class Addressee:
    recipient: str
    audience: str
    severity: str
    rule_names: tuple[str, ...]


def addressees(matched: list[Any], members: dict[str, list[str]]) -> list[Addressee]:
    """One entry per person, however many rules and audiences reach them: the most severe rule decides."""
    reached: dict[str, list[tuple[Any, str]]] = {}
    for rule in matched:
        for audience in rule.audiences:
            for subject in members.get(audience, ()):
                reached.setdefault(subject, []).append((rule, audience))
    result = []
    for subject, hits in reached.items():
        severity = most_severe(rule.severity for rule, _ in hits)
        audience = next(audience for rule, audience in hits if rule.severity == severity)
        result.append(Addressee(subject, audience, severity, tuple(dict.fromkeys(rule.name for rule, _ in hits))))
    return result


_CONTEXT = text("""
    SELECT
        (SELECT name FROM notifications.schools WHERE id = :school_id) AS school_name,
        (SELECT coalesce(json_agg(r ORDER BY r.name), '[]') FROM (
            SELECT name, description, event_type, conditions, severity, audiences, enabled
            FROM notifications.alert_rules WHERE zone_id = :zone_id AND event_type = :event_type) r) AS rules,
        array(SELECT subject FROM notifications.board_members
              WHERE zone_id = :zone_id AND active_from <= :today AND (active_to IS NULL OR active_to >= :today)
              ORDER BY seat) AS board,
        array(SELECT subject FROM notifications.school_team_members
              WHERE zone_id = :zone_id AND school_id = :school_id ORDER BY subject) AS school_team
""").bindparams(bindparam("school_id", type_=UUID(as_uuid=True)), bindparam("today", type_=Date))


@dataclass(frozen=True)
class _Context:
    school_name: str
    rules: list[Rule]  # the zone's rules for the event's type
    members: dict[str, list[str]]  # token subjects per audience: the seated board, the school's current team


async def _context(session: AsyncSession, zone_id: str, school_id: uuid.UUID | None, event_type: str) -> _Context:
    """What raising an event's alerts reads, in one statement."""
    row = (await session.execute(_CONTEXT, {"zone_id": zone_id, "school_id": school_id, "event_type": event_type,
                                            "today": date.today()})).one()
    school_name = "The zone" if school_id is None else row.school_name or f"School {school_id}"
    rules = orjson.loads(row.rules) if isinstance(row.rules, str) else row.rules
    members = {"board": list(row.board)}
    if school_id is not None:
        members["school_team"] = list(row.school_team)
    return _Context(school_name, [Rule.model_validate(rule) for rule in rules], members)


_SETTLE_THREAD = text("""
    WITH newer AS (
        SELECT source_event_id FROM notifications.alerts
        WHERE zone_id = :zone_id AND thread = :thread AND thread_position > :position
        ORDER BY thread_position DESC LIMIT 1
    ), settled AS (
        UPDATE notifications.alerts SET superseded_at = :now, superseded_by_event = :event_id
        WHERE zone_id = :zone_id AND thread = :thread AND thread_position < :position
          AND read_at IS NULL AND superseded_at IS NULL AND NOT EXISTS (SELECT FROM newer)
        RETURNING id
    )
    SELECT (SELECT source_event_id FROM newer), array(SELECT id FROM settled)
""")


async def _supersede(session: AsyncSession, zone_id: str, source_event_id: uuid.UUID, composition: Composition) -> tuple[list[uuid.UUID], uuid.UUID | None]:
    """Settle older unread alerts of this event's threads; return them, and the event of a newer alert if one exists."""
    superseded: list[uuid.UUID] = []
    newer_event = None
    now = datetime.now(UTC)
    if composition.thread is not None:
        # One statement: the alert of a newer event in the thread, or else the older unread ones settled.
        newer_event, settled = (await session.execute(_SETTLE_THREAD, {
            "zone_id": zone_id, "thread": composition.thread, "position": composition.thread_position, "now": now,
            "event_id": source_event_id})).one()
        superseded += settled
    if composition.settles:
        superseded += (await session.execute(
            update(alerts).where(
                alerts.c.zone_id == zone_id, alerts.c.thread.in_(composition.settles),
                alerts.c.read_at.is_(None), alerts.c.superseded_at.is_(None),
            ).values(superseded_at=now, superseded_by_event=source_event_id).returning(alerts.c.id)
        )).scalars().all()
    return superseded, newer_event


async def raise_alerts(ctx: HandlerContext) -> list[RaisedAlert]:
    """The event's alerts, composed in a span of their own: the alerts keep its trace (the trace of the request that
    caused the event), and their deliveries continue it."""
    with tracer().start_as_current_span("compose alerts", attributes={
        "ezone.zone.id": getattr(ctx.event, "zone_id"), "ezone.alert.source_type": event_name(type(ctx.event)),
        "ezone.alert.source_event_id": str(ctx.envelope.id),
    }) as span:
        raised = await _raise_alerts(ctx)
        span.set_attribute("ezone.alerts.raised", len(raised))
        return raised


async def _raise_alerts(ctx: HandlerContext) -> list[RaisedAlert]:
    event: Event = ctx.event
    settings: Settings = ctx.settings  # type: ignore[assignment] - the notifications service's own settings
    session = ctx.session
    source_event_id = ctx.envelope.id
    zone_id: str = getattr(event, "zone_id")
    school_id: uuid.UUID | None = getattr(event, "school_id", None)
    kind = event_name(type(event))

    context = await _context(session, zone_id, school_id, kind)
    composition = compose(event, context.school_name, settings)
    superseded, newer_event = await _supersede(session, zone_id, source_event_id, composition)
    if superseded:
        await cancel_deliveries(session, superseded)

    # History (a review of a year the zone's policy no longer counts as current, or a tier change it caused) is kept
    # and shown, and still settles older alerts of its thread, but alerts no one.
    if isinstance(event, ReviewCompleted | SchoolTierChanged) and not event.current:
        return []
    data = event.model_dump(mode="json")
    matched = [rule for rule in context.rules if matches(rule, kind, data)]
    if not matched:
        return []
    members = context.members
    now = datetime.now(UTC)
    trace_id = current_trace_id() or trace_id_of(ctx.envelope.traceparent)
    trace_context = current_trace_headers()
    rows = [
        {
            "id": alert_id(source_event_id, who.recipient), "zone_id": zone_id, "recipient": who.recipient,
            "audience": who.audience, "severity": who.severity, "rule_names": list(who.rule_names),
            "title": composition.title, "body": composition.body, "links": composition.links, "school_id": school_id,
            "source_event_id": source_event_id, "source_type": kind, "trace_id": trace_id,
            "traceparent": trace_context.get("traceparent"), "tracestate": trace_context.get("tracestate"),
            "thread": composition.thread, "thread_position": composition.thread_position, "created_at": now,
            "superseded_at": now if newer_event else None, "superseded_by_event": newer_event,
        }
        for who in addressees(matched, members)
    ]
    if not rows:
        return []
    # Rows as parameters, not as .values(rows): the statement is compiled once per process, not once per event.
    inserted = set((await session.execute(_INSERT_ALERTS, rows)).scalars())
    raised = [
        RaisedAlert(
            id=row["id"], zone_id=zone_id, recipient=row["recipient"], audience=row["audience"], severity=row["severity"],
            title=row["title"], body=row["body"], school_id=school_id, source_event_id=source_event_id, source_type=kind,
            trace_id=trace_id, created_at=now, links=composition.links,
        )
        for row in rows if row["id"] in inserted
    ]
    if newer_event is None:
        await plan_deliveries(session, settings, raised)
    ctx.emit(*(
        AlertRaised(alert_id=alert.id, zone_id=zone_id, recipient=alert.recipient, audience=alert.audience,
                    severity=alert.severity, title=alert.title, school_id=school_id, source_event_id=source_event_id,
                    source_type=kind, rule_names=list(row["rule_names"]), raised_at=now)
        for alert, row in zip(raised, (r for r in rows if r["id"] in inserted), strict=True)
    ))
    return raised
