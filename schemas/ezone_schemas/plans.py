"""Events produced by the plans service (topic ezone.plans.v1)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
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


class BoardMemberChanged(Event):
    ce_type = "org.ezone.plans.board.member_changed.v1"
    topic = topics.PLANS
    summary = "A board member was appointed, or their name, seat, appointer or term changed; carries the full new state."

    zone_id: str
    member_id: UUID
    subject: str = Field(description="The identity provider's `sub` of the member's tokens: who they are to other services.")
    name: str
    seat: int = Field(ge=1, description="1..the zone policy's `voting.board_size`.")
    appointed_by: Literal["district", "state"]
    active_from: date = Field(description="The first day of the term.")
    active_to: date | None = Field(description="The last day of the term; null while it is open. The member is seated, "
                                               "and votes, from `active_from` to `active_to`.")
    changed_at: datetime


class TeamMember(BaseModel):
    """A member of a school's leadership team."""

    member_id: UUID
    subject: str = Field(description="The identity provider's `sub` of the member's tokens.")
    name: str
    role: Literal["principal", "teacher_leader"]
    active: bool = Field(description="False once taken off the team (the member is kept for the record).")


class SchoolTeamChanged(Event):
    ce_type = "org.ezone.plans.school.team_changed.v1"
    topic = topics.PLANS
    summary = ("A school's leadership team changed (a member added, changed, taken off or put back); "
               "carries the whole team.")

    zone_id: str
    school_id: UUID
    members: list[TeamMember] = Field(description="Everyone on the team, including members taken off it (`active` "
                                                  "false); the principal first, then the teacher leaders by name.")
    changed_at: datetime


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


class PlanVoteCast(Event):
    ce_type = "org.ezone.plans.plan.vote_cast.v1"
    topic = topics.PLANS
    summary = ("A seated board member cast, or changed, their vote on a submitted plan version; "
               "a deciding vote is followed by `plan.approved` or `plan.returned`.")

    zone_id: str
    school_id: UUID
    plan_id: UUID
    version: int = Field(description="The plan version voted on.")
    member_id: UUID = Field(description="The board member (as in `board.member_changed`).")
    subject: str = Field(description="The identity provider's `sub` of the member's tokens.")
    decision: Literal["approve", "return"]
    cast_at: datetime = Field(description="When this vote was cast or, for a changed vote, changed.")


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
    current: bool = Field(True, description=(
        "False when the review that moved the tier is of a school year the zone's policy no longer counts as current "
        "(a history load): the change is announced like any other but alerts no one."))


class ZonePolicyChanged(Event):
    ce_type = "org.ezone.plans.zone.policy_changed.v1"
    topic = topics.PLANS
    summary = ("A zone adopted a new policy version (thresholds, accountability assessments, voting and tier rules); "
               "reviews use it from now on.")

    zone_id: str
    version: int
    policy: dict = Field(description="The whole policy document of this version.")
    changed_by: str
    changed_at: datetime
