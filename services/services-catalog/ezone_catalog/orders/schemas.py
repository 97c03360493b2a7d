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


class BudgetView(BaseModel):
    school_id: uuid.UUID
    school_year: str
    plan_id: uuid.UUID
    plan_version: int
    envelope: Decimal = Field(description="The approved plan's purchased-services total.")
    committed: Decimal = Field(description="Assigned non-optional services and requested, confirmed or fulfilled orders.")
    remaining: Decimal = Field(description="What further orders may commit; negative when an amendment cut the envelope below "
                                           "what was already committed.")
    committed_by_status: dict[OrderStatus, Decimal]
