"""The catalog's rules, without a database: the order lifecycle, prices, who may buy from a partner, evidence of
impact and the needs a review shows."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest
from ezone_catalog.evidence.rules import (
    FLAG_NEEDS,
    MIN_SCHOOLS_FOR_EVIDENCE,
    Figures,
    SubjectReview,
    Summary,
    caveat,
    comparison_engagements,
    evidence_score,
    needs_for,
    outcomes,
    overall_status,
    ranking,
)
from ezone_catalog.orders.rules import (
    Action,
    InvalidTransition,
    OrderStatus,
    assigned_quantity,
    next_status,
    order_amount,
    partner_refusal,
)
from ezone_catalog.school_years import previous_school_year
from ezone_schemas.catalog import Need, PricingUnit
from ezone_schemas.results import GoalFinding, IntegrityFlag
from ezone_schemas.vocabulary import AutonomyTier, ReviewStatus, Subject

TODAY = date(2026, 3, 1)
A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))


@pytest.mark.parametrize(("status", "action", "expected"), [
    ("requested", "confirm", "confirmed"),
    ("requested", "reject", "rejected"),
    ("requested", "cancel", "cancelled"),
    ("confirmed", "fulfil", "fulfilled"),
    ("confirmed", "cancel", "cancelled"),
])
def test_the_order_lifecycle(status, action, expected):
    assert next_status(OrderStatus(status), Action(action)) == expected


@pytest.mark.parametrize(("status", "action"), [("confirmed", "confirm"), ("rejected", "reject"), ("fulfilled", "fulfil"),
                                                ("cancelled", "cancel")])
def test_repeating_a_step_is_nothing_to_do(status, action):
    assert next_status(OrderStatus(status), Action(action)) is None


@pytest.mark.parametrize(("status", "action"), [
    ("requested", "fulfil"), ("confirmed", "reject"), ("fulfilled", "cancel"), ("rejected", "confirm"),
    ("cancelled", "fulfil"), ("assigned", "cancel"), ("assigned", "confirm"),
])
def test_steps_out_of_turn_are_refused_naming_where_they_apply(status, action):
    with pytest.raises(InvalidTransition) as refused:
        next_status(OrderStatus(status), Action(action))
    assert refused.value.allowed_from


def test_amounts_are_in_cents_and_assignments_count_pupils_for_per_pupil_prices():
    assert order_amount(Decimal("12.50"), 980) == Decimal("12250.00")
    assert assigned_quantity(PricingUnit.PER_PUPIL, 980) == 980
    assert assigned_quantity(PricingUnit.PER_PUPIL, None) == 0
    assert assigned_quantity(PricingUnit.FIXED, 980) == 1


@pytest.mark.parametrize(("tier", "status", "expires", "refused_as"), [
    ("standard", None, None, None),
    ("standard", "provisional", date(2026, 6, 30), None),
    ("standard", "revoked", None, "partner-revoked"),
    ("intensive_support", "vetted", date(2026, 6, 30), None),
    ("intensive_support", "vetted", None, None),
    ("intensive_support", "vetted", date(2026, 2, 28), "vetted-partner-required"),
    ("intensive_support", "provisional", date(2026, 6, 30), "vetted-partner-required"),
    ("intensive_support", "not_vetted", None, "vetted-partner-required"),
    ("intensive_support", None, None, "vetted-partner-required"),
    ("full", "revoked", None, "partner-revoked"),
])
def test_who_may_buy_from_a_partner(tier, status, expires, refused_as):
    refusal = partner_refusal(AutonomyTier(tier), "Math Partners", status, expires, TODAY)
    assert (refusal.kind if refusal else None) == refused_as
    if refusal is not None:
        assert "Math Partners" in refusal.detail


def test_the_year_before_a_school_year():
    assert previous_school_year("2025-26") == "2024-25"
    assert previous_school_year("2000-01") == "1999-00"


FACTS = {
    (A, "2023-24", "MATH"): Figures(20.0, 40.0), (A, "2024-25", "MATH"): Figures(30.0, 55.0),
    (B, "2023-24", "MATH"): Figures(30.0, None), (B, "2024-25", "MATH"): Figures(36.0, 50.0),
    (C, "2023-24", "MATH"): Figures(25.0, None), (C, "2024-25", "MATH"): Figures(None, None),  # suppressed
}


def test_an_outcome_is_the_change_from_the_year_before_the_engagement_when_both_years_have_figures():
    found = outcomes([(A, "2024-25"), (B, "2024-25"), (C, "2024-25"), (A, "2023-24"), (A, "2024-25")], FACTS)
    assert [(o.school_id, o.proficiency_change, o.growth_change) for o in found] == [(A, 10.0, 15.0), (B, 6.0, None)]
    summary = Summary.of(Subject.MATH, found)
    assert (summary.schools, summary.proficiency_change, summary.growth_change) == (2, 8.0, 15.0)
    assert Summary.of(Subject.ELA, found) == Summary(Subject.ELA, 0, None, None)


def test_the_comparison_is_the_zones_other_schools_over_the_same_years():
    assert comparison_engagements({(A, "2024-25")}, [A, B, C]) == {(B, "2024-25"), (C, "2024-25")}


def test_the_caveat_says_plainly_when_too_few_schools_stand_behind_a_figure():
    assert caveat(0).startswith("No outcomes yet")
    assert caveat(1) == ("Based on 1 school — too few to distinguish the partner's effect from chance "
                         f"(at least {MIN_SCHOOLS_FOR_EVIDENCE} are needed).")
    assert caveat(MIN_SCHOOLS_FOR_EVIDENCE - 1).startswith(f"Based on {MIN_SCHOOLS_FOR_EVIDENCE - 1} schools")
    assert caveat(MIN_SCHOOLS_FOR_EVIDENCE) is None
    assert "the service's effect" in caveat(2, "the service's")


def test_ranking_puts_larger_gains_first_then_more_schools_then_more_needs_met_and_no_evidence_last():
    candidates = {
        "none": ranking(None, 0, 3, "a"),
        "small": ranking(2.0, 9, 1, "b"),
        "large-few": ranking(8.0, 2, 1, "c"),
        "large-many": ranking(8.0, 6, 1, "d"),
        "negative": ranking(-3.0, 9, 3, "e"),
    }
    assert sorted(candidates, key=candidates.get) == ["large-many", "large-few", "small", "negative", "none"]
    summaries = [Summary(Subject.MATH, 2, 8.0, None), Summary(Subject.ELA, 1, -2.0, None)]
    assert evidence_score(summaries, [Subject.MATH]) == 8.0
    assert evidence_score(summaries, [Subject.MATH, Subject.ELA]) == 3.0
    assert evidence_score(summaries, [Subject.SCIENCE]) is None


def _goal(metric: str, subgroup: str = "all_students", status: str = "off_track", subject: str = "MATH") -> GoalFinding:
    return GoalFinding(goal_id=None, metric=metric, subject=subject, subgroup=subgroup, target=50.0, actual=40.0, status=status)


def test_findings_map_to_needs_as_the_tables_say():
    reviews = [
        SubjectReview(Subject.MATH, ReviewStatus.OFF_TRACK, goals=[_goal("proficiency_rate"), _goal("median_growth_percentile")]),
        SubjectReview(Subject.ELA, ReviewStatus.APPROACHING, goals=[_goal("proficiency_rate", "el", "approaching", "ELA"),
                                                                     _goal("participation_rate", status="meeting", subject="ELA")],
                      flags=[IntegrityFlag(kind="low_participation", summary="91%"), IntegrityFlag(kind="new_kind", summary="?")]),
    ]
    needs = needs_for(reviews)
    assert list(needs) == [Need.MATH, Need.ELA, Need.CURRICULUM, Need.STAFFING, Need.TIME, Need.CLIMATE, Need.ATTENDANCE,
                           Need.ENGLISH_LEARNERS]
    assert needs[Need.MATH][0] == "the MATH review is off_track"
    assert needs[Need.ENGLISH_LEARNERS] == ["ELA proficiency_rate for el is approaching (40 against a target of 50)"]
    assert needs[Need.CLIMATE] == ["ELA integrity flag low_participation: 91%"]


def test_a_school_meeting_its_goals_shows_no_need_and_its_status_is_its_worst_subject():
    meeting = [SubjectReview(Subject.MATH, ReviewStatus.MEETING, goals=[_goal("proficiency_rate", status="meeting")])]
    assert needs_for(meeting) == {}
    assert overall_status(meeting) == ReviewStatus.MEETING
    assert overall_status([*meeting, SubjectReview(Subject.ELA, ReviewStatus.APPROACHING)]) == ReviewStatus.APPROACHING
    assert overall_status([]) is None


def test_every_integrity_flag_the_review_engine_raises_has_needs():
    assert set(FLAG_NEEDS) == {"low_participation", "improbable_gain", "low_scorer_drop", "exemption_spike"}
