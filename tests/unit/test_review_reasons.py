"""Every status a review gives says why, truly: for each rule of the default policy, a review built from chosen numbers
gets that status and a reason naming those numbers; and the real 2022 case of Kiley Prep and John F Kennedy."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from ezone_results.review.engine import (
    AggregateFigures,
    Measures,
    ReviewInputs,
    StudentCounts,
    assess,
    measures_from_aggregate,
    measures_from_counts,
)
from ezone_results.review.policy import ReviewPolicy
from ezone_results.state_aggregates.mcas import McasReader
from ezone_schemas.plans import GoalContract
from ezone_schemas.results import ReviewCompleted, ReviewCompletedV2
from ezone_schemas.vocabulary import Metric, ReviewStatus, Subgroup, Subject

from ezone.demo import default_data_dir

POLICY = ReviewPolicy()  # the default policy: proficiency band 5 points, minimum n 10
ALL = Subgroup.ALL_STUDENTS
EL = Subgroup.ENGLISH_LEARNERS
AS_OF = date(2025, 8, 1)  # after the school year: annual targets are in force


def students(tested: int, proficient: int, subgroup: Subgroup = ALL) -> Measures:
    return measures_from_counts(subgroup, StudentCounts(
        n_students=tested, n_enrolled=tested, n_tested=tested, n_proficient=proficient, average_scaled_score=None,
        median_growth_percentile=None, n_not_tested_with_reason=0), enrollments_known=True)


def proficiency_goal(target: float, subgroup: Subgroup = ALL, metric: Metric = Metric.PROFICIENCY_RATE) -> GoalContract:
    return GoalContract(goal_id=uuid.uuid4(), metric=metric, subject=Subject.ELA, subgroup=subgroup, baseline=None,
                        annual_target=target, interim_targets=[])


def review(measures: dict[Subgroup, Measures], *, last_year: Measures | None = None, goals=(), policy=POLICY,
           school_year: str = "2024-25", as_of: date = AS_OF):
    return assess(ReviewInputs(school_year=school_year, subject=Subject.ELA, policy=policy, measures=measures,
                               previous_all_students=last_year, goals=list(goals), as_of=as_of))


# --- without goals: proficiency against last year -----------------------------------------------------------------

@pytest.mark.parametrize(("now", "before", "status", "rule", "sentence"), [
    (30, 28, ReviewStatus.MEETING, "not_below_last_year",
     "Meeting: 30% proficient, 2 points above last year's 28%; with no plan goal to judge, the zone policy calls "
     "proficiency that did not fall meeting."),
    (28, 28, ReviewStatus.MEETING, "not_below_last_year",
     "Meeting: 28% proficient, the same as last year's 28%; with no plan goal to judge, the zone policy calls "
     "proficiency that did not fall meeting."),
    (23, 28, ReviewStatus.APPROACHING, "within_band_of_last_year",
     "Approaching: 23% proficient, 5 points below last year's 28%; the zone policy calls a drop of up to 5 points "
     "approaching."),
    (22, 28, ReviewStatus.OFF_TRACK, "below_band_of_last_year",
     "Off track: 22% proficient, 6 points below last year's 28%; the zone policy calls a drop of more than 5 points "
     "off track."),
])
def test_without_goals_the_status_and_its_reason_compare_proficiency_with_last_year(now, before, status, rule, sentence):
    result = review({ALL: students(100, now)}, last_year=students(100, before))
    assert result.status == status
    reason = result.reason
    assert (reason.rule, reason.status, reason.metric, reason.subgroup) == (rule, status, Metric.PROFICIENCY_RATE, ALL)
    assert (reason.actual, reason.compared_with, reason.reference, reason.reference_year) == (now, "last_year", before,
                                                                                              "2023-24")
    assert (reason.difference, reason.band) == (now - before, 5.0)
    assert reason.sentence == sentence


def test_the_band_in_the_reason_is_the_zone_policys():
    policy = ReviewPolicy(approaching_band={Metric.PROFICIENCY_RATE: 2.0})
    result = review({ALL: students(100, 25)}, last_year=students(100, 28), policy=policy)
    assert result.status == ReviewStatus.OFF_TRACK
    assert result.reason.band == 2.0
    assert result.reason.sentence.endswith("the zone policy calls a drop of more than 2 points off track.")


def test_with_no_last_year_the_review_says_there_is_nothing_to_compare_with():
    result = review({ALL: students(40, 10)})
    assert (result.status, result.reason.rule, result.reason.actual) == (ReviewStatus.INSUFFICIENT_DATA, "no_last_year", 25)
    assert result.reason.sentence == ("Not enough data: 25% proficient, but no 2023-24 proficiency to compare with and "
                                      "no plan goal with data.")


def test_too_few_students_is_insufficient_data_naming_the_count_and_the_minimum():
    result = review({ALL: students(7, 3)}, last_year=students(40, 10))
    reason = result.reason
    assert (result.status, reason.rule, reason.n_tested, reason.minimum_n) == (
        ReviewStatus.INSUFFICIENT_DATA, "too_few_students", 7, 10)
    assert reason.sentence == ("Not enough data: 7 students tested, fewer than the zone policy's minimum of 10, so no "
                               "figures are reported.")


def test_a_suppressed_last_year_is_no_comparison():
    result = review({ALL: students(40, 10)}, last_year=students(6, 6))
    assert (result.status, result.reason.rule) == (ReviewStatus.INSUFFICIENT_DATA, "no_last_year")


# --- goals --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("proficient", "status", "rule", "sentence"), [
    (45, ReviewStatus.MEETING, "goal_met", "Meeting: 45% proficient, 5 points above the goal of 40%."),
    (40, ReviewStatus.MEETING, "goal_met", "Meeting: 40% proficient, at or above the goal of 40%."),
    (37, ReviewStatus.APPROACHING, "goal_within_band",
     "Approaching: 37% proficient, 3 points below the goal of 40%; the zone policy calls up to 5 points below a goal "
     "approaching."),
    (34, ReviewStatus.OFF_TRACK, "goal_below_band",
     "Off track: 34% proficient, 6 points below the goal of 40%; the zone policy calls more than 5 points below a goal "
     "off track."),
])
def test_a_goal_status_and_its_reason_compare_this_year_with_the_target(proficient, status, rule, sentence):
    result = review({ALL: students(100, proficient)}, last_year=students(100, 90), goals=[proficiency_goal(40)])
    [finding] = result.goals
    assert finding.status == status
    assert (finding.reason.rule, finding.reason.actual, finding.reason.reference, finding.reason.compared_with) == (
        rule, proficient, 40, "goal")
    assert (finding.reason.difference, finding.reason.band) == (proficient - 40, 5.0)
    assert finding.reason.sentence == sentence
    # The overall status is the goal's (last year's 90% is not what decides), and says so with the goal's numbers.
    assert (result.status, result.reason.rule, result.reason.sentence) == (status, "worst_goal", sentence)


def test_a_subgroup_goal_names_the_subgroup_and_too_few_names_the_minimum_n():
    measures = {ALL: students(100, 50), EL: students(8, 2, EL), Subgroup.HIGH_NEEDS: students(30, 9, Subgroup.HIGH_NEEDS)}
    result = review(measures, goals=[proficiency_goal(25, EL), proficiency_goal(40, Subgroup.HIGH_NEEDS)])
    el, high_needs = result.goals
    assert (el.status, el.reason.rule, el.reason.n_tested, el.reason.minimum_n) == (
        ReviewStatus.INSUFFICIENT_DATA, "too_few_students", 8, 10)
    assert el.reason.sentence == ("Not enough data: 8 English learners tested, fewer than the zone policy's minimum of "
                                  "10, so no figures are reported.")
    assert high_needs.reason.sentence == (
        "High-needs students: Off track: 30% proficient, 10 points below the goal of 40%; the zone policy calls more "
        "than 5 points below a goal off track.")
    # The overall status is the one goal with data, with its sentence.
    assert (result.status, result.reason.rule, result.reason.subgroup) == (
        ReviewStatus.OFF_TRACK, "worst_goal", Subgroup.HIGH_NEEDS)


def test_a_metric_without_a_value_says_so_against_the_goal():
    result = review({ALL: students(40, 10)}, goals=[proficiency_goal(480, metric=Metric.AVERAGE_SCALED_SCORE)])
    [finding] = result.goals
    assert (finding.status, finding.reason.rule, finding.reason.reference) == (
        ReviewStatus.INSUFFICIENT_DATA, "no_value", 480)
    assert finding.reason.sentence == "Not enough data: no average scaled score this year to compare with the goal of 480."


def test_the_overall_reason_is_the_worst_goal_and_counts_the_goals_judged():
    measures = {ALL: students(100, 45), Subgroup.HIGH_NEEDS: students(30, 11, Subgroup.HIGH_NEEDS)}
    result = review(measures, goals=[proficiency_goal(40), proficiency_goal(40, Subgroup.HIGH_NEEDS)])
    assert result.status == ReviewStatus.APPROACHING  # 45% meets 40%; high needs 36.7% is within 5 of 40%
    assert result.reason.rule == "worst_goal"
    assert result.reason.sentence == (
        "High-needs students: Approaching: 36.7% proficient, 3.3 points below the goal of 40%; the zone policy calls "
        "up to 5 points below a goal approaching. The worst of the 2 goals with data.")


def test_the_reasons_travel_in_the_event_contract_and_old_events_still_read():
    result = review({ALL: students(100, 15)}, last_year=students(100, 26), goals=[])
    event = ReviewCompletedV2(review_id=uuid.uuid4(), zone_id="z", school_id=uuid.uuid4(), school_year="2024-25",
                              subject=Subject.ELA, version=1, status=result.status, completed_at="2025-08-01T00:00:00Z",
                              reason=result.reason, current=result.current)
    again = ReviewCompletedV2.model_validate(event.model_dump(mode="json"))
    assert again.reason == result.reason
    assert ReviewCompleted.model_validate(event.as_v1().model_dump(mode="json")).reason.sentence == result.reason.sentence
    old = {k: v for k, v in event.as_v1().model_dump(mode="json").items() if k not in ("reason", "current")}
    assert (ReviewCompleted.model_validate(old).reason, ReviewCompleted.model_validate(old).current) == (None, True)


# --- which reviews alert --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("school_year", "as_of", "current"), [
    ("2025-26", date(2025, 12, 7), True),   # the current school year
    ("2024-25", date(2025, 12, 7), True),   # the previous one
    ("2023-24", date(2025, 12, 7), False),  # history
    ("2024-25", date(2026, 6, 30), True),   # 2025-26 runs until 30 June
    ("2024-25", date(2026, 7, 1), False),   # from 1 July 2026-27 is current
    ("2090-91", date(2025, 12, 7), True),   # a later year is never history
])
def test_only_reviews_of_the_years_the_policy_counts_as_current_may_alert(school_year, as_of, current):
    assert review({ALL: students(40, 10)}, school_year=school_year, as_of=as_of).current is current


def test_the_zone_policy_widens_or_narrows_the_years_that_alert():
    assert review({ALL: students(40, 10)}, school_year="2021-22", as_of=date(2025, 12, 7),
                  policy=ReviewPolicy(alert_school_years=5)).current
    assert not review({ALL: students(40, 10)}, school_year="2024-25", as_of=date(2025, 12, 7),
                      policy=ReviewPolicy(alert_school_years=1)).current


# --- the real case: Kiley Prep and John F Kennedy, ELA 2022 --------------------------------------------------------

def mcas_all_students(year: int) -> dict[tuple[str, Subject], AggregateFigures]:
    """DESE's published all-students figures of a year, read as the results service reads the file."""
    path = default_data_dir() / "mcas" / f"grades_3-8_all_students_{year}.csv"
    if not path.exists():
        pytest.skip(f"DESE's MCAS file {path} is not on this machine")
    reader = McasReader(subgroup=ALL)
    reader.feed(path.read_bytes())
    reader.close()

    def number(value):
        return None if value is None else float(value)

    return {(row.school_code, row.subject): AggregateFigures(
        n_tested=row.n_tested, proficiency_rate=number(row.proficiency_rate),
        average_scaled_score=number(row.average_scaled_score),
        median_growth_percentile=number(row.median_growth_percentile),
        participation_rate=number(row.participation_rate)) for row in reader.rows if row.subgroup == ALL}


KILEY_PREP, JOHN_F_KENNEDY = "02810315", "02810328"


def test_kiley_prep_is_off_track_at_15_percent_after_26_and_kennedy_meeting_at_13_after_11_on_the_2022_files():
    now, before = mcas_all_students(2022), mcas_all_students(2021)

    def ela_review(code: str):
        return review({ALL: measures_from_aggregate(ALL, now[(code, Subject.ELA)])}, school_year="2021-22",
                      last_year=measures_from_aggregate(ALL, before[(code, Subject.ELA)]), as_of=date(2022, 9, 1))

    kiley, kennedy = ela_review(KILEY_PREP), ela_review(JOHN_F_KENNEDY)
    assert (kiley.status, kiley.reason.rule) == (ReviewStatus.OFF_TRACK, "below_band_of_last_year")
    assert (kiley.reason.actual, kiley.reason.reference, kiley.reason.difference) == (15, 26, -11)
    assert kiley.reason.sentence == ("Off track: 15% proficient, 11 points below last year's 26%; the zone policy calls "
                                     "a drop of more than 5 points off track.")
    # Kennedy is lower than Kiley Prep, but it rose: the policy judges a school without goals against its own last year.
    assert (kennedy.status, kennedy.reason.rule) == (ReviewStatus.MEETING, "not_below_last_year")
    assert (kennedy.reason.actual, kennedy.reason.reference, kennedy.reason.difference) == (13, 11, 2)
    assert kennedy.reason.sentence.startswith("Meeting: 13% proficient, 2 points above last year's 11%")
