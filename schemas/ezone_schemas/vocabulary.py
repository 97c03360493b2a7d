"""Words every service shares: subjects, metrics, subgroups, statuses, levers, tiers.

Metric ranges follow MCAS: scaled scores run 440–560; growth and achievement percentiles 1–99.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field


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
    """The student groups of the `.v1` events (a closed list): codes of every deployment's group vocabulary.

    A deployment's groups are data (the results service's `student_groups`, e.g. DESE's `female`, `title_i`); the
    `.v2` events carry any code of it as a `GroupCode`. These codes keep their meaning in both."""

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


GROUP_CODE_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
GroupCode = Annotated[str, Field(
    pattern=GROUP_CODE_PATTERN, examples=["all_students", "female"],
    description="A student group of the deployment's vocabulary (`GET /student-groups` of the results service): lower "
                "case letters, digits and `_`. A consumer keeps a code it does not know and shows it as written.")]


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


class ResultChoice(StrEnum):
    """How a review picks one result per student, subject and school year when several count for accountability
    (zone policy `result_choice`). A result with a score or a performance level always beats a not-tested row;
    remaining ties go to the higher scale score, then to the assessment's namespace and identifier (alphabetical),
    so the choice never depends on the order the results arrived in."""

    LATEST = "latest"  # the latest administration: a retake replaces the earlier attempt
    EARLIEST = "earliest"  # the first attempt (retakes ignored)
    HIGHEST_SCORE = "highest_score"  # the best attempt by scale score, then the latest


# The MCAS family of assessments, as ezone's JSON and CSV rows name it (`MCAS-G7-MATH`, ...), and the MCAS
# performance levels that count as proficient: since 2017 (as DESE writes them and as SIS exports shorten
# them) and the legacy levels (Advanced, Proficient).
MCAS_NAMESPACE = "uri://doe.mass.edu/mcas"
MCAS_PROFICIENT_LEVELS = ("Exceeding Expectations", "Meeting Expectations", "Exceeding", "Meeting", "Advanced", "Proficient")
# Ed-Fi AssessmentCategoryDescriptor code values of a state's summative (accountability) tests.
STATE_SUMMATIVE_CATEGORIES = (
    "State summative assessment 3-8 general", "State high school subject assessment",
    "State high school course assessment", "State assessment",
)


def default_accountability_assessments() -> list[dict]:
    """A new zone's accountability assessments: MCAS (by namespace: JSON, CSV and Ed-Fi rows alike) and any Ed-Fi
    assessment a state summative category describes. Benchmarks, interims, college entrance exams (ACT, SAT), ...
    never count unless the zone's policy names them."""
    return [
        {"namespace": MCAS_NAMESPACE, "proficient_levels": list(MCAS_PROFICIENT_LEVELS)},
        *({"assessment_category": category} for category in STATE_SUMMATIVE_CATEGORIES),
    ]


GRADES = ("PK", "K", *(str(grade) for grade in range(1, 13)))


def grade_as_named(value: Any) -> Any:
    """`7`, `"07"` and `" k "` are grades 7 and K, as ezone names them; anything else is left for a check."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        value = value.strip().upper()
        if value.isdecimal():
            value = str(int(value))
    return value
