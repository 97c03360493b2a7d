"""Integrity flags on the real stack, each with a school that raises it and one that does not, and the evidence."""

from __future__ import annotations

import statistics

from tests.integration.results.review_support import Student, cohort, fresh_years, review_zone, school_code
from tests.integration.results.test_review_metrics import add_aggregates


def kinds(review: dict) -> list[str]:
    return [flag["kind"] for flag in review["flags"]]


def flag(review: dict, kind: str) -> dict:
    return next(f for f in review["flags"] if f["kind"] == kind)


async def test_low_participation_is_flagged_for_a_subgroup_below_the_minimum(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id, schools=2)
    low, full = zone.schools
    _, year = fresh_years()
    for school, tested in ((low, 9), (full, 10)):  # 9 of 10 students with disabilities: 90%; 39 of 40 overall
        swd = cohort(f"{school}-swd", [490.0 + i for i in range(10)], subgroups=("swd",))
        others = cohort(f"{school}-o", [500.0 + i for i in range(30)])
        absent = [Student(s.id, reason="absent", subgroups=("swd",)) for s in swd[tested:]]
        await zone.results(school, year, "MATH", [*swd[:tested], *absent, *others])
        await zone.enrollments(school, year, [*swd, *others])

    flagged = await zone.review_of(low, year, "MATH")
    clean = await zone.review_of(full, year, "MATH")

    assert [(f["kind"], f["subgroup"]) for f in flagged["flags"]] == [("low_participation", "swd")]
    assert flag(flagged, "low_participation")["evidence"] == {
        "tested": 9, "enrolled": 10, "rate": 90.0, "minimum": 95.0, "basis": "enrollments"}
    assert kinds(clean) == []


async def test_a_gain_far_above_comparable_schools_is_flagged(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id, schools=2)
    jumper, steady = zone.schools
    previous, year = fresh_years()
    state_gains = [1.0, -1.0, 2.0, 0.0, 1.5, -0.5, 0.5, 1.0, 2.5, -1.0]
    codes = [school_code() for _ in state_gains]
    await add_aggregates(zone, previous, "ELA", [(code, "all_students", 495.0, 80) for code in codes])
    await add_aggregates(zone, year, "ELA", [(code, "all_students", 495.0 + g, 80) for code, g in zip(codes, state_gains)])
    for school, gain in ((jumper, 30.0), (steady, 2.0)):
        await zone.results(school, previous, "ELA", cohort(f"{school}-", [490.0] * 12))
        await zone.results(school, year, "ELA", cohort(f"{school}-", [490.0 + gain] * 12))
        await zone.review_of(school, previous, "ELA")  # its figures for last year join the comparison table

    flagged = await zone.review_of(jumper, year, "ELA")
    clean = await zone.review_of(steady, year, "ELA")

    evidence = flag(flagged, "improbable_gain")["evidence"]
    mean, sd = statistics.mean(state_gains), statistics.stdev(state_gains)
    assert (evidence["gain"], evidence["previous"], evidence["current"], evidence["n_schools"]) == (30.0, 490.0, 520.0, 10)
    assert evidence["mean"] == round(mean, 3) and evidence["sd"] == round(sd, 3)
    assert evidence["z"] == round((30.0 - mean) / sd, 2) and evidence["sd_threshold"] == 3.0
    assert "improbable_gain" not in kinds(clean)  # compared with the ten and the jumper
    # Reviewed again: the steady school has joined the comparison; the jumper is never compared with itself.
    again = flag(await zone.review_of(jumper, year, "ELA", version=2), "improbable_gain")["evidence"]
    assert again["n_schools"] == 11 and again["mean"] == round(statistics.mean([*state_gains, 2.0]), 3)


async def test_a_drop_in_tested_students_concentrated_among_last_years_low_scorers_is_flagged(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id, schools=2)
    culled, churned = zone.schools
    previous, year = fresh_years()
    last_year = [450.0 + 5 * i for i in range(20)]  # 25th percentile: 470 + 0.75 × 5 = 473.75
    # Gone this year: the six lowest (five of them at or below the cut), or six from across the range (two of them).
    for school, gone in ((culled, {0, 1, 2, 3, 4, 5}), (churned, {0, 4, 8, 12, 16, 19})):
        returning = cohort(f"{school}-p", last_year)
        await zone.results(school, previous, "MATH", returning)
        await zone.results(school, year, "MATH", [s for i, s in enumerate(returning) if i not in gone]
                           + cohort(f"{school}-new", [500.0] * 6))

    flagged = await zone.review_of(culled, year, "MATH")
    clean = await zone.review_of(churned, year, "MATH")

    assert flag(flagged, "low_scorer_drop")["evidence"] == {
        "last_year_tested": 20, "dropped": 6, "dropped_low_scorers": 5, "share": 0.833, "threshold_share": 0.5,
        "expected_share": 0.25, "cut_score": 473.75, "min_students": 5}
    assert "low_scorer_drop" not in kinds(clean)


async def test_a_jump_in_not_tested_codes_is_flagged(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id, schools=2)
    spiking, steady = zone.schools
    previous, year = fresh_years()
    scores = [480.0 + 2 * i for i in range(20)]
    # 1 of 20 (5%) not tested last year; this year 3 of 20 (15%) at one school, 1 of 20 again at the other.
    for school, exempt in ((spiking, 3), (steady, 1)):
        await zone.results(school, previous, "ELA", [*cohort(f"{school}-p", scores[:19]),
                                                     Student(f"{school}-p-19", reason="medical")])
        await zone.results(school, year, "ELA", [*cohort(f"{school}-c", scores[:20 - exempt]),
                                                 *(Student(f"{school}-e{i}", reason="exempt") for i in range(exempt))])

    flagged = await zone.review_of(spiking, year, "ELA")
    clean = await zone.review_of(steady, year, "ELA")

    assert flag(flagged, "exemption_spike")["evidence"] == {
        "share": 15.0, "previous_share": 5.0, "jump_points": 10.0, "threshold_points": 3.0, "not_tested": 3,
        "students": 20, "previous_not_tested": 1, "previous_students": 20}
    assert "exemption_spike" not in kinds(clean)
