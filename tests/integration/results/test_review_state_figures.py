"""A review carries the state's all-students figures of its school year and subject (the statewide row of a loaded
state file), and the catalog keeps them for partner evidence's comparison with the state."""

from __future__ import annotations

import random

from ezone_schemas import ReviewCompleted

from tests.events import published_events
from tests.helpers import school_code, wait_for_count
from tests.integration.results.edfi_support import zone_with_schools
from tests.integration.results.test_mcas_import import csv_file, post_mcas, row


async def test_a_review_carries_the_states_figures_of_its_year_and_subject_and_the_catalog_keeps_them(
        zone_stack, zone_id):
    year = random.randrange(3000, 3900)  # a school year of its own: state files are statewide
    school_year = f"{year - 1}-{year % 100:02d}"
    code = f"0{school_code()[1:]}"
    school = (await zone_with_schools(zone_stack, zone_id, {code: {"name": "Ours", "grade_span": "6-8"}}))[code]
    # DESE's statewide row has code 0; its ELA row is left out: a review of ELA would carry no state figures.
    content = csv_file(row(code, "MATH", me="20", year=year), row("0", "MATH", me="43", year=year, name="State"))

    loaded = await post_mcas(zone_stack, content, zone=zone_id)

    assert loaded.status_code == 200, loaded.text
    [review] = await published_events(zone_stack, "ezone.results.v1", ReviewCompleted.ce_type, key=school,
                                      where={"school_year": school_year, "subject": "MATH"})
    assert review["state"] == {"proficiency_rate": 43.0, "median_growth_percentile": 50.0, "participation_rate": 98.0}
    assert next(m for m in review["metrics"] if m["subgroup"] == "all_students")["proficiency_rate"] == 20.0
    await wait_for_count(zone_stack, """SELECT count(*) FROM catalog.review_facts WHERE school_id = :s
        AND school_year = :y AND (state->>'proficiency_rate')::float = 43.0""", 1, s=school, y=school_year)
