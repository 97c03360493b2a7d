"""What the review API answers, and the per-subgroup figures a review stores."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from ezone_schemas.results import (
    AssessmentCounted,
    GroupGoalFinding,
    GroupIntegrityFlag,
    GroupMetrics,
    GroupStatusReason,
)
from ezone_schemas.vocabulary import ReviewStatus, Subject
from pydantic import BaseModel, Field

# Where a participation rate's denominator came from: enrollments in the tested grades (plus anyone with
# a result row), only the result rows (tested + not-tested codes: no enrollments known), or a state file.
ParticipationBasis = Literal["enrollments", "result_rows", "aggregate"]


class SubgroupFigures(GroupMetrics):
    """The contract's figures plus what a reader needs to trust them; stored with the review, served by the API."""

    source: Literal["student_results", "aggregate"] = Field(
        description="Computed from student rows, or taken from a school-level aggregate (e.g. MCAS) when there are none.")
    unranked_reason: str | None = Field(
        None, description="Why there is no achievement percentile: the state does not rank the group (e.g. a "
                          "special-purpose school, fewer than 10 students), or the policy's minimum n suppresses it.")
    participation_basis: ParticipationBasis | None = Field(
        None, description="`result_rows`: no enrollments were known, so tested ÷ (tested + not-tested rows).")
    assessments: list[AssessmentCounted] | None = Field(
        None, description="all_students, from student rows: the assessments whose results the review counted (one "
                          "result per student: the zone policy's `result_choice`); no other result entered any figure.")


class ReviewOut(BaseModel):
    id: uuid.UUID
    zone_id: str
    school_id: uuid.UUID
    school_year: str
    subject: Subject
    version: int
    status: ReviewStatus
    reason: GroupStatusReason | None = Field(None, description="Why the overall status is what it is (none: a "
                                                               "review made before reviews gave their reasons).")
    metrics: list[SubgroupFigures]
    goals: list[GroupGoalFinding]
    flags: list[GroupIntegrityFlag]
    policy_version: int | None
    plan_version: int | None
    batch_ids: list[uuid.UUID]
    created_at: datetime


class MetricsOut(BaseModel):
    school_id: uuid.UUID
    school_year: str
    subject: Subject
    review_id: uuid.UUID
    review_version: int
    reviewed_at: datetime
    metrics: list[SubgroupFigures]
