"""Events produced by the results service (topic ezone.results.v1)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from . import topics
from .base import Event
from .vocabulary import Metric, ReviewStatus, Subgroup, Subject


class ResultsPosted(Event):
    ce_type = "org.ezone.results.results.posted.v1"
    topic = topics.RESULTS
    summary = "A batch stored new or corrected results for one school, assessment subject and school year."

    zone_id: str
    school_id: UUID
    school_year: str
    subject: Subject
    assessment_identifiers: list[str] = Field(description="The assessments of this subject the batch touched.")
    batch_id: UUID
    source: str = Field(description="json, csv, edfi or mcas.")
    rows_inserted: int
    rows_updated: int
    posted_at: datetime


class SubgroupMetrics(BaseModel):
    subgroup: Subgroup
    n_tested: int
    n_enrolled: int | None = None
    suppressed: bool = Field(False, description="Fewer students than the policy's minimum n: no figures are reported.")
    proficiency_rate: float | None = None
    average_scaled_score: float | None = None
    median_growth_percentile: float | None = None
    participation_rate: float | None = None
    achievement_percentile: float | None = None


class AssessmentCounted(BaseModel):
    """An assessment whose results a review counted: the zone policy's `accountability_assessments` named it."""

    namespace: str
    assessment_identifier: str
    assessment_category: str | None = Field(None, description="The Ed-Fi assessment's category, when known.")
    students: int = Field(description="Students whose counted result (one per student) is of this assessment.")
    tested: int = Field(description="Of them, those with a scale score or a performance level (the others: not-tested rows).")


class GoalFinding(BaseModel):
    goal_id: UUID | None
    metric: Metric
    subject: Subject
    subgroup: Subgroup
    target: float
    actual: float | None
    status: ReviewStatus


class IntegrityFlag(BaseModel):
    kind: str = Field(description="low_participation, improbable_gain, low_scorer_drop or exemption_spike.")
    subgroup: Subgroup | None = None
    summary: str
    evidence: dict = Field(default_factory=dict, description="The numbers and comparison group behind the flag.")


class ReviewCompleted(Event):
    ce_type = "org.ezone.results.review.completed.v1"
    topic = topics.RESULTS
    summary = "An accountability review of one school, school year and subject finished (a new version of it)."

    review_id: UUID
    zone_id: str
    school_id: UUID
    school_year: str
    subject: Subject
    version: int
    status: ReviewStatus
    goals: list[GoalFinding] = Field(default_factory=list)
    metrics: list[SubgroupMetrics] = Field(default_factory=list)
    flags: list[IntegrityFlag] = Field(default_factory=list)
    policy_version: int | None = None
    plan_version: int | None = None
    batch_ids: list[UUID] = Field(default_factory=list)
    completed_at: datetime
    assessments: list[AssessmentCounted] = Field(
        default_factory=list, description="The assessments whose student results the metrics counted (none: the "
                                          "metrics are a state's school-level figures). No other result entered them.")
