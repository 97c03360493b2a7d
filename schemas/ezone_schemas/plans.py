"""Events produced by the plans service (topic ezone.plans.v1)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, Field

from . import topics
from .base import Event
from .vocabulary import AutonomyTier, Lever, Metric, Subgroup, Subject


class ZoneRegistered(Event):
    ce_type = "org.ezone.plans.zone.registered.v1"
    topic = topics.PLANS
    summary = "A zone was registered."

    zone_id: str = Field(description="The zone's slug, e.g. `springfield`.")
    name: str
    district: str
    registered_at: datetime


class SchoolRegistered(Event):
    ce_type = "org.ezone.plans.school.registered.v1"
    topic = topics.PLANS
    summary = "A school joined a zone; other services start their projection of it."

    zone_id: str
    school_id: UUID
    code: str = Field(description="The state's school code, e.g. the MCAS `school_code`.")
    name: str
    grade_span: str = Field(description="Lowest and highest grade, e.g. `6-8`.")
    enrollment: int | None = Field(None, ge=0)
    registered_at: datetime


class SchoolUpdated(Event):
    ce_type = "org.ezone.plans.school.updated.v1"
    topic = topics.PLANS
    summary = "A school's registry facts changed; carries the full new state."

    zone_id: str
    school_id: UUID
    code: str
    name: str
    grade_span: str
    enrollment: int | None = Field(None, ge=0)
    updated_at: datetime


class InterimTarget(BaseModel):
    due: date
    target: float


class GoalContract(BaseModel):
    """A measurable goal of an approved plan, as other services need it."""

    goal_id: UUID
    metric: Metric
    subject: Subject
    subgroup: Subgroup
    baseline: float | None
    annual_target: float
    interim_targets: list[InterimTarget] = Field(default_factory=list)


class PlannedService(BaseModel):
    """A budget line item for a district or partner service the school plans to buy."""

    description: str
    amount: Decimal
    provider: str = Field(description="`district` or `partner`.")
    service_id: UUID | None = None
    partner_id: UUID | None = None


class BudgetEnvelope(BaseModel):
    per_pupil_allocation: Decimal
    total: Decimal
    purchased_services_total: Decimal = Field(description="What the school may commit to district and partner services.")
    planned_services: list[PlannedService] = Field(default_factory=list)


class PlanSubmitted(Event):
    ce_type = "org.ezone.plans.plan.submitted.v1"
    topic = topics.PLANS
    summary = "A school submitted (a version of) its operating plan for the board's decision."

    zone_id: str
    school_id: UUID
    plan_id: UUID
    school_year: str
    version: int
    amendment: bool
    submitted_by: str
    submitted_at: datetime


class PlanApproved(Event):
    ce_type = "org.ezone.plans.plan.approved.v1"
    topic = topics.PLANS
    summary = "The board approved a plan version: its goals and budget envelope now hold for the school year."

    zone_id: str
    school_id: UUID
    plan_id: UUID
    school_year: str
    version: int
    goals: list[GoalContract]
    budget: BudgetEnvelope
    approvals: int
    returns: int
    automatic: bool = Field(False, description="Approved without a vote: a small amendment by a `full`-autonomy school.")
    approved_at: datetime


class LeverComment(BaseModel):
    member_id: UUID
    member_name: str
    lever: Lever
    comment: str


class PlanReturned(Event):
    ce_type = "org.ezone.plans.plan.returned.v1"
    topic = topics.PLANS
    summary = "The board returned a plan version to the school, with comments per lever."

    zone_id: str
    school_id: UUID
    plan_id: UUID
    school_year: str
    version: int
    comments: list[LeverComment]
    approvals: int
    returns: int
    returned_at: datetime


class SchoolTierChanged(Event):
    ce_type = "org.ezone.plans.school.tier_changed.v1"
    topic = topics.PLANS
    summary = "A school's earned-autonomy tier changed, with the rule and reviews that moved it."

    zone_id: str
    school_id: UUID
    previous_tier: AutonomyTier
    tier: AutonomyTier
    reason: str
    rule: str
    policy_version: int
    changed_at: datetime


class ZonePolicyChanged(Event):
    ce_type = "org.ezone.plans.zone.policy_changed.v1"
    topic = topics.PLANS
    summary = "A zone adopted a new policy version (thresholds, voting and tier rules); reviews use it from now on."

    zone_id: str
    version: int
    policy: dict = Field(description="The whole policy document of this version.")
    changed_by: str
    changed_at: datetime
