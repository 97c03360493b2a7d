"""A school's two budgets for services: its approved plan's services budget (the envelope: what the school chose to
buy) and the district-services line (what the district provides every school, set by zone policy), and the warning
when what is charged to the first leaves too little for the purchases the plan still has to make."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from ezone_schemas import PlannedPurchasesAtRisk
from ezone_schemas.catalog import ServiceCategory, default_district_service_categories
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import Envelope, Order, Service, ZonePolicy
from .rules import COMMITTED, BudgetLine, BudgetStanding, Charge, Planned, standing
from .schemas import BudgetWarning


class DistrictServicesPolicy(BaseModel):
    """The zone policy's `district_services` (the plans service owns and validates the document; read leniently
    here, so a new policy field never breaks budgets). A zone whose policy has not arrived has the defaults."""

    model_config = ConfigDict(extra="ignore")

    categories: list[ServiceCategory] = Field(default_factory=default_district_service_categories)
    per_pupil_allocation: Decimal | None = None


async def district_services_policy(session: AsyncSession, zone_id: str) -> DistrictServicesPolicy:
    row = await session.get(ZonePolicy, zone_id)
    return DistrictServicesPolicy.model_validate(row.document.get("district_services", {}) if row else {})


def planned_purchases(envelope: Envelope) -> list[Planned]:
    return [Planned(amount=Decimal(str(item["amount"])),
                    service_id=uuid.UUID(item["service_id"]) if item.get("service_id") else None,
                    partner_id=uuid.UUID(item["partner_id"]) if item.get("partner_id") else None)
            for item in envelope.planned_services]


async def charges(session: AsyncSession, school_id: uuid.UUID, school_year: str,
                  line: BudgetLine = BudgetLine.SERVICES) -> list[tuple[Order, Service]]:
    """The committed orders and assignments charged to `line` for the school and year."""
    rows = await session.execute(
        select(Order, Service).join(Service, Order.service_id == Service.id)
        .where(Order.school_id == school_id, Order.school_year == school_year, Order.status.in_(COMMITTED),
               Order.charged_to == line.value)
        .order_by(Order.placed_at, Order.id))
    return [(order, service) for order, service in rows]


async def services_standing(session: AsyncSession, envelope: Envelope) -> BudgetStanding:
    committed = await charges(session, envelope.school_id, envelope.school_year)
    return standing(envelope.amount, planned_purchases(envelope),
                    [Charge(amount=order.amount, service_id=order.service_id, partner_id=order.partner_id)
                     for order, _ in committed])


def at_risk(envelope: Envelope, before: BudgetStanding, after: BudgetStanding, order: Order, service: Service,
            ) -> tuple[BudgetWarning, PlannedPurchasesAtRisk] | None:
    """The warning for the school, and the event that alerts it and the board, when `order` (just charged to the
    services budget) made the plan's outstanding purchases fit less than before; None when they still fit, or fit
    no worse."""
    if after.short_by <= before.short_by:
        return None
    what = "assignment of the non-optional service" if order.status == "assigned" else "order of"
    detail = (f"The {what} {service.name} ({order.amount}) leaves {after.remaining} of the {envelope.school_year} "
              f"services budget ({envelope.amount}); the purchases the approved plan still has to make need "
              f"{after.planned_outstanding}, {after.short_by} more. The school and the board are alerted: amend the "
              "plan, or cancel what it did not plan for.")
    event = PlannedPurchasesAtRisk(
        zone_id=envelope.zone_id, school_id=envelope.school_id, school_year=envelope.school_year,
        plan_id=envelope.plan_id, plan_version=envelope.plan_version, envelope=envelope.amount,
        committed=after.committed, remaining=after.remaining, planned_outstanding=after.planned_outstanding,
        short_by=after.short_by, cause="assignment" if order.status == "assigned" else "order", order_id=order.id,
        service_id=service.id, service_name=service.name, amount=order.amount, raised_at=datetime.now(UTC))
    warning = BudgetWarning(detail=detail, short_by=after.short_by, planned_outstanding=after.planned_outstanding,
                            remaining=after.remaining)
    return warning, event
