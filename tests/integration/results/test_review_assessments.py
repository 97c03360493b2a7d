"""Which results a review counts: only those of the assessments the zone's policy names (`accountability_assessments`),
one per student, subject and school year by the policy's `result_choice` — whatever else arrives, and in whatever order.

Results go in through the JSON batch API where the API can say what the test needs; rows an Ed-Fi client would
leave behind (a category, no proficient flag, no grade) are written with SQL, as the other review tests write theirs.
"""

from __future__ import annotations

import uuid
from datetime import date

from ezone_results.review import queries
from ezone_results.review.policy import ReviewPolicy
from sqlalchemy import text

from ezone.stack import wait_for
from tests.helpers import scalar
from tests.integration.results.review_support import ReviewZone, Student, fresh_years, review_zone, school_code
from tests.integration.results.test_review_metrics import add_aggregates, metric
from tests.results_data import NAMESPACE

ACT = ("uri://ed-fi.org/Assessment/Assessment.xml", "ACT English")  # scale scores 1-36
BENCHMARK = ("uri://district.example/benchmarks", "ELA Benchmark Grade 7")
MCAS_ELA = "MCAS-G7-ELA"


def administered_in(year: str) -> date:
    return date(int(year[:4]) + 1, 3, 25)


def row(school: str, year: str, student: str, assessment: tuple[str, str] = (NAMESPACE, MCAS_ELA), *,
        score: float | None = None, level: str | None = None, reason: str | None = None, day: date | None = None,
        subgroups: tuple[str, ...] = ()) -> dict:
    """A JSON batch row of grade 7 ELA."""
    body = {"student_id": student, "school_id": school, "assessment_namespace": assessment[0],
            "assessment_identifier": assessment[1], "subject": "ELA", "grade": "7", "school_year": year,
            "administration_date": (day or administered_in(year)).isoformat(), "subgroups": list(subgroups)}
    optional = {"scale_score": score, "performance_level": level, "not_tested_reason": reason}
    return body | {name: value for name, value in optional.items() if value is not None}


def mcas_level(score: float) -> str:
    return next(name for floor, name in ((530, "Exceeding Expectations"), (500, "Meeting Expectations"),
                                         (470, "Partially Meeting Expectations"), (0, "Not Meeting Expectations"))
                if score >= floor)


async def post_rows(zone: ReviewZone, rows: list[dict]) -> str:
    """One JSON batch as the zone's SIS; every row stored. Returns the batch id."""
    token = zone.stack.token("sis", zone.zone_id, zone.schools)
    response = await zone.stack.clients["results"].post(
        f"/zones/{zone.zone_id}/results", json={"rows": rows}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (200, 201), response.text
    assert response.json()["rejected"] == 0, response.json()["errors"]
    return response.json()["batch_id"]


async def review_after(zone: ReviewZone, school: str, year: str, subject: str, batch_id: str) -> dict:
    """The review that asked about `batch_id` (it read every row committed before it), or a later version."""
    async def reviewed() -> bool:
        return await scalar(zone.stack, """SELECT count(*) FROM results.reviews WHERE school_id = :s AND school_year = :y
                                           AND subject = :j AND batch_ids ? :b""",
                            s=school, y=year, j=subject, b=batch_id) > 0

    await wait_for(reviewed, 30, what=f"a review of {school} {year} {subject} after batch {batch_id}")
    return (await zone.reviews(school, year, subject))[-1]


def judged(review: dict) -> dict:
    """What a review concludes: its figures, flags and status (not its id, version, time or batches)."""
    return {"metrics": review["metrics"], "flags": review["flags"], "status": review["status"], "goals": review["goals"]}


# --- a performance level without a scale score ----------------------------------------------------

async def test_a_performance_level_only_mcas_result_counts_as_tested_and_proficient_from_its_level(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id)
    [school] = zone.schools
    _, year = fresh_years()
    # Twelve MCAS results, ten of them a performance level only, as an Ed-Fi client may send them: no scale score and
    # no proficient flag of their own. One student was absent.
    students = [
        *(Student(f"m{i}", level="Meeting Expectations", grade="7") for i in range(5)),
        Student("m5", level="exceeding expectations", grade="7"),  # levels are compared without regard to case
        *(Student(f"p{i}", level="Partially Meeting Expectations", grade="7") for i in range(4)),
        Student("s0", score=512.0, proficient=True, level="Meeting Expectations", grade="7"),
        Student("s1", score=488.0, proficient=False, level="Partially Meeting Expectations", grade="7"),
        Student("absent", reason="absent", grade="7"),
    ]
    await zone.results(school, year, "ELA", students)

    review = await zone.review_of(school, year, "ELA")

    everyone = metric(review, "all_students")
    assert (everyone["n_tested"], everyone["suppressed"]) == (12, False)
    assert everyone["proficiency_rate"] == round(100 * 7 / 12, 2)  # 6 levels meeting or exceeding + s0
    assert everyone["participation_rate"] == round(100 * 12 / 13, 2)  # only the absent student was not tested
    # Two scale scores: too few students (minimum n 10) for an average, nor a percentile ranking it.
    assert (everyone["average_scaled_score"], everyone["achievement_percentile"]) == (None, None)
    assert everyone["assessments"] == [{"namespace": NAMESPACE, "assessment_identifier": "MCAS-G7-ELA",
                                        "assessment_category": None, "students": 13, "tested": 12}]
    assert [(f["kind"], f["evidence"]["tested"]) for f in review["flags"]] == [("low_participation", 12)]

    # The policy decides which levels are proficient: with only "Exceeding Expectations" listed, a "Meeting
    # Expectations" result is not, whatever its own flag says.
    await zone.change_policy(accountability_assessments=[
        {"namespace": NAMESPACE, "proficient_levels": ["Exceeding Expectations"]}])
    stricter = await zone.wait_for_review(school, year, "ELA", version=2)
    assert metric(stricter, "all_students")["proficiency_rate"] == round(100 * 1 / 12, 2)
    assert stricter["policy_version"] == 2


# --- order of arrival -----------------------------------------------------------------------------

async def test_same_day_results_of_several_assessments_give_the_same_review_whatever_order_they_arrive_in(
        zone_stack, zone_id):
    """Every student took MCAS ELA, ACT English and the district's ELA benchmark on the same day, and half of them
    have a second MCAS ELA result that day (a paper form, scored differently). Two zones receive the same results,
    one assessment per batch, in opposite orders."""
    first = await review_zone(zone_stack, zone_id)
    second = await review_zone(zone_stack, f"{zone_id}-reversed")
    # Each zone in a year of its own, so neither school's figures enter the other's percentile.
    years = [fresh_years()[1], fresh_years()[1]]
    mcas = [min(470.0 + 7 * i, 560.0) for i in range(14)]
    # Every other student has a paper form too, scored 12 points higher or lower by turns.
    paper = {i: mcas[i] + (12.0 if n % 2 else -12.0) for n, i in enumerate(range(0, 14, 2))}

    def batches(zone: ReviewZone, year: str) -> dict[str, list[dict]]:
        [school] = zone.schools
        groups = ("high_needs", "low_income")
        return {
            "mcas": [row(school, year, f"s{i}", score=s, level=mcas_level(s), subgroups=groups if i < 10 else ())
                     for i, s in enumerate(mcas)],
            "paper": [row(school, year, f"s{i}", (NAMESPACE, f"{MCAS_ELA}-PAPER"), score=s, level=mcas_level(s),
                          subgroups=groups if i < 10 else ()) for i, s in paper.items()],
            "act": [row(school, year, f"s{i}", ACT, score=float(12 + i)) for i in range(14)],
            # The benchmark's performance levels read as proficient, and two students missed it.
            "benchmark": [row(school, year, f"s{i}", BENCHMARK, level="Meeting") if i > 1 else
                          row(school, year, f"s{i}", BENCHMARK, reason="absent") for i in range(14)],
        }

    reviews = []
    for zone, year, order in ((first, years[0], ("act", "benchmark", "paper", "mcas")),
                              (second, years[1], ("mcas", "paper", "benchmark", "act"))):
        [school] = zone.schools
        rows = batches(zone, year)
        batch_ids = [await post_rows(zone, rows[name]) for name in order]
        reviews.append(await review_after(zone, school, year, "ELA", batch_ids[-1]))

    assert judged(reviews[0]) == judged(reviews[1])
    # The higher of the two same-day MCAS scores counts (the policy's default choice: the latest administration,
    # ties to the higher scale score); ACT English and the benchmark count nowhere.
    counted = [max(score, paper.get(i, score)) for i, score in enumerate(mcas)]
    everyone = metric(reviews[0], "all_students")
    assert everyone["n_tested"] == 14 and everyone["participation_rate"] == 100.0
    assert everyone["average_scaled_score"] == round(sum(counted) / 14, 2)
    assert everyone["proficiency_rate"] == round(100 * sum(s >= 500 for s in counted) / 14, 2)
    assert everyone["achievement_percentile"] == 50  # the only school of its year: the middle group
    assert [(a["assessment_identifier"], a["students"]) for a in everyone["assessments"]] == [
        (MCAS_ELA, sum(1 for i, s in enumerate(mcas) if paper.get(i, s) <= s)),
        (f"{MCAS_ELA}-PAPER", sum(1 for i, s in enumerate(mcas) if paper.get(i, s) > s)),
    ]
    assert reviews[0]["flags"] == []


# --- results of other assessments ------------------------------------------------------------------

async def test_a_non_accountability_assessment_never_changes_a_reviews_metrics_percentiles_participation_or_flags(
        zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id)
    [school] = zone.schools
    code = zone.codes[0]
    previous, year = fresh_years()
    scores = [470.0 + 4.5 * i for i in range(20)]  # 470 .. 555.5, average 512.75
    # Other schools of the state in both years, so the school has a percentile and a gain to compare.
    others = [school_code() for _ in range(6)]
    gains = [-3.0, 5.0, 0.0, 2.0, -1.0, 4.0]
    await add_aggregates(zone, previous, "ELA", [(c, "all_students", 480.0 + 8 * n, 60) for n, c in enumerate(others)])
    await add_aggregates(zone, year, "ELA", [(c, "all_students", 480.0 + 8 * n + gains[n], 60) for n, c in enumerate(others)])
    await post_rows(zone, [row(school, previous, f"s{i}", score=s, level=mcas_level(s), day=administered_in(previous))
                           for i, s in enumerate(scores)])
    mcas = await post_rows(zone, [row(school, year, f"s{i}", score=s + 2, level=mcas_level(s + 2))
                                  for i, s in enumerate(scores)])
    before = await review_after(zone, school, year, "ELA", mcas)
    figures = await scalar(zone_stack, """SELECT jsonb_agg(to_jsonb(a) - 'updated_at' - 'batch_id' ORDER BY subgroup)
                                          FROM results.computed_aggregates a WHERE school_code = :c AND school_year = :y
                                          AND subject = 'ELA'""", c=code, y=year)

    # ACT English for the same students and for ten who took no MCAS (scale scores 1-36), and the benchmark's
    # not-tested codes for five more: as MCAS results they would sink the average, the percentile and the
    # participation, and raise the exemption share (flags).
    act = await post_rows(zone, [
        *(row(school, year, f"s{i}", ACT, score=float(10 + i)) for i in range(20)),
        *(row(school, year, f"act-only-{i}", ACT, score=float(14 + i)) for i in range(10)),
        *(row(school, year, f"bench-{i}", BENCHMARK, reason="absent") for i in range(5)),
    ])
    after = await review_after(zone, school, year, "ELA", act)

    assert after["version"] > before["version"]
    assert judged(after) == judged(before)
    everyone = metric(after, "all_students")
    assert (everyone["n_tested"], everyone["participation_rate"]) == (20, 100.0)
    assert everyone["average_scaled_score"] == round(sum(scores) / 20 + 2, 2)
    assert everyone["achievement_percentile"] == metric(before, "all_students")["achievement_percentile"] > 50
    assert [a["assessment_identifier"] for a in everyone["assessments"]] == [MCAS_ELA]
    assert after["flags"] == []
    # The figures other schools are ranked against did not move either.
    assert await scalar(zone_stack, """SELECT jsonb_agg(to_jsonb(a) - 'updated_at' - 'batch_id' ORDER BY subgroup)
                                       FROM results.computed_aggregates a WHERE school_code = :c AND school_year = :y
                                       AND subject = 'ELA'""", c=code, y=year) == figures
    # Every result is kept, counted or not.
    assert await scalar(zone_stack, "SELECT count(*) FROM results.student_results WHERE school_id = :s AND school_year = :y",
                        s=school, y=year) == 55


async def test_ed_fi_results_count_by_their_assessment_category_and_without_a_grade(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id)
    [school] = zone.schools
    _, year = fresh_years()
    # A state summative test as an Ed-Fi client sends it: category known, performance levels with the stored flag
    # from Ed-Fi's performanceLevelMet, some results naming no grade. And a benchmark for other students.
    state = [Student(f"s{i}", score=400.0 + 10 * i, proficient=i >= 6, level="Met Standard" if i >= 6 else "Did Not Meet",
                     grade="8" if i % 3 else None) for i in range(12)]
    await zone.results(school, year, "ELA", state, namespace=ACT[0], assessment="SA-2011-Reading-Eighth grade",
                       category="State summative assessment 3-8 general")
    benchmark = [Student(f"b{i}", score=200.0, proficient=True, grade="8") for i in range(12)]
    await zone.results(school, year, "ELA", benchmark, namespace=ACT[0], assessment="Benchmark Reading 8",
                       category="Benchmark test")

    review = await zone.review_of(school, year, "ELA")

    everyone = metric(review, "all_students")
    assert (everyone["n_tested"], everyone["proficiency_rate"]) == (12, 50.0)
    assert everyone["average_scaled_score"] == 455.0
    assert everyone["assessments"] == [{"namespace": ACT[0], "assessment_identifier": "SA-2011-Reading-Eighth grade",
                                        "assessment_category": "State summative assessment 3-8 general",
                                        "students": 12, "tested": 12}]

    # A policy naming grades counts only results of those grades: a result without a grade is left out.
    await zone.change_policy(accountability_assessments=[
        {"assessment_category": "uri://ed-fi.org/AssessmentCategoryDescriptor#State summative assessment 3-8 general",
         "grades": ["08"], "subjects": ["ELA"]}])
    graded = metric(await zone.wait_for_review(school, year, "ELA", version=2), "all_students")
    assert graded["n_tested"] == 8 and graded["suppressed"] is True


# --- the choice, zone by zone ---------------------------------------------------------------------

async def test_each_zones_result_choice_and_levels_apply_to_its_own_schools_within_one_batch(zone_stack):
    """Three zones' schools read in one statement (as one worker batch reads them), each zone with its own policy,
    and each zone alone: the same rows."""
    kit = zone_stack.kits["results"]
    year = fresh_years()[1]
    start = int(year[:4]) + 1
    march, may = date(start, 3, 1), date(start, 5, 1)
    mcas = {"namespace": NAMESPACE}
    policies = {
        f"choice-{choice}-{uuid.uuid4().hex[:6]}": ReviewPolicy.model_validate({
            "result_choice": choice, "accountability_assessments": [{**mcas, **extra}]})
        for choice, extra in (("latest", {}), ("earliest", {"proficient_levels": ["Exceeding Expectations"]}),
                              ("highest_score", {"grades": ["7"]}))
    }
    schools = {zone: uuid.uuid4() for zone in policies}
    # (student, assessment, day, score, level, proficient flag, not-tested reason)
    results = [
        ("x", (NAMESPACE, MCAS_ELA), march, 480, "Partially Meeting Expectations", False, None),
        ("x", (NAMESPACE, MCAS_ELA), may, 505, "Meeting Expectations", True, None),  # a retake
        ("y", (NAMESPACE, MCAS_ELA), march, 520, "Meeting Expectations", True, None),
        ("y", (NAMESPACE, MCAS_ELA), may, 500, "Meeting Expectations", True, None),
        ("z", (NAMESPACE, MCAS_ELA), march, 470, "Partially Meeting Expectations", False, None),
        ("z", (NAMESPACE, MCAS_ELA), may, None, None, None, "absent"),  # missed the retake
        ("w", ACT, may, 30, None, None, None),  # counts nowhere
    ]
    rows = [{"zone": zone, "school": school, "student": student, "namespace": assessment[0], "identifier": assessment[1],
             "day": day, "score": score, "level": level, "proficient": proficient, "reason": reason, "year": year}
            for zone, school in schools.items()
            for student, assessment, day, score, level, proficient, reason in results]

    async def chosen(zones: list[str]) -> dict[tuple[str, str], tuple]:
        keys = [(schools[zone], year, "ELA") for zone in zones]
        async with kit.sessions() as session, session.begin():
            numbers = await queries.load_students(session, keys, {schools[z]: z for z in zones}, policies)
            zone_of = {numbers[(schools[z], year, "ELA")]: z for z in zones}
            found = await session.execute(text("SELECT k, student_id, scale_score, proficient FROM review_students"))
            picked = {(zone_of[r.k], r.student_id): (None if r.scale_score is None else float(r.scale_score), r.proficient)
                      for r in found}
            await session.rollback()
        return picked

    async with kit.sessions() as session, session.begin():
        await session.execute(text(
            """INSERT INTO results.student_results (zone_id, school_id, student_id, assessment_namespace,
                   assessment_identifier, subject, grade, school_year, administration_date, scale_score,
                   performance_level, proficient, not_tested_reason, subgroups, batch_id)
               VALUES (:zone, :school, :student, :namespace, :identifier, 'ELA', '7', :year, :day, :score, :level,
                       :proficient, :reason, '{}', gen_random_uuid())"""), rows)
    latest, earliest, highest = policies
    together = await chosen(list(policies))

    assert together == {
        # The latest administration: x's retake, y's lower retake; z's March score (a tested result beats absent).
        (latest, "x"): (505.0, True), (latest, "y"): (500.0, True), (latest, "z"): (470.0, False),
        # The first attempt; only "Exceeding Expectations" is proficient in this zone.
        (earliest, "x"): (480.0, False), (earliest, "y"): (520.0, False), (earliest, "z"): (470.0, False),
        # The best attempt.
        (highest, "x"): (505.0, True), (highest, "y"): (520.0, True), (highest, "z"): (470.0, False),
    }
    alone = {}
    for zone in policies:
        alone |= await chosen([zone])
    assert alone == together
