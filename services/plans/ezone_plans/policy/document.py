"""The zone policy document. Every field has a default, so a new zone starts with a complete policy;
a change is a whole new version (PUT), validated here."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from ezone_schemas.catalog import (
    OutcomeMeasure,
    ServiceCategory,
    default_district_service_categories,
    default_evidence_measures,
)
from ezone_schemas.vocabulary import (
    GRADES,
    METRIC_RANGES,
    GroupCode,
    Metric,
    ResultChoice,
    Subgroup,
    Subject,
    default_accountability_assessments,
    grade_as_named,
)
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

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


class EvidenceRules(BaseModel):
    """How the catalog judges a partner's evidence of impact against comparable schools (docs/catalog.md)."""

    model_config = ConfigDict(extra="forbid")

    minimum_schools: Annotated[int, Field(ge=1, le=100, description=(
        "Schools that used a service, each with an outcome and a comparison, needed for a verdict; fewer: "
        "`too_few_to_tell`."))] = 5
    minimum_comparison_schools: Annotated[int, Field(ge=1, le=100, description=(
        "Comparable schools an outcome needs; with fewer in the zone it has no comparison and does not count."))] = 3
    comparable_within_points: Annotated[float, Field(gt=0, le=100, description=(
        "A comparable school did not use the service, and its figure the year before was within this many points "
        "of the school's, in the same subject and years."))] = 10.0
    meaningful_difference: Annotated[float, Field(ge=0, le=100, description=(
        "`better_than_comparison` / `worse_than_comparison` need a mean difference of at least this many points "
        "and a 95% interval that does not include 0; otherwise `no_different`."))] = 2.0
    window_school_years: Annotated[int, Field(ge=1, le=50, description=(
        "Evidence and review findings of the current school year and the `window_school_years - 1` before it "
        "count; older ones are marked stale (outcomes: shown, not counted)."))] = 3
    measures: dict[ServiceCategory, list[OutcomeMeasure]] = Field(
        default_factory=default_evidence_measures,
        description="What a service of each category is judged on; a category left out or with none: not measured.")


class DistrictServicesLine(BaseModel):
    """What the district provides every school, paid from a line of its own rather than the school's plan (docs/catalog.md)."""

    model_config = ConfigDict(extra="forbid")

    categories: Annotated[list[ServiceCategory], Field(max_length=len(ServiceCategory))] = Field(
        default_factory=default_district_service_categories, description=(
            "A non-optional service of these categories is charged to the district-services line; any other "
            "non-optional service, and every order, to the services budget of the school's approved plan."))
    per_pupil_allocation: Annotated[Decimal | None, Field(ge=0, max_digits=14, decimal_places=2, description=(
        "The line per pupil of the school's enrollment, shown beside what is charged to it; null: the district "
        "covers these services in full."))] = None

    @field_validator("categories")
    @classmethod
    def _each_once(cls, categories: list[ServiceCategory]) -> list[ServiceCategory]:
        if len(set(categories)) != len(categories):
            raise _invalid("district_services.categories lists each category once")
        return categories


MAX_ACCOUNTABILITY_RULES = 50


def _invalid(message: str) -> PydanticCustomError:
    # Kept as written (a ValueError's message would start with "Value error, ").
    return PydanticCustomError("invalid_policy_value", message)


def _code_value(value: Any) -> Any:
    """An Ed-Fi descriptor URI (`uri://ed-fi.org/AssessmentCategoryDescriptor#Benchmark test`) or its code value."""
    return value.rsplit("#", 1)[-1] if isinstance(value, str) else value


def _grade(value: Any) -> Any:
    value = grade_as_named(value)
    if isinstance(value, str) and value not in GRADES:
        raise _invalid("a grade is PK, K or 1 to 12")
    return value


def _unique(values: list[Any] | None) -> list[Any] | None:
    return None if values is None else list(dict.fromkeys(values))


def _unique_levels(values: list[str]) -> list[str]:
    # Levels are compared without regard to case, so `Meeting` and `meeting` are one level.
    kept: dict[str, str] = {}
    for value in values:
        kept.setdefault(value.lower(), value)
    return list(kept.values())


Text255 = Annotated[str, Field(min_length=1, max_length=255)]


class AccountabilityAssessment(BaseModel):
    """Assessments whose results count for accountability: by `namespace` (every assessment it defines, or the one
    `assessment_identifier` names), or by Ed-Fi `assessment_category`; optionally only for some subjects and
    grades. Names are compared exactly as results carry them; performance levels without regard to case."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    namespace: Annotated[Text255 | None, Field(examples=["uri://doe.mass.edu/mcas"], description=(
        "Who defines the assessment, as results name it (`assessment_namespace`; Ed-Fi: the assessment's namespace)."))] = None
    assessment_identifier: Annotated[Text255 | None, Field(examples=["MCAS-G7-MATH"], description=(
        "One assessment of the namespace; left out: every assessment of the namespace."))] = None
    assessment_category: Annotated[Text255 | None, BeforeValidator(_code_value), Field(
        examples=["State summative assessment 3-8 general"],
        description="An Ed-Fi AssessmentCategoryDescriptor code value (or the descriptor's URI): every assessment of "
                    "that category (known for results sent through Ed-Fi).")] = None
    subjects: Annotated[list[Subject] | None, Field(min_length=1), AfterValidator(_unique), Field(
        description="Only results of these subjects; left out: every subject the zone tracks.")] = None
    grades: Annotated[list[Annotated[str, BeforeValidator(_grade)]] | None, Field(min_length=1), AfterValidator(_unique),
                      Field(examples=[["6", "7", "8"]], description=(
                          "Only results of these grades (PK, K, 1-12); left out: any grade, and results that name none."))] = None
    proficient_levels: Annotated[list[Annotated[str, Field(min_length=1, max_length=60)]], Field(max_length=20),
                                 AfterValidator(_unique_levels), Field(
        examples=[["Meeting Expectations", "Exceeding Expectations"]],
        description="Performance levels that count as proficient; a result with another level is not. Left out: "
                    "whether a result is proficient is what it says (`proficient`, derived from known levels).")] = []

    @model_validator(mode="after")
    def _names_assessments(self) -> AccountabilityAssessment:
        if self.assessment_identifier is not None and self.namespace is None:
            raise _invalid("assessment_identifier needs the namespace that defines it")
        if self.namespace is None and self.assessment_category is None:
            raise _invalid("name the assessments by namespace (and, for one of them, assessment_identifier) "
                           "or by assessment_category")
        if self.namespace is not None and self.assessment_category is not None:
            raise _invalid("name the assessments either by namespace or by assessment_category, not both")
        return self

    def selector(self) -> tuple[Any, ...]:
        """What it names: two entries that name the same results are one mistake."""
        return (self.namespace, self.assessment_identifier, self.assessment_category,
                None if self.subjects is None else frozenset(self.subjects),
                None if self.grades is None else frozenset(self.grades))


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
    subgroups: list[GroupCode] = Field(
        default_factory=lambda: [
            Subgroup.ALL_STUDENTS, Subgroup.HIGH_NEEDS, Subgroup.ENGLISH_LEARNERS, Subgroup.STUDENTS_WITH_DISABILITIES,
            Subgroup.LOW_INCOME, Subgroup.AFRICAN_AMERICAN_BLACK, Subgroup.HISPANIC_LATINO,
        ],
        min_length=1,
        description="The student groups this zone's accountability uses (codes of the deployment's group vocabulary, "
                    "`GET /student-groups` of the results service); plan goals may only name these.",
    )
    subject_weights: dict[Subject, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {Subject.ELA: 1.0, Subject.MATH: 1.0, Subject.SCIENCE: 0.5}
    )
    integrity: IntegrityThresholds = Field(default_factory=IntegrityThresholds)
    accountability_assessments: Annotated[list[AccountabilityAssessment], Field(max_length=MAX_ACCOUNTABILITY_RULES)] = Field(
        default_factory=lambda: [AccountabilityAssessment.model_validate(rule) for rule in default_accountability_assessments()],
        description="Which assessments' results a review counts (every other result is kept but never reviewed). A "
                    "result counts when any entry names it; the first such entry's `proficient_levels` apply.",
    )
    result_choice: ResultChoice = Field(
        ResultChoice.LATEST,
        description="When several counting results of a student, subject and school year exist, the one a review uses: "
                    "`latest` administration (a retake replaces the earlier attempt), `earliest` (the first attempt) or "
                    "`highest_score`. A result with a score or level always beats a not-tested row; ties go to the "
                    "higher scale score, then to the assessment's namespace and identifier.",
    )
    alert_school_years: Annotated[int, Field(ge=1, le=50)] = Field(
        2, description="Which reviews alert: those of the current school year (the one today falls in; a school year "
                       "starts on 1 July), of the `alert_school_years - 1` years before it, or later. Reviews of "
                       "earlier years (a history load, a backfill) are kept and shown but alert no one, and neither "
                       "do the tier changes they cause. 2: the current and the previous school year.")
    voting: VotingRule = Field(default_factory=VotingRule)
    tiers: TierRules = Field(default_factory=TierRules)
    evidence: EvidenceRules = Field(default_factory=EvidenceRules)
    district_services: DistrictServicesLine = Field(default_factory=DistrictServicesLine)

    @field_validator("accountability_assessments")
    @classmethod
    def _accountability_assessments(cls, rules: list[AccountabilityAssessment],
                                    info: ValidationInfo) -> list[AccountabilityAssessment]:
        if not rules:
            raise _invalid("name at least one assessment: with none, no student result would count for accountability")
        seen: dict[tuple[Any, ...], int] = {}
        tracked = info.data.get("subjects")  # absent when `subjects` itself is invalid
        for index, rule in enumerate(rules):
            if (first := seen.setdefault(rule.selector(), index)) != index:
                raise _invalid(f"accountability_assessments[{index}] names the same results as "
                               f"accountability_assessments[{first}]")
            untracked = [s.value for s in rule.subjects or () if tracked is not None and s not in tracked]
            if untracked:
                raise _invalid(f"accountability_assessments[{index}].subjects names {', '.join(untracked)}, which the "
                               f"zone does not track (subjects)")
        return rules

    # Field validators, not a model validator: a model validator runs only once every field is valid, so its
    # errors would come a request after the others.
    @field_validator("subgroups")
    @classmethod
    def _tracks_all_students(cls, subgroups: list[str]) -> list[str]:
        if Subgroup.ALL_STUDENTS not in subgroups:
            raise ValueError("subgroups must include all_students")
        return subgroups

    @field_validator("approaching_band")
    @classmethod
    def _bands_within_range(cls, bands: dict[Metric, float]) -> dict[Metric, float]:
        for metric, band in bands.items():
            low, high = METRIC_RANGES[metric]
            if band > high - low:
                raise ValueError(f"approaching_band.{metric.value} ({band}) is wider than the metric's range {low}–{high}")
        return bands
