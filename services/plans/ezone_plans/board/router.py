"""Board members and school leadership teams."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from ezone_kit.auth import CurrentPrincipal, Principal, ensure_school, ensure_zone, require_roles
from ezone_kit.openapi import problem_responses, replayed
from ezone_kit.service import SessionDep, UnitOfWorkDep
from fastapi import APIRouter, Depends, Query, Response, status

from ..models import BoardMember, LeadershipMember
from . import service
from .schemas import BoardMemberIn, BoardMemberOut, BoardMemberUpdate, LeaderIn, LeaderOut, LeaderUpdate

router = APIRouter(prefix="/zones/{zone_id}", tags=["board"])

Admin = Annotated[Principal, Depends(require_roles("admin"))]
ZoneStaff = Annotated[Principal, Depends(require_roles("admin", "district"))]


@router.post("/board-members", response_model=BoardMemberOut, status_code=status.HTTP_201_CREATED,
             summary="Seat a board member", responses={**replayed(BoardMemberOut), **problem_responses(409)})
async def add_board_member(zone_id: str, body: BoardMemberIn, principal: Admin, uow: UnitOfWorkDep, response: Response) -> BoardMember:
    """Idempotent on `subject`: the same member again answers 200 unchanged, other details 409.
    A seat holds one member at a time: overlapping terms on a seat are a 409."""
    ensure_zone(principal, zone_id)
    member, created = await service.add_board_member(uow, principal, zone_id, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return member


@router.get("/board-members", response_model=list[BoardMemberOut], summary="The members seated on a day")
async def list_board_members(
    zone_id: str, principal: CurrentPrincipal, session: SessionDep,
    active_on: Annotated[date | None, Query(description="The day, YYYY-MM-DD; today when left out.")] = None,
) -> list[BoardMember]:
    ensure_zone(principal, zone_id)
    return await service.board_on(session, zone_id, active_on or date.today())


@router.patch("/board-members/{member_id}", response_model=BoardMemberOut, summary="Change a member's seat or term",
              responses=problem_responses(409))
async def update_board_member(zone_id: str, member_id: uuid.UUID, body: BoardMemberUpdate, principal: Admin,
                              uow: UnitOfWorkDep) -> BoardMember:
    """E.g. `{"active_to": "2026-06-30"}` ends a term. A PATCH that changes nothing is not audited."""
    ensure_zone(principal, zone_id)
    return await service.update_board_member(uow, principal, zone_id, member_id, body)


@router.post("/schools/{school_id}/leadership", response_model=LeaderOut, status_code=status.HTTP_201_CREATED,
             summary="Add a member to a school's leadership team",
             responses={**replayed(LeaderOut), **problem_responses(409)})
async def add_leader(zone_id: str, school_id: uuid.UUID, body: LeaderIn, principal: ZoneStaff, uow: UnitOfWorkDep,
                     response: Response) -> LeadershipMember:
    """Idempotent on `subject`: the same member again answers 200 unchanged (also once taken off the team;
    a PATCH puts them back), other details 409. At most one active principal per school (409)."""
    ensure_zone(principal, zone_id)
    leader, created = await service.add_leader(uow, principal, zone_id, school_id, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return leader


@router.get("/schools/{school_id}/leadership", response_model=list[LeaderOut], summary="A school's leadership team")
async def leadership_team(
    zone_id: str, school_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep,
    include_inactive: Annotated[bool, Query(description="Also the members taken off the team.")] = False,
) -> list[LeadershipMember]:
    ensure_school(principal, zone_id, school_id)
    return await service.leadership_team(session, zone_id, school_id, include_inactive)


@router.patch("/schools/{school_id}/leadership/{member_id}", response_model=LeaderOut, summary="Change a team member",
              responses=problem_responses(409))
async def update_leader(zone_id: str, school_id: uuid.UUID, member_id: uuid.UUID, body: LeaderUpdate,
                        principal: ZoneStaff, uow: UnitOfWorkDep) -> LeadershipMember:
    ensure_zone(principal, zone_id)
    return await service.update_leader(uow, principal, zone_id, school_id, member_id, body)


@router.delete("/schools/{school_id}/leadership/{member_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Take a member off a school's leadership team")
async def remove_leader(zone_id: str, school_id: uuid.UUID, member_id: uuid.UUID, principal: ZoneStaff, uow: UnitOfWorkDep) -> None:
    """The member is kept, inactive, for the record (and the audit trail); deleting again changes nothing."""
    ensure_zone(principal, zone_id)
    await service.update_leader(uow, principal, zone_id, school_id, member_id, LeaderUpdate(active=False))
