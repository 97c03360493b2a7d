"""Events produced by the services-catalog service (topic ezone.catalog.v1), and the catalog's words."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from pydantic import Field

from . import topics
from .base import Event
from .vocabulary import Lever, VettingStatus


class ServiceCategory(StrEnum):
    FACILITIES = "facilities"
    PAYROLL = "payroll"
    TRANSPORTATION = "transportation"
    FOOD_SERVICE = "food_service"
    CURRICULUM = "curriculum"
    PROFESSIONAL_DEVELOPMENT = "professional_development"
    ASSESSMENT = "assessment"
    CLIMATE_SEL = "climate_sel"
    STAFFING_SUPPORT = "staffing_support"
    EXTENDED_LEARNING_TIME = "extended_learning_time"


class OutcomeMeasure(StrEnum):
    """What a partner's work is judged on (zone policy `evidence.measures`, per service category). The first three
    come from accountability reviews (all students); the zone has no source of chronic absence or discipline figures
    yet, so a service judged on them shows "not measured" for them."""

    PROFICIENCY_RATE = "proficiency_rate"
    MEDIAN_GROWTH_PERCENTILE = "median_growth_percentile"
    PARTICIPATION_RATE = "participation_rate"
    CHRONIC_ABSENCE_RATE = "chronic_absence_rate"
    DISCIPLINE_RATE = "discipline_rate"


def default_evidence_measures() -> dict[ServiceCategory, list[OutcomeMeasure]]:
    """The zone policy's default: instruction is judged on proficiency and growth, culture and climate work on
    participation, chronic absence and discipline, and operations (facilities, payroll, transport, food) on none."""
    instruction = [OutcomeMeasure.PROFICIENCY_RATE, OutcomeMeasure.MEDIAN_GROWTH_PERCENTILE]
    culture = [OutcomeMeasure.PARTICIPATION_RATE, OutcomeMeasure.CHRONIC_ABSENCE_RATE, OutcomeMeasure.DISCIPLINE_RATE]
    return {
        ServiceCategory.CURRICULUM: instruction, ServiceCategory.PROFESSIONAL_DEVELOPMENT: instruction,
        ServiceCategory.ASSESSMENT: instruction, ServiceCategory.STAFFING_SUPPORT: instruction,
        ServiceCategory.EXTENDED_LEARNING_TIME: instruction, ServiceCategory.CLIMATE_SEL: culture,
        ServiceCategory.FACILITIES: [], ServiceCategory.PAYROLL: [], ServiceCategory.TRANSPORTATION: [],
        ServiceCategory.FOOD_SERVICE: [],
    }


def default_district_service_categories() -> list[ServiceCategory]:
    """The zone policy's default district-services line: what the district provides every school (facilities,
    payroll, transport, food). A non-optional service in one of these categories is charged to that line, not to
    the services budget of the school's plan, over which the school has autonomy."""
    return [ServiceCategory.FACILITIES, ServiceCategory.PAYROLL, ServiceCategory.TRANSPORTATION,
            ServiceCategory.FOOD_SERVICE]


class PricingUnit(StrEnum):
    PER_PUPIL = "per_pupil"  # quantity: pupils
    PER_UNIT = "per_unit"  # quantity: units of the service (days, sessions, licences)
    FIXED = "fixed"  # one price for the school year; quantity 1


class Need(StrEnum):
    """What a service helps with: the areas accountability reviews find wanting and turnaround partners target."""

    MATH = "math"
    ELA = "ela"
    SCIENCE = "science"
    CURRICULUM = "curriculum"
    STAFFING = "staffing"
    TIME = "time"
    CLIMATE = "climate"
    ATTENDANCE = "attendance"
    ASSESSMENT = "assessment"
    ENGLISH_LEARNERS = "english_learners"
    STUDENTS_WITH_DISABILITIES = "students_with_disabilities"
    LEADERSHIP = "leadership"
    OPERATIONS = "operations"


class PartnerVettingChanged(Event):
    ce_type = "org.ezone.catalog.partner.vetting_changed.v1"
    topic = topics.CATALOG
    summary = "A partner organisation's vetting status changed (vetted, provisional, not vetted, revoked)."

    zone_id: str
    partner_id: UUID
    name: str
    status: VettingStatus
    expires_on: date | None = None
    vetted_by: str | None = None
    changed_at: datetime

    def partition_key(self) -> str:
        return self.zone_id  # zone-wide: not about one school


class ServicePublished(Event):
    ce_type = "org.ezone.catalog.service.published.v1"
    topic = topics.CATALOG
    summary = "A district or partner service became orderable (or, when non-optional, is assigned to every school)."

    zone_id: str
    service_id: UUID
    name: str
    provider: str = Field(description="`district` or `partner`.")
    partner_id: UUID | None = Field(None, description="The partner organisation, for a partner's service.")
    category: ServiceCategory
    non_optional: bool = Field(description="Assigned to every school each school year; schools cannot order or cancel it.")
    unit: PricingUnit
    price: Decimal = Field(description="Per pupil, per unit, or for the school year, by `unit`.")
    capacity_per_year: int | None = Field(None, description="Units the provider can deliver in a school year, across schools; null: no limit.")
    needs: list[Need] = Field(default_factory=list)
    levers: list[Lever] = Field(default_factory=list)
    published_by: str
    published_at: datetime

    def partition_key(self) -> str:
        return self.zone_id  # zone-wide: not about one school


class _OrderEvent(Event):
    """What every order event says about the order (no `ce_type`: not an event type of its own)."""

    zone_id: str
    school_id: UUID
    order_id: UUID
    service_id: UUID
    service_name: str
    partner_id: UUID | None = Field(None, description="The partner organisation, for a partner's service.")
    school_year: str
    quantity: int
    unit_price: Decimal
    amount: Decimal = Field(description="What the order commits against the school's budget envelope.")


class OrderPlaced(_OrderEvent):
    ce_type = "org.ezone.catalog.order.placed.v1"
    topic = topics.CATALOG
    summary = "A school ordered a service for a school year, within its budget envelope and the service's capacity."

    placed_by: str
    placed_at: datetime


class OrderConfirmed(_OrderEvent):
    ce_type = "org.ezone.catalog.order.confirmed.v1"
    topic = topics.CATALOG
    summary = "District staff confirmed a school's order: the provider will deliver it."

    confirmed_by: str
    confirmed_at: datetime


class OrderRejected(_OrderEvent):
    ce_type = "org.ezone.catalog.order.rejected.v1"
    topic = topics.CATALOG
    summary = "District staff rejected a school's order, with the reason; its amount no longer counts against the budget."

    reason: str
    rejected_by: str
    rejected_at: datetime


class OrderCancelled(_OrderEvent):
    ce_type = "org.ezone.catalog.order.cancelled.v1"
    topic = topics.CATALOG
    summary = "The school cancelled its order before fulfilment; its amount no longer counts against the budget."

    cancelled_by: str
    cancelled_at: datetime


class OrderFulfilled(_OrderEvent):
    ce_type = "org.ezone.catalog.order.fulfilled.v1"
    topic = topics.CATALOG
    summary = "The provider delivered the order; the school's engagement counts in the partner's evidence of impact."

    fulfilled_by: str
    fulfilled_at: datetime


class PlannedPurchasesAtRisk(Event):
    ce_type = "org.ezone.catalog.budget.planned_purchases_at_risk.v1"
    topic = topics.CATALOG
    summary = ("An order or a non-optional assignment left a school's services budget too small for the purchases its "
               "approved plan still has to make; the school and the board are warned.")

    zone_id: str
    school_id: UUID
    school_year: str
    plan_id: UUID
    plan_version: int
    envelope: Decimal = Field(description="The approved plan's services budget (its purchased-services total).")
    committed: Decimal = Field(description="What orders and assignments charged to that budget commit, this one included.")
    remaining: Decimal = Field(description="envelope - committed.")
    planned_outstanding: Decimal = Field(description="What the plan's planned purchases not yet ordered still need.")
    short_by: Decimal = Field(description="planned_outstanding - remaining: how much of the plan no longer fits.")
    cause: str = Field(description="`order` (a school's order) or `assignment` (a non-optional service).")
    order_id: UUID
    service_id: UUID
    service_name: str
    amount: Decimal = Field(description="What the order or assignment charged to the budget.")
    raised_at: datetime
