"""The daily digest: once a member's local digest time has passed, their held info emails become one email."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..config import Settings
from ..preferences.rules import Preferences, default_preferences, preferences_from_row
from .planning import delivery_id
from .timing import quiet_hours_end, todays_digest

_DIGEST_NAMESPACE = uuid.UUID("5a8e2d17-4c3b-4f09-8b6a-1e7d9c2f3a50")

# Members with held emails, their oldest one, and their preferences (NULLs: none set).
_HELD = text("""
    SELECT h.zone_id, h.recipient, h.oldest, p.zone_id IS NOT NULL AS customized, p.email, p.channels, p.timezone,
           p.quiet_hours_start, p.quiet_hours_end, p.digest, p.digest_time
    FROM (SELECT zone_id, recipient, min(created_at) AS oldest FROM notifications.deliveries
          WHERE status = 'held_for_digest' GROUP BY zone_id, recipient) h
    LEFT JOIN notifications.preferences p ON p.zone_id = h.zone_id AND p.subject = h.recipient
""")

_NEW_DIGEST = text("""
    INSERT INTO notifications.digests (id, zone_id, recipient, local_date, alert_ids)
    VALUES (:id, :zone, :recipient, :local_date, '[]') ON CONFLICT DO NOTHING RETURNING id
""")

_DIGESTED = text("""
    UPDATE notifications.deliveries SET status = 'digested', digest_id = :digest
    WHERE status = 'held_for_digest' AND zone_id = :zone AND recipient = :recipient AND created_at < :cutoff
    RETURNING alert_id, address, created_at
""")

_DIGEST_ALERTS = text("UPDATE notifications.digests SET alert_ids = :alerts WHERE id = :id").bindparams(
    bindparam("alerts", type_=JSONB))

_DIGEST_EMAIL = text("""
    INSERT INTO notifications.deliveries (id, zone_id, digest_id, recipient, channel, address, status, next_attempt_at)
    VALUES (:id, :zone, :digest, :recipient, 'email', :address, 'pending', coalesce(:due, now()))
    ON CONFLICT (id) DO NOTHING
""")


def digest_id(zone_id: str, recipient: str, local_date: date) -> uuid.UUID:
    return uuid.uuid5(_DIGEST_NAMESPACE, f"{zone_id}/{recipient}/{local_date.isoformat()}")


async def build_due_digests(sessions: async_sessionmaker[AsyncSession], settings: Settings, now: datetime) -> int:
    """One digest per member whose digest time has passed today and who has emails held from before it; each in its
    own short transaction. Returns how many digests it made."""
    defaults = default_preferences(settings)
    async with sessions() as session:
        members = (await session.execute(_HELD)).all()
    made = 0
    for member in members:
        preferences = preferences_from_row(member) if member.customized else defaults
        due = todays_digest(now, preferences.time_zone, preferences.digest_time)
        if due is None or member.oldest >= due[1]:
            continue
        async with sessions() as session:
            made += await _digest(session, member.zone_id, member.recipient, preferences, *due, now)
    return made


async def _digest(session: AsyncSession, zone_id: str, recipient: str, preferences: Preferences, local_date: date,
                  cutoff: datetime, now: datetime) -> bool:
    """Commits when it made the digest; otherwise the caller's session rolls back on close."""
    digest = digest_id(zone_id, recipient, local_date)
    if (await session.execute(_NEW_DIGEST, {"id": digest, "zone": zone_id, "recipient": recipient,
                                            "local_date": local_date})).first() is None:
        return False  # today's digest went out already: what was held since waits for tomorrow's
    held = sorted((await session.execute(_DIGESTED, {"digest": digest, "zone": zone_id, "recipient": recipient,
                                                     "cutoff": cutoff})).all(), key=lambda row: row.created_at)
    if not held:
        return False  # cancelled since they were counted: no empty digest
    await session.execute(_DIGEST_ALERTS, {"id": digest, "alerts": [str(row.alert_id) for row in held]})
    deferred = quiet_hours_end(now, preferences.time_zone, *preferences.quiet_hours) if preferences.quiet_hours else None
    await session.execute(_DIGEST_EMAIL, {
        "id": delivery_id(digest, "email"), "zone": zone_id, "digest": digest, "recipient": recipient,
        "address": preferences.email_address(recipient) or held[-1].address, "due": deferred,
    })
    await session.commit()
    return True
