"""Row locks that serialise a zone's changes which read, check and then write."""

from __future__ import annotations

from ezone_kit.problems import Problem
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import Zone


async def lock_zone(session: AsyncSession, zone_id: str) -> None:
    """Hold the zone row until the transaction ends (404 when there is no such zone).

    Locking the newest row of a table instead would not do: a waiter is handed the row it found before
    the other transaction added a newer one. FOR NO KEY UPDATE leaves inserts that merely reference the
    zone (schools, plans, ...) unblocked.
    """
    locked = await session.execute(select(Zone.id).where(Zone.id == zone_id).with_for_update(key_share=True))
    if locked.scalar_one_or_none() is None:
        raise Problem(404, f"Zone {zone_id!r} was not found.")
