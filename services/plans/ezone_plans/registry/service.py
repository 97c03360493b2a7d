"""Registry use cases: each one commits its state change with the events it raises."""

from __future__ import annotations

import uuid

from ezone_kit.auth import Principal
from ezone_kit.problems import Problem
from ezone_kit.uow import UnitOfWork
from ezone_schemas import SchoolRegistered, ZoneRegistered
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ..models import School, Zone
from ..policy.document import PolicyDocument
from ..policy.service import adopt_policy
from .schemas import SchoolIn, SchoolOut, ZoneIn

_SCHOOL_FIELDS = ("code", "name", "grade_span", "enrollment")


def school_out(school: School, created: bool) -> SchoolOut:
    return SchoolOut(
        id=school.id, zone_id=school.zone_id, code=school.code, name=school.name,
        grade_span=school.grade_span, enrollment=school.enrollment, created=created,
    )


async def register_zone(uow: UnitOfWork, actor: Principal, data: ZoneIn) -> tuple[Zone, bool]:
    # ON CONFLICT DO NOTHING: of simultaneous identical requests one inserts, the others wait for it and find its row.
    zone = (
        await uow.session.execute(
            pg_insert(Zone).values(id=data.id, name=data.name, district=data.district)
            .on_conflict_do_nothing(index_elements=[Zone.id]).returning(Zone)
        )
    ).scalar_one_or_none()
    if zone is None:
        existing = await uow.session.get(Zone, data.id, populate_existing=True)
        if (existing.name, existing.district) != (data.name, data.district):
            raise Problem(409, f"Zone {data.id!r} is already registered with other details; change it with an update, not a new registration.")
        return existing, False
    uow.emit(ZoneRegistered(zone_id=zone.id, name=zone.name, district=zone.district, registered_at=zone.created_at))
    await uow.audit(actor=actor, action="zone.registered", entity="zone", entity_id=zone.id, zone_id=zone.id,
                    after=data.model_dump())
    # Every zone starts with a complete policy (version 1, the defaults) so reviews and votes have rules.
    await adopt_policy(uow, actor, zone.id, PolicyDocument())
    await uow.commit()
    return zone, True


async def register_school(uow: UnitOfWork, actor: Principal, zone_id: str, data: SchoolIn) -> SchoolOut:
    if await uow.session.get(Zone, zone_id) is None:
        raise Problem(404, f"Zone {zone_id!r} was not found.")
    school = (
        await uow.session.execute(
            pg_insert(School).values(id=uuid.uuid4(), zone_id=zone_id, **data.model_dump())
            .on_conflict_do_nothing(index_elements=[School.zone_id, School.code]).returning(School)
        )
    ).scalar_one_or_none()
    if school is None:
        existing = (
            await uow.session.execute(select(School).where(School.zone_id == zone_id, School.code == data.code))
        ).scalar_one()
        if any(getattr(existing, f) != getattr(data, f) for f in _SCHOOL_FIELDS):
            raise Problem(409, f"School {data.code} is already registered in {zone_id} with other details; update it instead.",
                          school_id=str(existing.id))
        return school_out(existing, created=False)
    uow.emit(
        SchoolRegistered(
            zone_id=zone_id, school_id=school.id, code=school.code, name=school.name,
            grade_span=school.grade_span, enrollment=school.enrollment, registered_at=school.created_at,
        )
    )
    await uow.audit(actor=actor, action="school.registered", entity="school", entity_id=str(school.id),
                    zone_id=zone_id, school_id=str(school.id), after=data.model_dump())
    await uow.commit()
    return school_out(school, created=True)
