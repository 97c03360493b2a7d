"""Order use cases. Placing an order locks the service, then the school-year's envelope, so concurrent orders for
the last budget or capacity are checked one after another and exactly those that fit succeed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ezone_kit.as_read import as_read_errors, check_as_read
from ezone_kit.auth import PARTNER_ROLE, Principal
from ezone_kit.idempotency import request_digest
from ezone_kit.lenient_body import Received
from ezone_kit.problems import TYPE_BASE, Problem, validation_problem
from ezone_kit.uow import UnitOfWork
from ezone_schemas import OrderCancelled, OrderConfirmed, OrderFulfilled, OrderPlaced, OrderRejected
from ezone_schemas.catalog import PricingUnit
from sqlalchemy import ColumnElement, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..access import OVERSEER_ROLES
from ..directory import school_in_zone, school_tier
from ..models import Envelope, Order, Partner, Service
from ..partners.service import current_vettings, today
from .budgets import at_risk, charges, district_services_policy, services_standing
from .rules import (
    COMMITTED,
    USING_CAPACITY,
    Action,
    BudgetLine,
    InvalidTransition,
    OrderStatus,
    next_status,
    order_amount,
    partner_refusal,
)
from .schemas import BudgetView, BudgetWarning, Charged, DistrictServicesLine, OrderIn, OrderView

_PAST_TENSE = {Action.CONFIRM: "confirmed", Action.REJECT: "rejected", Action.FULFIL: "fulfilled", Action.CANCEL: "cancelled"}


def _now() -> datetime:
    return datetime.now(UTC)


def order_view(order: Order, service: Service, created: bool = False, warnings: list[BudgetWarning] | None = None,
               ) -> OrderView:
    return OrderView(
        id=order.id, zone_id=order.zone_id, school_id=order.school_id, school_year=order.school_year, service_id=order.service_id,
        service_name=service.name, provider=service.provider, partner_id=order.partner_id, quantity=order.quantity,
        unit_price=order.unit_price, amount=order.amount, status=order.status, note=order.note, reason=order.reason,
        placed_by=order.placed_by, placed_at=order.placed_at, decided_by=order.decided_by, decided_at=order.decided_at,
        fulfilled_by=order.fulfilled_by, fulfilled_at=order.fulfilled_at, cancelled_by=order.cancelled_by,
        cancelled_at=order.cancelled_at, created=created, charged_to=order.charged_to, warnings=warnings or [],
    )


def _event_fields(order: Order, service: Service) -> dict[str, Any]:
    return {"zone_id": order.zone_id, "school_id": order.school_id, "order_id": order.id, "service_id": service.id,
            "service_name": service.name, "partner_id": order.partner_id, "school_year": order.school_year,
            "quantity": order.quantity, "unit_price": order.unit_price, "amount": order.amount}


def _snapshot(order: Order) -> dict[str, Any]:
    return {"status": order.status, "service_id": str(order.service_id), "school_year": order.school_year,
            "quantity": order.quantity, "amount": str(order.amount), "reason": order.reason}


def _conflict(kind: str, detail: str, **extensions: Any) -> Problem:
    return Problem(409, detail, type=f"{TYPE_BASE}{kind}", **extensions)


async def _committed(session: AsyncSession, school_id: uuid.UUID, school_year: str) -> dict[OrderStatus, Decimal]:
    """What is charged to the services budget of the school's plan, by status."""
    rows = await session.execute(
        select(Order.status, func.sum(Order.amount))
        .where(Order.school_id == school_id, Order.school_year == school_year, Order.status.in_(COMMITTED),
               Order.charged_to == BudgetLine.SERVICES.value)
        .group_by(Order.status))
    return {OrderStatus(status): total for status, total in rows}


async def _check_partner(session: AsyncSession, school_id: uuid.UUID, service: Service) -> None:
    partner = await session.get(Partner, service.partner_id)
    vetting = (await current_vettings(session, [partner.id])).get(partner.id)
    refusal = partner_refusal(await school_tier(session, school_id), partner.name, vetting.status if vetting else None,
                              vetting.expires_on if vetting else None, today())
    if refusal is not None:
        raise _conflict(refusal.kind, refusal.detail, partner_id=str(partner.id))


async def _order_errors(session: AsyncSession, zone_id: str, school_id: uuid.UUID, received: Received[OrderIn]
                        ) -> tuple[list[dict[str, Any]], Service | None]:
    """What is wrong with the order's fields given the catalog, as far as the body can be read (so that one 422
    lists them with the body's own errors), and its service when the zone has it."""
    sent = received.value.sent_as_read() if received.value is not None else OrderIn.read_only_in(received.raw)
    errors = as_read_errors(sent, {"zone_id": zone_id, "school_id": school_id})
    service_id, quantity = received.field("service_id"), received.field("quantity")
    if service_id is None:
        return errors, None
    service = (await session.execute(
        select(Service).where(Service.id == service_id, Service.zone_id == zone_id).with_for_update(key_share=True)
    )).scalar_one_or_none()
    if service is None:
        errors.append({"loc": ("body", "service_id"), "type": "unknown_service",
                       "msg": f"no service {service_id} in the catalog of zone {zone_id}"})
    elif service.unit == PricingUnit.FIXED and quantity is not None and quantity != 1:
        errors.append({"loc": ("body", "quantity"), "type": "fixed_price",
                       "msg": f"{service.name} has a fixed price for the school year; order quantity 1"})
    return errors, service


async def place_order(uow: UnitOfWork, actor: Principal, zone_id: str, school_id: uuid.UUID,
                      received: Received[OrderIn], idempotency_key: str | None) -> OrderView:
    """A requested order, if the service may be ordered, by this school, within its envelope and the service's capacity.
    The same Idempotency-Key and body again answers with the order placed the first time (`created` False)."""
    session = uow.session
    if idempotency_key is None:
        raise Problem(400, "Placing an order needs an `Idempotency-Key` header (a new UUID per order), so that a retry "
                           "cannot order twice.", type=f"{TYPE_BASE}idempotency-key-required")
    school = await school_in_zone(session, zone_id, school_id)
    errors, service = await _order_errors(session, zone_id, school["id"], received)
    received.refuse(errors)
    data = received.value
    assert data is not None and service is not None, "a body that is not valid is refused above"
    scope = f"order.place/{zone_id}/{school['id']}"
    # Claimed first: a concurrent repeat waits here for the first request, then answers with what it placed.
    replay = await uow.idempotency.claim(session, scope, idempotency_key, request_digest(data.model_dump(mode="json")))
    if replay is not None:
        order = await session.get(Order, uuid.UUID(replay.resource_id))
        check_as_read(data, id=order.id)
        return order_view(order, await session.get(Service, order.service_id))
    if "id" in data.sent_as_read():
        raise validation_problem([{"loc": ("body", "id"), "type": "read_only",
                                   "msg": "an order's id is made when it is placed: leave id out to place a new order, "
                                          "or send the Idempotency-Key that placed this one"}])

    if service.non_optional:
        raise _conflict("non-optional-service", f"{service.name} is a non-optional service: every school has it, assigned "
                                                "automatically each school year; it cannot be ordered.", service_id=str(service.id))
    if service.status != "published":
        raise _conflict("service-not-orderable", f"{service.name} is {service.status}; only published services can be ordered.",
                        service_status=service.status)
    if service.partner_id is not None:
        await _check_partner(session, school["id"], service)

    envelope = (await session.execute(
        select(Envelope).where(Envelope.school_id == school["id"], Envelope.school_year == data.school_year).with_for_update()
    )).scalar_one_or_none()
    if envelope is None:
        raise _conflict("no-budget-envelope", f"{school['name']} has no approved plan for {data.school_year}, so it has no budget "
                                              "for services yet; orders open once the board approves the plan.")
    amount = order_amount(service.price, data.quantity)
    before = await services_standing(session, envelope)
    remaining = before.remaining
    if amount > remaining:
        raise _conflict("over-budget", f"This order of {amount} exceeds the remaining {data.school_year} budget for services "
                                       f"({remaining} of {envelope.amount}) by {amount - remaining}.",
                        amount=str(amount), remaining=str(remaining), envelope=str(envelope.amount), over_by=str(amount - remaining))
    if service.capacity_per_year is not None:
        used = await session.scalar(select(func.coalesce(func.sum(Order.quantity), 0)).where(
            Order.service_id == service.id, Order.school_year == data.school_year, Order.status.in_(USING_CAPACITY)))
        available = service.capacity_per_year - used
        if data.quantity > available:
            raise _conflict("over-capacity", f"{service.name} has {available} of its {service.capacity_per_year} units left for "
                                             f"{data.school_year}; this order asks for {data.quantity}.",
                            available=available, capacity=service.capacity_per_year)

    now = _now()
    order = Order(id=uuid.uuid4(), zone_id=zone_id, school_id=school["id"], school_year=data.school_year, service_id=service.id,
                  partner_id=service.partner_id, quantity=data.quantity, unit_price=service.price, amount=amount,
                  status=OrderStatus.REQUESTED.value, note=data.note, placed_by=actor.subject, placed_at=now,
                  charged_to=BudgetLine.SERVICES.value)
    session.add(order)
    await session.flush()
    uow.emit(OrderPlaced(**_event_fields(order, service), placed_by=actor.subject, placed_at=now))
    warnings = []
    if (risk := at_risk(envelope, before, await services_standing(session, envelope), order, service)) is not None:
        warning, event = risk
        uow.emit(event)
        warnings.append(warning)
    await uow.audit(actor=actor, action="order.placed", entity="order", entity_id=str(order.id), zone_id=zone_id,
                    school_id=str(order.school_id), after=_snapshot(order))
    await uow.idempotency.record(session, scope, idempotency_key, str(order.id))
    await uow.commit()
    return order_view(order, service, created=True, warnings=warnings)


def _visible(viewer: Principal) -> ColumnElement[bool] | None:
    """The orders a caller may see in its zone: a school its own, a partner those of its services, overseers all."""
    if viewer.role in OVERSEER_ROLES:
        return None
    if viewer.role == PARTNER_ROLE:
        partner_id = _as_uuid(viewer.partner_id)
        return Order.partner_id == partner_id if partner_id is not None else false()
    return Order.school_id.in_([school for s in viewer.schools if (school := _as_uuid(s)) is not None])


def _as_uuid(value: str | None) -> uuid.UUID | None:
    """A token's claim as an id; None when it cannot name any school or partner."""
    try:
        return uuid.UUID(value) if value is not None else None
    except ValueError:
        return None


async def _order(session: AsyncSession, viewer: Principal, zone_id: str, order_id: uuid.UUID, *, lock: bool = False,
                 school_id: uuid.UUID | None = None) -> tuple[Order, Service]:
    """The order and its service; 404 when it is not in the zone, not the school's, or not visible to the caller."""
    query = select(Order).where(Order.id == order_id, Order.zone_id == zone_id)
    if school_id is not None:
        query = query.where(Order.school_id == school_id)
    if (visible := _visible(viewer)) is not None:
        query = query.where(visible)
    order = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if order is None:
        raise Problem(404, f"Order {order_id} was not found in zone {zone_id!r}.")
    return order, await session.get(Service, order.service_id)


async def change_order(uow: UnitOfWork, actor: Principal, zone_id: str, order_id: uuid.UUID, action: Action, *,
                       school_id: uuid.UUID | None = None, reason: str | None = None) -> OrderView:
    """Moves the order on by `action`; a repeat of what already happened answers with the order and changes nothing."""
    session = uow.session
    order, service = await _order(session, actor, zone_id, order_id, lock=True, school_id=school_id)
    status = OrderStatus(order.status)
    if status == OrderStatus.ASSIGNED:
        raise _conflict("non-optional-service", f"{service.name} is a non-optional service assigned to the school; "
                                                f"its assignment cannot be {_PAST_TENSE[action]}.", order_status=status)
    try:
        target = next_status(status, action)
    except InvalidTransition as exc:
        raise Problem(409, f"This order is {status}; only a {' or '.join(exc.allowed_from)} order can be {_PAST_TENSE[action]}.",
                      order_status=status) from None
    if target is None:
        if action == Action.REJECT and order.reason != reason:
            raise Problem(409, "This order was already rejected, for another reason.", order_status=status, reason=order.reason)
        return order_view(order, service)
    before = _snapshot(order)
    now = _now()
    order.status = target.value
    fields = _event_fields(order, service)
    if action == Action.CONFIRM:
        order.decided_by, order.decided_at = actor.subject, now
        uow.emit(OrderConfirmed(**fields, confirmed_by=actor.subject, confirmed_at=now))
    elif action == Action.REJECT:
        order.decided_by, order.decided_at, order.reason = actor.subject, now, reason
        uow.emit(OrderRejected(**fields, reason=reason, rejected_by=actor.subject, rejected_at=now))
    elif action == Action.FULFIL:
        order.fulfilled_by, order.fulfilled_at = actor.subject, now
        uow.emit(OrderFulfilled(**fields, fulfilled_by=actor.subject, fulfilled_at=now))
    else:
        order.cancelled_by, order.cancelled_at = actor.subject, now
        uow.emit(OrderCancelled(**fields, cancelled_by=actor.subject, cancelled_at=now))
    await uow.audit(actor=actor, action=f"order.{_PAST_TENSE[action]}", entity="order", entity_id=str(order.id), zone_id=zone_id,
                    school_id=str(order.school_id), before=before, after=_snapshot(order))
    await uow.commit()
    return order_view(order, service)


async def list_orders(session: AsyncSession, viewer: Principal, zone_id: str, filters: dict[str, Any]) -> list[OrderView]:
    query = select(Order, Service).join(Service, Order.service_id == Service.id).where(Order.zone_id == zone_id)
    if (visible := _visible(viewer)) is not None:
        query = query.where(visible)
    for field, value in filters.items():
        if value is not None:
            query = query.where(getattr(Order, field) == value)
    rows = await session.execute(query.order_by(Order.placed_at.desc(), Order.id))
    return [order_view(order, service) for order, service in rows]


async def get_order(session: AsyncSession, viewer: Principal, zone_id: str, order_id: uuid.UUID) -> OrderView:
    return order_view(*await _order(session, viewer, zone_id, order_id))


async def budget(session: AsyncSession, zone_id: str, school_id: uuid.UUID, school_year: str) -> BudgetView:
    school = await school_in_zone(session, zone_id, school_id)
    envelope = await session.get(Envelope, (school["id"], school_year))
    if envelope is None:
        raise Problem(404, f"{school['name']} has no approved plan for {school_year}, so no budget for services.")
    by_status = await _committed(session, school["id"], school_year)
    services = await services_standing(session, envelope)
    return BudgetView(school_id=school["id"], school_year=school_year, plan_id=envelope.plan_id, plan_version=envelope.plan_version,
                      envelope=envelope.amount, committed=services.committed, remaining=services.remaining,
                      committed_by_status=by_status, planned_outstanding=services.planned_outstanding,
                      short_by=services.short_by,
                      district_services=await _district_line(session, zone_id, school, school_year))


async def _district_line(session: AsyncSession, zone_id: str, school: Any, school_year: str) -> DistrictServicesLine:
    policy = await district_services_policy(session, zone_id)
    charged = [Charged(service_id=service.id, service_name=service.name, category=service.category, amount=order.amount)
               for order, service in await charges(session, school["id"], school_year, BudgetLine.DISTRICT_SERVICES)]
    committed = sum((c.amount for c in charged), Decimal(0))
    allocation = (None if policy.per_pupil_allocation is None
                  else (policy.per_pupil_allocation * (school["enrollment"] or 0)).quantize(Decimal("0.01")))
    return DistrictServicesLine(categories=[c.value for c in policy.categories], allocation=allocation, committed=committed,
                                remaining=None if allocation is None else allocation - committed, services=charged)
