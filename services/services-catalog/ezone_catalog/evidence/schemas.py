"""Evidence of impact and recommendations over the wire."""

from __future__ import annotations

import uuid
from typing import Literal

from ezone_schemas.catalog import Need, OutcomeMeasure, ServiceCategory
from ezone_schemas.vocabulary import AutonomyTier, ReviewStatus, Subject, VettingStatus
from pydantic import BaseModel, Field

from ..services.schemas import ServiceView
from .rules import Verdict


class ReviewRefView(BaseModel):
    review_id: uuid.UUID
    version: int
    school_year: str


class ComparisonSchoolView(BaseModel):
    school_id: uuid.UUID
    school_name: str
    before: float
    after: float
    change: float
    reviews: list[ReviewRefView]


class OutcomeView(BaseModel):
    school_id: uuid.UUID
    school_name: str
    school_year: str = Field(description="The year the school used the service; `before` is of the year before.")
    before: float
    after: float
    change: float
    comparison_change: float | None = Field(description="The mean change at the comparable schools.")
    difference: float | None = Field(description="change - comparison_change; none when too few comparable schools.")
    counted: bool = Field(description="Counted in the verdict: compared with enough schools, and not stale.")
    stale: bool = Field(description="Older than the zone policy's evidence window.")
    reviews: list[ReviewRefView] = Field(description="The reviews (id and version) the two figures come from.")
    comparison: Literal["zone", "state"] = Field(description=(
        "What the change is compared with: `zone`, the comparable schools of the zone (listed); `state`, the state's "
        "all-students figures of the same years and subject, when the zone had too few comparable schools."))
    state_before: float | None = Field(None, description="The state's figure the year before (comparison `state`).")
    state_after: float | None = Field(None, description="The state's figure that year (comparison `state`).")
    comparison_schools: list[ComparisonSchoolView]


class MeasureEvidence(BaseModel):
    subject: Subject
    measure: OutcomeMeasure
    verdict: Verdict
    sentence: str = Field(description="The verdict and its numbers, in words.")
    schools: int = Field(description="n: schools whose outcome counts (compared with enough schools, not stale).")
    change: float | None = Field(description="Mean change at the schools that used it (points).")
    comparison_change: float | None = Field(description="Mean change at their comparable schools.")
    difference: float | None = Field(description="Mean of each school's change minus its comparable schools' change.")
    spread: float | None = Field(description="Standard deviation of those differences (2 or more schools).")
    interval_low: float | None = Field(description="95% interval of the mean difference (Student's t).")
    interval_high: float | None
    comparison_schools: int = Field(description="Distinct comparable schools behind the counted outcomes.")
    state_outcomes: int = Field(0, description="Counted outcomes compared with the state's figures, as their zone had "
                                               "too few comparable schools.")
    stale_outcomes: int
    outcomes: list[OutcomeView] | None = Field(description="School by school, with their reviews and comparison "
                                                           "schools; shown to district staff and the board only.")


class NotMeasuredView(BaseModel):
    measure: OutcomeMeasure
    reason: str


class EvidenceView(BaseModel):
    schools_engaged: int = Field(description="Schools with a confirmed or fulfilled order of the provider's services.")
    schools_with_outcomes: int = Field(description="Of those, schools with reviews for the engagement year and the year before.")
    verdict: Verdict = Field(description="What speaks for the provider: worse anywhere, else better, no different, "
                                         "too few to tell, no evidence yet; not measured when nothing it is judged on "
                                         "has figures.")
    verdict_schools: int = Field(description="n behind the deciding verdict.")
    behind_comparison: bool = Field(description="The deciding evidence has the schools that used it behind their "
                                                "comparable schools (or, with none, declining): ranked below untried.")
    sentence: str = Field(description="The deciding verdict with its numbers, in words.")
    caveat: str | None
    oldest_counted_school_year: str = Field(description="Evidence of older years is stale (zone policy window).")
    policy_version: int | None = Field(description="The zone policy version whose rules judged it (none: defaults).")
    measures: list[MeasureEvidence]
    not_measured: list[NotMeasuredView]


class PartnerEvidence(EvidenceView):
    partner_id: uuid.UUID
    partner_name: str
    vetting_status: VettingStatus | None
    vetted: bool
    categories: list[ServiceCategory] = Field(description="Its services' categories: they name the measures.")


class NeedView(BaseModel):
    need: Need
    because: list[str] = Field(description="The review findings that show the need.")


class Recommendation(BaseModel):
    rank: int
    service: ServiceView
    partner_name: str | None
    vetting_status: VettingStatus | None
    matched_needs: list[Need]
    answers: list[str] = Field(description="The school's findings the service answers (through the needs it meets).")
    rank_group: int = Field(description="1 (better than comparison) to 5 (worse): the ranking rule's group.")
    reasons: list[str] = Field(description="Why it is recommended and ranked where it is: sentences with the numbers.")
    evidence: EvidenceView


class RecommendationsView(BaseModel):
    school_id: uuid.UUID
    school_year: str | None = Field(description="The latest school year with a review.")
    status: ReviewStatus | None = Field(description="The latest year's status: its worst subject.")
    findings_stale: bool = Field(description="The latest review is older than the zone policy's evidence window.")
    tier: AutonomyTier
    needs: list[NeedView]
    ranking_rule: str = Field(description="How the recommendations are ordered, in words.")
    recommendations: list[Recommendation]
    note: str | None = Field(description="Why there are no recommendations, or that the findings are stale.")
