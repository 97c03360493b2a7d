"""Projections of the plans service's people: board members by term, school teams by their latest list."""

from __future__ import annotations

from ezone_kit.consumer import HandlerContext
from ezone_schemas import BoardMemberChanged, SchoolTeamChanged
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ..models import board_members, school_team_members


async def on_board_member_changed(ctx: HandlerContext) -> None:
    event: BoardMemberChanged = ctx.event
    values = {
        "member_id": event.member_id, "zone_id": event.zone_id, "subject": event.subject, "name": event.name,
        "seat": event.seat, "active_from": event.active_from, "active_to": event.active_to, "changed_at": event.changed_at,
    }
    statement = pg_insert(board_members).values(values)
    # An older change redelivered after a newer one must not roll the member back.
    await ctx.session.execute(statement.on_conflict_do_update(
        index_elements=[board_members.c.member_id],
        set_={k: statement.excluded[k] for k in values if k != "member_id"},
        where=board_members.c.changed_at < statement.excluded.changed_at,
    ))


async def on_school_team_changed(ctx: HandlerContext) -> None:
    event: SchoolTeamChanged = ctx.event
    held = (await ctx.session.execute(
        select(func.max(school_team_members.c.changed_at)).where(school_team_members.c.school_id == event.school_id)
    )).scalar()
    if held is not None and held >= event.changed_at:
        return  # a newer (or the same) team list is already held
    await ctx.session.execute(delete(school_team_members).where(school_team_members.c.school_id == event.school_id))
    active = [m for m in event.members if m.active]
    if active:
        await ctx.session.execute(pg_insert(school_team_members).values([
            {"school_id": event.school_id, "subject": m.subject, "zone_id": event.zone_id, "name": m.name,
             "role": m.role, "changed_at": event.changed_at}
            for m in active
        ]).on_conflict_do_nothing())
