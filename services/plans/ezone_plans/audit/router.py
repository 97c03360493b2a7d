"""Who changed what, when, with which trace: by plan and by school."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from ezone_kit.auth import Principal, ensure_school, ensure_zone, require_roles
from ezone_kit.problems import Problem
from ezone_kit.service import SessionDep
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import Base, Plan, School

router = APIRouter(prefix="/zones/{zone_id}", tags=["audit"])

audit_log = Base.metadata.tables["plans.audit_log"]

# A school token reads its own schools' trail (ensure_school); sis tokens never read it.
AuditReader = Annotated[Principal, Depends(require_roles("admin", "district", "board", "school"))]
Limit = Annotated[int, Query(ge=1, le=500, description="At most this many entries.")]
Before = Annotated[int | None, Query(ge=1, description="Only entries older than this id: the `next_before` of the previous page.")]


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="The `sub` of the token that made the change.")
    actor_role: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    trace_id: str | None


class AuditPage(BaseModel):
    entries: list[AuditEntry] = Field(description="Newest first.")
    next_before: int | None = Field(description="Pass as `before` for the next page; null on the last page.")


async def _page(session: AsyncSession, zone_id: str, about: ColumnElement[bool], limit: int, before: int | None) -> AuditPage:
    query = select(audit_log).where(audit_log.c.zone_id == zone_id, about)
    if before is not None:
        query = query.where(audit_log.c.id < before)
    rows = (await session.execute(query.order_by(audit_log.c.id.desc()).limit(limit))).mappings().all()
    entries = [AuditEntry.model_validate(dict(row)) for row in rows]
    return AuditPage(entries=entries, next_before=entries[-1].id if len(entries) == limit else None)


@router.get("/schools/{school_id}/audit", response_model=AuditPage, summary="A school's audit trail")
async def school_audit(zone_id: str, school_id: uuid.UUID, principal: AuditReader, session: SessionDep,
                       limit: Limit = 100, before: Before = None) -> AuditPage:
    """Every change recorded with this school: its registry facts, its leadership team, its plans."""
    ensure_school(principal, zone_id, school_id)
    school = await session.get(School, school_id)
    if school is None or school.zone_id != zone_id:
        raise Problem(404, f"School {school_id} was not found in zone {zone_id!r}.")
    return await _page(session, zone_id, audit_log.c.school_id == str(school_id), limit, before)


@router.get("/plans/{plan_id}/audit", response_model=AuditPage, summary="A plan's audit trail")
async def plan_audit(zone_id: str, plan_id: uuid.UUID, principal: AuditReader, session: SessionDep,
                     limit: Limit = 100, before: Before = None) -> AuditPage:
    """The entries about the plan (`entity` "plan", `entity_id` the plan id) and about anything of the plan
    (its versions, votes, decisions: any other `entity` whose `after` carries `"plan_id": "<plan id>"`).
    Whoever writes plan audit entries keeps to that so they show up here."""
    ensure_zone(principal, zone_id)
    plan = await session.get(Plan, plan_id)
    if plan is None or plan.zone_id != zone_id:
        raise Problem(404, f"Plan {plan_id} was not found in zone {zone_id!r}.")
    ensure_school(principal, zone_id, plan.school_id)
    about_the_plan = or_(
        and_(audit_log.c.entity == "plan", audit_log.c.entity_id == str(plan_id)),
        and_(audit_log.c.entity != "plan", audit_log.c.after["plan_id"].astext == str(plan_id)),
    )
    return await _page(session, zone_id, about_the_plan, limit, before)
