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

_METHOD = ("A school engaged a partner in school year Y when it had a confirmed or fulfilled order of one of its "
           "services for Y. Each outcome is, per subject and per measure its services' category is judged on (zone "
           "policy `evidence.measures`), the school's change from Y-1 to Y minus the mean change of comparable "
           "schools: the zone's schools that did not engage it in Y and whose Y-1 figure was within "
           "`evidence.comparable_within_points`. The verdict (better than comparison, no different, worse, too few to "
           "tell, no evidence yet, not measured) follows the zone policy; outcomes older than its window are stale. "
           "School-by-school outcomes, with their reviews and comparison schools, are shown to district staff and the "
           "board. See docs/catalog.md.")


@router.get("/evidence", response_model=list[PartnerEvidence], summary="Every partner's evidence of impact",
            description=_METHOD + " Ordered by the recommendations' ranking groups (better first, worse last), "
                                 "then by the schools behind the verdict, then by name.")
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
    address them, ranked by their provider's verdict in the subjects that need help (`ranking_rule` says the rule in
    words; each recommendation's `reasons` say why it is where it is, with the numbers). A school in intensive
    support is shown only partners it may order from: vetted ones. Findings older than the zone policy's evidence
    window are marked stale."""
    ensure_school(principal, zone_id, school_id)
    return await service.recommendations(session, principal, zone_id, school_id)
