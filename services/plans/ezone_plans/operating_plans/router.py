"""Annual operating plans: versions, lifecycle, board votes and decisions."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from ezone_kit.auth import Principal, ensure_school, ensure_zone, require_roles
from ezone_kit.lenient_body import Received, json_body, lenient_body
from ezone_kit.openapi import problem_responses, replayed
from ezone_kit.problems import Problem
from ezone_kit.service import SessionDep, UnitOfWorkDep
from fastapi import APIRouter, Depends, Header, Path, Query, Response, status
from pydantic import AfterValidator

from . import service
from .schemas import (
    SCHOOL_YEAR_PATTERN,
    PlanContent,
    PlanCreate,
    PlanView,
    QueueItem,
    VoteIn,
    VoteResult,
    VoteView,
    consecutive_years,
)

router = APIRouter(prefix="/zones/{zone_id}", tags=["operating_plans"])

SchoolTeam = Annotated[Principal, Depends(require_roles("school"))]
PlanReader = Annotated[Principal, Depends(require_roles("school", "board", "district", "admin"))]
BoardVoter = Annotated[Principal, Depends(require_roles("board"))]
ZoneOverseer = Annotated[Principal, Depends(require_roles("board", "district", "admin"))]
SchoolYearPath = Annotated[str, Path(pattern=SCHOOL_YEAR_PATTERN, examples=["2025-26"]), AfterValidator(consecutive_years)]
# Read by the service, not refused on their shape first: one 422 lists the shape's errors and the zone's rules'.
CreateBody = Annotated[Received[PlanCreate], Depends(lenient_body(PlanCreate))]
ContentBody = Annotated[Received[PlanContent], Depends(lenient_body(PlanContent))]
IfMatch = Annotated[str | None, Header(description="The plan's ETag as last read; required on writes to an existing plan.")]

PLANS = "/schools/{school_id}/plans"
PLAN = PLANS + "/{school_year}"


def _with_etag(response: Response, plan: PlanView) -> PlanView:
    current = plan.open_version or plan.approved_version
    if current is not None:
        response.headers["ETag"] = current.etag
    return plan


def _required(if_match: str | None) -> str:
    if if_match is None:
        raise Problem(428, "This change needs an `If-Match` header with the plan's ETag (from its last GET), "
                           "so that it cannot overwrite someone else's change.")
    return if_match


@router.post(PLANS, response_model=PlanView, status_code=status.HTTP_201_CREATED,
             summary="Start a school's plan for a school year",
             responses={**replayed(PlanView, "The same body with the same `Idempotency-Key`: the plan it created."),
                        **problem_responses(409)}, openapi_extra=json_body(PlanCreate))
async def create_plan(
    zone_id: str, school_id: uuid.UUID, body: CreateBody, principal: SchoolTeam, uow: UnitOfWorkDep, response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> PlanView:
    """Version 1, as a draft. One plan per school and year: a second one is 409, unless it is the same body
    re-sent with the same `Idempotency-Key` (200 with the plan it created)."""
    ensure_school(principal, zone_id, school_id)
    plan, created = await service.create_plan(uow, principal, zone_id, school_id, body, idempotency_key)
    response.headers["Location"] = f"/zones/{zone_id}/schools/{school_id}/plans/{plan.school_year}"
    if not created:
        response.status_code = status.HTTP_200_OK
    return _with_etag(response, plan)


@router.get(PLANS, response_model=list[PlanView], summary="A school's plans, latest school year first")
async def list_plans(zone_id: str, school_id: uuid.UUID, principal: PlanReader, session: SessionDep) -> list[PlanView]:
    ensure_school(principal, zone_id, school_id)
    return await service.list_plans(session, principal, zone_id, school_id)


@router.get(PLAN, response_model=PlanView, summary="A school's plan for a school year")
async def get_plan(zone_id: str, school_id: uuid.UUID, school_year: SchoolYearPath, principal: PlanReader,
                   session: SessionDep, response: Response) -> PlanView:
    """Its open version (draft, submitted or returned) and its approved version; the ETag is the open version's."""
    ensure_school(principal, zone_id, school_id)
    return _with_etag(response, await service.get_plan(session, principal, zone_id, school_id, school_year))


@router.put(PLAN, response_model=PlanView, summary="Replace the content of the plan's open version",
            responses=problem_responses(409, 412, 428), openapi_extra=json_body(PlanContent))
async def edit_plan(zone_id: str, school_id: uuid.UUID, school_year: SchoolYearPath, body: ContentBody,
                    principal: SchoolTeam, uow: UnitOfWorkDep, response: Response, if_match: IfMatch = None) -> PlanView:
    """Only while the open version is a draft or returned; `If-Match` must carry its current ETag."""
    ensure_school(principal, zone_id, school_id)
    plan = await service.edit_plan(uow, principal, zone_id, school_id, school_year, body, _required(if_match))
    return _with_etag(response, plan)


@router.post(PLAN + "/submit", response_model=PlanView, summary="Submit the open version for the board's decision",
             responses=problem_responses(409, 412, 428))
async def submit_plan(zone_id: str, school_id: uuid.UUID, school_year: SchoolYearPath, principal: SchoolTeam,
                      uow: UnitOfWorkDep, response: Response, if_match: IfMatch = None) -> PlanView:
    """A `full`-tier school's small amendment is approved at once; an `intensive_support` school must buy from a vetted partner."""
    ensure_school(principal, zone_id, school_id)
    plan = await service.submit_plan(uow, principal, zone_id, school_id, school_year, _required(if_match))
    return _with_etag(response, plan)


@router.post(PLAN + "/amendments", response_model=PlanView, status_code=status.HTTP_201_CREATED,
             summary="Start an amendment of the approved plan", responses=problem_responses(409))
async def amend_plan(zone_id: str, school_id: uuid.UUID, school_year: SchoolYearPath, principal: SchoolTeam,
                     uow: UnitOfWorkDep, response: Response) -> PlanView:
    """A new draft version, copied from the approved one, that goes through the same decision."""
    ensure_school(principal, zone_id, school_id)
    return _with_etag(response, await service.amend_plan(uow, principal, zone_id, school_id, school_year))


@router.post(PLAN + "/votes", response_model=VoteResult, status_code=status.HTTP_201_CREATED,
             summary="Vote on the submitted version (seated board members)",
             responses={**replayed(VoteResult, "A member's second vote: it replaces the first."),
                        **problem_responses(409)})
async def cast_vote(zone_id: str, school_id: uuid.UUID, school_year: SchoolYearPath, body: VoteIn, principal: BoardVoter,
                    uow: UnitOfWorkDep, response: Response) -> VoteResult:
    """A member's second vote replaces the first (200). The plan is decided by the zone's voting rule."""
    ensure_school(principal, zone_id, school_id)
    result, first_vote = await service.cast_vote(uow, principal, zone_id, school_id, school_year, body)
    if not first_vote:
        response.status_code = status.HTTP_200_OK
    return result


@router.get(PLAN + "/votes", response_model=list[VoteView], summary="The board's votes on a version")
async def list_votes(zone_id: str, school_id: uuid.UUID, school_year: SchoolYearPath, principal: PlanReader,
                     session: SessionDep,
                     version: Annotated[int | None, Query(ge=1, description="Default: the latest version put to the board.")] = None,
                     ) -> list[VoteView]:
    ensure_school(principal, zone_id, school_id)
    return await service.list_votes(session, principal, zone_id, school_id, school_year, version)


@router.get("/plans", response_model=list[QueueItem], summary="The zone's plan versions by status: the board's queue")
async def board_queue(zone_id: str, principal: ZoneOverseer, session: SessionDep,
                      version_status: Annotated[Literal["draft", "submitted", "returned", "approved"],
                                                Query(alias="status")] = "submitted") -> list[QueueItem]:
    """With `status=submitted` (the default): the plans awaiting the board's votes, each with the caller's own vote."""
    ensure_zone(principal, zone_id)
    return await service.board_queue(session, principal, zone_id, version_status)
