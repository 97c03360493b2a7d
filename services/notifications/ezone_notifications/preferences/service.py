"""A member's preferences: read (the defaults until they set their own) and replaced."""

from __future__ import annotations

from typing import Any

from ezone_kit.auth import Principal
from ezone_kit.uow import UnitOfWork
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..alerts.records import SEVERITIES
from ..config import Settings
from ..models import preferences
from .rules import Preferences, default_preferences, preferences_from_row
from .schemas import ChannelsIn, Digest, PreferencesIn, PreferencesOut, QuietHours


def _out(subject: str, found: Preferences, row: Any | None) -> PreferencesOut:
    return PreferencesOut(
        email=found.email, email_to=found.email_address(subject), timezone=found.timezone,
        channels=ChannelsIn(**{severity: sorted(found.channels[severity]) for severity in SEVERITIES}),
        quiet_hours=QuietHours(start=found.quiet_hours[0], end=found.quiet_hours[1]) if found.quiet_hours else None,
        digest=Digest(enabled=found.digest, time=found.digest_time),
        customized=row is not None, updated_at=row.updated_at if row is not None else None,
    )


def _values(body: PreferencesIn) -> dict[str, Any]:
    return {
        "email": body.email, "timezone": body.timezone, "channels": body.channels.model_dump(),
        "quiet_hours_start": body.quiet_hours.start if body.quiet_hours else None,
        "quiet_hours_end": body.quiet_hours.end if body.quiet_hours else None,
        "digest": body.digest.enabled, "digest_time": body.digest.time,
    }


async def _stored(session: AsyncSession, zone_id: str, subject: str, *, lock: bool = False) -> Any | None:
    statement = select(preferences).where(preferences.c.zone_id == zone_id, preferences.c.subject == subject)
    return (await session.execute(statement.with_for_update() if lock else statement)).first()


async def get_preferences(session: AsyncSession, settings: Settings, zone_id: str, subject: str) -> PreferencesOut:
    row = await _stored(session, zone_id, subject)
    return _out(subject, preferences_from_row(row) if row is not None else default_preferences(settings), row)


async def put_preferences(uow: UnitOfWork, principal: Principal, zone_id: str, body: PreferencesIn) -> PreferencesOut:
    """Replaces the member's preferences; the same body again changes nothing. They apply to alerts raised from
    now on: deliveries already planned keep their time."""
    session, subject = uow.session, principal.subject
    values = _values(body)
    previous = await _stored(session, zone_id, subject, lock=True)
    if previous is not None and all(getattr(previous, key) == value for key, value in values.items()):
        return _out(subject, preferences_from_row(previous), previous)
    statement = pg_insert(preferences).values(zone_id=zone_id, subject=subject, **values, updated_at=func.now())
    row = (await session.execute(
        statement.on_conflict_do_update(index_elements=[preferences.c.zone_id, preferences.c.subject],
                                        set_={**values, "updated_at": func.now()})
        .returning(*preferences.c)
    )).one()
    await uow.audit(actor=principal, action="preferences.updated", entity="preferences", entity_id=subject,
                    zone_id=zone_id, after=body.model_dump(mode="json"),
                    before=None if previous is None else _document(subject, previous))
    await uow.commit()
    return _out(subject, preferences_from_row(row), row)


def _document(subject: str, row: Any) -> dict[str, Any]:
    """Stored preferences as a PUT body would state them (for the audit log)."""
    return _out(subject, preferences_from_row(row), row).model_dump(
        mode="json", include={"email", "timezone", "channels", "quiet_hours", "digest"})
