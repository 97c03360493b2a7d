"""Words every service shares: subjects, metrics, subgroups, statuses, levers, tiers.

Metric ranges follow MCAS: scaled scores run 440–560; growth and achievement percentiles 1–99.
"""

from __future__ import annotations

from enum import StrEnum


class Subject(StrEnum):
    ELA = "ELA"
    MATH = "MATH"
    SCIENCE = "SCI"


class Metric(StrEnum):
    PROFICIENCY_RATE = "proficiency_rate"  # % meeting or exceeding expectations
    AVERAGE_SCALED_SCORE = "average_scaled_score"
    MEDIAN_GROWTH_PERCENTILE = "median_growth_percentile"
    PARTICIPATION_RATE = "participation_rate"  # % of enrolled students tested
    ACHIEVEMENT_PERCENTILE = "achievement_percentile"  # school's rank among all schools, by average scaled score


METRIC_RANGES: dict[Metric, tuple[float, float]] = {
    Metric.PROFICIENCY_RATE: (0.0, 100.0),
    Metric.AVERAGE_SCALED_SCORE: (440.0, 560.0),
    Metric.MEDIAN_GROWTH_PERCENTILE: (1.0, 99.0),
    Metric.PARTICIPATION_RATE: (0.0, 100.0),
    Metric.ACHIEVEMENT_PERCENTILE: (1.0, 99.0),
}


class Subgroup(StrEnum):
    ALL_STUDENTS = "all_students"
    HIGH_NEEDS = "high_needs"
    ENGLISH_LEARNERS = "el"
    STUDENTS_WITH_DISABILITIES = "swd"
    LOW_INCOME = "low_income"
    AFRICAN_AMERICAN_BLACK = "afr_american_black"
    HISPANIC_LATINO = "hispanic_latino"
    WHITE = "white"
    ASIAN = "asian"
    MULTI_RACE = "multi_race"


class ReviewStatus(StrEnum):
    MEETING = "meeting"
    APPROACHING = "approaching"
    OFF_TRACK = "off_track"
    INSUFFICIENT_DATA = "insufficient_data"


class Lever(StrEnum):
    CURRICULUM = "curriculum"
    STAFFING = "staffing"
    SCHEDULE = "schedule"
    BUDGET = "budget"
    CULTURE = "culture"


class AutonomyTier(StrEnum):
    FULL = "full"
    STANDARD = "standard"
    INTENSIVE_SUPPORT = "intensive_support"


class VettingStatus(StrEnum):
    VETTED = "vetted"
    PROVISIONAL = "provisional"
    NOT_VETTED = "not_vetted"
    REVOKED = "revoked"
