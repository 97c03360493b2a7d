"""A school's standing among every school with an average for the year, subject and subgroup, as its zone sees them."""

from __future__ import annotations

import uuid

import pytest
from ezone_results.review import queries
from sqlalchemy import text


# A few schools asked about are counted per subgroup, many are ranked in one window: both give the same standings.
@pytest.mark.parametrize("padding", [0, queries.COUNTED_PERCENTILES_MAX_CODES], ids=["counted", "ranked"])
async def test_schools_below_other_schools_equal_and_all_schools_are_counted_per_subgroup_with_ties_per_zone(
    zone_stack, padding
):
    kit = zone_stack.kits["results"]
    year = f"T-{uuid.uuid4().hex[:8]}"  # a school year no other test writes: the aggregates are state-wide
    first, second = f"{year}-zone-1", f"{year}-zone-2"
    scores = {"A": 500, "B": 510, "C": 510, "D": 520, "E": None, queries.STATE_TOTAL_CODE: 505}
    async with kit.sessions() as session, session.begin():
        await session.execute(text(
            "INSERT INTO results.school_aggregates (school_code, school_year, subject, subgroup, school_name,"
            " average_scaled_score, source) VALUES (:code, :year, 'MATH', :subgroup, :code, :score, 'mcas')"),
            [{"code": f"{year}-{code}" if code != queries.STATE_TOTAL_CODE else code, "year": year, "subgroup": subgroup,
              "score": score if subgroup == "all_students" else 600}
             for code, score in scores.items() for subgroup in ("all_students", "ell")])
        # The first zone computed B's figures from its student rows, the second F's (a school the state's file lacks):
        # each zone's stand in for the state's in that zone's comparisons alone.
        await session.execute(text(
            "INSERT INTO results.computed_aggregates (zone_id, school_code, school_year, subject, subgroup,"
            " school_name, average_scaled_score) VALUES (:zone, :code, :year, 'MATH', 'all_students', :code, :score)"),
            [{"zone": first, "code": f"{year}-B", "year": year, "score": 530},
             {"zone": second, "code": f"{year}-F", "year": year, "score": 490}])
        unknown = [(first, f"{year}-absent-{n}") for n in range(padding)]  # codes with no aggregates: only a count
        asked = [(zone, f"{year}-{code}") for zone in (first, second) for code in "ABCDEF"]
        counts = await queries.percentile_counts(session, {(year, "MATH")}, asked + unknown)
    # (schools below, other schools equal, schools): the statewide row and a school without an average are no school
    # to compare with.
    found = {(zone, code.rsplit("-", 1)[1], subgroup): n for (zone, code, _, _, subgroup), n in counts.items()}
    assert found == {
        (first, "A", "all_students"): (0, 0, 4), (first, "C", "all_students"): (1, 0, 4),
        (first, "D", "all_students"): (2, 0, 4), (first, "B", "all_students"): (3, 0, 4),
        (second, "F", "all_students"): (0, 0, 5), (second, "A", "all_students"): (1, 0, 5),
        (second, "B", "all_students"): (2, 1, 5), (second, "C", "all_students"): (2, 1, 5),
        (second, "D", "all_students"): (4, 0, 5),
        **{(zone, code, "ell"): (0, 4, 5) for zone in (first, second) for code in "ABCDE"},
    }
