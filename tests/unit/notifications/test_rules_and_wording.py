"""Rule matching and alert wording: pure functions, no database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from ezone_notifications.alerts.composer import compose
from ezone_notifications.alerts.service import addressees, alert_id
from ezone_notifications.config import Settings
from ezone_notifications.rules.engine import DEFAULT_RULES, Condition, Rule, RuleBody, field_values, matches
from ezone_schemas import ReviewCompleted
from ezone_schemas.results import GoalFinding, IntegrityFlag, StatusReason, SubgroupMetrics
from ezone_schemas.vocabulary import Metric, ReviewStatus, Subgroup, Subject
from pydantic import ValidationError

SETTINGS = Settings(ezone_results_url="https://results.example", ezone_notifications_url="https://alerts.example")


def _review(status: ReviewStatus = ReviewStatus.OFF_TRACK, flags: list[IntegrityFlag] | None = None,
            suppressed: bool = False) -> ReviewCompleted:
    return ReviewCompleted(
        review_id=uuid.uuid4(), zone_id="springfield", school_id=uuid.uuid4(), school_year="2025-26",
        subject=Subject.MATH, version=2, status=status,
        goals=[GoalFinding(goal_id=None, metric=Metric.PROFICIENCY_RATE, subject=Subject.MATH,
                           subgroup=Subgroup.ALL_STUDENTS, target=30, actual=18.2, status=status)],
        metrics=[SubgroupMetrics(subgroup=Subgroup.ALL_STUDENTS, n_tested=8 if suppressed else 410, suppressed=suppressed,
                                 proficiency_rate=None if suppressed else 18.2,
                                 participation_rate=None if suppressed else 91.4)],
        flags=flags or [], completed_at=datetime.now(UTC),
    )


LOW_PARTICIPATION = IntegrityFlag(kind="low_participation", subgroup=Subgroup.ALL_STUDENTS,
                                  summary="91.4% of all_students students tested; the policy's minimum is 95%.",
                                  evidence={"rate": 91.4, "minimum": 95.0})


def _rule(name: str) -> Rule:
    return next(rule for rule in DEFAULT_RULES if rule.name == name)


def test_field_paths_reach_into_lists_and_compare_any_element():
    data = _review(flags=[LOW_PARTICIPATION]).model_dump(mode="json")
    assert field_values(data, "flags.kind") == ["low_participation"]
    assert field_values(data, "goals.actual") == [18.2]
    assert matches(RuleBody(event_type="review.completed", severity="info", audiences=["board"],
                            conditions=[Condition(field="flags.kind", op="in", value=["low_participation"])]),
                   "review.completed", data)
    assert not matches(RuleBody(event_type="review.completed", severity="info", audiences=["board"],
                                conditions=[Condition(field="goals.actual", op="gte", value=20)]),
                       "review.completed", data)


@pytest.mark.parametrize(("status", "flags", "fires"), [
    (ReviewStatus.OFF_TRACK, [], {"review-off-track", "review-needs-attention"}),
    (ReviewStatus.APPROACHING, [], {"review-needs-attention"}),
    (ReviewStatus.MEETING, [LOW_PARTICIPATION], {"review-integrity-flag", "review-flagged-for-school"}),
    (ReviewStatus.MEETING, [], set()),
])
def test_default_rules_alert_on_off_track_and_on_any_integrity_flag(status, flags, fires):
    data = _review(status, flags).model_dump(mode="json")
    assert {rule.name for rule in DEFAULT_RULES if matches(rule, "review.completed", data)} == fires


def test_a_disabled_rule_never_matches():
    rule = _rule("review-off-track").model_copy(update={"enabled": False})
    assert not matches(rule, "review.completed", _review().model_dump(mode="json"))


def test_rules_name_their_mistakes():
    with pytest.raises(ValidationError, match="unknown event type"):
        RuleBody(event_type="review.done", severity="info", audiences=["board"])
    with pytest.raises(ValidationError, match="has no field 'grade'"):
        RuleBody(event_type="review.completed", severity="info", audiences=["board"],
                 conditions=[Condition(field="grade", op="eq", value=5)])
    with pytest.raises(ValidationError, match="needs a list"):
        Condition(field="status", op="in", value="off_track")


def test_each_person_gets_one_addressee_at_the_most_severe_rule_that_reached_them():
    members = {"board": ["a@x", "b@x"], "school_team": ["b@x", "c@x"]}
    reached = addressees([_rule("review-needs-attention"), _rule("review-off-track")], members)
    by_person = {a.recipient: a for a in reached}
    assert set(by_person) == {"a@x", "b@x", "c@x"}
    assert (by_person["b@x"].severity, by_person["b@x"].audience) == ("critical", "board")
    assert by_person["b@x"].rule_names == ("review-needs-attention", "review-off-track")
    assert by_person["c@x"].severity == "warning"


def test_alert_ids_are_the_same_for_the_same_event_and_person_only():
    event = uuid.uuid4()
    assert alert_id(event, "a@x") == alert_id(event, "a@x")
    assert alert_id(event, "a@x") != alert_id(event, "b@x") != alert_id(uuid.uuid4(), "b@x")


OFF_TRACK_REASON = StatusReason(
    rule="below_band_of_last_year", status=ReviewStatus.OFF_TRACK, metric=Metric.PROFICIENCY_RATE,
    subgroup=Subgroup.ALL_STUDENTS, actual=15, compared_with="last_year", reference=26, reference_year="2024-25",
    difference=-11, band=5,
    sentence="Off track: 15% proficient, 11 points below last year's 26%; the zone policy calls a drop of more than "
             "5 points off track.")


def test_review_alert_gives_the_reviews_reason_in_its_words_then_the_flags():
    event = _review(flags=[LOW_PARTICIPATION]).model_copy(update={"reason": OFF_TRACK_REASON})
    composed = compose(event, "Kiley Prep", SETTINGS)
    assert composed.title == "Kiley Prep: Math off track (2025-26)"
    assert composed.body == (
        "Kiley Prep — Math 2025-26: Off track: 15% proficient, 11 points below last year's 26%; the zone policy calls a "
        "drop of more than 5 points off track. Data flagged: " + LOW_PARTICIPATION.summary)


def test_review_alert_adds_the_sentences_of_other_goals_off_track():
    el = StatusReason(rule="goal_below_band", status=ReviewStatus.OFF_TRACK, sentence="English learners: Off track: "
                      "10% proficient, 15 points below the goal of 25%; the zone policy calls more than 5 points "
                      "below a goal off track.")
    goals = [GoalFinding(goal_id=None, metric=Metric.PROFICIENCY_RATE, subject=Subject.MATH, subgroup=Subgroup.ENGLISH_LEARNERS,
                         target=25, actual=10, status=ReviewStatus.OFF_TRACK, reason=el),
             GoalFinding(goal_id=None, metric=Metric.PROFICIENCY_RATE, subject=Subject.MATH, subgroup=Subgroup.ALL_STUDENTS,
                         target=30, actual=15, status=ReviewStatus.OFF_TRACK, reason=OFF_TRACK_REASON)]
    event = _review().model_copy(update={"reason": OFF_TRACK_REASON, "goals": goals})
    body = compose(event, "Kiley Prep", SETTINGS).body
    assert body.endswith("off track. Also off track: " + el.sentence)
    assert body.count(OFF_TRACK_REASON.sentence) == 1


def test_review_alert_of_an_event_without_a_reason_says_its_figures():
    composed = compose(_review(flags=[LOW_PARTICIPATION]), "Duggan Academy", SETTINGS)
    assert composed.title == "Duggan Academy: Math off track (2025-26)"
    assert composed.body.startswith("Duggan Academy — Math proficiency 18% vs goal 30%.")
    assert "Data flagged: 91.4% of all_students" in composed.body
    assert composed.links["review"].startswith("https://alerts.example/board/schools/")
    assert composed.thread and composed.thread_position == 2


def test_flagged_review_that_is_not_off_track_is_titled_by_its_flag():
    composed = compose(_review(ReviewStatus.MEETING, [LOW_PARTICIPATION]), "Duggan Academy", SETTINGS)
    assert composed.title == "Duggan Academy: Math data flagged — low participation (2025-26)"


def test_suppressed_results_are_not_reported_as_numbers():
    composed = compose(_review(ReviewStatus.INSUFFICIENT_DATA, suppressed=True), "Duggan Academy", SETTINGS)
    assert "too few students tested to report (8)" in composed.body
    assert "%" not in composed.body.split("—", 1)[1].split(".")[0]
