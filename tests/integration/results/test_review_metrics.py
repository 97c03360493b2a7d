"""Review metrics on the real stack: figures computed from student rows (checked by hand), small-n suppression,
achievement percentiles (checked against an independent computation) and reviews of aggregate-only schools."""

from __future__ import annotations

import math
import uuid
from datetime import date
from fractions import Fraction

from ezone_results.review.queries import STATE_TOTAL_CODE
from ezone_schemas import ReviewCompleted
from ezone_schemas.topics import RESULTS

from tests.events import published_events
from tests.helpers import scalar
from tests.integration.results.review_support import ReviewZone, Student, cohort, fresh_years, review_zone, school_code

SCORES = [470, 480, 490, 500, 505, 510, 515, 520, 530, 540, 550, 560]
SGPS = [30, 40, 50, 60, 70, 35, 45, 55, 65, 75]


def metric(review: dict, subgroup: str) -> dict:
    return next(m for m in review["metrics"] if m["subgroup"] == subgroup)


def independent_percentile(score: float, others: list[float]) -> int:
    """DESE's rule written out on its own: the school's place in the sorted scores (tied schools share the mean of
    theirs), in one of 99 equal groups of the N + 1 places; 1..99."""
    everyone = sorted([*others, score])
    places = [i + 1 for i, s in enumerate(everyone) if s == score]
    return math.floor(99 * Fraction(sum(places), len(places)) / (len(everyone) + 1)) + 1


async def add_aggregates(zone: ReviewZone, year: str, subject: str, rows: list[tuple[str, str, float | None, int | None]],
                         source: str = "mcas", **figures: float) -> None:
    """(code, subgroup, average scaled score, n tested) rows, as the MCAS import stores them."""
    await zone.execute(
        """INSERT INTO results.school_aggregates (school_code, school_year, subject, subgroup, school_name, n_tested,
               proficiency_rate, average_scaled_score, median_growth_percentile, participation_rate, source, batch_id)
           VALUES (:code, :year, :subject, :subgroup, :name, :n, :proficiency, :avg, :mgp, :participation, :source, :batch)""",
        [{"code": code, "year": year, "subject": subject, "subgroup": subgroup, "name": f"School {code}", "n": n,
          "avg": avg, "source": source, "batch": uuid.uuid4(), "proficiency": figures.get("proficiency"),
          "mgp": figures.get("mgp"), "participation": figures.get("participation")} for code, subgroup, avg, n in rows],
    )


async def test_metrics_per_subgroup_are_computed_from_student_rows_and_enrollments(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id)
    [school] = zone.schools
    _, year = fresh_years()
    tested = [Student(f"s{i}", score=s, proficient=s >= 500, sgp=SGPS[i] if i < len(SGPS) else None,
                      subgroups=("high_needs", "el") if i < 3 else ("high_needs",) if i < 6 else ())
              for i, s in enumerate(SCORES)]
    absent = Student("s12", reason="absent", subgroups=("high_needs",))
    batch = await zone.results(school, year, "MATH", [*tested, absent])
    await zone.enrollments(school, year, [*tested, absent, Student("s13")])
    await zone.enrollments(school, year, [Student("s14", grade="4")])  # not a tested grade
    await zone.enrollments(school, year, [Student("s15")], exit=date(1999, 12, 1))  # left before the test

    review = await zone.review_of(school, year, "MATH", batch_id=batch)

    everyone = metric(review, "all_students")
    assert everyone == {
        "subgroup": "all_students", "n_tested": 12, "n_enrolled": 14, "suppressed": False,
        "proficiency_rate": 75.0,  # 9 of 12 at or above 500
        "average_scaled_score": round(sum(SCORES) / 12, 2),  # 514.17
        "median_growth_percentile": 52.5,  # the ten growth percentiles: (50 + 55) / 2
        "participation_rate": round(100 * 12 / 14, 2),  # s12 absent, s13 enrolled without a row
        "achievement_percentile": 50,  # the only school with results that year: rank 1 of 1, the middle group
        "unranked_reason": None, "source": "student_results", "participation_basis": "enrollments",
        # What the figures counted: the MCAS rows (the zone's default policy), one per student.
        "assessments": [{"namespace": "uri://doe.mass.edu/mcas", "assessment_identifier": "MCAS-G5-MATH",
                         "assessment_category": None, "students": 13, "tested": 12}],
    }
    # Six tested high-needs students: below the minimum n of 10, nothing but the counts is shown.
    assert metric(review, "high_needs") == {
        "subgroup": "high_needs", "n_tested": 6, "n_enrolled": 7, "suppressed": True, "proficiency_rate": None,
        "average_scaled_score": None, "median_growth_percentile": None, "participation_rate": None,
        "achievement_percentile": None, "unranked_reason": "fewer than 10 students tested: the policy's minimum n",
        "source": "student_results", "participation_basis": "enrollments", "assessments": None,
    }
    assert metric(review, "swd") == {**metric(review, "swd"), "n_tested": 0, "suppressed": True}
    assert [m["subgroup"] for m in review["metrics"]] == [
        "all_students", "high_needs", "el", "swd", "low_income", "afr_american_black", "hispanic_latino"]
    # No plan goals and no previous year to compare with: nothing to judge the school against.
    assert review["status"] == "insufficient_data"
    assert [(f["kind"], f["subgroup"]) for f in review["flags"]] == [("low_participation", "all_students")]
    assert (review["version"], review["policy_version"], review["plan_version"]) == (1, 1, None)
    assert review["batch_ids"] == [str(batch)]

    [event] = await published_events(zone_stack, RESULTS, ReviewCompleted.ce_type, key=school)
    assert (event["review_id"], event["status"], event["version"]) == (str(review["id"]), "insufficient_data", 1)
    assert event["metrics"][0] == {k: v for k, v in everyone.items()
                                   if k not in ("source", "participation_basis", "assessments", "unranked_reason")}
    assert event["assessments"] == everyone["assessments"]
    assert event["flags"] == review["flags"] and event["batch_ids"] == [str(batch)]


async def test_without_enrollments_participation_counts_the_result_rows(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id)
    [school] = zone.schools
    _, year = fresh_years()
    not_tested = [Student(f"x{i}", reason=reason) for i, reason in enumerate(["absent", "medical"])]
    await zone.results(school, year, "ELA", [*cohort("t", [500.0 + i for i in range(18)]), *not_tested])

    everyone = metric(await zone.review_of(school, year, "ELA"), "all_students")

    assert (everyone["participation_rate"], everyone["participation_basis"], everyone["n_enrolled"]) == (90.0, "result_rows", None)


async def test_small_n_suppresses_a_subgroup_and_its_goals_and_all_students_suppresses_the_review(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id)
    [school] = zone.schools
    _, year = fresh_years()
    await zone.results(school, year, "MATH", cohort("s", [480.0, 490.0, 510.0, 520.0, 530.0]))

    review = await zone.review_of(school, year, "MATH")

    assert review["status"] == "insufficient_data"
    assert metric(review, "all_students")["suppressed"] is True
    assert metric(review, "all_students")["n_tested"] == 5
    assert all(m["average_scaled_score"] is None for m in review["metrics"])


async def test_achievement_percentiles_rank_the_school_among_every_school_of_the_year_counting_zone_schools_once(
        zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id, schools=2)
    first, second = zone.schools
    _, year = fresh_years()
    state = [495.0, 500.5, 500.5, 503.0, 507.2, 510.0, 510.0, 510.0, 512.4, 518.0, 520.0, 525.5, 530.0, 470.0, 486.1]
    state_codes = [school_code() for _ in state]
    await add_aggregates(zone, year, "MATH", [(code, "all_students", avg, 60) for code, avg in zip(state_codes, state)])
    needs = [480.0, 490.0, 497.5, 505.0, 515.0, 488.0]
    await add_aggregates(zone, year, "MATH", [(code, "high_needs", avg, 25) for code, avg in zip(state_codes, needs)])
    # The state's file also has the second zone school, with an older figure its own student rows replace,
    # and the statewide total, which is no school.
    await add_aggregates(zone, year, "MATH", [(zone.codes[1], "all_students", 430.0, 50),
                                              (STATE_TOTAL_CODE, "all_students", 505.0, 70_000)])
    second_scores = [505.0, 515.0] * 6  # average 510: ties with three state schools
    first_scores = [500.0 + i for i in range(12)]  # average 505.5
    await zone.results(second, year, "MATH", cohort("b", second_scores))
    await zone.results(first, year, "MATH", cohort("a", first_scores[:6], subgroups=("high_needs",))
                       + cohort("a2", first_scores[6:], subgroups=("high_needs",)))

    second_review = await zone.review_of(second, year, "MATH")
    first_review = await zone.review_of(first, year, "MATH")

    assert metric(second_review, "all_students")["achievement_percentile"] == independent_percentile(510.0, state)
    assert metric(first_review, "all_students")["achievement_percentile"] == independent_percentile(505.5, [*state, 510.0])
    assert metric(first_review, "high_needs")["achievement_percentile"] == independent_percentile(505.5, needs)
    # By hand: 510 has 7 schools below and 3 others equal among 16, mean rank 9.5: 99 × 9.5 / 17 = 55.3 → the 56th.
    assert metric(second_review, "all_students")["achievement_percentile"] == 56
    assert metric(first_review, "all_students")["achievement_percentile"] == 39  # rank 7 of 17: 38.5 → 39th
    assert metric(first_review, "high_needs")["achievement_percentile"] == 75  # rank 6 of 7: 74.25 → 75th
    # The zone's own figure stands in for the state's in its comparisons; the state's stays as published.
    assert await scalar(zone_stack, "SELECT zone_id || ' ' || average_scaled_score FROM results.computed_aggregates "
                                    "WHERE school_code = :c AND school_year = :y AND subgroup = 'all_students'",
                        c=zone.codes[1], y=year) == f"{zone_id} 510.00"
    assert await scalar(zone_stack, "SELECT source || ' ' || average_scaled_score FROM results.school_aggregates "
                                    "WHERE school_code = :c AND school_year = :y AND subgroup = 'all_students'",
                        c=zone.codes[1], y=year) == "mcas 430.00"


async def test_a_school_without_student_rows_is_reviewed_from_its_state_aggregates(zone_stack, zone_id):
    # Registered without DESE's leading zero: the state file's code is the same school.
    zone = await review_zone(zone_stack, zone_id, codes=[school_code()[1:]])
    [school] = zone.schools
    state_code = zone.codes[0].zfill(8)
    _, year = fresh_years()
    await add_aggregates(zone, year, "ELA", [(state_code, "all_students", 496.4, 310)],
                         proficiency=38.0, mgp=47.5, participation=93.0)
    await add_aggregates(zone, year, "ELA", [(state_code, "el", 471.0, 8)], proficiency=10.0, participation=99.0)

    review = await zone.review_of(school, year, "ELA")

    assert metric(review, "all_students") == {
        "subgroup": "all_students", "n_tested": 310, "n_enrolled": None, "suppressed": False, "proficiency_rate": 38.0,
        "average_scaled_score": 496.4, "median_growth_percentile": 47.5, "participation_rate": 93.0,
        "achievement_percentile": 50, "unranked_reason": None, "source": "aggregate", "participation_basis": "aggregate",
        "assessments": None,
    }
    assert metric(review, "el")["suppressed"] is True
    assert [(f["kind"], f["evidence"]["rate"]) for f in review["flags"]] == [("low_participation", 93.0)]
    # A policy change finds the school's aggregates too, through the padded code.
    await zone.change_policy(participation_minimum=90.0)
    again = await zone.wait_for_review(school, year, "ELA", version=2)
    assert (again["policy_version"], again["flags"]) == (2, [])
