"""Rule matching, pure: a rule is an event type, conditions on the event's fields, a severity and audiences.

A condition names a field by a dotted path into the event (`status`, `flags.kind`, `goals.status`). A path
that passes through a list collects the values of every element, and a comparison then holds when it holds
for any of them: `flags.kind in [improbable_gain]` is "any flag is an improbable gain".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from ezone_schemas import (
    Event,
    OrderRejected,
    PlanApproved,
    PlanReturned,
    PlannedPurchasesAtRisk,
    PlanSubmitted,
    ReviewCompleted,
    SchoolTierChanged,
)
from pydantic import BaseModel, Field, field_validator, model_validator

from ..alerts.records import SEVERITIES



def event_name(model: type[Event]) -> str:
    """The short name rules use: `org.ezone.results.review.completed.v1` → `review.completed`."""
    return model.ce_type.split(".", 3)[3].rsplit(".", 1)[0]


ALERTABLE_EVENTS: dict[str, type[Event]] = {
    event_name(model): model
    for model in (ReviewCompleted, PlanSubmitted, PlanApproved, PlanReturned, SchoolTierChanged, OrderRejected,
                  PlannedPurchasesAtRisk)
}
AUDIENCES = ("board", "school_team")
Severity = Literal["critical", "warning", "info"]
Audience = Literal["board", "school_team"]
Operator = Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "nonempty", "empty"]
_UNARY = {"nonempty", "empty"}


class Condition(BaseModel):
    field: str = Field(description="Dotted path into the event, e.g. `status`, `flags.kind`, `goals.status`.")
    op: Operator
    value: Any = Field(None, description="What to compare with; a list for `in` / `not_in`; none for `nonempty` / `empty`.")

    @model_validator(mode="after")
    def _value_fits_operator(self) -> Condition:
        if self.op in _UNARY and self.value is not None:
            raise ValueError(f"`{self.op}` takes no value; remove `value`")
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"`{self.op}` needs a list `value`, e.g. [\"off_track\"]")
        if self.op in ("gt", "gte", "lt", "lte") and not isinstance(self.value, int | float):
            raise ValueError(f"`{self.op}` needs a number `value`")
        if self.op in ("eq", "ne") and self.value is None:
            raise ValueError(f"`{self.op}` needs a `value`")
        return self


class RuleBody(BaseModel):
    """A rule as a zone's staff write it (its name is in the URL)."""

    description: str = ""
    event_type: str = Field(description="The event it reacts to: " + ", ".join(ALERTABLE_EVENTS) + ".")
    conditions: list[Condition] = Field(default_factory=list, description="All must hold; none: every such event.")
    severity: Severity
    audiences: list[Audience] = Field(min_length=1)
    enabled: bool = True

    @field_validator("event_type")
    @classmethod
    def _known_event(cls, value: str) -> str:
        if value not in ALERTABLE_EVENTS:
            raise ValueError(f"unknown event type {value!r}; use one of {', '.join(ALERTABLE_EVENTS)}")
        return value

    @field_validator("audiences")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _fields_exist(self) -> RuleBody:
        model = ALERTABLE_EVENTS[self.event_type]
        for condition in self.conditions:
            head = condition.field.split(".", 1)[0]
            if head not in model.model_fields:
                raise ValueError(
                    f"{self.event_type} has no field {head!r}; it has {', '.join(sorted(model.model_fields))}"
                )
        return self


class Rule(RuleBody):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")


def field_values(data: Any, path: str) -> list[Any]:
    """Every value at `path` in `data` (JSON-like), flattening the lists it passes through."""
    values = [data]
    for part in path.split("."):
        next_values: list[Any] = []
        for value in values:
            if isinstance(value, list):
                value_items: Iterable[Any] = value
            else:
                value_items = (value,)
            for item in value_items:
                if isinstance(item, dict) and part in item:
                    next_values.append(item[part])
        values = next_values
    # A field that is itself a list (e.g. `flags`) counts as its elements.
    flat: list[Any] = []
    for value in values:
        flat.extend(value if isinstance(value, list) else [value])
    return flat


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if actual is None:
        return op in ("ne", "not_in")
    try:
        match op:
            case "eq":
                return actual == expected
            case "ne":
                return actual != expected
            case "in":
                return actual in expected
            case "not_in":
                return actual not in expected
            case "gt":
                return actual > expected
            case "gte":
                return actual >= expected
            case "lt":
                return actual < expected
            case "lte":
                return actual <= expected
    except TypeError:
        return False
    raise ValueError(f"unknown operator {op}")


def condition_holds(condition: Condition, data: dict[str, Any]) -> bool:
    values = field_values(data, condition.field)
    if condition.op == "nonempty":
        return any(value not in (None, "", {}) for value in values)
    if condition.op == "empty":
        return not any(value not in (None, "", {}) for value in values)
    if condition.op in ("ne", "not_in"):
        return all(_compare(condition.op, value, condition.value) for value in values)
    return any(_compare(condition.op, value, condition.value) for value in values)


def matches(rule: RuleBody, event_type: str, data: dict[str, Any]) -> bool:
    return rule.enabled and rule.event_type == event_type and all(condition_holds(c, data) for c in rule.conditions)


def most_severe(severities: Iterable[str]) -> str:
    return min(severities, key=SEVERITIES.index)


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(name="review-off-track", event_type="review.completed", severity="critical", audiences=["board"],
         conditions=[Condition(field="status", op="eq", value="off_track")],
         description="A school is off track on a subject: every board member, at once."),
    Rule(name="review-integrity-flag", event_type="review.completed", severity="critical", audiences=["board"],
         conditions=[Condition(field="flags", op="nonempty")],
         description="A review raised an integrity flag (participation, improbable gain, low-scorer drop, exemptions)."),
    Rule(name="review-needs-attention", event_type="review.completed", severity="warning", audiences=["school_team"],
         conditions=[Condition(field="status", op="in", value=["off_track", "approaching"])],
         description="The school's own team hears when a subject is approaching or off track."),
    Rule(name="review-flagged-for-school", event_type="review.completed", severity="warning", audiences=["school_team"],
         conditions=[Condition(field="flags", op="nonempty")],
         description="The school's own team hears when its data was flagged."),
    Rule(name="plan-submitted", event_type="plan.submitted", severity="info", audiences=["board"],
         description="A plan awaits the board's vote."),
    Rule(name="plan-returned", event_type="plan.returned", severity="warning", audiences=["school_team"],
         description="The board returned the school's plan with comments."),
    Rule(name="plan-approved", event_type="plan.approved", severity="info", audiences=["school_team"],
         description="The board approved the school's plan."),
    Rule(name="tier-changed", event_type="school.tier_changed", severity="warning", audiences=["board", "school_team"],
         description="A school's autonomy tier changed."),
    Rule(name="order-rejected", event_type="order.rejected", severity="warning", audiences=["school_team"],
         description="An order the school placed was rejected."),
    Rule(name="planned-purchases-at-risk", event_type="budget.planned_purchases_at_risk", severity="warning",
         audiences=["board", "school_team"],
         description="An order or a non-optional service left a school's services budget too small for its approved "
                     "plan's purchases."),
)
