"""A district's whole Ed-Fi load — the Grand Bend sample's ACT, benchmark and (another state's) state test results —
sent to schools the zone reviews against MCAS leaves every MCAS-based review and achievement percentile as it was:
only the assessments the zone's policy names enter a review."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ezone.demo import DEMO_POLICY, all_students_files, default_data_dir, file_parameters
from ezone.stack import EmbeddedBroker
from tests.edfi_grand_bend import convert, student_school_associations
from tests.helpers import scalar
from tests.integration.results.edfi_support import post_edfi, zone_with_schools
from tests.integration.results.test_edfi_lightbeam import ACT_ABW
from tests.stack import Stack, new_database, running_stack

DUGGAN, KILEY = "02810320", "02810316"  # Springfield's 6–12 academy and a middle school, with MCAS figures
ELEMENTARY = "255901107"  # Grand Bend's, for the sample's third graders (no Springfield school teaches grade 3)
SCHOOLS = {DUGGAN: {"name": "John J Duggan Academy", "grade_span": "6-12"},
           KILEY: {"name": "Kiley Academy", "grade_span": "6-8"},
           ELEMENTARY: {"name": "Grand Bend Elementary School", "grade_span": "K-5"}}
# Each sample student is enrolled at the school of the grade it was assessed in.
BY_GRADE = {int(DUGGAN): ("Ninth grade", "Tenth grade", "Eleventh grade", "Twelfth grade"),
            int(KILEY): ("Sixth grade", "Seventh grade", "Eighth grade"),
            int(ELEMENTARY): ("Kindergarten", "First grade", "Second grade", "Third grade", "Fourth grade", "Fifth grade")}
YEARS = ("2020-21", "2021-22")  # the sample's results fall in these (its state test was taken in April 2021)


async def adopt_demo_policy(stack: Stack, zone_id: str) -> None:
    plans = stack.clients["plans"]
    admin = stack.auth("admin", zone_id)
    policy = await plans.get(f"/zones/{zone_id}/policy", headers=admin)
    adopted = await plans.put(f"/zones/{zone_id}/policy", json={**policy.json()["document"], **DEMO_POLICY},
                              headers={**admin, "If-Match": policy.headers["etag"]})
    assert adopted.status_code in (200, 201), adopted.text


async def settled(stack: Stack, zone_id: str, timeout_s: float = 60) -> None:
    """Every review the zone's results asked for done (each results.posted queues its request in the transaction that
    writes it)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        pending = await scalar(stack, "SELECT count(*) FROM results.review_requests WHERE zone_id = :z", z=zone_id)
        if pending == 0:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{pending} review requests still pending"
        await asyncio.sleep(0.3)


async def latest_reviews(stack: Stack, zone_id: str, schools: list[str]) -> dict[str, Any]:
    """The newest review of each school, year and subject: status, metrics (achievement percentiles among them),
    goals and flags."""
    return await scalar(stack, """
        SELECT coalesce(jsonb_object_agg(school_id || ' ' || school_year || ' ' || subject,
                        jsonb_build_object('status', status, 'metrics', metrics, 'goals', goals, 'flags', flags)), '{}')
        FROM (SELECT DISTINCT ON (school_id, school_year, subject) * FROM results.reviews
              WHERE zone_id = :z AND school_id = ANY(CAST(:schools AS uuid[]))
              ORDER BY school_id, school_year, subject, version DESC) latest""", z=zone_id, schools=schools)


async def review_versions(stack: Stack, zone_id: str) -> int:
    return await scalar(stack, "SELECT count(*) FROM results.reviews WHERE zone_id = :z", z=zone_id)


def counted_assessments(reviews: dict[str, Any]) -> set[str]:
    """Every assessment any review says it counted."""
    return {assessment["assessment_identifier"] for review in reviews.values() for figures in review["metrics"]
            for assessment in figures.get("assessments") or []}


@pytest.fixture
async def own_stack(postgres, key_dir, tmp_path) -> AsyncIterator[Stack]:
    """A zone of its own database and broker: the statewide files it loads would change what other tests find."""
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log")
    broker.start()
    try:
        async with running_stack(await new_database(postgres), broker.bootstrap_servers, key_dir) as stack:
            yield stack
    finally:
        broker.stop()


async def test_an_edfi_load_of_act_benchmark_and_another_states_results_leaves_the_mcas_reviews_as_they_were(
        own_stack, zone_id):
    ids = await zone_with_schools(own_stack, zone_id, SCHOOLS)
    await adopt_demo_policy(own_stack, zone_id)
    results = own_stack.clients["results"]
    admin = own_stack.auth("admin", zone_id)
    for path in all_students_files(default_data_dir() / "mcas"):
        if file_parameters(path)["school_year"] in YEARS:
            loaded = await results.post("/state-aggregates/mcas", params=file_parameters(path), content=path.read_bytes(),
                                        headers={**own_stack.auth("state", zone_id), "Content-Type": "text/csv"})
            assert loaded.status_code in (200, 201), loaded.text
    springfield = [ids[DUGGAN], ids[KILEY]]
    await settled(own_stack, zone_id)
    before = await latest_reviews(own_stack, zone_id, springfield)
    versions = await review_versions(own_stack, zone_id)
    assert {key.split(" ", 1)[1] for key in before} == {f"{year} {subject}" for year in YEARS for subject in ("ELA", "MATH", "SCI")}

    documents = copy.deepcopy(convert().documents)
    documents["assessments"].append(ACT_ABW)
    documents["studentSchoolAssociations"] = student_school_associations(documents["studentAssessments"], BY_GRADE)
    for resource in ("assessments", "assessmentItems", "objectiveAssessments", "studentSchoolAssociations",
                     "studentAssessments"):
        answers = await asyncio.gather(*(post_edfi(own_stack, resource, document, admin)
                                         for document in documents[resource]))
        assert {answer.status_code for answer in answers} == {201}, [a.text for a in answers if a.status_code != 201][:3]
    # The load reached the Springfield schools' results: ACT at Duggan, the other state's grade 8 test at Kiley.
    stored = await scalar(own_stack, """SELECT jsonb_object_agg(school_id, n) FROM (SELECT school_id::text, count(*) AS n
        FROM results.student_results WHERE zone_id = :z GROUP BY 1) c""", z=zone_id)
    assert set(stored) == set(ids.values()) and sum(stored.values()) == 531 - 1, stored  # two records, one result
    await settled(own_stack, zone_id)

    # The load's results asked for reviews of the Springfield schools again (ACT English and science at Duggan, the
    # grade 8 state test at Kiley); they ran, and came to the same figures.
    assert await review_versions(own_stack, zone_id) > versions
    after = await latest_reviews(own_stack, zone_id, springfield)
    assert after == before
    everything = await latest_reviews(own_stack, zone_id, list(ids.values()))
    assert counted_assessments(everything) <= {f"MCAS-G{grade}-{subject}" for grade in range(3, 9)
                                                for subject in ("ELA", "MATH", "SCI")}
