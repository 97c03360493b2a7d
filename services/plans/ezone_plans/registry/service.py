"""Registry use cases: each one commits its state change with the events it raises."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from ezone_kit.as_read import check_as_read
from ezone_kit.auth import Principal
from ezone_kit.preconditions import check_if_match
from ezone_kit.problems import Problem
from ezone_kit.uow import UnitOfWork
from ezone_schemas import SchoolRegistered, SchoolUpdated, ZoneRegistered
from sqlalchemy import literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ..models import School, Zone, state_code
from ..policy.document import PolicyDocument
from ..policy.service import adopt_policy
from .schemas import SchoolIn, SchoolOut, SchoolUpdate, ZoneIn, ZoneUpdate

_ZONE_FIELDS = ("name", "district", "fiscal_year_start_month", "school_year_start_month")
_SCHOOL_FIELDS = ("code", "name", "grade_span", "enrollment")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def school_out(school: School, created: bool) -> SchoolOut:
    return SchoolOut(
        id=school.id, zone_id=school.zone_id, code=school.code, name=school.name,
        grade_span=school.grade_span, enrollment=school.enrollment, tier=school.tier, created=created,
    )


def school_etag(school: School) -> str:
    """Every change of a school row moves `updated_at`, so its microseconds identify the version a client read."""
    return f'"school-{(school.updated_at - _EPOCH) // timedelta(microseconds=1)}"'


def _facts(row: Zone | School, fields: tuple[str, ...]) -> dict[str, Any]:
    return {field: getattr(row, field) for field in fields}


async def register_zone(uow: UnitOfWork, actor: Principal, data: ZoneIn) -> tuple[Zone, bool]:
    # ON CONFLICT DO NOTHING: of simultaneous identical requests one inserts, the others wait for it and find its row.
    zone = (
        await uow.session.execute(
            pg_insert(Zone).values(**data.model_dump())
            .on_conflict_do_nothing(index_elements=[Zone.id]).returning(Zone)
        )
    ).scalar_one_or_none()
    if zone is None:
        existing = await uow.session.get(Zone, data.id, populate_existing=True)
        if _facts(existing, _ZONE_FIELDS) != data.model_dump(include=set(_ZONE_FIELDS)):
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
    """A state school code belongs to one zone at a time: a code another zone holds is a 409 naming that zone."""
    if await uow.session.get(Zone, zone_id) is None:
        raise Problem(404, f"Zone {zone_id!r} was not found.")
    # ON CONFLICT DO NOTHING on the one-school-per-code index: of simultaneous registrations of a code (in any zones)
    # one inserts, the others wait for it and find its row.
    school = (
        await uow.session.execute(
            pg_insert(School).values(id=uuid.uuid4(), zone_id=zone_id, **data.model_dump())
            .on_conflict_do_nothing().returning(School)
        )
    ).scalar_one_or_none()
    if school is None:
        existing = (
            await uow.session.execute(select(School).where(state_code(School.code) == state_code(literal(data.code))))
        ).scalar_one()
        if existing.zone_id != zone_id:
            raise Problem(409, f"School code {data.code} belongs to zone {existing.zone_id!r}: a state school "
                               "code belongs to one zone at a time. Check the code; if it is right, the school is "
                               "that zone's.", owner_zone=existing.zone_id)
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


async def update_zone(uow: UnitOfWork, actor: Principal, zone_id: str, data: ZoneUpdate) -> Zone:
    """Changes what differs; a change that is already in place is recorded nowhere."""
    zone = (await uow.session.execute(select(Zone).where(Zone.id == zone_id).with_for_update())).scalar_one_or_none()
    if zone is None:
        raise Problem(404, f"Zone {zone_id!r} was not found.")
    check_as_read(data, id=zone.id)
    before = _facts(zone, _ZONE_FIELDS)
    changed = {field: value for field, value in data.changes().items() if before[field] != value}
    if not changed:
        return zone
    for field, value in changed.items():
        setattr(zone, field, value)
    await uow.audit(actor=actor, action="zone.updated", entity="zone", entity_id=zone_id, zone_id=zone_id,
                    before=before, after=_facts(zone, _ZONE_FIELDS))
    await uow.commit()
    return zone


async def update_school(uow: UnitOfWork, actor: Principal, zone_id: str, school_id: uuid.UUID, data: SchoolUpdate,
                        if_match: str | None) -> School:
    """Changes what differs and announces the school's full new state; nothing differing, nothing happens.

    The row stays locked from the ETag check to the commit, so two editors holding the same ETag cannot both win.
    """
    school = (
        await uow.session.execute(select(School).where(School.id == school_id, School.zone_id == zone_id).with_for_update())
    ).scalar_one_or_none()
    if school is None:
        raise Problem(404, f"School {school_id} was not found in zone {zone_id!r}.")
    check_as_read(data, id=school.id, zone_id=school.zone_id, code=school.code)
    before = _facts(school, _SCHOOL_FIELDS)
    changed = {field: value for field, value in data.changes().items() if before[field] != value}
    check_if_match(if_match, school_etag(school), already_applied=not changed)
    if not changed:
        return school
    for field, value in changed.items():
        setattr(school, field, value)
    await uow.session.flush()
    await uow.session.refresh(school, ["updated_at"])  # set by the database on update
    uow.emit(
        SchoolUpdated(
            zone_id=zone_id, school_id=school.id, code=school.code, name=school.name,
            grade_span=school.grade_span, enrollment=school.enrollment, updated_at=school.updated_at,
        )
    )
    await uow.audit(actor=actor, action="school.updated", entity="school", entity_id=str(school.id),
                    zone_id=zone_id, school_id=str(school.id), before=before, after=_facts(school, _SCHOOL_FIELDS))
    await uow.commit()
    return school
