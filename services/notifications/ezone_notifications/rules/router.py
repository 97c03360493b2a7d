"""`/zones/{zone_id}/alert-rules`: the zone's rules, read by its board and staff, edited by its staff."""

from __future__ import annotations

from typing import Annotated

from ezone_kit.auth import Principal, ensure_zone, require_roles
from ezone_kit.problems import Problem
from ezone_kit.service import SessionDep, UnitOfWorkDep
from fastapi import APIRouter, Depends, Path, Response, status

from . import service
from .engine import RuleBody
from .schemas import RuleOut

router = APIRouter(prefix="/zones/{zone_id}/alert-rules", tags=["alert rules"])

RuleReader = Annotated[Principal, Depends(require_roles("board", "district", "admin"))]
RuleEditor = Annotated[Principal, Depends(require_roles("district", "admin"))]
RuleName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="Lower-case letters, digits and dashes.")]


def _out(row: object) -> RuleOut:
    return RuleOut(**service.rule_from_row(row).model_dump(), updated_by=row.updated_by, updated_at=row.updated_at)


@router.get("", response_model=list[RuleOut], summary="The zone's alert rules")
async def list_rules(zone_id: str, principal: RuleReader, session: SessionDep) -> list[RuleOut]:
    ensure_zone(principal, zone_id)
    return [_out(row) for row in await service.zone_rules(session, zone_id)]


@router.put("/{name}", response_model=RuleOut, summary="Create or replace an alert rule",
            responses={201: {"model": RuleOut, "description": "A new rule."}})
async def put_rule(zone_id: str, name: RuleName, body: RuleBody, principal: RuleEditor, uow: UnitOfWorkDep,
                   response: Response) -> RuleOut:
    """Takes effect for events consumed after it commits. The same rule again answers 200 and changes nothing;
    a new rule answers 201."""
    ensure_zone(principal, zone_id)
    before = await service.zone_rules(uow.session, zone_id)
    existed = any(row.name == name for row in before)
    row, changed = await service.put_rule(uow.session, zone_id, name, body, principal.subject)
    if changed:
        await uow.audit(actor=principal, action="alert_rule.put", entity="alert_rule", entity_id=name, zone_id=zone_id,
                        after=body.model_dump(mode="json"))
        await uow.commit()
    response.status_code = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
    return _out(row)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an alert rule")
async def delete_rule(zone_id: str, name: RuleName, principal: RuleEditor, uow: UnitOfWorkDep) -> None:
    ensure_zone(principal, zone_id)
    row = await service.delete_rule(uow.session, zone_id, name)
    if row is None:
        raise Problem(404, f"Zone {zone_id!r} has no alert rule {name!r}; GET /zones/{zone_id}/alert-rules lists them.")
    await uow.audit(actor=principal, action="alert_rule.deleted", entity="alert_rule", entity_id=name, zone_id=zone_id,
                    before=service.rule_from_row(row).model_dump(mode="json"))
    await uow.commit()
