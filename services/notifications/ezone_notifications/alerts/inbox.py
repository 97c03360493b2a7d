"""Queries of a member's alerts; every one is scoped to (zone, recipient), so no one reads another's."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime
from typing import Any

from ezone_kit.problems import Problem
from sqlalchemy import ARRAY, Text, and_, any_, bindparam, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import alerts
from .schemas import AlertOut, AlertPage, AlertState

_COLUMNS = [alerts.c[name] for name in AlertOut.model_fields]


def not_found(zone_id: str, alert_id: uuid.UUID) -> Problem:
    return Problem(404, f"You have no alert {alert_id} in zone {zone_id!r}.")


def _mine(zone_id: Any, recipient: Any) -> Any:
    return and_(alerts.c.zone_id == zone_id, alerts.c.recipient == recipient)


_STATE_FILTERS = {
    AlertState.ACTIVE: alerts.c.superseded_at.is_(None),
    AlertState.UNREAD: and_(alerts.c.read_at.is_(None), alerts.c.superseded_at.is_(None)),
    AlertState.READ: alerts.c.read_at.is_not(None),
    AlertState.ACKNOWLEDGED: alerts.c.acknowledged_at.is_not(None),
    AlertState.SUPERSEDED: alerts.c.superseded_at.is_not(None),
}


@functools.cache
def _page_statement(state: AlertState, *, by_severity: bool, by_school: bool, by_source: bool, before: bool,
                    after: bool) -> Any:
    """One statement per combination of filters, built once: building the page's lateral join and its columns each
    time was a tenth of the service's work for a client polling its inbox. The values are bound at execution."""
    member = _mine(bindparam("zone_id"), bindparam("recipient"))
    query = select(*_COLUMNS).where(member)
    if state in _STATE_FILTERS:
        query = query.where(_STATE_FILTERS[state])
    if by_severity:
        query = query.where(alerts.c.severity == any_(bindparam("severities", type_=ARRAY(Text))))
    if by_school:
        query = query.where(alerts.c.school_id == bindparam("school_id"))
    if by_source:
        query = query.where(alerts.c.source_type == bindparam("source_type"))
    if before:
        query = query.where(alerts.c.seq < bindparam("before_seq"))
    if after:
        query = query.where(alerts.c.seq > bindparam("after_seq"))
    # The unread count and the page in one statement, and one row even when the page is empty (as most polls for
    # newer alerts are): the count is joined to the page rather than asked for separately.
    unread = select(func.count().label("unread")).select_from(alerts).where(
        member, _STATE_FILTERS[AlertState.UNREAD]).subquery("unread")
    found = query.order_by(alerts.c.seq.desc()).limit(bindparam("rows")).lateral("found")
    return select(unread.c.unread, *found.c).select_from(unread.outerjoin(found, true())).order_by(found.c.seq.desc())


async def page(
    session: AsyncSession, zone_id: str, recipient: str, *, state: AlertState, severities: list[str] | None,
    school_id: uuid.UUID | None, source_type: str | None, before_seq: int | None, after_seq: int | None,
    limit: int,
) -> AlertPage:
    statement = _page_statement(state, by_severity=bool(severities), by_school=school_id is not None,
                                by_source=source_type is not None, before=before_seq is not None,
                                after=after_seq is not None)
    rows = (await session.execute(statement, {
        "zone_id": zone_id, "recipient": recipient, "severities": severities, "school_id": school_id,
        "source_type": source_type, "before_seq": before_seq, "after_seq": after_seq, "rows": limit + 1,
    })).mappings().all()
    unread_count = rows[0]["unread"]
    rows = [row for row in rows if row["id"] is not None]
    items = [AlertOut.model_validate(row) for row in rows[:limit]]
    return AlertPage(items=items, unread=unread_count, next_before_seq=items[-1].seq if len(rows) > limit else None)


async def get(session: AsyncSession, zone_id: str, recipient: str, alert_id: uuid.UUID) -> AlertOut | None:
    row = (await session.execute(
        select(*_COLUMNS).where(_mine(zone_id, recipient), alerts.c.id == alert_id))).mappings().first()
    return AlertOut(**row) if row else None


async def newer_than(session: AsyncSession, zone_id: str, recipient: str, seq: int, limit: int = 500) -> list[AlertOut]:
    rows = (await session.execute(
        select(*_COLUMNS).where(_mine(zone_id, recipient), alerts.c.seq > seq).order_by(alerts.c.seq).limit(limit)
    )).mappings()
    return [AlertOut(**row) for row in rows]


async def mark(kit: Any, zone_id: str, recipient: str, alert_id: uuid.UUID, *, acknowledge: bool) -> AlertOut:
    now = datetime.now(UTC)
    values: dict[str, Any] = {"read_at": func.coalesce(alerts.c.read_at, now)}
    pending = alerts.c.read_at.is_(None)
    if acknowledge:
        values["acknowledged_at"] = func.coalesce(alerts.c.acknowledged_at, now)
        pending = alerts.c.acknowledged_at.is_(None)
    async with kit.sessions() as session, session.begin():
        # Only a change is written, so a repeat neither moves the time nor wakes the open pages again.
        await session.execute(update(alerts).where(_mine(zone_id, recipient), alerts.c.id == alert_id, pending).values(values))
        alert = await get(session, zone_id, recipient, alert_id)
    if alert is None:
        raise not_found(zone_id, alert_id)
    return alert
