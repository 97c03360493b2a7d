"""The plan lifecycle's pure rules, without a database: transitions, vote counting, goals, the budget envelope."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest
from ezone_schemas.vocabulary import Subgroup, Subject

from ezone_plans.operating_plans.rules import (
    Action,
    InvalidTransition,
    Tally,
    VersionStatus,
    budget_envelope,
    decide,
    goal_errors,
    next_status,
    qualifies_for_auto_approval,
    school_year_span,
    with_goal_ids,
)
from ezone_plans.operating_plans.schemas import BudgetLever, GoalIn
from ezone_plans.policy.document import VotingRule

D, S, A, R, X = (VersionStatus.DRAFT, VersionStatus.SUBMITTED, VersionStatus.APPROVED, VersionStatus.RETURNED,
                 VersionStatus.SUPERSEDED)


@pytest.mark.parametrize(("status", "action", "after"), [
    (D, Action.EDIT, D), (R, Action.EDIT, R), (D, Action.SUBMIT, S), (R, Action.SUBMIT, S), (S, Action.VOTE, S),
    (S, Action.APPROVE, A), (S, Action.RETURN, R), (A, Action.AMEND, A), (A, Action.SUPERSEDE, X),
])
def test_allowed_transitions(status, action, after):
    assert next_status(status, action) == after


@pytest.mark.parametrize(("status", "action"), [
    (S, Action.EDIT), (A, Action.EDIT), (S, Action.SUBMIT), (A, Action.SUBMIT), (D, Action.VOTE), (R, Action.VOTE),
    (A, Action.VOTE), (D, Action.APPROVE), (R, Action.RETURN), (D, Action.AMEND), (S, Action.AMEND), (X, Action.EDIT),
])
def test_every_other_transition_is_refused_naming_the_states_it_needs(status, action):
    with pytest.raises(InvalidTransition) as refused:
        next_status(status, action)
    assert refused.value.allowed_from
    assert status.value not in refused.value.allowed_from


OF_SEATED = VotingRule(quorum=4, majority="of_seated")
OF_VOTES_CAST = VotingRule(quorum=3, majority="of_votes_cast")


@pytest.mark.parametrize(("approvals", "returns", "decision"), [
    (3, 0, None),  # below quorum
    (3, 3, None),  # split: neither side has 4 of 7
    (4, 3, A), (3, 4, R), (4, 0, A), (0, 4, R),
    (2, 2, None),  # quorum met, no majority of the seated
])
def test_of_seated_needs_more_than_half_of_the_seated_board(approvals, returns, decision):
    assert decide(Tally(approvals, returns), seated=7, rule=OF_SEATED) == decision


def test_of_seated_counts_the_board_as_seated_today():
    assert decide(Tally(3, 1), seated=5, rule=OF_SEATED) == A  # 3 of 5
    assert decide(Tally(3, 1), seated=6, rule=OF_SEATED) is None  # 3 of 6 is not more than half


@pytest.mark.parametrize(("approvals", "returns", "decision"), [
    (2, 0, None),  # below quorum
    (2, 1, A), (1, 2, R), (2, 2, None), (3, 2, A), (0, 3, R),
])
def test_of_votes_cast_needs_a_strict_majority_of_the_votes(approvals, returns, decision):
    assert decide(Tally(approvals, returns), seated=7, rule=OF_VOTES_CAST) == decision


def test_tally_counts_each_decision():
    tally = Tally.of(["approve", "return", "approve"])
    assert (tally.approvals, tally.returns, tally.cast) == (2, 1, 3)


def test_school_year_runs_from_the_zones_start_month_to_the_day_before_it_a_year_later():
    assert school_year_span("2025-26", 9) == (date(2025, 9, 1), date(2026, 8, 31))
    assert school_year_span("2025-26", 7) == (date(2025, 7, 1), date(2026, 6, 30))


def goal(**changes) -> GoalIn:
    return GoalIn.model_validate({"metric": "proficiency_rate", "subject": "MATH", "subgroup": "all_students",
                                  "baseline": 30, "annual_target": 40, "interim_targets": [], **changes})


SPAN = (date(2025, 9, 1), date(2026, 8, 31))
TRACKED = ([Subject.ELA, Subject.MATH], [Subgroup.ALL_STUDENTS, Subgroup.HIGH_NEEDS])


def fields(errors) -> dict[str, str]:
    return {".".join(map(str, e.loc)): e.code for e in errors}


def test_valid_goals_have_no_errors():
    assert goal_errors([goal(), goal(subgroup="high_needs", interim_targets=[{"due": "2026-01-31", "target": 35}])],
                       SPAN, *TRACKED) == []


def test_goal_errors_name_every_bad_field_at_once():
    goals = [
        goal(subject="SCI", subgroup="el"),
        goal(metric="average_scaled_score", baseline=420, annual_target=600,
             interim_targets=[{"due": "2025-08-31", "target": 500}, {"due": "2026-02-01", "target": 700}]),
        goal(),
        goal(annual_target=45),  # measures what goals.2 measures
    ]
    assert fields(goal_errors(goals, SPAN, *TRACKED)) == {
        "goals.0.subject": "untracked_subject",
        "goals.0.subgroup": "untracked_subgroup",
        "goals.1.baseline": "out_of_range",
        "goals.1.annual_target": "out_of_range",
        "goals.1.interim_targets.0.due": "outside_school_year",
        "goals.1.interim_targets.1.target": "out_of_range",
        "goals.3": "duplicate_goal",
    }


def test_an_untracked_subgroup_error_says_which_subgroups_the_zone_tracks():
    [error] = goal_errors([goal(subgroup="el")], SPAN, *TRACKED)
    assert "all_students, high_needs" in error.reason


def test_out_of_range_error_names_the_range():
    [error] = goal_errors([goal(metric="median_growth_percentile", baseline=None, annual_target=100)], SPAN, *TRACKED)
    assert "between 1 and 99" in error.reason


def test_goal_ids_are_kept_for_the_same_metric_subject_and_subgroup_and_new_otherwise():
    first = with_goal_ids([goal(), goal(subgroup="high_needs")], [])
    again = with_goal_ids([goal(annual_target=50), goal(subject="ELA")], first)
    assert again[0].goal_id == first[0].goal_id
    assert again[0].annual_target == 50
    assert again[1].goal_id not in {g.goal_id for g in first}


def budget(line_items: list[dict], total: str = "1000000") -> BudgetLever:
    return BudgetLever.model_validate({"narrative": "n", "per_pupil_allocation": "9500.00", "total": total,
                                       "line_items": line_items})


def test_envelope_counts_only_district_and_partner_services_as_purchases():
    partner = uuid.uuid4()
    result = budget_envelope(budget([
        {"description": "Teachers", "amount": "600000", "category": "staffing", "provider": "internal"},
        {"description": "Math coaching", "amount": "40000.50", "category": "services", "provider": "partner",
         "partner_id": str(partner)},
        {"description": "Assessment platform", "amount": "12000", "category": "services", "provider": "district"},
    ]))
    assert result.total == Decimal("1000000")
    assert result.per_pupil_allocation == Decimal("9500.00")
    assert result.purchased_services_total == Decimal("52000.50")
    assert [(s.provider, s.partner_id) for s in result.planned_services] == [("partner", partner), ("district", None)]


def test_envelope_without_purchases_is_zero():
    assert budget_envelope(budget([])).purchased_services_total == 0


@pytest.mark.parametrize(("tier", "amendment", "new_total", "automatic"), [
    ("full", True, "1024999.99", True),
    ("full", True, "975000.01", True),
    ("full", True, "1025000", False),  # not less than the threshold
    ("full", False, "1000000", False),  # a first version always goes to the board
    ("standard", True, "1000000", False),
    ("intensive_support", True, "1000000", False),
])
def test_auto_approval_is_for_a_full_tier_schools_small_amendment(tier, amendment, new_total, automatic):
    assert qualifies_for_auto_approval(tier, amendment, Decimal("1000000"), Decimal(new_total), Decimal("25000")) is automatic
