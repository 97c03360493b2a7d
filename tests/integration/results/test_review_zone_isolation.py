"""Nothing one zone sends changes another zone's reviews: figures computed from a zone's student rows are kept for
that zone alone, apart from the state's published figures, and every zone ranks its schools among the state's."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tests.helpers import register_zone, scalar
from tests.integration.results.review_support import ReviewZone, Student, cohort, fresh_years, review_zone, school_code
from tests.integration.results.test_review_metrics import SCORES, add_aggregates, metric

STATE_AVERAGES = [480.0, 490.0, 500.0, 505.0, 510.0, 520.0, 530.0, 540.0, 550.0]


async def test_another_zones_results_under_this_zones_school_code_never_change_this_zones_review(zone_stack, zone_id):
    ours = await review_zone(zone_stack, zone_id)
    [school], [code] = ours.schools, ours.codes
    _, year = fresh_years()
    await add_aggregates(ours, year, "MATH", [(code, "all_students", 496.0, 242)], proficiency=38.0, participation=99.0)
    await add_aggregates(ours, year, "MATH", [(school_code(), "all_students", avg, 60) for avg in STATE_AVERAGES])
    before = await ours.review_of(school, year, "MATH")
    # A school of another zone under the same code, as the registry allowed before a code had one owner: the results
    # service keeps its figures apart whatever the registry let through.
    theirs = ReviewZone(zone_stack, f"{zone_id}-b", [str(uuid.uuid4())], [code])
    await register_zone(zone_stack, theirs.zone_id)
    await theirs.execute("INSERT INTO results.schools (id, zone_id, code, name, grade_span) "
                         "VALUES (:id, :zone, :code, 'Same code elsewhere', '6-8')",
                         {"id": theirs.schools[0], "zone": theirs.zone_id, "code": code})
    failing = [Student(f"b{i}", score=450.0, proficient=False) for i in range(33)]
    await theirs.results(theirs.schools[0], year, "MATH", failing)
    assert metric(await theirs.review_of(theirs.schools[0], year, "MATH"), "all_students")["n_tested"] == 33

    after = await ours.review_of(school, year, "MATH", version=2)

    assert metric(after, "all_students") == metric(before, "all_students")
    assert (metric(after, "all_students")["n_tested"], metric(after, "all_students")["proficiency_rate"]) == (242, 38.0)
    assert after["status"] == before["status"]
    # The state's row is as the state published it; the other zone's figures are its own.
    assert await scalar(zone_stack, "SELECT source || ' ' || n_tested FROM results.school_aggregates "
                                    "WHERE school_code = :c AND school_year = :y AND subgroup = 'all_students'",
                        c=code, y=year) == "mcas 242"
    assert await scalar(zone_stack, "SELECT zone_id || ' ' || n_tested FROM results.computed_aggregates "
                                    "WHERE school_code = :c AND school_year = :y AND subgroup = 'all_students'",
                        c=code, y=year) == f"{theirs.zone_id} 33"


async def test_another_zones_computed_figures_never_enter_this_zones_comparisons(zone_stack, zone_id):
    ours = await review_zone(zone_stack, zone_id)
    theirs = await review_zone(zone_stack, f"{zone_id}-b")
    previous, year = fresh_years()
    state = [school_code() for _ in STATE_AVERAGES]
    for when, shift in ((previous, -10.0), (year, 0.0)):
        await add_aggregates(ours, when, "MATH",
                             [(c, "all_students", a + shift, 60) for c, a in zip(state, STATE_AVERAGES, strict=True)])
    await ours.results(ours.schools[0], year, "MATH", cohort("a", SCORES))  # average 514.17
    before = await ours.review_of(ours.schools[0], year, "MATH")
    # The other zone's school scores above every school, and gains more than any, with its own students.
    await theirs.results(theirs.schools[0], previous, "MATH", cohort("b", [400.0] * 12))
    await theirs.results(theirs.schools[0], year, "MATH", cohort("b", [600.0] * 12))
    await theirs.review_of(theirs.schools[0], previous, "MATH")
    theirs_now = await theirs.review_of(theirs.schools[0], year, "MATH")
    assert (metric(theirs_now, "all_students")["achievement_percentile"]
            > metric(before, "all_students")["achievement_percentile"])  # ranked among the state's schools, on top

    after = await ours.review_of(ours.schools[0], year, "MATH", version=2)

    assert metric(after, "all_students") == metric(before, "all_students")  # the percentile among them
    assert (after["status"], after["flags"]) == (before["status"], before["flags"])
    async with zone_stack.kits["results"].engine.connect() as conn:
        stored = (await conn.execute(text(
            "SELECT count(*) FROM results.school_aggregates WHERE school_code = ANY(:codes)"),
            {"codes": [*ours.codes, *theirs.codes]})).scalar()
    assert stored == 0  # a zone's figures never become the state's
