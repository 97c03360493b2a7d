"""The review engine's pure parts: metrics from counts, suppression, percentiles, goal statuses and flags."""

from __future__ import annotations

import csv
import statistics
import uuid
from collections import defaultdict
from datetime import date

import pytest
from ezone_results.review.engine import (
    AggregateFigures,
    DropCounts,
    GainDistribution,
    ReviewInputs,
    StudentCounts,
    assess,
    exemption_spike_flag,
    goal_status,
    improbable_gain_flag,
    low_participation_flags,
    low_scorer_drop_flag,
    measures_from_aggregate,
    measures_from_counts,
    overall_status,
    percentile_rank,
    previous_school_year,
    report,
    school_year_end,
    state_code,
    target_in_force,
)
from ezone_results.review.policy import ReviewPolicy
from ezone_results.review.schemas import AssessmentCounted, SubgroupFigures
from ezone_schemas.plans import GoalContract, InterimTarget
from ezone_schemas.results import GoalFinding
from ezone_schemas.vocabulary import Metric, ReviewStatus, Subgroup, Subject

from ezone.demo import default_data_dir

POLICY = ReviewPolicy()
ALL = Subgroup.ALL_STUDENTS
YEARS = ("2023-24", "2024-25")


def counts(n_students=40, n_enrolled=40, n_tested=38, n_proficient=19, avg=501.5, mgp=52.0, exempt=1) -> StudentCounts:
    return StudentCounts(n_students=n_students, n_enrolled=n_enrolled, n_tested=n_tested, n_proficient=n_proficient,
                         average_scaled_score=avg, median_growth_percentile=mgp, n_not_tested_with_reason=exempt)


def goal(metric=Metric.PROFICIENCY_RATE, subgroup=ALL, target=50.0, interim=()) -> GoalContract:
    return GoalContract(goal_id=uuid.uuid4(), metric=metric, subject=Subject.MATH, subgroup=subgroup, baseline=None,
                        annual_target=target, interim_targets=[InterimTarget(due=d, target=t) for d, t in interim])


# --- school years ---------------------------------------------------------------------------------

def test_school_years():
    assert previous_school_year("2024-25") == "2023-24"
    assert previous_school_year("2000-01") == "1999-00"
    assert previous_school_year("1999-00") == "1998-99"
    assert previous_school_year("2024") is None
    assert previous_school_year("2024-26") is None
    assert school_year_end("2024-25") == date(2025, 6, 30)


def test_school_codes_are_compared_as_the_state_files_give_them():
    assert state_code("2810505") == "02810505"
    assert state_code("02810505") == "02810505"
    assert state_code("NYC-123") == "NYC-123"


# --- metrics and suppression ----------------------------------------------------------------------

def test_metrics_from_counts_are_rates_of_the_tested_and_of_the_expected():
    m = measures_from_counts(ALL, counts(), enrollments_known=True)
    assert m.proficiency_rate == pytest.approx(100 * 19 / 38)
    assert m.participation_rate == pytest.approx(100 * 38 / 40)
    assert m.exempt_share == pytest.approx(100 * 1 / 40)
    shown = report(m, ALL, 10, percentile=63)
    assert shown.model_dump(exclude={"subgroup"}) == {
        "n_tested": 38, "n_enrolled": 40, "suppressed": False, "proficiency_rate": 50.0, "average_scaled_score": 501.5,
        "median_growth_percentile": 52.0, "participation_rate": 95.0, "achievement_percentile": 63,
        "source": "student_results", "participation_basis": "enrollments", "assessments": None,
    }


def test_level_only_results_count_as_tested_but_the_average_needs_minimum_n_scores():
    # 38 tested, of whom 6 have a scale score (the rest a performance level only): proficiency and participation
    # are over all 38; an average of 6 scores is not shown, nor the percentile ranking it.
    m = measures_from_counts(ALL, StudentCounts(n_students=40, n_enrolled=40, n_tested=38, n_scored=6, n_proficient=19,
                                                average_scaled_score=501.5, median_growth_percentile=None,
                                                n_not_tested_with_reason=1), enrollments_known=True)
    shown = report(m, ALL, 10, percentile=63)
    assert (shown.suppressed, shown.proficiency_rate, shown.participation_rate) == (False, 50.0, 95.0)
    assert (shown.average_scaled_score, shown.achievement_percentile) == (None, None)
    enough = report(measures_from_counts(ALL, counts(), enrollments_known=True), ALL, 10, percentile=63)
    assert (enough.average_scaled_score, enough.achievement_percentile) == (501.5, 63)


def test_the_review_names_the_assessments_it_counted_on_all_students():
    counted = [AssessmentCounted(namespace="uri://doe.mass.edu/mcas", assessment_identifier="MCAS-G7-MATH",
                                 students=40, tested=38)]
    measures = {ALL: measures_from_counts(ALL, counts(), enrollments_known=True),
                Subgroup.HIGH_NEEDS: measures_from_counts(Subgroup.HIGH_NEEDS, counts(), enrollments_known=True)}
    result = assess(ReviewInputs(school_year="2024-25", subject=Subject.MATH, policy=POLICY, measures=measures,
                                 assessments=counted))
    by_subgroup = {m.subgroup: m for m in result.metrics}
    assert by_subgroup[ALL].assessments == counted
    assert by_subgroup[Subgroup.HIGH_NEEDS].assessments is None
    # A review from a state's aggregates names none: its figures are the state's.
    aggregate = {ALL: measures_from_aggregate(ALL, AggregateFigures(n_tested=40, proficiency_rate=50.0,
                                                                    average_scaled_score=500.0,
                                                                    median_growth_percentile=None,
                                                                    participation_rate=None))}
    from_state = assess(ReviewInputs(school_year="2024-25", subject=Subject.MATH, policy=POLICY, measures=aggregate,
                                     assessments=counted))
    assert from_state.metrics[0].assessments is None


def test_without_enrollments_participation_is_over_result_rows_and_says_so():
    shown = report(measures_from_counts(ALL, counts(n_enrolled=0), enrollments_known=False), ALL, 10, None)
    assert shown.participation_basis == "result_rows"
    assert shown.n_enrolled is None
    assert shown.participation_rate == 95.0


@pytest.mark.parametrize("n_tested, suppressed", [(9, True), (10, False)])
def test_small_n_is_suppressed_below_the_policy_minimum(n_tested, suppressed):
    m = measures_from_counts(Subgroup.ENGLISH_LEARNERS, counts(n_students=12, n_tested=n_tested, n_proficient=3),
                             enrollments_known=True)
    shown = report(m, Subgroup.ENGLISH_LEARNERS, 10, percentile=40)
    assert shown.suppressed is suppressed
    figures = (shown.proficiency_rate, shown.average_scaled_score, shown.median_growth_percentile,
               shown.participation_rate, shown.achievement_percentile)
    assert all(f is None for f in figures) if suppressed else all(f is not None for f in figures)
    assert shown.n_tested == n_tested


def test_a_subgroup_without_students_is_reported_suppressed():
    assert report(None, Subgroup.ASIAN, 10, None) == SubgroupFigures(subgroup=Subgroup.ASIAN, n_tested=0, suppressed=True,
                                                                    source="student_results")


def test_a_state_aggregate_without_a_count_is_taken_as_published():
    row = AggregateFigures(n_tested=None, proficiency_rate=41.0, average_scaled_score=497.2, median_growth_percentile=48.0,
                           participation_rate=99.0)
    shown = report(measures_from_aggregate(ALL, row), ALL, 10, 30)
    assert (shown.suppressed, shown.source, shown.participation_basis, shown.average_scaled_score) == (
        False, "aggregate", "aggregate", 497.2)
    small = measures_from_aggregate(ALL, AggregateFigures(6, 50.0, 500.0, None, 100.0))
    assert report(small, ALL, 10, 30).suppressed


# --- achievement percentile -----------------------------------------------------------------------

def independent_percentiles(scores: list[float]) -> list[int]:
    """Written out from the definition, without the engine: below + half of the *other* equal schools, over all."""
    result = []
    for i, score in enumerate(scores):
        below = sum(1 for other in scores if other < score)
        equal = sum(1 for j, other in enumerate(scores) if other == score and j != i)
        value = 100 * (below + equal / 2) / len(scores)
        result.append(min(99, max(1, int(value + 0.5))))
    return result


def engine_percentiles(scores: list[float]) -> list[int]:
    return [percentile_rank(sum(o < s for o in scores), sum(o == s for o in scores) - 1, len(scores)) for s in scores]


def test_percentile_rank_matches_an_independent_computation_with_ties_and_clamps():
    scores = [480.0, 495.5, 495.5, 501.2, 510.0, 510.0, 510.0, 522.3, 530.1, 547.9]
    assert engine_percentiles(scores) == independent_percentiles(scores)
    # By hand: 480 → 0 below → 0 → clamped to 1; 495.5 → (1 + 0.5)/10 = 15; 510 → (4 + 1)/10 = 50; 547.9 → 90.
    assert engine_percentiles(scores)[0] == 1
    assert engine_percentiles(scores)[1] == 15
    assert engine_percentiles(scores)[4] == 50
    assert engine_percentiles(scores)[9] == 90
    assert percentile_rank(199, 0, 200) == 99  # the top of 200 schools: 99.5 → clamped to 99
    assert percentile_rank(1, 0, 8) == 13  # 12.5 rounds half up


def test_percentile_rank_reproduces_dese_ach_pctl_on_the_2022_mcas_file():
    """Sanity check against DESE's published percentiles: within ±2 for nearly every school."""
    path = default_data_dir() / "mcas" / "grades_3-8_all_students_2022.csv"
    if not path.exists():
        pytest.skip(f"{path} is not available")
    by_subject: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["avg_scaled_score"].strip() and row["ach_pctl"].strip():
                by_subject[row["subject"]].append((float(row["avg_scaled_score"]), float(row["ach_pctl"])))
    for subject, rows in by_subject.items():
        ours = engine_percentiles([score for score, _ in rows])
        close = sum(abs(mine - published) <= 2 for mine, (_, published) in zip(ours, rows, strict=True))
        assert close / len(rows) >= 0.98, subject


# --- goals and overall status ---------------------------------------------------------------------

def test_goal_status_bands():
    assert goal_status(50.0, 50.0, 5.0) == ReviewStatus.MEETING
    assert goal_status(45.0, 50.0, 5.0) == ReviewStatus.APPROACHING
    assert goal_status(44.99, 50.0, 5.0) == ReviewStatus.OFF_TRACK
    assert goal_status(None, 50.0, 5.0) == ReviewStatus.INSUFFICIENT_DATA


def test_the_target_in_force_is_the_latest_interim_due_during_the_year_else_the_annual():
    g = goal(target=40.0, interim=[(date(2024, 11, 30), 32.0), (date(2025, 2, 28), 35.0)])
    end = school_year_end("2024-25")
    assert target_in_force(g, date(2024, 10, 1), end) == 40.0  # nothing due yet
    assert target_in_force(g, date(2024, 12, 1), end) == 32.0
    assert target_in_force(g, date(2025, 3, 1), end) == 35.0
    assert target_in_force(g, date(2025, 8, 1), end) == 40.0  # the year is over


def finding(status: ReviewStatus) -> GoalFinding:
    return GoalFinding(goal_id=None, metric=Metric.PROFICIENCY_RATE, subject=Subject.MATH, subgroup=ALL, target=1, actual=1,
                       status=status)


def test_overall_status_is_the_worst_goal_with_data():
    shown = report(measures_from_counts(ALL, counts(), enrollments_known=True), ALL, 10, None)
    statuses = [ReviewStatus.MEETING, ReviewStatus.APPROACHING, ReviewStatus.INSUFFICIENT_DATA]
    assert overall_status(shown, [finding(s) for s in statuses], None, POLICY) == ReviewStatus.APPROACHING
    statuses.append(ReviewStatus.OFF_TRACK)
    assert overall_status(shown, [finding(s) for s in statuses], None, POLICY) == ReviewStatus.OFF_TRACK


def test_without_goals_the_overall_status_compares_proficiency_with_last_year():
    shown = report(measures_from_counts(ALL, counts(), enrollments_known=True), ALL, 10, None)  # 50.0%
    assert overall_status(shown, [], 50.0, POLICY) == ReviewStatus.MEETING
    assert overall_status(shown, [], 55.0, POLICY) == ReviewStatus.APPROACHING
    assert overall_status(shown, [], 55.1, POLICY) == ReviewStatus.OFF_TRACK
    assert overall_status(shown, [], None, POLICY) == ReviewStatus.INSUFFICIENT_DATA
    assert overall_status(shown, [finding(ReviewStatus.INSUFFICIENT_DATA)], 40.0, POLICY) == ReviewStatus.MEETING


def test_overall_status_is_insufficient_when_all_students_are_suppressed():
    shown = report(measures_from_counts(ALL, counts(n_tested=4), enrollments_known=True), ALL, 10, None)
    assert overall_status(shown, [finding(ReviewStatus.MEETING)], 10.0, POLICY) == ReviewStatus.INSUFFICIENT_DATA


# --- integrity flags ------------------------------------------------------------------------------

def test_low_participation_flags_any_subgroup_below_the_minimum_with_its_evidence():
    everyone = measures_from_counts(ALL, counts(n_students=100, n_tested=96), enrollments_known=True)
    swd = measures_from_counts(Subgroup.STUDENTS_WITH_DISABILITIES, counts(n_students=20, n_tested=17), enrollments_known=True)
    tiny = measures_from_counts(Subgroup.ENGLISH_LEARNERS, counts(n_students=6, n_tested=2), enrollments_known=True)
    [flag] = low_participation_flags([everyone, swd, tiny], POLICY)
    assert (flag.kind, flag.subgroup) == ("low_participation", Subgroup.STUDENTS_WITH_DISABILITIES)
    assert flag.evidence == {"tested": 17, "enrolled": 20, "rate": 85.0, "minimum": 95.0, "basis": "enrollments"}
    # Few tested but many expected is exactly what the flag is for: judged on the expected count, not the tested.
    absent = measures_from_counts(Subgroup.LOW_INCOME, counts(n_students=30, n_tested=5), enrollments_known=True)
    assert [f.subgroup for f in low_participation_flags([absent], POLICY)] == [Subgroup.LOW_INCOME]


def test_gain_distribution_takes_one_school_out():
    gains = [1.0, -2.0, 0.5, 3.0, 1.5, 0.0, 12.0]
    full = GainDistribution(len(gains), sum(gains), sum(g * g for g in gains))
    others = full.without(12.0)
    assert others.n == 6
    assert others.mean == pytest.approx(statistics.mean(gains[:-1]))
    assert others.sd == pytest.approx(statistics.stdev(gains[:-1]))
    assert full.without(None) == full


def test_improbable_gain_flags_a_gain_more_than_three_sd_above_the_mean():
    others = [1.0, -2.0, 0.5, 3.0, 1.5, 0.0, 2.0, -1.0]
    distribution = GainDistribution(len(others), sum(others), sum(g * g for g in others))
    mean, sd = statistics.mean(others), statistics.stdev(others)
    before = measures_from_counts(ALL, counts(avg=490.0), enrollments_known=True)
    jump = measures_from_counts(ALL, counts(avg=490.0 + mean + 3 * sd + 0.1), enrollments_known=True)
    flag = improbable_gain_flag(jump, before, distribution, POLICY, years=YEARS)
    assert flag is not None and flag.kind == "improbable_gain"
    assert flag.evidence["n_schools"] == 8
    assert flag.evidence["z"] == pytest.approx((3 * sd + 0.1) / sd, abs=0.01)
    assert flag.evidence["mean"] == pytest.approx(mean, abs=0.001)
    modest = measures_from_counts(ALL, counts(avg=490.0 + mean + 3 * sd - 0.1), enrollments_known=True)
    assert improbable_gain_flag(modest, before, distribution, POLICY, years=YEARS) is None
    few = GainDistribution(4, 2.5, 14.25)
    assert improbable_gain_flag(jump, before, few, POLICY, years=YEARS) is None
    small = measures_from_counts(ALL, counts(n_tested=5, avg=560.0), enrollments_known=True)
    assert improbable_gain_flag(small, before, distribution, POLICY, years=YEARS) is None


def test_low_scorer_drop_needs_enough_dropped_students_mostly_low_scorers():
    flag = low_scorer_drop_flag(DropCounts(last_year_tested=80, cut_score=478.5, dropped=10, dropped_low=6), POLICY,
                                years=YEARS)
    assert flag is not None and flag.evidence["share"] == 0.6 and flag.evidence["cut_score"] == 478.5
    assert low_scorer_drop_flag(DropCounts(80, 478.5, 10, 4), POLICY, years=YEARS) is None  # 40% < 50%
    assert low_scorer_drop_flag(DropCounts(80, 478.5, 4, 4), POLICY, years=YEARS) is None  # fewer than 5 dropped
    assert low_scorer_drop_flag(None, POLICY, years=YEARS) is None


def test_exemption_spike_compares_the_share_with_a_not_tested_code_with_last_year():
    before = measures_from_counts(ALL, counts(n_students=100, exempt=2), enrollments_known=True)
    spike = measures_from_counts(ALL, counts(n_students=100, exempt=5), enrollments_known=True)
    flag = exemption_spike_flag(spike, before, POLICY, years=YEARS)
    assert flag is not None and flag.evidence["jump_points"] == 3.0 and flag.evidence["previous_share"] == 2.0
    steady = measures_from_counts(ALL, counts(n_students=100, exempt=4), enrollments_known=True)
    assert exemption_spike_flag(steady, before, POLICY, years=YEARS) is None
    assert exemption_spike_flag(spike, None, POLICY, years=YEARS) is None


# --- a whole review -------------------------------------------------------------------------------

def test_assess_reports_the_policy_subgroups_goals_and_flags():
    policy = ReviewPolicy(subgroups=[ALL, Subgroup.HIGH_NEEDS, Subgroup.ENGLISH_LEARNERS])
    measures = {
        ALL: measures_from_counts(ALL, counts(n_students=50, n_tested=45, n_proficient=18), enrollments_known=True),
        Subgroup.HIGH_NEEDS: measures_from_counts(Subgroup.HIGH_NEEDS, counts(n_students=20, n_tested=20, n_proficient=5),
                                                  enrollments_known=True),
        Subgroup.WHITE: measures_from_counts(Subgroup.WHITE, counts(n_students=12, n_tested=12), enrollments_known=True),
    }
    goals = [goal(target=42.0), goal(subgroup=Subgroup.HIGH_NEEDS, target=25.0), goal(subgroup=Subgroup.ENGLISH_LEARNERS)]
    result = assess(ReviewInputs(school_year="2024-25", subject=Subject.MATH, policy=policy, measures=measures,
                                 goals=goals, as_of=date(2025, 9, 1)))
    assert [m.subgroup for m in result.metrics] == [ALL, Subgroup.HIGH_NEEDS, Subgroup.ENGLISH_LEARNERS]
    assert [(g.actual, g.status) for g in result.goals] == [
        (40.0, ReviewStatus.APPROACHING), (25.0, ReviewStatus.MEETING), (None, ReviewStatus.INSUFFICIENT_DATA)]
    assert result.status == ReviewStatus.APPROACHING
    assert [f.kind for f in result.flags] == ["low_participation"]  # 45 of 50 = 90%
