"""The school directory: every service but plans keeps its own projection of the zone's schools,
fed by `school.registered` / `school.updated`, to scope its data and its callers by zone and school."""

from __future__ import annotations

import uuid

from ezone_schemas import SchoolRegistered, SchoolUpdated
from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, func, select
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert

from .auth import CurrentPrincipal, ensure_zone
from .consumer import Handler, HandlerContext
from .db import KIT_MANAGED
from .service import SessionDep


def school_directory_table(metadata: MetaData) -> Table:
    return Table(
        "schools",
        metadata,
        Column("id", UUID(as_uuid=True), primary_key=True),
        Column("zone_id", Text, nullable=False, index=True),
        Column("code", Text, nullable=False),
        Column("name", Text, nullable=False),
        Column("grade_span", Text, nullable=False),
        Column("enrollment", Integer),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        info=KIT_MANAGED,
    )


def school_directory_handlers(table: Table) -> dict[type, Handler]:
    async def upsert(ctx: HandlerContext) -> None:
        event: SchoolRegistered | SchoolUpdated = ctx.event
        values = {
            "id": event.school_id, "zone_id": event.zone_id, "code": event.code, "name": event.name,
            "grade_span": event.grade_span, "enrollment": event.enrollment,
        }
        statement = pg_insert(table).values(values)
        await ctx.session.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.id],
                set_={key: statement.excluded[key] for key in values if key != "id"} | {"updated_at": func.now()},
            )
        )

    return {SchoolRegistered: upsert, SchoolUpdated: upsert}


class DirectorySchool(BaseModel):
    id: uuid.UUID
    zone_id: str
    code: str
    name: str
    grade_span: str
    enrollment: int | None


def school_directory_router(table: Table) -> APIRouter:
    router = APIRouter(tags=["directory"])

    @router.get("/zones/{zone_id}/schools", response_model=list[DirectorySchool], summary="The zone's schools as this service knows them")
    async def list_schools(zone_id: str, principal: CurrentPrincipal, session: SessionDep) -> list[DirectorySchool]:
        ensure_zone(principal, zone_id)
        rows = (await session.execute(select(table).where(table.c.zone_id == zone_id).order_by(table.c.name))).mappings()
        return [DirectorySchool(**row) for row in rows if principal.may_act_for_school(row["id"])]

    return router
