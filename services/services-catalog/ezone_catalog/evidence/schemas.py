"""Evidence of impact and recommendations over the wire."""

from __future__ import annotations

import uuid

from ezone_schemas.catalog import Need
from ezone_schemas.vocabulary import AutonomyTier, ReviewStatus, Subject, VettingStatus
from pydantic import BaseModel, Field

from ..services.schemas import ServiceView


class OutcomeView(BaseModel):
    school_id: uuid.UUID
    school_name: str
    school_year: str = Field(description="The year of the engagement; `before` figures are from the year before.")
    proficiency_before: float
    proficiency_after: float
    proficiency_change: float
    growth_before: float | None
    growth_after: float | None
    growth_change: float | None


class SubjectEvidence(BaseModel):
    subject: Subject
    schools: int = Field(description="Schools with an outcome in this subject.")
    proficiency_change: float | None = Field(description="Mean change of the all-students proficiency rate, percentage points.")
    growth_change: float | None = Field(description="Mean change of the all-students median growth percentile.")
    comparison_schools: int = Field(description="The zone's other schools with figures for the same years.")
    comparison_proficiency_change: float | None
    comparison_growth_change: float | None
    caveat: str | None = Field(description="Said plainly when too few schools stand behind the figures.")
    outcomes: list[OutcomeView] | None = Field(description="School by school; shown to district staff and the board only.")


class EvidenceView(BaseModel):
    schools_engaged: int = Field(description="Schools with a confirmed or fulfilled order of the provider's services.")
    schools_with_outcomes: int = Field(description="Of those, schools with reviews for the engagement year and the year before.")
    caveat: str | None
    subjects: list[SubjectEvidence]


class PartnerEvidence(EvidenceView):
    partner_id: uuid.UUID
    partner_name: str
    vetting_status: VettingStatus | None
    vetted: bool


class NeedView(BaseModel):
    need: Need
    because: list[str] = Field(description="The review findings that show the need.")


class Recommendation(BaseModel):
    rank: int
    service: ServiceView
    partner_name: str | None
    vetting_status: VettingStatus | None
    matched_needs: list[Need]
    evidence_score: float | None = Field(description="Mean proficiency change of the provider's schools in the subjects "
                                                     "this school needs help in: what the ranking uses first.")
    evidence: EvidenceView


class RecommendationsView(BaseModel):
    school_id: uuid.UUID
    school_year: str | None = Field(description="The latest school year with a review.")
    status: ReviewStatus | None = Field(description="The latest year's status: its worst subject.")
    tier: AutonomyTier
    needs: list[NeedView]
    recommendations: list[Recommendation]
    note: str | None = Field(description="Why there are no recommendations, when there are none.")
