"""The zone policy over HTTP: read any version, adopt a new one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from ezone_kit.auth import CurrentPrincipal, Principal, ensure_zone, require_roles
from ezone_kit.openapi import problem_responses, replayed
from ezone_kit.service import SessionDep, UnitOfWorkDep
from fastapi import APIRouter, Depends, Header, Path, Response, status
from pydantic import BaseModel

from ..models import ZonePolicy
from . import service
from .document import PolicyDocument

router = APIRouter(prefix="/zones/{zone_id}/policy", tags=["policy"])

Admin = Annotated[Principal, Depends(require_roles("admin"))]


class PolicyOut(BaseModel):
    version: int
    document: PolicyDocument
    created_by: str
    created_at: datetime


def _out(policy: ZonePolicy) -> PolicyOut:
    return PolicyOut(version=policy.version, document=PolicyDocument.model_validate(policy.document),
                     created_by=policy.created_by, created_at=policy.created_at)


@router.get("", response_model=PolicyOut, summary="The zone's current policy")
async def get_policy(zone_id: str, principal: CurrentPrincipal, session: SessionDep, response: Response) -> PolicyOut:
    """The `ETag` header is what a PUT must send back in `If-Match`."""
    ensure_zone(principal, zone_id)
    policy = await service.latest_policy(session, zone_id)
    response.headers["ETag"] = service.policy_etag(policy.version)
    return _out(policy)


@router.get("/versions", response_model=list[PolicyOut], summary="Every policy version the zone adopted, newest first")
async def list_policy_versions(zone_id: str, principal: CurrentPrincipal, session: SessionDep) -> list[PolicyOut]:
    ensure_zone(principal, zone_id)
    return [_out(policy) for policy in await service.policy_versions(session, zone_id)]


@router.get("/versions/{version}", response_model=PolicyOut, summary="One policy version, e.g. the one a review used")
async def get_policy_version(zone_id: str, version: Annotated[int, Path(ge=1)], principal: CurrentPrincipal,
                             session: SessionDep) -> PolicyOut:
    ensure_zone(principal, zone_id)
    return _out(await service.policy_version(session, zone_id, version))


@router.put("", response_model=PolicyOut, status_code=status.HTTP_201_CREATED, summary="Adopt a new policy version",
            responses={**replayed(PolicyOut, "The current document again: the current version, unchanged."),
                       **problem_responses(412, 428)})
async def put_policy(zone_id: str, body: PolicyDocument, principal: Admin, uow: UnitOfWorkDep, response: Response,
                     if_match: Annotated[str | None, Header(description="The current policy's `ETag`; required.")] = None
                     ) -> PolicyOut:
    """The whole document, as the next version (201, `zone.policy_changed` announced); the current document
    again changes nothing (200, same version). Needs `If-Match` (428 without, 412 when another version was
    adopted since the one read)."""
    ensure_zone(principal, zone_id)
    policy, created = await service.replace_policy(uow, principal, zone_id, body, if_match)
    if created:
        response.headers["Location"] = f"/zones/{zone_id}/policy/versions/{policy.version}"
    else:
        response.status_code = status.HTTP_200_OK
    response.headers["ETag"] = service.policy_etag(policy.version)
    return _out(policy)
