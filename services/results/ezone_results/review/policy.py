"""The part of a zone's policy document the review engine reads.

The plans service owns the document (and validates it); this service keeps every version it was sent
(`ZonePolicyRecord.document`) and reads only these fields, ignoring the rest, so a new policy field
never breaks a review. Defaults are the plans service's defaults: a review of a zone whose policy has
not arrived yet uses them (and records no policy version).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated

from ezone_schemas.vocabulary import (
    GroupCode,
    Metric,
    ResultChoice,
    Subgroup,
    Subject,
    default_accountability_assessments,
)
from pydantic import BaseModel, ConfigDict, Field


class IntegrityThresholds(BaseModel):
    model_config = ConfigDict(extra="ignore")

    gain_sd_threshold: float = 3.0
    low_scorer_drop_share: float = 0.5
    low_scorer_drop_min_students: int = 5
    exemption_jump_points: float = 3.0


class AccountabilityAssessment(BaseModel):
    """Results that count for accountability: of the namespace (one assessment of it, if an identifier is given) or of
    the Ed-Fi category, optionally only some subjects and grades; `proficient_levels` decide proficiency from a level."""

    model_config = ConfigDict(extra="ignore")

    namespace: str | None = None
    assessment_identifier: str | None = None
    assessment_category: str | None = None
    subjects: list[str] | None = None
    grades: list[str] | None = None
    proficient_levels: list[str] = Field(default_factory=list)


def _default_bands() -> dict[Metric, float]:
    return {
        Metric.PROFICIENCY_RATE: 5.0,
        Metric.AVERAGE_SCALED_SCORE: 3.0,
        Metric.MEDIAN_GROWTH_PERCENTILE: 5.0,
        Metric.PARTICIPATION_RATE: 2.0,
        Metric.ACHIEVEMENT_PERCENTILE: 5.0,
    }


class ReviewPolicy(BaseModel):
    model_config = ConfigDict(extra="ignore")

    participation_minimum: float = 95.0
    minimum_n: Annotated[int, Field(ge=1)] = 10
    approaching_band: dict[Metric, float] = Field(default_factory=_default_bands)
    subjects: list[Subject] = Field(default_factory=lambda: list(Subject))
    # The groups the zone's accountability uses: codes of the group vocabulary. A policy that names none uses the
    # groups the vocabulary flags (`student_groups.accountability`, see `with_groups`); these are the flagged ones
    # every deployment starts with.
    subgroups: list[GroupCode] = Field(
        default_factory=lambda: [
            Subgroup.ALL_STUDENTS, Subgroup.HIGH_NEEDS, Subgroup.ENGLISH_LEARNERS, Subgroup.STUDENTS_WITH_DISABILITIES,
            Subgroup.LOW_INCOME, Subgroup.AFRICAN_AMERICAN_BLACK, Subgroup.HISPANIC_LATINO,
        ]
    )
    integrity: IntegrityThresholds = Field(default_factory=IntegrityThresholds)
    accountability_assessments: list[AccountabilityAssessment] = Field(
        default_factory=lambda: [AccountabilityAssessment.model_validate(rule) for rule in default_accountability_assessments()])
    result_choice: ResultChoice = ResultChoice.LATEST
    alert_school_years: Annotated[int, Field(ge=1)] = 2

    def alerts_for(self, school_year: str, as_of: date) -> bool:
        """Whether a review of `school_year` may alert: the current school year (the one `as_of` falls in; a school
        year starts on 1 July), the `alert_school_years - 1` before it, or a later one. An earlier year's review (a
        history load, a backfill) is kept and shown, and alerts no one."""
        if not school_year[:4].isdigit():
            return True  # not a school year label: nothing says it is history
        current = as_of.year if as_of.month >= 7 else as_of.year - 1
        return int(school_year[:4]) > current - self.alert_school_years

    def with_groups(self, accountability: Sequence[str]) -> ReviewPolicy:
        """The policy with the deployment's accountability groups when it names none of its own."""
        if "subgroups" in self.model_fields_set or not accountability:
            return self
        return self.model_copy(update={"subgroups": list(accountability)})

    def band(self, metric: Metric) -> float:
        return self.approaching_band.get(metric, _default_bands()[metric])
