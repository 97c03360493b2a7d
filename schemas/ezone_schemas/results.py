"""Events produced by the results service (topic ezone.results.v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from . import topics
from .base import Event
from .vocabulary import GroupCode, Metric, ReviewStatus, Subgroup, Subject


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


class ResultsPostedV2(Event):
    ce_type = "org.ezone.results.results.posted.v2"
    topic = topics.RESULTS
    summary = ("A batch stored new or corrected results for one school, academic subject and school year, whatever "
               "the subject: every result kept is announced, whether the review uses it or not.")

    zone_id: str
    school_id: UUID
    school_year: str
    subject: str = Field(description="ELA, MATH or SCI for the subjects ezone reviews; for another, the academic "
                         "subject's code value as its assessment names it (e.g. `Social Studies`); empty when the "
                         "assessment names none.")
    assessment_identifiers: list[str] = Field(description="The assessments of this subject the batch touched.")
    batch_id: UUID
    source: str = Field(description="json, csv, edfi or mcas.")
    rows_inserted: int
    rows_updated: int
    posted_at: datetime

    def as_v1(self) -> ResultsPosted | None:
        """The same announcement for v1 consumers, whose subject is one ezone reviews; None for another subject."""
        if self.subject not in set(Subject):
            return None
        return ResultsPosted(**self.model_dump())


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


StatusRule = Literal[
    "goal_met", "goal_within_band", "goal_below_band", "too_few_students", "no_value",
    "worst_goal", "not_below_last_year", "within_band_of_last_year", "below_band_of_last_year", "no_last_year",
]


class StatusReason(BaseModel):
    """Why a status is what it is: the rule that decided it, the numbers it compared, and the same in a sentence."""

    rule: StatusRule = Field(description=(
        "goal_met: this year at or above the target. goal_within_band: below it by at most the policy's band. "
        "goal_below_band: below it by more. too_few_students: fewer tested than the policy's minimum n. no_value: the "
        "metric has no value (e.g. no average scaled score, not ranked). worst_goal: the overall status is the worst "
        "goal status (the goal's numbers follow). not_below_last_year / within_band_of_last_year / "
        "below_band_of_last_year: with no goal judged, all-students proficiency against last year's. no_last_year: "
        "nothing to compare with."))
    status: ReviewStatus
    sentence: str = Field(description="The reason in words, e.g. \"Off track: 15% proficient, 11 points below "
                                      "last year's 26%; the zone policy calls a drop of more than 5 points off track.\"")
    metric: Metric | None = None
    subgroup: Subgroup | None = None
    actual: float | None = Field(None, description="This year's value of the metric.")
    compared_with: Literal["goal", "last_year"] | None = None
    reference: float | None = Field(None, description="What `actual` was compared with: the target, or last year's value.")
    reference_year: str | None = Field(None, description="The school year of `reference` when it is last year's value.")
    difference: float | None = Field(None, description="actual - reference (negative: below).")
    band: float | None = Field(None, description="The policy's approaching band for the metric.")
    n_tested: int | None = Field(None, description="Students tested in the subgroup (when the count decided).")
    minimum_n: int | None = Field(None, description="The policy's minimum n.")


class GoalFinding(BaseModel):
    goal_id: UUID | None
    metric: Metric
    subject: Subject
    subgroup: Subgroup
    target: float
    actual: float | None
    status: ReviewStatus
    reason: StatusReason | None = Field(None, description="Why the goal has its status (absent from older reviews).")


class IntegrityFlag(BaseModel):
    kind: str = Field(description="low_participation, improbable_gain, low_scorer_drop or exemption_spike.")
    subgroup: Subgroup | None = None
    summary: str
    evidence: dict = Field(default_factory=dict, description="The numbers and comparison group behind the flag.")


class StateFigures(BaseModel):
    """The state's all-students figures for a school year and subject (the statewide row of its files)."""

    proficiency_rate: float | None = None
    median_growth_percentile: float | None = None
    participation_rate: float | None = None


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
    reason: StatusReason | None = Field(None, description="Why the review's overall status is what it is.")
    current: bool = Field(True, description=(
        "Whether the zone's policy counts the school year as current for alerts (`alert_school_years`). A review of "
        "an earlier year (a history load, a backfill) is kept and shown like any other but alerts no one."))
    state: StateFigures | None = Field(None, description=(
        "The state's all-students figures for the same school year and subject, when its files are loaded: what "
        "partner evidence compares a school with when its zone has too few comparable schools."))


# ---- v2: student groups as data ----
# The v1 review carries groups of a closed list (`Subgroup`); a deployment's groups are data, so v2 carries any code of
# its vocabulary. The results service publishes both, v1 without the groups v1 cannot name, while consumers move over.


class GroupMetrics(SubgroupMetrics):
    subgroup: GroupCode


class GroupStatusReason(StatusReason):
    subgroup: GroupCode | None = None


class GroupGoalFinding(GoalFinding):
    subgroup: GroupCode
    reason: GroupStatusReason | None = Field(None, description="Why the goal has its status.")


class GroupIntegrityFlag(IntegrityFlag):
    subgroup: GroupCode | None = None


class ReviewCompletedV2(ReviewCompleted):
    ce_type = "org.ezone.results.review.completed.v2"
    topic = topics.RESULTS
    summary = ("An accountability review of one school, school year and subject finished (a new version of it); its "
               "student groups are codes of the deployment's vocabulary.")

    goals: list[GroupGoalFinding] = Field(default_factory=list)
    metrics: list[GroupMetrics] = Field(default_factory=list)
    flags: list[GroupIntegrityFlag] = Field(default_factory=list)
    reason: GroupStatusReason | None = Field(None, description="Why the review's overall status is what it is.")

    def as_v1(self) -> ReviewCompleted:
        """The same review for v1 consumers: the figures, goals and flags of groups v1 cannot name are left out, and a
        reason naming such a group keeps its sentence without the code."""
        v1_codes = set(Subgroup)

        def reason(found: GroupStatusReason | None) -> dict | None:
            if found is None:
                return None
            dumped = found.model_dump()
            return dumped if found.subgroup in v1_codes | {None} else {**dumped, "subgroup": None}

        data = self.model_dump(exclude={"goals", "metrics", "flags", "reason"})
        return ReviewCompleted(
            **data,
            goals=[{**g.model_dump(), "reason": reason(g.reason)} for g in self.goals if g.subgroup in v1_codes],
            metrics=[m.model_dump() for m in self.metrics if m.subgroup in v1_codes],
            flags=[f.model_dump() for f in self.flags if f.subgroup in v1_codes | {None}],
            reason=reason(self.reason),
        )
