"""A school's standing among every school with an average for the year, subject and subgroup."""

from __future__ import annotations

import uuid

import pytest
from ezone_results.review import queries
from sqlalchemy import text


# A few schools asked about are counted per subgroup, many are ranked in one window: both give the same standings.
@pytest.mark.parametrize("padding", [0, queries.COUNTED_PERCENTILES_MAX_CODES], ids=["counted", "ranked"])
async def test_schools_below_other_schools_equal_and_all_schools_are_counted_per_subgroup_with_ties(zone_stack, padding):
    kit = zone_stack.kits["results"]
    year = f"T-{uuid.uuid4().hex[:8]}"  # a school year no other test writes: the aggregates are state-wide
    scores = {"A": 500, "B": 510, "C": 510, "D": 520, "E": None, queries.STATE_TOTAL_CODE: 505}
    async with kit.sessions() as session, session.begin():
        await session.execute(text(
            "INSERT INTO results.school_aggregates (school_code, school_year, subject, subgroup, school_name,"
            " average_scaled_score, source) VALUES (:code, :year, 'MATH', :subgroup, :code, :score, 'mcas')"),
            [{"code": f"{year}-{code}" if code != queries.STATE_TOTAL_CODE else code, "year": year, "subgroup": subgroup,
              "score": score if subgroup == "all_students" else 600}
             for code, score in scores.items() for subgroup in ("all_students", "ell")])
        unknown = [f"{year}-absent-{n}" for n in range(padding)]  # codes with no aggregates: they only add to the count
        counts = await queries.percentile_counts(session, {(year, "MATH")}, [f"{year}-{code}" for code in "ABCDE"] + unknown)
    # (schools below, other schools equal, schools): the statewide row and a school without an average are no school
    # to compare with.
    assert {(code.rsplit("-", 1)[1], subgroup): found for (code, _, _, subgroup), found in counts.items()} == {
        ("A", "all_students"): (0, 0, 4), ("B", "all_students"): (1, 1, 4), ("C", "all_students"): (1, 1, 4),
        ("D", "all_students"): (3, 0, 4),
        **{(code, "ell"): (0, 4, 5) for code in "ABCDE"},
    }
