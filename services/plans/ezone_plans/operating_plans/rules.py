"""The plan lifecycle's pure rules: transitions, vote counting, goal checks, the budget envelope.

Nothing here touches the database, so every rule is unit-tested on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from ezone_schemas.plans import BudgetEnvelope, PlannedService
from ezone_schemas.vocabulary import METRIC_RANGES, AutonomyTier, Subject

from ..policy.document import VotingRule
from .schemas import BudgetLever, GoalIn, StoredGoal


class VersionStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    RETURNED = "returned"
    SUPERSEDED = "superseded"


# A plan has at most one open version (being written or decided) next to its approved one.
OPEN_STATUSES = frozenset({VersionStatus.DRAFT, VersionStatus.SUBMITTED, VersionStatus.RETURNED})


class Action(StrEnum):
    EDIT = "edit"
    SUBMIT = "submit"
    VOTE = "vote"
    APPROVE = "approve"
    RETURN = "return"
    AMEND = "amend"
    SUPERSEDE = "supersede"


TRANSITIONS: dict[tuple[VersionStatus, Action], VersionStatus] = {
    (VersionStatus.DRAFT, Action.EDIT): VersionStatus.DRAFT,
    # A returned version stays `returned` while the school reworks it, so the board's comments stay in view.
    (VersionStatus.RETURNED, Action.EDIT): VersionStatus.RETURNED,
    (VersionStatus.DRAFT, Action.SUBMIT): VersionStatus.SUBMITTED,
    (VersionStatus.RETURNED, Action.SUBMIT): VersionStatus.SUBMITTED,
    (VersionStatus.SUBMITTED, Action.VOTE): VersionStatus.SUBMITTED,
    (VersionStatus.SUBMITTED, Action.APPROVE): VersionStatus.APPROVED,
    (VersionStatus.SUBMITTED, Action.RETURN): VersionStatus.RETURNED,
    # The approved version holds while its amendment (a new version) is written and decided.
    (VersionStatus.APPROVED, Action.AMEND): VersionStatus.APPROVED,
    (VersionStatus.APPROVED, Action.SUPERSEDE): VersionStatus.SUPERSEDED,
}


class InvalidTransition(Exception):
    def __init__(self, status: VersionStatus, action: Action) -> None:
        self.status = status
        self.action = action
        self.allowed_from = sorted(s.value for (s, a) in TRANSITIONS if a == action)
        super().__init__(f"cannot {action.value} a {status.value} version; only a {' or '.join(self.allowed_from)} one")


def next_status(status: str, action: Action) -> VersionStatus:
    try:
        return TRANSITIONS[(VersionStatus(status), action)]
    except KeyError:
        raise InvalidTransition(VersionStatus(status), action) from None


@dataclass(frozen=True)
class Tally:
    approvals: int = 0
    returns: int = 0

    @property
    def cast(self) -> int:
        return self.approvals + self.returns

    @classmethod
    def of(cls, decisions: Iterable[str]) -> Tally:
        decisions = list(decisions)
        return cls(approvals=decisions.count("approve"), returns=decisions.count("return"))


def decide(tally: Tally, seated: int, rule: VotingRule) -> VersionStatus | None:
    """The board's decision once `rule` is met (approved or returned), else None: the vote goes on."""
    if tally.cast < rule.quorum:
        return None
    # of_seated: more than half of the seated board (4 of 7), however many have voted;
    # of_votes_cast: more than half of the votes cast.
    needed = seated // 2 + 1 if rule.majority == "of_seated" else tally.cast // 2 + 1
    if tally.approvals >= needed:
        return VersionStatus.APPROVED
    if tally.returns >= needed:
        return VersionStatus.RETURNED
    return None


def school_year_span(school_year: str, start_month: int) -> tuple[date, date]:
    """First and last day of a school year such as `2025-26`, given the month the zone's school year starts."""
    first_year = int(school_year[:4])
    start = date(first_year, start_month, 1)
    return start, date(first_year + 1, start_month, 1) - timedelta(days=1)


@dataclass(frozen=True)
class FieldError:
    """One invalid field of a request body, located like pydantic's errors (`loc` below the body)."""

    loc: tuple[str | int, ...]
    reason: str
    code: str

    def as_pydantic(self, root: str = "body") -> dict[str, object]:
        """`root` names the document the field is in: the request `body`, or the stored `plan`."""
        return {"loc": (root, *self.loc), "msg": self.reason, "type": self.code}


def goal_errors(
    goals: Sequence[GoalIn | None], span: tuple[date, date] | None, subjects: Sequence[Subject],
    subgroups: Sequence[str],
) -> list[FieldError]:
    """Everything wrong with the goals given the metric ranges, the school year and the zone's policy.

    A None goal (one the body's shape checks refused) and, with no `span` (no valid school year), the interim
    dates are left out: their errors are the shape's."""
    errors: list[FieldError] = []
    seen: dict[tuple[str, str, str], int] = {}
    for n, goal in enumerate(goals):
        if goal is None:
            continue
        at = ("goals", n)
        if goal.subject not in subjects:
            errors.append(FieldError((*at, "subject"), f"the zone sets goals in {_listed(subjects)}, not {goal.subject.value}",
                                     "untracked_subject"))
        if goal.subgroup not in subgroups:
            errors.append(FieldError((*at, "subgroup"), f"the zone tracks the subgroups {_listed(subgroups)}, not {goal.subgroup.value}",
                                     "untracked_subgroup"))
        low, high = METRIC_RANGES[goal.metric]
        in_range = f"must be between {low:g} and {high:g} for {goal.metric.value}"
        if goal.baseline is not None and not low <= goal.baseline <= high:
            errors.append(FieldError((*at, "baseline"), f"{in_range} (got {goal.baseline:g})", "out_of_range"))
        if not low <= goal.annual_target <= high:
            errors.append(FieldError((*at, "annual_target"), f"{in_range} (got {goal.annual_target:g})", "out_of_range"))
        for k, interim in enumerate(goal.interim_targets):
            if not low <= interim.target <= high:
                errors.append(FieldError((*at, "interim_targets", k, "target"), f"{in_range} (got {interim.target:g})",
                                         "out_of_range"))
            if span is not None and not span[0] <= interim.due <= span[1]:
                errors.append(FieldError((*at, "interim_targets", k, "due"),
                                         f"must fall inside the school year, {span[0]} to {span[1]} (got {interim.due})",
                                         "outside_school_year"))
        key = goal.key()
        if key in seen:
            errors.append(FieldError(at, f"repeats goals.{seen[key]} (the same metric, subject and subgroup)", "duplicate_goal"))
        else:
            seen[key] = n
    return errors


def budget_errors(budget: BudgetLever) -> list[FieldError]:
    spent = sum((item.amount for item in budget.line_items), Decimal(0))
    if spent > budget.total:
        return [FieldError(("levers", "budget", "line_items"),
                           f"the line items add up to {spent}, more than the budget total {budget.total}", "over_total")]
    return []


def _listed(values: Iterable[str]) -> str:
    return ", ".join(map(str, values))  # enum members by value; group codes are plain strings


def with_goal_ids(goals: Sequence[GoalIn], earlier: Iterable[StoredGoal]) -> list[StoredGoal]:
    """Goal ids outlive edits and versions: a goal keeps the id of the earlier goal measuring the same
    metric, subject and subgroup (unique within a plan); any other goal gets a new one."""
    known: dict[tuple[str, str, str], uuid.UUID] = {}
    for goal in earlier:
        known.setdefault(goal.key(), goal.goal_id)
    return [StoredGoal(**goal.model_dump(exclude={"goal_id"}), goal_id=known.get(goal.key()) or uuid.uuid4())
            for goal in goals]


def goal_id_errors(goals: Sequence[GoalIn | None], earlier: Iterable[StoredGoal]) -> list[FieldError]:
    """A goal sent back with its id is fine when the id is this plan's goal measuring the same thing; any other id
    would silently be replaced, so it is refused with what the id belongs to."""
    known = {goal.goal_id: goal for goal in earlier}
    errors: list[FieldError] = []
    for n, goal in enumerate(goals):
        if goal is None or goal.goal_id is None:
            continue
        owner = known.get(goal.goal_id)
        if owner is None:
            errors.append(FieldError(("goals", n, "goal_id"), "is not the id of a goal of this plan; leave goal_id out for "
                                     "a new goal", "unknown_goal_id"))
        elif owner.key() != goal.key():
            errors.append(FieldError(("goals", n, "goal_id"), f"is the id of the goal on {'/'.join(owner.key())}; a goal "
                                     "measuring another metric, subject or subgroup is a new goal: leave goal_id out",
                                     "goal_id_mismatch"))
    return errors


PURCHASING_PROVIDERS = frozenset({"district", "partner"})


def budget_envelope(budget: BudgetLever) -> BudgetEnvelope:
    """What the catalog may let the school commit: the district and partner services it planned to buy."""
    planned = [item for item in budget.line_items if item.provider in PURCHASING_PROVIDERS]
    return BudgetEnvelope(
        per_pupil_allocation=budget.per_pupil_allocation,
        total=budget.total,
        purchased_services_total=sum((item.amount for item in planned), Decimal(0)),
        planned_services=[
            PlannedService(description=item.description, amount=item.amount, provider=item.provider,
                           service_id=item.service_id, partner_id=item.partner_id)
            for item in planned
        ],
    )


def qualifies_for_auto_approval(tier: str, amendment: bool, approved_total: Decimal, new_total: Decimal,
                                below: Decimal) -> bool:
    """A `full`-tier school's amendment that moves the budget total by less than the policy's threshold."""
    return tier == AutonomyTier.FULL and amendment and abs(new_total - approved_total) < below
