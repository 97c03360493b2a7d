"""Orders and budgets over the wire."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, Field

from ..school_years import SchoolYear
from ..types import Input, LongText
from .rules import OrderStatus


class OrderIn(Input):
    service_id: uuid.UUID
    school_year: SchoolYear
    quantity: Annotated[int, Field(ge=1, le=1_000_000, description="Pupils for a per-pupil price, units for a per-unit "
                                                                    "price, 1 for a fixed price.")]
    note: Annotated[str, Field(max_length=2000)] | None = None


class RejectionIn(Input):
    reason: LongText


class BudgetWarning(BaseModel):
    """The order was placed, but it leaves the approved plan's purchases short; the school and board are alerted."""

    type: str = Field("planned-purchases-at-risk", description="What the warning is about.")
    detail: str
    short_by: Decimal = Field(description="How much of the plan's outstanding purchases no longer fits.")
    planned_outstanding: Decimal = Field(description="What the plan's purchases not yet ordered still need.")
    remaining: Decimal = Field(description="What remains of the services budget after this order.")


class OrderView(BaseModel):
    id: uuid.UUID
    zone_id: str
    school_id: uuid.UUID
    school_year: str
    service_id: uuid.UUID
    service_name: str
    provider: str
    partner_id: uuid.UUID | None
    quantity: int
    unit_price: Decimal
    amount: Decimal
    status: OrderStatus
    note: str | None
    reason: str | None = Field(description="Why it was rejected.")
    placed_by: str
    placed_at: datetime
    decided_by: str | None = Field(description="Who confirmed or rejected it.")
    decided_at: datetime | None
    fulfilled_by: str | None
    fulfilled_at: datetime | None
    cancelled_by: str | None
    cancelled_at: datetime | None
    created: bool = Field(False, description="True when this request placed it; false for a repeat with the same Idempotency-Key.")
    charged_to: str = Field("services", description=(
        "`services`: the services budget of the school's approved plan; `district_services`: the district-services "
        "line (a non-optional service of a category the zone policy names)."))
    warnings: list[BudgetWarning] = Field(default_factory=list, description=(
        "Given when this request placed the order and it leaves the plan's planned purchases short."))


OrderIn.read_as = OrderView


class Charged(BaseModel):
    service_id: uuid.UUID
    service_name: str
    category: str
    amount: Decimal


class DistrictServicesLine(BaseModel):
    """What the district provides every school, charged to a line of its own (zone policy `district_services`)."""

    categories: list[str] = Field(description="Non-optional services of these categories are charged here.")
    allocation: Decimal | None = Field(description="The policy's per-pupil line times the school's enrollment; null: "
                                                   "the district covers these services in full.")
    committed: Decimal
    remaining: Decimal | None = Field(description="allocation - committed; null without an allocation.")
    services: list[Charged]


class BudgetView(BaseModel):
    school_id: uuid.UUID
    school_year: str
    plan_id: uuid.UUID
    plan_version: int
    envelope: Decimal = Field(description="The services budget: the approved plan's purchased-services total, for the "
                                          "services the school chose.")
    committed: Decimal = Field(description="Charged to the services budget: requested, confirmed or fulfilled orders "
                                           "and non-optional services outside the district's categories.")
    remaining: Decimal = Field(description="What further orders may commit; negative when an amendment cut the envelope below "
                                           "what was already committed.")
    committed_by_status: dict[OrderStatus, Decimal]
    planned_outstanding: Decimal = Field(description="What the plan's planned purchases not yet ordered still need.")
    short_by: Decimal = Field(description="planned_outstanding - remaining when positive: how much of the plan no "
                                          "longer fits (the school and board were warned); 0 when it all fits.")
    district_services: DistrictServicesLine
