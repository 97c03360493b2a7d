"""Order rules, without a database: the lifecycle, what an order costs, and who may buy from a partner."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from ezone_schemas.catalog import PricingUnit
from ezone_schemas.vocabulary import AutonomyTier, VettingStatus


class OrderStatus(StrEnum):
    ASSIGNED = "assigned"  # a non-optional service, assigned automatically; never changes
    REQUESTED = "requested"
    CONFIRMED = "confirmed"
    FULFILLED = "fulfilled"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class Action(StrEnum):
    CONFIRM = "confirm"
    REJECT = "reject"
    FULFIL = "fulfil"
    CANCEL = "cancel"


# action → (the statuses it applies to, the status it leads to)
TRANSITIONS: dict[Action, tuple[frozenset[OrderStatus], OrderStatus]] = {
    Action.CONFIRM: (frozenset({OrderStatus.REQUESTED}), OrderStatus.CONFIRMED),
    Action.REJECT: (frozenset({OrderStatus.REQUESTED}), OrderStatus.REJECTED),
    Action.FULFIL: (frozenset({OrderStatus.CONFIRMED}), OrderStatus.FULFILLED),
    Action.CANCEL: (frozenset({OrderStatus.REQUESTED, OrderStatus.CONFIRMED}), OrderStatus.CANCELLED),
}

# What counts against the school's envelope, against the service's capacity, and as an engagement of the provider.
COMMITTED = frozenset({OrderStatus.ASSIGNED, OrderStatus.REQUESTED, OrderStatus.CONFIRMED, OrderStatus.FULFILLED})
USING_CAPACITY = frozenset({OrderStatus.REQUESTED, OrderStatus.CONFIRMED, OrderStatus.FULFILLED})
ENGAGED = frozenset({OrderStatus.CONFIRMED, OrderStatus.FULFILLED})


@dataclass(frozen=True)
class InvalidTransition(Exception):
    status: OrderStatus
    action: Action

    @property
    def allowed_from(self) -> list[str]:
        return sorted(TRANSITIONS[self.action][0])


def next_status(status: OrderStatus, action: Action) -> OrderStatus | None:
    """The status `action` leads to; None when the order already is there (a repeat: nothing to do)."""
    allowed, target = TRANSITIONS[action]
    if status == target:
        return None
    if status not in allowed:
        raise InvalidTransition(status, action)
    return target


def order_amount(unit_price: Decimal, quantity: int) -> Decimal:
    return (unit_price * quantity).quantize(Decimal("0.01"))


def assigned_quantity(unit: PricingUnit, enrollment: int | None) -> int:
    """A non-optional service's quantity for a school: its pupils for per-pupil prices (0 while enrollment is
    unknown), else one."""
    return (enrollment or 0) if unit == PricingUnit.PER_PUPIL else 1


class BudgetLine(StrEnum):
    """What an order or assignment is charged to."""

    SERVICES = "services"  # the services budget of the school's approved plan (its envelope)
    DISTRICT_SERVICES = "district_services"  # the district's line, for non-optional services of its categories


def charged_to(non_optional: bool, category: str, district_categories: Iterable[str]) -> BudgetLine:
    """Orders are the school's choice, so they draw on its plan's budget; what the district provides every school
    (a non-optional service of the zone policy's district categories) draws on the district's line."""
    if non_optional and category in set(district_categories):
        return BudgetLine.DISTRICT_SERVICES
    return BudgetLine.SERVICES


@dataclass(frozen=True)
class Planned:
    """A purchase the approved plan budgets for: a service, or any service of a partner, or neither (unnamed)."""

    amount: Decimal
    service_id: uuid.UUID | None = None
    partner_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Charge:
    """An order or assignment committed against the plan's services budget."""

    amount: Decimal
    service_id: uuid.UUID
    partner_id: uuid.UUID | None = None


@dataclass(frozen=True)
class BudgetStanding:
    envelope: Decimal
    committed: Decimal
    planned_outstanding: Decimal

    @property
    def remaining(self) -> Decimal:
        return self.envelope - self.committed

    @property
    def short_by(self) -> Decimal:
        """How much of the plan's outstanding purchases no longer fits what remains (0: all of it fits)."""
        return max(self.planned_outstanding - self.remaining, Decimal(0))


def standing(envelope: Decimal, planned: Sequence[Planned], charges: Sequence[Charge]) -> BudgetStanding:
    """The services budget against the plan's planned purchases. A planned line is covered by the charges of its
    service (a line naming only a partner: of any of the partner's services) up to its amount; what is not covered
    is outstanding. A line naming neither can be matched by no order, so it stays outstanding."""
    need: dict[tuple[str, object], Decimal] = defaultdict(Decimal)
    for n, item in enumerate(planned):
        key = (("service", item.service_id) if item.service_id else ("partner", item.partner_id) if item.partner_id
               else ("line", n))
        need[key] += item.amount
    for charge in charges:
        for key in (("service", charge.service_id), ("partner", charge.partner_id)):
            if key in need:
                need[key] -= charge.amount
                break
    return BudgetStanding(envelope=envelope, committed=sum((c.amount for c in charges), Decimal(0)),
                          planned_outstanding=sum((max(left, Decimal(0)) for left in need.values()), Decimal(0)))


@dataclass(frozen=True)
class Refusal:
    kind: str  # the problem type's last segment
    detail: str


def partner_refusal(tier: AutonomyTier, partner_name: str, vetting_status: str | None, expires_on: date | None,
                    today: date) -> Refusal | None:
    """Why this school may not buy from this partner now, if it may not.

    Nobody buys from a partner whose vetting was revoked; a school in intensive support buys only from
    partners vetted and not expired.
    """
    if vetting_status == VettingStatus.REVOKED:
        return Refusal("partner-revoked", f"{partner_name}'s vetting was revoked; its services cannot be ordered.")
    vetted = vetting_status == VettingStatus.VETTED and (expires_on is None or expires_on >= today)
    if tier == AutonomyTier.INTENSIVE_SUPPORT and not vetted:
        state = "expired" if vetting_status == VettingStatus.VETTED else (vetting_status or "not_vetted").replace("_", " ")
        return Refusal("vetted-partner-required",
                       f"A school in intensive support buys only from vetted partners; {partner_name} is {state}.")
    return None
