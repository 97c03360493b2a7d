"""Operating plans over the wire: the plan's content (five levers and goals), votes, and the views.

The shape is checked here; what depends on the zone (its subjects and subgroups, its school year,
vetted partners) is checked by the service and reported in the same format.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from ezone_schemas.vocabulary import Lever, Metric, Subgroup, Subject
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

SCHOOL_YEAR_PATTERN = r"^20\d{2}-\d{2}$"


def consecutive_years(value: str) -> str:
    first, second = value.split("-")
    if (int(first) + 1) % 100 != int(second):
        raise ValueError(f"a school year runs over two consecutive years, e.g. {first}-{(int(first) + 1) % 100:02d}")
    return value


SchoolYear = Annotated[str, Field(pattern=SCHOOL_YEAR_PATTERN, examples=["2025-26"]), AfterValidator(consecutive_years)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
Narrative = Annotated[str, Field(min_length=1, max_length=5000)]
Money = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Decision(_Input):
    title: ShortText
    description: Annotated[str, Field(max_length=5000)] = ""


class CurriculumDecision(Decision):
    subjects: list[Subject] = Field(default_factory=list)
    grades: list[Annotated[str, Field(pattern=r"^(PK|K|[1-9]|1[0-2])$")]] = Field(default_factory=list)
    materials: ShortText | None = None


class StaffingDecision(Decision):
    position: ShortText | None = None
    fte_change: Annotated[Decimal | None, Field(ge=-100, le=100, decimal_places=2)] = None


class ScheduleDecision(Decision):
    instructional_minutes_per_day: Annotated[int | None, Field(ge=0, le=720)] = None
    school_days: Annotated[int | None, Field(ge=0, le=366)] = None
    effective_from: date | None = None


class BudgetDecision(Decision):
    amount: Money | None = None


class CultureDecision(Decision):
    practice: ShortText | None = None


class _LeverBase(_Input):
    narrative: Narrative


class CurriculumLever(_LeverBase):
    decisions: Annotated[list[CurriculumDecision], Field(max_length=50)] = Field(default_factory=list)


class StaffingLever(_LeverBase):
    decisions: Annotated[list[StaffingDecision], Field(max_length=50)] = Field(default_factory=list)


class ScheduleLever(_LeverBase):
    decisions: Annotated[list[ScheduleDecision], Field(max_length=50)] = Field(default_factory=list)


class CultureLever(_LeverBase):
    decisions: Annotated[list[CultureDecision], Field(max_length=50)] = Field(default_factory=list)


class LineItem(_Input):
    description: ShortText
    amount: Money
    category: Literal["staffing", "services", "materials", "facilities", "other"]
    provider: Literal["district", "partner", "internal"]
    service_id: uuid.UUID | None = None
    partner_id: Annotated[uuid.UUID | None, Field(validate_default=True)] = None

    @field_validator("partner_id")
    @classmethod
    def _partner_named(cls, value: uuid.UUID | None, info: ValidationInfo) -> uuid.UUID | None:
        if value is None and info.data.get("provider") == "partner":
            raise ValueError("a partner line item must name its partner_id")
        return value


class BudgetLever(_LeverBase):
    decisions: Annotated[list[BudgetDecision], Field(max_length=50)] = Field(default_factory=list)
    per_pupil_allocation: Money
    total: Money
    # That they fit the total is checked with the goals (rules.budget_errors), so one answer lists both.
    line_items: Annotated[list[LineItem], Field(max_length=500)] = Field(default_factory=list)


class Levers(_Input):
    curriculum: CurriculumLever
    staffing: StaffingLever
    schedule: ScheduleLever
    budget: BudgetLever
    culture: CultureLever


class InterimTargetIn(_Input):
    due: date
    target: float


class GoalIn(_Input):
    goal_id: uuid.UUID | None = Field(None, description=(
        "The goal's id as read: accepted when it is this plan's goal measuring the same metric, subject and subgroup; "
        "left out, the goal keeps its id (or gets a new one)."))
    metric: Metric
    subject: Subject
    subgroup: Subgroup
    baseline: float | None = Field(None, description="Where the school stands now; null when there is no figure yet.")
    annual_target: float
    interim_targets: Annotated[list[InterimTargetIn], Field(max_length=12)] = Field(default_factory=list)

    def key(self) -> tuple[str, str, str]:
        """What a goal measures; unique within a plan."""
        return self.metric.value, self.subject.value, self.subgroup.value


class PlanContent(_Input):
    """The body of PUT: the whole content of the open version."""

    levers: Levers
    goals: Annotated[list[GoalIn], Field(min_length=1, max_length=50)]


class PlanCreate(PlanContent):
    school_year: SchoolYear


class StoredGoal(GoalIn):
    goal_id: uuid.UUID = Field(description="Kept across edits and versions while the metric, subject and subgroup stay.")


class StoredContent(BaseModel):
    levers: Levers
    goals: list[StoredGoal]


class VoteTally(BaseModel):
    approvals: int
    returns: int


class VersionView(BaseModel):
    version: int
    status: str
    revision: int
    etag: str
    amendment: bool
    automatic: bool = Field(description="Approved on submission without a vote (earned autonomy).")
    policy_version: int | None
    content: StoredContent
    created_by: str
    created_at: datetime
    updated_at: datetime
    submitted_by: str | None
    submitted_at: datetime | None
    decided_at: datetime | None
    votes: VoteTally | None = Field(description="Votes cast on this version; hidden from the school until it is decided.")


class PlanView(BaseModel):
    id: uuid.UUID
    zone_id: str
    school_id: uuid.UUID
    school_year: str
    status: str = Field(description="The open version's status, else `approved`.")
    open_version: VersionView | None = Field(description="The version being written or decided: draft, submitted or returned.")
    approved_version: VersionView | None
    created_at: datetime


class VoteIn(_Input):
    decision: Literal["approve", "return"]
    comments: dict[Lever, Narrative] = Field(default_factory=dict, description="An optional comment per lever.")


class VoteView(BaseModel):
    member_id: uuid.UUID
    member_name: str
    seat: int
    version: int
    decision: str
    comments: dict[Lever, str]
    cast_at: datetime
    changed_at: datetime | None


class VoteResult(BaseModel):
    vote: VoteView
    status: str = Field(description="The version's status after this vote: still `submitted`, or decided.")
    votes: VoteTally


class QueueItem(BaseModel):
    plan_id: uuid.UUID
    school_id: uuid.UUID
    school_name: str
    school_year: str
    version: int
    status: str
    amendment: bool
    submitted_by: str | None
    submitted_at: datetime | None
    votes: VoteTally
    my_vote: VoteView | None = Field(description="The requesting board member's own vote, if any.")
