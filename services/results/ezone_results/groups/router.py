"""`/student-groups`: the deployment's group vocabulary, read by anyone signed in, added to by the state."""

from __future__ import annotations

from typing import Annotated

from ezone_kit.auth import CurrentPrincipal, Principal, require_roles
from ezone_kit.openapi import problem_responses
from ezone_kit.service import SessionDep, UnitOfWorkDep
from ezone_schemas.vocabulary import GROUP_CODE_PATTERN
from fastapi import APIRouter, Depends, Path, Response

from . import vocabulary
from .schemas import LabelIn, StudentGroupIn, StudentGroupOut

router = APIRouter(prefix="/student-groups", tags=["student groups"])

# The vocabulary is the deployment's, shared by every zone: the state adds to it, not a zone's staff.
StateRole = Annotated[Principal, Depends(require_roles("state"))]


@router.get("", response_model=list[StudentGroupOut], summary="The deployment's student groups")
async def list_groups(principal: CurrentPrincipal, session: SessionDep) -> list[StudentGroupOut]:
    """Every group events, result rows and state files may name, by code, with the state files' labels and whether
    accountability uses it by default."""
    return await vocabulary.listed(session)


@router.post("", response_model=StudentGroupOut, status_code=201, summary="Add a student group",
             responses=problem_responses((409, "The code is another group's, or a label names another group.")))
async def add_group(body: StudentGroupIn, principal: StateRole, uow: UnitOfWorkDep,
                    response: Response) -> StudentGroupOut:
    """A new group (201). The same group sent again changes nothing (200); a group is never changed or removed here,
    since stored results and reviews name it."""
    group, added = await vocabulary.add(uow, principal, body)
    if not added:
        response.status_code = 200
    return group


@router.post("/{code}/labels", response_model=StudentGroupOut, status_code=201, summary="Name a group as a file does",
             responses=problem_responses((404, "No group has the code."), (409, "The label names another group.")))
async def add_label(code: Annotated[str, Path(pattern=GROUP_CODE_PATTERN)], body: LabelIn, principal: StateRole,
                    uow: UnitOfWorkDep, response: Response) -> StudentGroupOut:
    """Another label for a group (e.g. a new spelling in this year's state files): 201. A label the group has already
    changes nothing (200)."""
    group, added = await vocabulary.add_label(uow, principal, code, body.label)
    if not added:
        response.status_code = 200
    return group
