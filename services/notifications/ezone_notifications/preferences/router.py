"""`/zones/{zone_id}/members/me/preferences`: how a member wants to hear about alerts."""

from __future__ import annotations

from ezone_kit.auth import ensure_zone
from ezone_kit.service import KitDep, SessionDep, UnitOfWorkDep
from fastapi import APIRouter

from . import service
from .access import Member
from .schemas import PreferencesIn, PreferencesOut

router = APIRouter(prefix="/zones/{zone_id}/members/me/preferences", tags=["preferences"])


@router.get("", response_model=PreferencesOut, summary="Your alert preferences")
async def get_preferences(zone_id: str, principal: Member, session: SessionDep, kit: KitDep) -> PreferencesOut:
    """Until you set your own: critical and warning alerts by email and webhook at once, info alerts in a daily
    email digest at 07:00, in the zone's default time zone, no quiet hours."""
    ensure_zone(principal, zone_id)
    return await service.get_preferences(session, kit.settings, zone_id, principal.subject)


@router.put("", response_model=PreferencesOut, summary="Replace your alert preferences")
async def put_preferences(zone_id: str, body: PreferencesIn, principal: Member, uow: UnitOfWorkDep) -> PreferencesOut:
    """Applies to alerts raised from now on. The same preferences again change nothing. Critical alerts ignore quiet
    hours and the digest; the in-app inbox gets every alert whatever is set here."""
    ensure_zone(principal, zone_id)
    return await service.put_preferences(uow, principal, zone_id, body)
