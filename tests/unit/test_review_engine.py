"""The review engine's pure parts: metrics from counts, suppression, percentiles, goal statuses and flags."""

from __future__ import annotations

import csv
import math
import statistics
import uuid
from datetime import date
from fractions import Fraction
from pathlib import Path

import pytest
from ezone_results.review.engine import (
    AggregateFigures,
    DropCounts,
    GainDistribution,
    ReviewInputs,
    Standing,
    StudentCounts,
    assess,
    exemption_spike_flag,
    improbable_gain_flag,
    low_participation_flags,
    low_scorer_drop_flag,
    measures_from_aggregate,
    measures_from_counts,
    percentile_rank,
    previous_school_year,
    report,
    school_year_end,
    state_code,
    target_in_force,
)
from ezone_results.review.policy import ReviewPolicy
from ezone_results.review.schemas import AssessmentCounted, SubgroupFigures
from ezone_results.review.state_ranking import state_unranked, unranked_reason
from ezone_results.state_aggregates.mcas import STUDENT_GROUPS, school_year_of
from ezone_schemas.plans import GoalContract, InterimTarget
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
    shown = report(m, ALL, 10, Standing(63))
    assert shown.model_dump(exclude={"subgroup"}) == {
        "n_tested": 38, "n_enrolled": 40, "suppressed": False, "proficiency_rate": 50.0, "average_scaled_score": 501.5,
        "median_growth_percentile": 52.0, "participation_rate": 95.0, "achievement_percentile": 63,
        "unranked_reason": None, "source": "student_results", "participation_basis": "enrollments", "assessments": None,
    }


def test_level_only_results_count_as_tested_but_the_average_needs_minimum_n_scores():
    # 38 tested, of whom 6 have a scale score (the rest a performance level only): proficiency and participation
    # are over all 38; an average of 6 scores is not shown, nor the percentile ranking it.
    m = measures_from_counts(ALL, StudentCounts(n_students=40, n_enrolled=40, n_tested=38, n_scored=6, n_proficient=19,
                                                average_scaled_score=501.5, median_growth_percentile=None,
                                                n_not_tested_with_reason=1), enrollments_known=True)
    shown = report(m, ALL, 10, Standing(63))
    assert (shown.suppressed, shown.proficiency_rate, shown.participation_rate) == (False, 50.0, 95.0)
    assert (shown.average_scaled_score, shown.achievement_percentile) == (None, None)
    enough = report(measures_from_counts(ALL, counts(), enrollments_known=True), ALL, 10, Standing(63))
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
    shown = report(m, Subgroup.ENGLISH_LEARNERS, 10, Standing(40))
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
    shown = report(measures_from_aggregate(ALL, row), ALL, 10, Standing(30))
    assert (shown.suppressed, shown.source, shown.participation_basis, shown.average_scaled_score) == (
        False, "aggregate", "aggregate", 497.2)
    small = measures_from_aggregate(ALL, AggregateFigures(6, 50.0, 500.0, None, 100.0))
    assert report(small, ALL, 10, Standing(30)).suppressed


# --- achievement percentile -----------------------------------------------------------------------

def independent_percentiles(scores: list[float]) -> list[int]:
    """Written out from the definition, without the engine: each school's 1-based position in the sorted scores,
    tied schools sharing the mean of theirs, in one of 99 equal groups of the N + 1 slots (SAS PROC RANK GROUPS=)."""
    ordered = sorted(scores)
    result = []
    for score in scores:
        positions = [i + 1 for i, other in enumerate(ordered) if other == score]
        mean_rank = Fraction(sum(positions), len(positions))
        result.append(math.floor(99 * mean_rank / (len(scores) + 1)) + 1)
    return result


def engine_percentiles(scores: list[float]) -> list[int]:
    return [percentile_rank(sum(o < s for o in scores), sum(o == s for o in scores) - 1, len(scores)) for s in scores]


def test_percentile_rank_is_the_mean_rank_in_99_equal_groups_ties_sharing_their_mean_rank():
    scores = [480.0, 495.5, 495.5, 501.2, 510.0, 510.0, 510.0, 522.3, 530.1, 547.9]
    assert engine_percentiles(scores) == independent_percentiles(scores)
    # By hand, N = 10: 480 is rank 1 → 99 × 1 / 11 = 9 → 10th; 495.5 × 2 share ranks 2 and 3 → 2.5 → 22.5 → 23rd;
    # 510 × 3 share 5, 6, 7 → 6 → 54 → 55th; 547.9 is rank 10 → 90 → 91st.
    assert engine_percentiles(scores)[:2] == [10, 23]
    assert engine_percentiles(scores)[4] == 55
    assert engine_percentiles(scores)[9] == 91
    # 1..99 whatever N: the bottom and top of 98 schools, one school alone (the middle).
    assert (percentile_rank(0, 0, 98), percentile_rank(97, 0, 98), percentile_rank(0, 0, 1)) == (2, 99, 50)
    assert percentile_rank(13, 0, 1385) == 2  # rank 14 of 1,385: 99 × 14 / 1,386 = 1 exactly, the edge of the 2nd


def test_a_group_the_state_does_not_rank_has_no_percentile_and_says_why():
    horace_mann = ("00350750", "2021-22", "ELA", "all_students")  # the Boston school for the deaf and hard of hearing
    assert unranked_reason(horace_mann, 28) == "not ranked by the state: special-purpose school"
    assert unranked_reason(("00350750", "2018-19", "ELA", "all_students"), 31) is None  # ranked that year
    assert unranked_reason(("01234567", "2021-22", "MATH", "el"), 9) == (
        "fewer than 10 students tested: the state ranks no smaller group")
    assert unranked_reason(("01234567", "2021-22", "MATH", "el"), 10) is None
    assert unranked_reason(("01234567", "2021-22", "MATH", "el"), None) is None  # published without a count

    figures = measures_from_aggregate(ALL, AggregateFigures(28, 10.0, 472.5, None, 97.0))
    shown = report(figures, ALL, 10, Standing.of(None, unranked_reason(horace_mann, 28)))
    assert (shown.achievement_percentile, shown.unranked_reason) == (None, "not ranked by the state: special-purpose school")
    assert report(figures, ALL, 10, Standing.of((3, 0, 1380), None)).achievement_percentile == 1
    small = report(figures, ALL, 30, Standing.of((3, 0, 1380), None))  # the policy's minimum n is 30
    assert (small.suppressed, small.achievement_percentile, small.unranked_reason) == (
        True, None, "fewer than 30 students tested: the policy's minimum n")


def published_files() -> list[Path]:
    files = sorted((default_data_dir() / "mcas").glob("grades_3-8_*.csv"))
    if not files:
        pytest.skip(f"no MCAS files in {default_data_dir() / 'mcas'}")
    return files


def test_the_groups_listed_unranked_are_those_dese_published_figures_but_no_percentile_for():
    """The list is DESE's own: every school group with an average and no `ach_pctl` in a published file (one of a
    year DESE ranked schools in: it ranked none in 2021), and nothing else."""
    blank = set()
    for path in published_files():
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
        if not any((row.get("ach_pctl") or "").strip() for row in rows):
            continue
        for row in rows:
            code = row["school_code"].strip().zfill(8)
            if code != "00000000" and row["avg_scaled_score"].strip() and not row["ach_pctl"].strip():
                group = STUDENT_GROUPS[(row.get("student_group") or "all students").strip().lower()]
                blank.add((code, school_year_of(int(row["year"])), row["subject"].strip(), group.value))
    assert blank == set(state_unranked()), "regenerate dese_unranked.csv from DESE's files (see docs/reviews.md)"


# --- goals and overall status ---------------------------------------------------------------------

def test_the_target_in_force_is_the_latest_interim_due_during_the_year_else_the_annual():
    g = goal(target=40.0, interim=[(date(2024, 11, 30), 32.0), (date(2025, 2, 28), 35.0)])
    end = school_year_end("2024-25")
    assert target_in_force(g, date(2024, 10, 1), end) == 40.0  # nothing due yet
    assert target_in_force(g, date(2024, 12, 1), end) == 32.0
    assert target_in_force(g, date(2025, 3, 1), end) == 35.0
    assert target_in_force(g, date(2025, 8, 1), end) == 40.0  # the year is over


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
