"""Partner use cases: onboarding, vetting, and the reads everyone else builds on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from ezone_kit.as_read import check_as_read
from ezone_kit.auth import Principal
from ezone_kit.problems import Problem, validation_problem
from ezone_kit.uow import UnitOfWork
from ezone_schemas import PartnerVettingChanged
from ezone_schemas.vocabulary import VettingStatus
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import Partner, PartnerVetting
from .schemas import PartnerIn, PartnerView, VettingIn, VettingView

_PARTNER_FIELDS = ("name", "description", "website", "contact_email")
_VETTING_FIELDS = ("status", "criteria_met", "evidence", "expires_on", "notes")


def today() -> date:
    return datetime.now(UTC).date()


def is_vetted(vetting: PartnerVetting | None, on: date) -> bool:
    """Vetted and not yet expired on `on`: what a school in intensive support may buy from."""
    return (vetting is not None and vetting.status == VettingStatus.VETTED
            and (vetting.expires_on is None or vetting.expires_on >= on))


def vetting_view(vetting: PartnerVetting, created: bool = False) -> VettingView:
    return VettingView(
        id=vetting.id, partner_id=vetting.partner_id, status=vetting.status, vetted_by=vetting.vetted_by,
        vetted_at=vetting.vetted_at, criteria_met=vetting.criteria_met, evidence=vetting.evidence,
        expires_on=vetting.expires_on, notes=vetting.notes, created=created,
    )


def partner_view(partner: Partner, vetting: PartnerVetting | None, created: bool = False) -> PartnerView:
    return PartnerView(
        id=partner.id, zone_id=partner.zone_id, name=partner.name, description=partner.description,
        website=partner.website, contact_email=partner.contact_email,
        vetting=vetting_view(vetting) if vetting is not None else None, vetted=is_vetted(vetting, today()),
        created_at=partner.created_at, created=created,
    )


def _facts(data: PartnerIn) -> dict[str, Any]:
    return data.model_dump(mode="json", include=set(_PARTNER_FIELDS))


async def current_vettings(session: AsyncSession, partner_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, PartnerVetting]:
    """Each partner's newest vetting record."""
    rows = await session.execute(
        select(PartnerVetting).where(PartnerVetting.partner_id.in_(partner_ids))
        .ext(distinct_on(PartnerVetting.partner_id)).order_by(PartnerVetting.partner_id, PartnerVetting.vetted_at.desc())
    )
    return {vetting.partner_id: vetting for vetting in rows.scalars()}


async def partner_in_zone(session: AsyncSession, zone_id: str, partner_id: uuid.UUID, *, lock: bool = False) -> Partner:
    query = select(Partner).where(Partner.id == partner_id, Partner.zone_id == zone_id)
    partner = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if partner is None:
        raise Problem(404, f"Partner {partner_id} was not found in zone {zone_id!r}.")
    return partner


async def onboard(uow: UnitOfWork, actor: Principal, zone_id: str, data: PartnerIn) -> PartnerView:
    """Idempotent on the partner's name in the zone (and its id, when given): the same partner again answers `created: false`."""
    check_as_read(data, zone_id=zone_id)
    session = uow.session
    facts = _facts(data)
    # ON CONFLICT DO NOTHING: of simultaneous identical requests one inserts, the others wait for it and find its row.
    partner = (await session.execute(
        pg_insert(Partner).values(id=data.id or uuid.uuid4(), zone_id=zone_id, created_by=actor.subject, **facts)
        .on_conflict_do_nothing().returning(Partner)
    )).scalar_one_or_none()
    if partner is None:
        by_name = (await session.execute(
            select(Partner).where(Partner.zone_id == zone_id, Partner.name == data.name))).scalar_one_or_none()
        if by_name is None or (data.id is not None and by_name.id != data.id):
            raise Problem(409, f"Partner id {data.id} is already taken; leave `id` out to get a new one.")
        if {field: getattr(by_name, field) for field in _PARTNER_FIELDS} != facts:
            raise Problem(409, f"Partner {data.name!r} is already onboarded in {zone_id} with other details.",
                          partner_id=str(by_name.id))
        return partner_view(by_name, (await current_vettings(session, [by_name.id])).get(by_name.id))
    await uow.audit(actor=actor, action="partner.onboarded", entity="partner", entity_id=str(partner.id), zone_id=zone_id,
                    after={"id": str(partner.id), **facts})
    await uow.commit()
    return partner_view(partner, None, created=True)


def _vetting_facts(data: VettingIn) -> dict[str, Any]:
    return data.model_dump(mode="json") | {"expires_on": data.expires_on}


async def record_vetting(uow: UnitOfWork, actor: Principal, zone_id: str, partner_id: uuid.UUID, data: VettingIn) -> VettingView:
    """A new vetting decision, announced to the zone; the same decision as the current one again records nothing."""
    session = uow.session
    if data.expires_on is not None and data.expires_on < today():
        raise validation_problem([{"loc": ("body", "expires_on"), "msg": f"expires_on {data.expires_on} has already passed",
                                   "type": "expired"}])
    # The partner row serialises its vetting decisions: a repeat sees the decision it repeats.
    partner = await partner_in_zone(session, zone_id, partner_id, lock=True)
    current = (await current_vettings(session, [partner.id])).get(partner.id)
    facts = _vetting_facts(data)
    if current is not None and {field: getattr(current, field) for field in _VETTING_FIELDS} == facts:
        return vetting_view(current)
    now = datetime.now(UTC)
    vetting = PartnerVetting(id=uuid.uuid4(), partner_id=partner.id, vetted_by=actor.subject, vetted_at=now, **facts)
    session.add(vetting)
    await session.flush()
    uow.emit(PartnerVettingChanged(zone_id=zone_id, partner_id=partner.id, name=partner.name, status=data.status,
                                   expires_on=data.expires_on, vetted_by=actor.subject, changed_at=now))
    await uow.audit(actor=actor, action="partner.vetted", entity="partner", entity_id=str(partner.id), zone_id=zone_id,
                    before=_audited(current), after=_audited(vetting))
    await uow.commit()
    return vetting_view(vetting, created=True)


def _audited(vetting: PartnerVetting | None) -> dict[str, Any] | None:
    if vetting is None:
        return None
    return {field: getattr(vetting, field) for field in _VETTING_FIELDS} | {
        "expires_on": vetting.expires_on.isoformat() if vetting.expires_on else None}


async def list_partners(session: AsyncSession, zone_id: str) -> list[PartnerView]:
    partners = (await session.execute(select(Partner).where(Partner.zone_id == zone_id).order_by(Partner.name))).scalars().all()
    vettings = await current_vettings(session, [p.id for p in partners])
    return [partner_view(p, vettings.get(p.id)) for p in partners]


async def get_partner(session: AsyncSession, zone_id: str, partner_id: uuid.UUID) -> PartnerView:
    partner = await partner_in_zone(session, zone_id, partner_id)
    return partner_view(partner, (await current_vettings(session, [partner.id])).get(partner.id))


async def vetting_history(session: AsyncSession, zone_id: str, partner_id: uuid.UUID) -> list[VettingView]:
    partner = await partner_in_zone(session, zone_id, partner_id)
    rows = await session.execute(select(PartnerVetting).where(PartnerVetting.partner_id == partner.id)
                                 .order_by(PartnerVetting.vetted_at.desc()))
    return [vetting_view(v) for v in rows.scalars()]
