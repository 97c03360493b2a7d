"""The board overview as the page reads it."""

from __future__ import annotations

import uuid
from datetime import datetime

from ezone_schemas.vocabulary import ReviewStatus, Subgroup, Subject
from pydantic import BaseModel, Field


class FlagOut(BaseModel):
    kind: str = Field(description="low_participation, improbable_gain, low_scorer_drop or exemption_spike.")
    subgroup: Subgroup | None
    summary: str


class LatestReview(BaseModel):
    """The newest review of the school's latest reviewed school year for one subject."""

    school_year: str
    status: ReviewStatus
    proficiency_rate: float | None = Field(description="All students, % meeting or exceeding; null when suppressed.")
    participation_rate: float | None
    goal: float | None = Field(description="The approved plan's all-students proficiency target for that year, if any.")
    flags: list[FlagOut]
    reasons: list[str] = Field(description="Why the status is what it is, in sentences with the numbers: the review's "
                                           "own reason first, then its goals'. None for reviews made before reviews "
                                           "gave reasons.")
    version: int
    completed_at: datetime


class TrendPoint(BaseModel):
    school_year: str
    proficiency_rate: float | None = Field(description="All students; null when not reviewed or suppressed.")
    goal: float | None = Field(description="The approved plan's all-students proficiency annual target, if any.")


class SubjectOverview(BaseModel):
    subject: Subject
    latest: LatestReview | None = Field(description="Null until the school has a review of this subject.")
    trend: list[TrendPoint] = Field(description="Every school year with a review or a goal, oldest first.")


class SchoolOverview(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    grade_span: str
    enrollment: int | None
    subjects: list[SubjectOverview] = Field(description="One entry per subject of the overview, in its order.")


class PlanAwaitingVote(BaseModel):
    plan_id: uuid.UUID
    version: int
    school_id: uuid.UUID
    school_name: str
    school_year: str
    amendment: bool
    submitted_at: datetime
    link: str = Field(description="The plan's page on the board, where the member reads it and votes.")


class Member(BaseModel):
    subject: str
    role: str
    name: str | None = Field(description="From the board roster, for a board member the roster knows.")
    seat: int | None


class BoardOverview(BaseModel):
    zone_id: str
    member: Member
    subjects: list[Subject] = Field(description="The subjects any school of the zone has a review or a goal for.")
    schools: list[SchoolOverview]
    plans_awaiting_vote: list[PlanAwaitingVote] = Field(
        description="Submitted plan versions not yet decided that this member has not voted on (board members only).")
