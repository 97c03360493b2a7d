"""The catalog's rules, without a database: the order lifecycle, prices, who may buy from a partner, evidence of
impact and the needs a review shows."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest
from ezone_catalog.evidence.policy import EvidencePolicy
from ezone_catalog.evidence.rules import (
    FLAG_NEEDS,
    Figures,
    Judgement,
    SubjectReview,
    Verdict,
    caveat,
    deciding,
    judge,
    needs_for,
    outcomes,
    overall_status,
    rank_group,
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
from ezone_schemas.catalog import Need, OutcomeMeasure, PricingUnit
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
POLICY = EvidencePolicy()
PROFICIENCY = OutcomeMeasure.PROFICIENCY_RATE


def test_an_outcome_is_the_change_from_the_year_before_against_comparable_schools_that_did_not_use_it():
    found = outcomes({(A, "2024-25"), (B, "2023-24")}, [A, B, C], FACTS, Subject.MATH, PROFICIENCY,
                     POLICY.model_copy(update={"minimum_comparison_schools": 1}), "2022-23")
    # B's 2023-24 has no year before; C's 2024-25 figure is suppressed: B alone is comparable to A.
    assert [(o.school_id, o.own.change, [c.school_id for c in o.comparison], o.difference) for o in found] == [
        (A, 10.0, [B], 4.0)]
    assert outcomes({(A, "2024-25")}, [A, B], FACTS, Subject.MATH, PROFICIENCY, POLICY, "2022-23")[0].difference is None
    far = POLICY.model_copy(update={"minimum_comparison_schools": 1, "comparable_within_points": 5.0})
    assert outcomes({(A, "2024-25")}, [A, B], FACTS, Subject.MATH, PROFICIENCY, far, "2022-23")[0].comparison == ()


# The state's all-students math proficiency: 40 then 43, a rise of 3 points.
STATE = {("2023-24", "MATH"): Figures(40.0, 50.0), ("2024-25", "MATH"): Figures(43.0, 50.0)}


def test_with_too_few_comparable_schools_in_the_zone_an_outcome_is_compared_with_the_states_change():
    # B alone is comparable to A, the policy wants 3: A's +10 is set against the state's +3.
    [outcome] = outcomes({(A, "2024-25")}, [A, B, C], FACTS, Subject.MATH, PROFICIENCY, POLICY, "2022-23", STATE)
    assert (outcome.basis, outcome.compared, outcome.comparison_change, outcome.difference) == ("state", True, 3.0, 7.0)
    assert outcome.comparison == () and (outcome.state.before, outcome.state.after) == (40.0, 43.0)
    # Enough comparable schools: the zone's, whatever the state did.
    [zone] = outcomes({(A, "2024-25")}, [A, B, C], FACTS, Subject.MATH, PROFICIENCY,
                      POLICY.model_copy(update={"minimum_comparison_schools": 1}), "2022-23", STATE)
    assert (zone.basis, zone.difference) == ("zone", 4.0)
    # The state's figure missing in one of the years: not compared, as before.
    [alone] = outcomes({(A, "2024-25")}, [A, B, C], FACTS, Subject.MATH, PROFICIENCY, POLICY, "2022-23",
                       {("2024-25", "MATH"): Figures(43.0, None)})
    assert (alone.basis, alone.compared, alone.difference) == ("zone", False, None)


def test_a_verdict_against_the_state_says_the_state_was_the_comparison():
    facts = {(school, year, "MATH"): Figures(before if year == "2023-24" else before + gain, None)
             for school, before, gain in ((A, 20.0, 8.0), (B, 30.0, 7.0), (C, 25.0, 9.0))
             for year in ("2023-24", "2024-25")}
    few = POLICY.model_copy(update={"minimum_schools": 3})
    found = outcomes({(A, "2024-25"), (B, "2024-25"), (C, "2024-25")}, [A, B, C], facts, Subject.MATH, PROFICIENCY, few,
                     "2022-23", STATE)
    judgement = judge(Subject.MATH, PROFICIENCY, found, few)
    # Gains of 8, 7 and 9 against the state's 3: differences 5, 4, 6, mean 5.0, sd 1.0, 95% interval 5 ± 4.303/sqrt 3.
    assert (judgement.verdict, judgement.schools, judgement.state_outcomes, judgement.comparison_schools) == (
        Verdict.BETTER, 3, 3, 0)
    assert (judgement.difference, judgement.interval) == (5.0, (2.5, 7.5))
    assert ("at 3 schools that used it the figure rose 8.0 points on average, statewide (the state's figures, as there "
            "were fewer than 3 comparable schools in the zone) it rose 3.0 points: a difference of +5.0 points"
            ) in judgement.sentence
    assert outcomes({(A, "2024-25")}, [A, B], FACTS, Subject.MATH, PROFICIENCY, POLICY, "2025-26")[0].stale


def _judged(own: list[float], comparison: float, minimum_schools: int = 3) -> Verdict:
    schools = [uuid.UUID(int=10 + n) for n in range(len(own) + 3)]
    facts = {}
    for school, change in zip(schools, [*own, comparison, comparison, comparison], strict=True):
        facts[(school, "2023-24", "MATH")] = Figures(30.0, None)
        facts[(school, "2024-25", "MATH")] = Figures(30.0 + change, None)
    policy = POLICY.model_copy(update={"minimum_schools": minimum_schools})
    engaged = {(school, "2024-25") for school in schools[:len(own)]}
    found = outcomes(engaged, schools, facts, Subject.MATH, PROFICIENCY, policy, "2022-23")
    return judge(Subject.MATH, PROFICIENCY, found, policy).verdict


def test_the_verdict_compares_with_comparable_schools_and_needs_enough_schools_and_a_clear_interval():
    assert _judged([4.0, 5.0, 6.0], 10.0) == Verdict.WORSE
    assert _judged([4.0, 5.0, 6.0], 6.0) == Verdict.NO_DIFFERENT  # a gain, but less than comparable schools'
    assert _judged([9.0, 10.0, 11.0], 5.0) == Verdict.BETTER
    assert _judged([-5.0, 10.0, 15.0], 5.0) == Verdict.NO_DIFFERENT  # the interval includes 0
    assert _judged([9.0, 10.0], 5.0) == Verdict.TOO_FEW
    assert _judged([12.0], 5.0, minimum_schools=1) == Verdict.TOO_FEW  # one school has no spread
    assert judge(Subject.MATH, PROFICIENCY, [], POLICY).verdict == Verdict.NO_EVIDENCE


def test_the_caveat_tells_an_untried_service_from_one_without_reviews_and_from_too_few_schools():
    assert caveat(0, 0, POLICY).startswith("No school has had a confirmed or fulfilled order of it yet")
    assert caveat(2, 0, POLICY) == ("2 schools used it, but none has reviews for the year it used it and the year "
                                    "before: no outcomes yet.")
    assert caveat(1, 1, POLICY) == ("Based on 1 school — too few to distinguish the partner's effect from chance "
                                    "(the zone's policy needs at least 5).")
    assert caveat(5, 5, POLICY) is None
    assert "the service's effect" in caveat(2, 2, POLICY, "the service's")


def test_a_decline_never_ranks_above_no_evidence_and_needs_met_order_within_a_group():
    candidates = {
        "better": ranking(rank_group(Verdict.BETTER, False), 1, 6, "e"),
        "no-different": ranking(rank_group(Verdict.NO_DIFFERENT, True), 1, 6, "d"),
        "untried-many-needs": ranking(rank_group(Verdict.NO_EVIDENCE, False), 3, 0, "c"),
        "gain-too-few": ranking(rank_group(Verdict.TOO_FEW, False), 1, 1, "b"),
        "not-measured": ranking(rank_group(Verdict.NOT_MEASURED, False), 1, 0, "a"),
        "decline-too-few": ranking(rank_group(Verdict.TOO_FEW, True), 3, 2, "a"),
        "worse": ranking(rank_group(Verdict.WORSE, True), 9, 9, "a"),
    }
    assert sorted(candidates, key=candidates.get) == [
        "better", "no-different", "untried-many-needs", "gain-too-few", "not-measured", "decline-too-few", "worse"]


def test_a_harm_in_any_subject_or_measure_decides_the_providers_verdict():
    worse, better = (_judgement(Verdict.WORSE), _judgement(Verdict.BETTER))
    assert deciding([better, worse]) is worse
    assert deciding([]) is None


def _judgement(verdict: Verdict) -> Judgement:
    return Judgement(Subject.MATH, PROFICIENCY, verdict, 5, 1.0, 0.0, 1.0, 1.0, (0.5, 1.5), 5, 0, 0, "")


def test_the_policys_window_counts_the_current_school_year_and_those_before_it():
    assert POLICY.oldest_counted_year(date(2026, 12, 7)) == "2024-25"
    assert POLICY.oldest_counted_year(date(2027, 6, 30)) == "2024-25"
    assert POLICY.oldest_counted_year(date(2027, 7, 1)) == "2025-26"


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
