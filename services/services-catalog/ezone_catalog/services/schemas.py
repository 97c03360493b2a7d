"""Catalog services over the wire."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from ezone_schemas.catalog import Need, PricingUnit, ServiceCategory
from ezone_schemas.vocabulary import Lever, VettingStatus
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from ..types import Input, LongText, Money, Name, ShortText

Provider = Literal["district", "partner"]
ServiceStatus = Literal["draft", "published", "retired"]


def _unique(values: list) -> list:
    if len(set(values)) != len(values):
        raise ValueError("lists each value once")
    return values


class ServiceIn(Input):
    id: uuid.UUID | None = Field(None, description="The service's id, when the zone already uses one (e.g. in plans' line items); "
                                                   "left out, a new one is made.")
    name: Name
    provider: Provider  # declared before the fields whose checks read it
    partner_id: Annotated[uuid.UUID | None, Field(validate_default=True, description="Required for a partner's service.")] = None
    category: ServiceCategory
    non_optional: Annotated[bool, Field(validate_default=True, description=(
        "Assigned to every school for each school year, charged to the district-services line (a category the zone "
        "policy names) or else to the plan's services budget; schools cannot order or cancel it. "
        "District services only."))] = False
    description: LongText
    unit: PricingUnit
    unit_label: ShortText | None = Field(None, description="What one unit is, for `per_unit` prices, e.g. `coaching day`.")
    price: Money = Field(description="Per pupil, per unit, or for the school year, by `unit`.")
    capacity_per_year: Annotated[int | None, Field(ge=1, le=10_000_000, validate_default=True, description=(
        "Units (pupils for `per_pupil`) the provider can deliver in a school year across the zone; null: no limit."))] = None
    needs: Annotated[list[Need], Field(max_length=len(Need))] = Field(default_factory=list)
    levers: Annotated[list[Lever], Field(max_length=len(Lever))] = Field(default_factory=list)

    _needs_once = field_validator("needs", "levers")(_unique)

    @field_validator("partner_id")
    @classmethod
    def _partner_named(cls, value: uuid.UUID | None, info: ValidationInfo) -> uuid.UUID | None:
        provider = info.data.get("provider")
        if provider == "partner" and value is None:
            raise ValueError("a partner's service names its partner_id")
        if provider == "district" and value is not None:
            raise ValueError("a district service has no partner_id")
        return value

    @field_validator("non_optional")
    @classmethod
    def _district_only(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("provider") == "partner":
            raise ValueError("only district services are non-optional; schools choose their partners")
        return value

    @field_validator("capacity_per_year")
    @classmethod
    def _no_capacity_when_assigned(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("non_optional"):
            raise ValueError("a non-optional service goes to every school, so it has no capacity limit")
        return value


class ServicePartner(BaseModel):
    """Who provides a partner's service: what a school choosing it needs to know without a second call."""

    id: uuid.UUID
    name: str
    vetting_status: VettingStatus | None = Field(description="The partner's current vetting; null: never vetted.")
    vetting_expires_on: date | None = Field(description="When a `vetted` or `provisional` status lapses.")
    vetted: bool = Field(description="Vetted and not expired today: what intensive-support schools may order from.")


class ServiceView(BaseModel):
    id: uuid.UUID
    zone_id: str
    name: str
    provider: Provider
    partner_id: uuid.UUID | None
    partner: ServicePartner | None = Field(
        description="The partner providing a partner's service; null for a district one.")
    category: ServiceCategory
    non_optional: bool
    description: str
    unit: PricingUnit
    unit_label: str | None
    price: Decimal
    capacity_per_year: int | None
    needs: list[Need]
    levers: list[Lever]
    status: ServiceStatus
    created_by: str
    created_at: datetime
    published_at: datetime | None
    retired_at: datetime | None
    created: bool = Field(False, description="True when this request created it; false when it already existed.")


ServiceIn.read_as = ServiceView
