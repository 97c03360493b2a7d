from __future__ import annotations

import uuid
from typing import Annotated

from ezone_kit.auth import CurrentPrincipal, Principal, ensure_school, ensure_zone, require_roles
from ezone_kit.openapi import problem_responses, replayed
from ezone_kit.problems import Problem
from ezone_kit.service import SessionDep, UnitOfWorkDep
from fastapi import APIRouter, Depends, Header, Response, status
from sqlalchemy import select

from ..models import School, Zone
from . import service
from .schemas import SchoolIn, SchoolOut, SchoolUpdate, ZoneIn, ZoneOut, ZoneUpdate

router = APIRouter(prefix="/zones", tags=["registry"])

Admin = Annotated[Principal, Depends(require_roles("admin"))]
ZoneStaff = Annotated[Principal, Depends(require_roles("admin", "district"))]
IfMatch = Annotated[str | None, Header(description="The school's `ETag` as last read; required.")]


@router.post("", response_model=ZoneOut, status_code=status.HTTP_201_CREATED, summary="Register a zone",
             responses={**replayed(ZoneOut), **problem_responses((404, "The token is not for this zone."), 409)})
async def register_zone(body: ZoneIn, principal: Admin, uow: UnitOfWorkDep, response: Response) -> Zone:
    """An admin token for zone Z registers zone Z; sending it again changes nothing (200)."""
    ensure_zone(principal, body.id)
    zone, created = await service.register_zone(uow, principal, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return zone


@router.get("/{zone_id}", response_model=ZoneOut, summary="A zone")
async def get_zone(zone_id: str, principal: CurrentPrincipal, session: SessionDep) -> Zone:
    ensure_zone(principal, zone_id)
    zone = await session.get(Zone, zone_id)
    if zone is None:
        raise Problem(404, f"Zone {zone_id!r} was not found.")
    return zone


@router.patch("/{zone_id}", response_model=ZoneOut, summary="Change a zone's name, district or year conventions")
async def update_zone(zone_id: str, body: ZoneUpdate, principal: Admin, uow: UnitOfWorkDep) -> Zone:
    """Only the fields sent change; sending what is already there changes nothing and is not audited."""
    ensure_zone(principal, zone_id)
    return await service.update_zone(uow, principal, zone_id, body)


@router.post("/{zone_id}/schools", response_model=SchoolOut, status_code=status.HTTP_201_CREATED,
             summary="Register a school", responses={**replayed(SchoolOut), **problem_responses(409)})
async def register_school(zone_id: str, body: SchoolIn, principal: ZoneStaff, uow: UnitOfWorkDep, response: Response) -> SchoolOut:
    """Idempotent on the school code: the same school sent again answers 200 with `created: false`."""
    ensure_zone(principal, zone_id)
    school = await service.register_school(uow, principal, zone_id, body)
    if not school.created:
        response.status_code = status.HTTP_200_OK
    return school


@router.get("/{zone_id}/schools", response_model=list[SchoolOut], summary="The zone's schools the caller may see")
async def list_schools(zone_id: str, principal: CurrentPrincipal, session: SessionDep) -> list[SchoolOut]:
    ensure_zone(principal, zone_id)
    schools = (await session.execute(select(School).where(School.zone_id == zone_id).order_by(School.name))).scalars()
    return [service.school_out(s, created=False) for s in schools if principal.may_act_for_school(s.id)]


@router.get("/{zone_id}/schools/{school_id}", response_model=SchoolOut, summary="A school")
async def get_school(zone_id: str, school_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep,
                     response: Response) -> SchoolOut:
    """The `ETag` header is what a PATCH must send back in `If-Match`."""
    ensure_school(principal, zone_id, school_id)
    school = await session.get(School, school_id)
    if school is None or school.zone_id != zone_id:
        raise Problem(404, f"School {school_id} was not found in zone {zone_id!r}.")
    response.headers["ETag"] = service.school_etag(school)
    return service.school_out(school, created=False)


@router.patch("/{zone_id}/schools/{school_id}", response_model=SchoolOut,
              summary="Change a school's name, grade span or enrollment", responses=problem_responses(412, 428))
async def update_school(zone_id: str, school_id: uuid.UUID, body: SchoolUpdate, principal: ZoneStaff, uow: UnitOfWorkDep,
                        response: Response, if_match: IfMatch = None) -> SchoolOut:
    """Needs `If-Match` with the ETag of a GET (428 without, 412 when someone changed the school since).
    A change announces `school.updated` with the school's full new state; a PATCH that changes nothing
    (such as a retry of one that succeeded) answers 200 and announces nothing."""
    ensure_zone(principal, zone_id)
    school = await service.update_school(uow, principal, zone_id, school_id, body, if_match)
    response.headers["ETag"] = service.school_etag(school)
    return service.school_out(school, created=False)
