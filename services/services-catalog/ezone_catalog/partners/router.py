"""Partner organisations: onboarding by zone or district staff, vetting on evidence, and their records."""

from __future__ import annotations

import uuid

from ezone_kit.auth import ensure_zone
from ezone_kit.openapi import problem_responses, replayed
from ezone_kit.service import SessionDep, UnitOfWorkDep
from fastapi import APIRouter, Response, status

from ..access import CatalogReader, Staff
from . import service
from .schemas import PartnerIn, PartnerView, VettingIn, VettingView

router = APIRouter(prefix="/zones/{zone_id}/partners", tags=["partners"])


@router.post("", response_model=PartnerView, status_code=status.HTTP_201_CREATED,
             summary="Onboard a partner organisation", responses={**replayed(PartnerView), **problem_responses(409)})
async def onboard_partner(zone_id: str, body: PartnerIn, principal: Staff, uow: UnitOfWorkDep, response: Response) -> PartnerView:
    """Idempotent on the name (and the id, when given): the same partner again answers 200 with `created: false`;
    the same name with other details is 409. A new partner is not vetted until a vetting is recorded."""
    ensure_zone(principal, zone_id)
    partner = await service.onboard(uow, principal, zone_id, body)
    if not partner.created:
        response.status_code = status.HTTP_200_OK
    return partner


@router.get("", response_model=list[PartnerView], summary="The zone's partners, with their current vetting")
async def list_partners(zone_id: str, principal: CatalogReader, session: SessionDep) -> list[PartnerView]:
    ensure_zone(principal, zone_id)
    return await service.list_partners(session, zone_id)


@router.get("/{partner_id}", response_model=PartnerView, summary="A partner, with its current vetting")
async def get_partner(zone_id: str, partner_id: uuid.UUID, principal: CatalogReader, session: SessionDep) -> PartnerView:
    ensure_zone(principal, zone_id)
    return await service.get_partner(session, zone_id, partner_id)


@router.post("/{partner_id}/vettings", response_model=VettingView, status_code=status.HTTP_201_CREATED,
             summary="Record a vetting decision",
             responses=replayed(VettingView, "The same decision as the current one: it, unchanged."))
async def vet_partner(zone_id: str, partner_id: uuid.UUID, body: VettingIn, principal: Staff, uow: UnitOfWorkDep,
                      response: Response) -> VettingView:
    """Who vetted (the token's subject), when (now), the criteria met, the evidence documents by reference, the
    status and its expiry. It becomes the partner's current vetting and is announced as `partner.vetting_changed`.
    The same decision as the current one again answers 200 and records nothing."""
    ensure_zone(principal, zone_id)
    vetting = await service.record_vetting(uow, principal, zone_id, partner_id, body)
    if not vetting.created:
        response.status_code = status.HTTP_200_OK
    return vetting


@router.get("/{partner_id}/vettings", response_model=list[VettingView], summary="A partner's vetting decisions, newest first")
async def vetting_history(zone_id: str, partner_id: uuid.UUID, principal: CatalogReader, session: SessionDep) -> list[VettingView]:
    ensure_zone(principal, zone_id)
    return await service.vetting_history(session, zone_id, partner_id)
