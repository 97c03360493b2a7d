"""Catalog use cases: district and zone staff create services as drafts, publish them, and retire them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ezone_kit.as_read import as_read_errors
from ezone_kit.auth import Principal
from ezone_kit.lenient_body import Received
from ezone_kit.problems import Problem
from ezone_kit.uow import UnitOfWork
from ezone_schemas import ServicePublished
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..access import STAFF_ROLES
from ..models import Envelope, Partner, PartnerVetting, Service
from ..orders.assignments import assign, lock_zone_assignments
from ..partners.service import current_vettings, is_vetted, today
from .schemas import ServiceIn, ServicePartner, ServiceView

_FIELDS = ("name", "provider", "partner_id", "category", "non_optional", "description", "unit", "unit_label", "price",
           "capacity_per_year", "needs", "levers")


def service_partner(partner: Partner, vetting: PartnerVetting | None) -> ServicePartner:
    return ServicePartner(
        id=partner.id, name=partner.name, vetting_status=vetting.status if vetting else None,
        vetting_expires_on=vetting.expires_on if vetting else None, vetted=is_vetted(vetting, today()))


async def service_partners(session: AsyncSession, services: Sequence[Service]) -> dict[uuid.UUID, ServicePartner]:
    """The partners providing `services`, by id, with their current vetting."""
    partner_ids = {service.partner_id for service in services if service.partner_id is not None}
    if not partner_ids:
        return {}
    partners = (await session.execute(select(Partner).where(Partner.id.in_(partner_ids)))).scalars().all()
    vettings = await current_vettings(session, list(partner_ids))
    return {partner.id: service_partner(partner, vettings.get(partner.id)) for partner in partners}


async def described(session: AsyncSession, service: Service, created: bool = False) -> ServiceView:
    partner = (await service_partners(session, [service])).get(service.partner_id) if service.partner_id else None
    return service_view(service, partner, created)


def service_view(service: Service, partner: ServicePartner | None, created: bool = False) -> ServiceView:
    return ServiceView.model_validate({**{f: getattr(service, f) for f in _FIELDS}, "id": service.id, "zone_id": service.zone_id,
                                       "partner": partner,
                                       "status": service.status, "created_by": service.created_by,
                                       "created_at": service.created_at, "published_at": service.published_at,
                                       "retired_at": service.retired_at, "created": created})


def _facts(data: ServiceIn) -> dict[str, Any]:
    return data.model_dump(include=set(_FIELDS)) | {
        "needs": [need.value for need in data.needs], "levers": [lever.value for lever in data.levers],
        "category": data.category.value, "unit": data.unit.value,
    }


def _facts_json(data: ServiceIn) -> dict[str, Any]:
    return data.model_dump(mode="json", include=set(_FIELDS))


def _snapshot(service: Service) -> dict[str, Any]:
    return {"status": service.status, "name": service.name, "price": str(service.price), "non_optional": service.non_optional}


async def service_in_zone(session: AsyncSession, zone_id: str, service_id: uuid.UUID, *, lock: bool = False) -> Service:
    query = select(Service).where(Service.id == service_id, Service.zone_id == zone_id)
    service = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if service is None:
        raise Problem(404, f"Service {service_id} was not found in zone {zone_id!r}.")
    return service


async def create_service(uow: UnitOfWork, actor: Principal, zone_id: str, received: Received[ServiceIn]) -> ServiceView:
    """A draft. Idempotent on the provider and name in the zone (and the id, when given)."""
    session = uow.session
    # The zone's checks run on what the body lets them read, so that one 422 lists them with the body's own errors.
    sent = received.value.sent_as_read() if received.value is not None else ServiceIn.read_only_in(received.raw)
    errors = as_read_errors(sent, {"zone_id": zone_id})
    partner_id = received.field("partner_id")
    if partner_id is not None and await session.scalar(
            select(Partner.id).where(Partner.id == partner_id, Partner.zone_id == zone_id)) is None:
        errors.append({"loc": ("body", "partner_id"), "type": "unknown_partner",
                       "msg": f"no partner {partner_id} in zone {zone_id}; onboard it first"})
    received.refuse(errors)
    data = received.value
    assert data is not None, "a body that is not valid is refused above"
    facts = _facts(data)
    # ON CONFLICT DO NOTHING: of simultaneous identical requests one inserts, the others wait for it and find its row.
    service = (await session.execute(
        pg_insert(Service).values(id=data.id or uuid.uuid4(), zone_id=zone_id, status="draft", created_by=actor.subject, **facts)
        .on_conflict_do_nothing().returning(Service)
    )).scalar_one_or_none()
    if service is None:
        existing = (await session.execute(select(Service).where(
            Service.zone_id == zone_id, Service.partner_id.is_not_distinct_from(data.partner_id), Service.name == data.name,
        ))).scalar_one_or_none()
        if existing is None or (data.id is not None and existing.id != data.id):
            raise Problem(409, f"Service id {data.id} is already taken; leave `id` out to get a new one.")
        if {f: getattr(existing, f) for f in _FIELDS} != facts:
            raise Problem(409, f"The service {data.name!r} of this provider already exists in {zone_id} with other details.",
                          service_id=str(existing.id))
        return await described(session, existing)
    await uow.audit(actor=actor, action="service.created", entity="service", entity_id=str(service.id), zone_id=zone_id,
                    after={"id": str(service.id), **_facts_json(data)})
    view = await described(session, service, created=True)
    await uow.commit()
    return view


async def publish_service(uow: UnitOfWork, actor: Principal, zone_id: str, service_id: uuid.UUID) -> ServiceView:
    """Makes a draft orderable and announces it; a non-optional service is assigned to every school with an envelope."""
    session = uow.session
    service = await service_in_zone(session, zone_id, service_id, lock=True)
    if service.status == "published":
        return await described(session, service)
    if service.status == "retired":
        raise Problem(409, f"Service {service.name!r} is retired; a retired service is not published again — create a new one.",
                      service_status=service.status)
    before = _snapshot(service)
    now = datetime.now(UTC)
    service.status, service.published_at = "published", now
    uow.emit(ServicePublished(
        zone_id=zone_id, service_id=service.id, name=service.name, provider=service.provider, partner_id=service.partner_id,
        category=service.category, non_optional=service.non_optional, unit=service.unit, price=service.price,
        capacity_per_year=service.capacity_per_year, needs=service.needs, levers=service.levers,
        published_by=actor.subject, published_at=now,
    ))
    await uow.audit(actor=actor, action="service.published", entity="service", entity_id=str(service.id), zone_id=zone_id,
                    before=before, after=_snapshot(service))
    if service.non_optional:
        await lock_zone_assignments(session, zone_id)
        envelopes = (await session.execute(
            select(Envelope).where(Envelope.zone_id == zone_id)
            .order_by(Envelope.school_id, Envelope.school_year).with_for_update())).scalars().all()
        uow.emit(*await assign(session, actor, [service], envelopes))
    view = await described(session, service)
    await uow.commit()
    return view


async def retire_service(uow: UnitOfWork, actor: Principal, zone_id: str, service_id: uuid.UUID) -> ServiceView:
    """No new orders or assignments; what was ordered or assigned stays."""
    service = await service_in_zone(uow.session, zone_id, service_id, lock=True)
    if service.status == "retired":
        return await described(uow.session, service)
    before = _snapshot(service)
    service.status, service.retired_at = "retired", datetime.now(UTC)
    await uow.audit(actor=actor, action="service.retired", entity="service", entity_id=str(service.id), zone_id=zone_id,
                    before=before, after=_snapshot(service))
    view = await described(uow.session, service)
    await uow.commit()
    return view


async def list_services(session: AsyncSession, viewer: Principal, zone_id: str, filters: dict[str, Any]) -> list[ServiceView]:
    """Staff see drafts and retired services too; everyone else sees what is published."""
    query = select(Service).where(Service.zone_id == zone_id)
    for field, value in filters.items():
        if value is not None:
            query = query.where(getattr(Service, field) == value)
    if viewer.role not in STAFF_ROLES:
        query = query.where(Service.status == "published")
    rows = await session.execute(query.order_by(Service.provider, Service.category, Service.name))
    services = rows.scalars().all()
    partners = await service_partners(session, services)
    return [service_view(service, partners.get(service.partner_id) if service.partner_id else None)
            for service in services]


async def get_service(session: AsyncSession, viewer: Principal, zone_id: str, service_id: uuid.UUID) -> ServiceView:
    service = await service_in_zone(session, zone_id, service_id)
    if service.status != "published" and viewer.role not in STAFF_ROLES:
        raise Problem(404, f"Service {service_id} was not found in zone {zone_id!r}.")
    return await described(session, service)
