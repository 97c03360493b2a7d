"""Non-optional services: assigned to every school with a budget envelope, for each school year, as orders in
status `assigned` that schools can neither place nor cancel. One of the zone policy's district categories
(facilities, payroll, transport, food by default) is charged to the district-services line; any other counts
against the envelope, and is announced when it leaves too little for the plan's planned purchases.

Two events lead here — a plan approved (a new envelope) and a non-optional service published — and they may
happen at the same moment; each transaction then takes the zone's assignment lock first, so the later one sees
what the earlier one committed and no pair of (service, school year) is missed. The partial unique index on
assigned orders makes a repeat of either a no-op.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from ezone_kit.auth import Principal
from ezone_kit.uow import AuditLog
from ezone_schemas import PlannedPurchasesAtRisk
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import Base, Envelope, Order, Service, schools
from .budgets import at_risk, district_services_policy, services_standing
from .rules import BudgetLine, BudgetStanding, OrderStatus, assigned_quantity, charged_to, order_amount

_audit = AuditLog(Base.metadata)


def assigner(zone_id: str) -> Principal:
    """Who the audit log names for assignments made on an event rather than a request."""
    return Principal(subject="system:catalog", role="admin", zone=zone_id, schools=frozenset())


async def lock_zone_assignments(session: AsyncSession, zone_id: str) -> None:
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"ezone.catalog.assignments/{zone_id}", 0))))


async def published_non_optional(session: AsyncSession, zone_id: str) -> list[Service]:
    rows = await session.execute(select(Service).where(
        Service.zone_id == zone_id, Service.non_optional.is_(True), Service.status == "published").order_by(Service.name))
    return list(rows.scalars())


async def assign(session: AsyncSession, actor: Principal, services: Sequence[Service], envelopes: Sequence[Envelope],
                 ) -> list[PlannedPurchasesAtRisk]:
    """Assign each service to each envelope's school and year, once; returns the events announcing the envelopes
    whose planned purchases the new assignments left too little for (for the caller to emit).

    The caller holds the zone's assignment lock, and the envelopes' rows (orders check their budget under them).
    """
    if not services or not envelopes:
        return []
    district = await district_services_policy(session, envelopes[0].zone_id)
    lines = {service.id: charged_to(service.non_optional, service.category, district.categories)
             for service in services}
    # Only charges to a plan's services budget can leave its purchases short.
    before = ({(e.school_id, e.school_year): await services_standing(session, e) for e in envelopes}
              if BudgetLine.SERVICES in lines.values() else {})
    enrollment = dict((await session.execute(
        select(schools.c.id, schools.c.enrollment).where(schools.c.id.in_({e.school_id for e in envelopes})))).all())
    now = datetime.now(UTC)
    rows = []
    for envelope in envelopes:
        for service in services:
            quantity = assigned_quantity(service.unit, enrollment.get(envelope.school_id))
            rows.append({
                "id": uuid.uuid4(), "zone_id": envelope.zone_id, "school_id": envelope.school_id,
                "school_year": envelope.school_year, "service_id": service.id, "partner_id": None, "quantity": quantity,
                "unit_price": service.price, "amount": order_amount(service.price, quantity),
                "status": OrderStatus.ASSIGNED.value, "placed_by": actor.subject, "placed_at": now,
                "charged_to": lines[service.id].value,
            })
    inserted = (await session.execute(
        pg_insert(Order).values(rows).on_conflict_do_nothing(
            index_elements=[Order.service_id, Order.school_id, Order.school_year], index_where=text("status = 'assigned'"))
        .returning(Order.id, Order.zone_id, Order.school_id, Order.school_year, Order.service_id, Order.quantity,
                   Order.amount, Order.charged_to)
    )).all()
    for row in inserted:
        await _audit.record(
            session, actor=actor, action="order.assigned", entity="order", entity_id=str(row.id), zone_id=row.zone_id,
            school_id=str(row.school_id), after={"service_id": str(row.service_id), "school_year": row.school_year,
                                                 "quantity": row.quantity, "amount": str(row.amount),
                                                 "status": "assigned", "charged_to": row.charged_to},
        )
    to_services = [row.id for row in inserted if row.charged_to == BudgetLine.SERVICES]
    return await _warnings(session, envelopes, before, to_services)


async def _warnings(session: AsyncSession, envelopes: Sequence[Envelope],
                    before: dict[tuple[uuid.UUID, str], BudgetStanding], charged: list[uuid.UUID],
                    ) -> list[PlannedPurchasesAtRisk]:
    """One event per envelope the new charges to its services budget left short; it names the largest of them."""
    if not charged:
        return []
    new = (await session.execute(select(Order, Service).join(Service, Order.service_id == Service.id)
                                 .where(Order.id.in_(charged)).order_by(Order.amount.desc(), Order.id))).all()
    events = []
    for envelope in envelopes:
        mine = [(order, service) for order, service in new
                if (order.school_id, order.school_year) == (envelope.school_id, envelope.school_year)]
        if not mine:
            continue
        found = at_risk(envelope, before[(envelope.school_id, envelope.school_year)],
                        await services_standing(session, envelope), *mine[0])
        if found is not None:
            events.append(found[1])
    return events
