"""The catalog's budget rules: which line a charge goes to, and how much of an approved plan's purchases still fit."""

from __future__ import annotations

import uuid
from decimal import Decimal

from ezone_catalog.orders.rules import BudgetLine, Charge, Planned, charged_to, standing
from ezone_schemas.catalog import default_district_service_categories

ASSESSMENTS, COACHING_PARTNER, OTHER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
KILEY_PLAN = [Planned(Decimal("45000"), service_id=ASSESSMENTS), Planned(Decimal("20513"), partner_id=COACHING_PARTNER)]


def test_only_non_optional_services_of_the_district_categories_are_charged_to_the_district_line():
    district = default_district_service_categories()
    assert charged_to(True, "transportation", district) == BudgetLine.DISTRICT_SERVICES
    assert charged_to(True, "curriculum", district) == BudgetLine.SERVICES  # non-optional, but not the district's
    assert charged_to(False, "facilities", district) == BudgetLine.SERVICES  # an order is the school's choice
    assert charged_to(True, "food_service", ["facilities"]) == BudgetLine.SERVICES  # the policy decides


def test_the_plans_own_purchases_leave_nothing_short():
    result = standing(Decimal("65513"), KILEY_PLAN, [Charge(Decimal("3438"), ASSESSMENTS),
                                                     Charge(Decimal("20000"), uuid.uuid4(), COACHING_PARTNER)])
    assert (result.remaining, result.planned_outstanding, result.short_by) == (Decimal("42075"), Decimal("42075"), 0)


def test_a_charge_the_plan_did_not_plan_for_leaves_its_purchases_short_by_its_amount():
    result = standing(Decimal("65513"), KILEY_PLAN, [Charge(Decimal("23493"), OTHER)])
    assert (result.remaining, result.planned_outstanding, result.short_by) == (Decimal("42020"), Decimal("65513"),
                                                                               Decimal("23493"))


def test_ordering_more_of_a_planned_service_than_planned_counts_the_excess_as_unplanned():
    result = standing(Decimal("65513"), KILEY_PLAN, [Charge(Decimal("50000"), ASSESSMENTS)])
    assert (result.planned_outstanding, result.short_by) == (Decimal("20513"), Decimal("5000"))


def test_a_planned_line_naming_no_service_or_partner_stays_outstanding():
    result = standing(Decimal("1000"), [Planned(Decimal("1000"))], [Charge(Decimal("400"), OTHER)])
    assert result.short_by == Decimal("400")
