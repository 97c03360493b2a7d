"""Evidence of impact, computed by ezone from reviews, and recommendations for schools that need help."""

from __future__ import annotations

import uuid

from ezone_kit.auth import ensure_school, ensure_zone
from ezone_kit.service import SessionDep
from fastapi import APIRouter

from ..access import CatalogReader, SchoolReader
from . import service
from .schemas import PartnerEvidence, RecommendationsView

router = APIRouter(prefix="/zones/{zone_id}", tags=["evidence"])

_METHOD = ("A school engaged a partner in school year Y when it had a confirmed or fulfilled order of one of the partner's "
           "services for Y. Its outcome is the change of its all-students proficiency rate and median growth percentile "
           "from Y-1 to Y, per subject, from the newest accountability reviews; the comparison is the zone's other schools "
           "over the same years. School-by-school outcomes are shown to district staff and the board.")


@router.get("/evidence", response_model=list[PartnerEvidence], summary="Every partner's evidence of impact",
            description=_METHOD + " Partners with evidence of the largest gains come first.")
async def zone_evidence(zone_id: str, principal: CatalogReader, session: SessionDep) -> list[PartnerEvidence]:
    ensure_zone(principal, zone_id)
    return await service.zone_evidence(session, principal, zone_id)


@router.get("/partners/{partner_id}/evidence", response_model=PartnerEvidence, summary="A partner's evidence of impact",
            description=_METHOD)
async def partner_evidence(zone_id: str, partner_id: uuid.UUID, principal: CatalogReader, session: SessionDep) -> PartnerEvidence:
    ensure_zone(principal, zone_id)
    return await service.partner_evidence(session, principal, zone_id, partner_id)


@router.get("/schools/{school_id}/recommendations", response_model=RecommendationsView,
            summary="Services and partners for a school whose latest review is off track or approaching")
async def recommendations(zone_id: str, school_id: uuid.UUID, principal: SchoolReader, session: SessionDep) -> RecommendationsView:
    """The needs the latest review's findings show (each with the findings behind it), and the published services that
    address them, ranked by their provider's evidence in the subjects that need help. A school in intensive support
    is shown only partners it may order from: vetted ones."""
    ensure_school(principal, zone_id, school_id)
    return await service.recommendations(session, principal, zone_id, school_id)
