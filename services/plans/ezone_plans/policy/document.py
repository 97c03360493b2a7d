"""The zone policy document. Every field has a default, so a new zone starts with a complete policy;
a change is a whole new version (PUT), validated here."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from ezone_schemas.vocabulary import METRIC_RANGES, Metric, Subgroup, Subject
from pydantic import BaseModel, ConfigDict, Field, model_validator

Percent = Annotated[float, Field(ge=0, le=100)]
MAX_BOARD_SIZE = 25


class IntegrityThresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gain_sd_threshold: Annotated[float, Field(gt=0, le=10, description="Flag a year-over-year gain this many SDs above comparable schools' mean gain.")] = 3.0
    low_scorer_drop_share: Annotated[float, Field(gt=0, le=1, description="Flag when at least this share of the students who stopped being tested were last year's low scorers.")] = 0.5
    low_scorer_drop_min_students: Annotated[int, Field(ge=1)] = 5
    exemption_jump_points: Annotated[float, Field(gt=0, le=100, description="Flag a rise in not-tested/exempt share of at least this many percentage points.")] = 3.0


class VotingRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    board_size: Annotated[int, Field(ge=1, le=MAX_BOARD_SIZE, description="Seats on the Zone Board, numbered 1..board_size.")] = 7
    quorum: Annotated[int, Field(ge=1, description="Votes that must be cast before a plan can be decided.")] = 4
    majority: Literal["of_seated", "of_votes_cast"] = Field(
        "of_seated", description="`of_seated`: more than half of the seated members must agree (4 of 7)."
    )

    @model_validator(mode="after")
    def _quorum_fits_the_board(self) -> VotingRule:
        if self.quorum > self.board_size:
            raise ValueError(f"voting.quorum ({self.quorum}) cannot exceed voting.board_size ({self.board_size})")
        return self


class TierRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full_after_years_meeting: Annotated[int, Field(ge=1, le=5)] = 2
    intensive_after_years_off_track: Annotated[int, Field(ge=1, le=5)] = 2
    auto_approve_amendment_below: Annotated[Decimal, Field(ge=0, description="`full` tier: an amendment changing the budget total by less than this is approved on submission.")] = Decimal("25000")
    intensive_requires_vetted_partner: bool = True


def _default_bands() -> dict[Metric, float]:
    return {
        Metric.PROFICIENCY_RATE: 5.0,
        Metric.AVERAGE_SCALED_SCORE: 3.0,
        Metric.MEDIAN_GROWTH_PERCENTILE: 5.0,
        Metric.PARTICIPATION_RATE: 2.0,
        Metric.ACHIEVEMENT_PERCENTILE: 5.0,
    }


class PolicyDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    participation_minimum: Percent = 95.0
    minimum_n: Annotated[int, Field(ge=1, le=100, description="Below this many students a figure is suppressed: insufficient_data.")] = 10
    approaching_band: dict[Metric, Annotated[float, Field(ge=0)]] = Field(
        default_factory=_default_bands,
        description="How far below a target (in the metric's unit) still counts as `approaching`.",
    )
    subjects: list[Subject] = Field(default_factory=lambda: list(Subject), min_length=1)
    subgroups: list[Subgroup] = Field(
        default_factory=lambda: [
            Subgroup.ALL_STUDENTS, Subgroup.HIGH_NEEDS, Subgroup.ENGLISH_LEARNERS, Subgroup.STUDENTS_WITH_DISABILITIES,
            Subgroup.LOW_INCOME, Subgroup.AFRICAN_AMERICAN_BLACK, Subgroup.HISPANIC_LATINO,
        ],
        min_length=1,
        description="The subgroups this zone tracks; plan goals may only name these.",
    )
    subject_weights: dict[Subject, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {Subject.ELA: 1.0, Subject.MATH: 1.0, Subject.SCIENCE: 0.5}
    )
    integrity: IntegrityThresholds = Field(default_factory=IntegrityThresholds)
    voting: VotingRule = Field(default_factory=VotingRule)
    tiers: TierRules = Field(default_factory=TierRules)

    @model_validator(mode="after")
    def _consistent(self) -> PolicyDocument:
        if Subgroup.ALL_STUDENTS not in self.subgroups:
            raise ValueError("subgroups must include all_students")
        for metric, band in self.approaching_band.items():
            low, high = METRIC_RANGES[metric]
            if band > high - low:
                raise ValueError(f"approaching_band.{metric.value} ({band}) is wider than the metric's range {low}–{high}")
        return self
