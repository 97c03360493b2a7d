"""Who is in an audience today."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import board_members, school_team_members


async def audience_members(
    session: AsyncSession, zone_id: str, school_id: uuid.UUID | None, audiences: Iterable[str], today: date
) -> dict[str, list[str]]:
    """The token subjects in each audience: the seated board, and the school's current team."""
    members: dict[str, list[str]] = {}
    wanted = set(audiences)
    if "board" in wanted:
        members["board"] = list((await session.execute(
            select(board_members.c.subject).where(
                board_members.c.zone_id == zone_id,
                board_members.c.active_from <= today,
                or_(board_members.c.active_to.is_(None), board_members.c.active_to >= today),
            ).order_by(board_members.c.seat)
        )).scalars())
    if "school_team" in wanted and school_id is not None:
        members["school_team"] = list((await session.execute(
            select(school_team_members.c.subject).where(
                school_team_members.c.zone_id == zone_id, school_team_members.c.school_id == school_id,
            ).order_by(school_team_members.c.subject)
        )).scalars())
    return members
