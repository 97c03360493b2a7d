"""Earned-autonomy rules, without a database."""

from __future__ import annotations

from ezone_plans.autonomy.rules import decide_tier, year_status
from ezone_plans.policy.document import PolicyDocument, TierRules
from ezone_schemas.vocabulary import AutonomyTier, ReviewStatus

POLICY = PolicyDocument()
ALL_MEETING = {"ELA": "meeting", "MATH": "meeting", "SCI": "meeting"}
ALL_OFF = {"ELA": "off_track", "MATH": "off_track", "SCI": "off_track"}


def test_two_consecutive_years_meeting_earn_full_autonomy():
    decision = decide_tier({"2023-24": ALL_MEETING, "2024-25": ALL_MEETING}, POLICY)
    assert decision.tier == AutonomyTier.FULL
    assert decision.reason == ("meeting its goals in 2023-24 and 2024-25; the zone policy gives full autonomy after 2 "
                               "school years meeting in a row")
    assert decision.rule == "tiers.full_after_years_meeting = 2"


def test_two_years_meeting_with_a_gap_between_them_do_not_earn_full_autonomy():
    assert decide_tier({"2022-23": ALL_MEETING, "2024-25": ALL_MEETING}, POLICY).tier == AutonomyTier.STANDARD


def test_off_track_two_years_running_means_intensive_support():
    decision = decide_tier({"2023-24": ALL_OFF, "2024-25": ALL_OFF}, POLICY)
    assert decision.tier == AutonomyTier.INTENSIVE_SUPPORT
    assert decision.reason == ("off track in 2023-24 and 2024-25; the zone policy moves a school to intensive support "
                               "after 2 school years off track in a row")


def test_a_single_good_year_after_off_track_years_returns_the_school_to_standard_saying_the_years_and_rules():
    history = {"2022-23": ALL_OFF, "2023-24": ALL_OFF, "2024-25": ALL_MEETING}
    decision = decide_tier(history, POLICY)
    assert decision.tier == AutonomyTier.STANDARD
    assert decision.reason == (
        "2023-24 off track (ELA off track, Math off track, Science off track); 2024-25 meeting (ELA meeting, Math "
        "meeting, Science meeting); the zone policy gives full autonomy after 2 school years meeting in a row and "
        "intensive support after 2 school years off track in a row, so standard")


def test_the_rule_lengths_come_from_the_zone_policy():
    three_years = POLICY.model_copy(update={"tiers": TierRules(full_after_years_meeting=3)})
    history = {"2023-24": ALL_MEETING, "2024-25": ALL_MEETING}
    assert decide_tier(history, three_years).tier == AutonomyTier.STANDARD
    assert decide_tier({"2022-23": ALL_MEETING, **history}, three_years).tier == AutonomyTier.FULL


def test_year_status_weighs_subjects_and_ignores_insufficient_data():
    # Science weighs 0.5: off track in science alone is not off track overall.
    assert year_status({"ELA": "meeting", "MATH": "meeting", "SCI": "off_track"}, POLICY) == ReviewStatus.APPROACHING
    assert year_status({"ELA": "off_track", "MATH": "meeting"}, POLICY) == ReviewStatus.OFF_TRACK
    assert year_status({"ELA": "meeting", "MATH": "insufficient_data"}, POLICY) == ReviewStatus.MEETING
    assert year_status({"ELA": "insufficient_data"}, POLICY) is None


def test_no_reviewed_year_keeps_the_standard_tier():
    decision = decide_tier({}, POLICY)
    assert (decision.tier, decision.reason) == (AutonomyTier.STANDARD,
                                                "no school year reviewed yet: every school starts standard")


def test_a_tier_decision_gives_the_deciding_reviews_own_sentences_after_the_rule():
    reasons = {"2023-24": {"ELA": "Off track: 20% proficient.", "MATH": "Off track: 18% proficient."},
               "2024-25": {"ELA": "Off track: 15% proficient, 11 points below last year's 26%.",
                           "SCI": "Off track: 9%."}}
    decision = decide_tier({"2023-24": ALL_OFF, "2024-25": ALL_OFF}, POLICY, reasons)
    assert decision.reason == (
        "off track in 2023-24 and 2024-25; the zone policy moves a school to intensive support after 2 school years "
        "off track in a row. ELA 2023-24: Off track: 20% proficient. Math 2023-24: Off track: 18% proficient. "
        "ELA 2024-25: Off track: 15% proficient, 11 points below last year's 26%. Science 2024-25: Off track: 9%.")


def test_a_year_approaching_from_mixed_statuses_is_explained_by_its_subjects_not_meeting():
    mixed = {"ELA": "meeting", "MATH": "meeting", "SCI": "off_track"}  # science weighs 0.5: approaching
    reasons = {"2024-25": {"ELA": "Meeting: 60% proficient.", "SCI": "Off track: 12% proficient."}}
    decision = decide_tier({"2023-24": ALL_MEETING, "2024-25": mixed}, POLICY, reasons)
    assert decision.tier == AutonomyTier.STANDARD
    assert decision.reason.endswith("so standard. Science 2024-25: Off track: 12% proficient.")
