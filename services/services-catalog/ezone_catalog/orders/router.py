"""Orders: a school's team orders for itself; district staff confirm, reject and fulfil; partners see their own."""

from __future__ import annotations

import uuid
from typing import Annotated

from ezone_kit.auth import ensure_school, ensure_zone
from ezone_kit.lenient_body import Received, json_body, lenient_body
from ezone_kit.openapi import problem_responses, replayed
from ezone_kit.service import SessionDep, UnitOfWorkDep
from fastapi import APIRouter, Depends, Header, Path, Query, Response, status
from pydantic import AfterValidator

from ..access import CatalogReader, SchoolReader, SchoolTeam, Staff
from ..school_years import SCHOOL_YEAR_PATTERN, consecutive_years
from . import service
from .rules import Action, OrderStatus
from .schemas import BudgetView, OrderIn, OrderView, RejectionIn

router = APIRouter(prefix="/zones/{zone_id}", tags=["orders"])

IdempotencyKey = Annotated[str | None, Header(max_length=255, description="Required: one new value (e.g. a UUID) per order.")]
SchoolYearPath = Annotated[str, Path(pattern=SCHOOL_YEAR_PATTERN, examples=["2025-26"]), AfterValidator(consecutive_years)]
SchoolYearQuery = Annotated[str | None, Query(pattern=SCHOOL_YEAR_PATTERN, examples=["2025-26"])]
SCHOOL_ORDERS = "/schools/{school_id}/orders"
# Read by the service, not refused on its shape first: one 422 lists the shape's errors and the catalog's.
OrderBody = Annotated[Received[OrderIn], Depends(lenient_body(OrderIn))]


@router.post(SCHOOL_ORDERS, response_model=OrderView, status_code=status.HTTP_201_CREATED,
             summary="Order a service for a school year",
             responses={**replayed(OrderView, "The same body with the same `Idempotency-Key`: the order it placed."),
                        **problem_responses((400, "No `Idempotency-Key`, or an empty one."), 409)},
             openapi_extra=json_body(OrderIn))
async def place_order(zone_id: str, school_id: uuid.UUID, body: OrderBody, principal: SchoolTeam, uow: UnitOfWorkDep,
                      response: Response, idempotency_key: IdempotencyKey = None) -> OrderView:
    """Needs `Idempotency-Key`: the same body again with the same key answers 200 with the order it placed. Refused
    with 409 problem details when the service is non-optional or not published, when the school is in intensive
    support and the partner is not vetted, when no plan is approved for the year, when the amount exceeds the
    remaining envelope (saying by how much) or the service's remaining capacity."""
    ensure_school(principal, zone_id, school_id)
    order = await service.place_order(uow, principal, zone_id, school_id, body, idempotency_key)
    response.headers["Location"] = f"/zones/{zone_id}/orders/{order.id}"
    if not order.created:
        response.status_code = status.HTTP_200_OK
    return order


@router.get(SCHOOL_ORDERS, response_model=list[OrderView], summary="A school's orders and assignments, newest first")
async def school_orders(zone_id: str, school_id: uuid.UUID, principal: SchoolReader, session: SessionDep,
                        school_year: SchoolYearQuery = None, order_status: Annotated[OrderStatus | None, Query(alias="status")] = None,
                        ) -> list[OrderView]:
    ensure_school(principal, zone_id, school_id)
    return await service.list_orders(session, principal, zone_id, {"school_id": school_id, "school_year": school_year,
                                                                    "status": order_status})


@router.post(SCHOOL_ORDERS + "/{order_id}/cancel", response_model=OrderView,
             summary="Cancel the school's order before fulfilment", responses=problem_responses(409))
async def cancel_order(zone_id: str, school_id: uuid.UUID, order_id: uuid.UUID, principal: SchoolTeam, uow: UnitOfWorkDep) -> OrderView:
    """A requested or confirmed order; cancelling a cancelled order changes nothing. Assignments cannot be cancelled."""
    ensure_school(principal, zone_id, school_id)
    return await service.change_order(uow, principal, zone_id, order_id, Action.CANCEL, school_id=school_id)


@router.get("/orders", response_model=list[OrderView], summary="The orders the caller may see, newest first")
async def list_orders(zone_id: str, principal: CatalogReader, session: SessionDep, school_id: uuid.UUID | None = None,
                      school_year: SchoolYearQuery = None, order_status: Annotated[OrderStatus | None, Query(alias="status")] = None,
                      service_id: uuid.UUID | None = None) -> list[OrderView]:
    """District staff and the board see every school's; a school its own; a partner the orders of its services."""
    ensure_zone(principal, zone_id)
    filters = {"school_id": school_id, "school_year": school_year, "status": order_status, "service_id": service_id}
    return await service.list_orders(session, principal, zone_id, filters)


@router.get("/orders/{order_id}", response_model=OrderView, summary="An order")
async def get_order(zone_id: str, order_id: uuid.UUID, principal: CatalogReader, session: SessionDep) -> OrderView:
    ensure_zone(principal, zone_id)
    return await service.get_order(session, principal, zone_id, order_id)


@router.post("/orders/{order_id}/confirm", response_model=OrderView, summary="Confirm a requested order",
             responses=problem_responses(409))
async def confirm_order(zone_id: str, order_id: uuid.UUID, principal: Staff, uow: UnitOfWorkDep) -> OrderView:
    ensure_zone(principal, zone_id)
    return await service.change_order(uow, principal, zone_id, order_id, Action.CONFIRM)


@router.post("/orders/{order_id}/reject", response_model=OrderView, summary="Reject a requested order, with the reason",
             responses=problem_responses(409))
async def reject_order(zone_id: str, order_id: uuid.UUID, body: RejectionIn, principal: Staff, uow: UnitOfWorkDep) -> OrderView:
    """Its amount no longer counts against the school's budget. The same rejection again changes nothing."""
    ensure_zone(principal, zone_id)
    return await service.change_order(uow, principal, zone_id, order_id, Action.REJECT, reason=body.reason)


@router.post("/orders/{order_id}/fulfil", response_model=OrderView, summary="Record a confirmed order as delivered",
             responses=problem_responses(409))
async def fulfil_order(zone_id: str, order_id: uuid.UUID, principal: Staff, uow: UnitOfWorkDep) -> OrderView:
    ensure_zone(principal, zone_id)
    return await service.change_order(uow, principal, zone_id, order_id, Action.FULFIL)


@router.get("/schools/{school_id}/budget/{school_year}", response_model=BudgetView, summary="A school's budget for services")
async def school_budget(zone_id: str, school_id: uuid.UUID, school_year: SchoolYearPath, principal: SchoolReader,
                        session: SessionDep) -> BudgetView:
    """The envelope from the approved plan, what is committed, and what remains."""
    ensure_school(principal, zone_id, school_id)
    return await service.budget(session, zone_id, school_id, school_year)
