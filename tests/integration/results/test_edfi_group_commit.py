"""Group commit of Ed-Fi studentAssessments: concurrent requests' records are written together, yet each request
gets its own answer — one bad record never fails the others — and a group announces results.posted once per
school, school year and subject it created results for."""

from __future__ import annotations

import asyncio
import copy

import pytest
from ezone_kit.auth import Principal
from ezone_schemas import ResultsPosted

from ezone_results.edfi import service
from ezone_results.edfi.group_commit import GroupCommit
from ezone_results.edfi.schemas import StudentAssessment
from tests.helpers import scalar
from tests.integration.results.edfi_support import footprint, post_edfi, sis_headers, zone_with_schools
from tests.integration.results.test_edfi import HIGH, MIDDLE, a_result, assert_edfi_problem

ELA = "uri://ed-fi.org/AcademicSubjectDescriptor#English Language Arts"


def a_students_result(student: int, *, school: str = MIDDLE, ela: bool = False) -> dict:
    body = a_result(studentAssessmentIdentifier=f"SA-{student}-{'ELA' if ela else 'MATH'}-2022",
                    studentReference={"studentUniqueId": str(student)}, reportedSchoolReference={"schoolId": int(school)})
    if ela:
        body["assessmentReference"] = {"assessmentIdentifier": "SA-2011-ELA-Eighth grade",
                                       "namespace": "uri://ed-fi.org/Assessment/Assessment.xml"}
        body["_ext"] = {"ezone": {"academicSubjectDescriptor": ELA}}
    return body


@pytest.fixture
async def grand_bend(zone_stack, zone_id) -> dict[str, str]:
    return await zone_with_schools(zone_stack, zone_id)


async def posted_events(stack, zone_id: str) -> list[dict]:  # noqa: ANN001
    return await scalar(stack, """SELECT coalesce(jsonb_agg(payload ORDER BY payload->>'school_id', payload->>'subject'), '[]')
                                  FROM results.outbox WHERE ce_type = :t AND payload->>'zone_id' = :z""",
                        t=ResultsPosted.ce_type, z=zone_id)


async def test_concurrent_requests_with_bad_ones_among_them_fail_only_the_bad_ones(zone_stack, zone_id, grand_bend):
    middle_sis = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])
    assert (await post_edfi(zone_stack, "studentAssessments", a_students_result(1), middle_sis)).status_code == 201
    good = [a_students_result(student) for student in range(100, 130)]
    invalid = a_students_result(900, school=MIDDLE)
    invalid["whenAssessedGradeLevelDescriptor"] = "uri://ed-fi.org/GradeLevelDescriptor#Adult Education"
    forbidden = a_students_result(901, school=HIGH)  # the Middle School's SIS posting for the High School
    clashing = a_students_result(1) | {"studentAssessmentIdentifier": "SA-OTHER"}  # student 1's administration, another id

    answers = await asyncio.gather(*(post_edfi(zone_stack, "studentAssessments", body, middle_sis)
                                     for body in [*good[:15], invalid, forbidden, clashing, *good[15:]]))

    statuses = [response.status_code for response in answers]
    assert statuses == [201] * 15 + [400, 403, 409] + [201] * 15, [r.text for r in answers]
    assert_edfi_problem(answers[15], 400, "urn:ed-fi:api:bad-request:data-validation-failed")
    assert_edfi_problem(answers[16], 403, "urn:ed-fi:api:security:authorization")
    assert_edfi_problem(answers[17], 409, "urn:ed-fi:api:identity-conflict")
    stored = await scalar(zone_stack, """SELECT jsonb_build_object('students', count(*), 'batches', count(DISTINCT batch_id),
        'audited', (SELECT count(*) FROM results.audit_log a WHERE a.zone_id = :z AND a.action = 'student_result.created'))
        FROM results.student_results WHERE zone_id = :z AND student_id <> '1'""", z=zone_id)
    # The 30 were written in groups (fewer batches than rows), each with its own audit entry; nothing else was stored.
    assert stored["students"] == 30 and stored["batches"] < 30 and stored["audited"] == 31, stored
    assert await scalar(zone_stack, "SELECT count(*) FROM results.student_results WHERE zone_id = :z AND student_id IN ('900', '901')",
                        z=zone_id) == 0


async def test_one_group_writes_duplicates_once_and_announces_each_school_year_and_subject_once(zone_stack, zone_id, grand_bend):
    edfi = service.EdFi(zone_stack.kits["results"])  # a writer of its own: the group below is exactly these requests
    admin = Principal(subject="district-sis", role="district", zone=zone_id, schools=frozenset())
    bodies = [*(a_students_result(s) for s in range(3)), *(a_students_result(s, ela=True) for s in range(2)),
              *(a_students_result(s, school=HIGH) for s in range(10, 12))]
    twins = [copy.deepcopy(bodies[0]) for _ in range(3)]
    await service.post_student_assessment(edfi, admin, StudentAssessment.model_validate(a_students_result(99)))  # codes cached
    before, events_before = await footprint(zone_stack, zone_id), await posted_events(zone_stack, zone_id)

    # No request waits on a database read (their schools are cached), so each hands in its record before the
    # writer's first turn: one group.
    upserted = await asyncio.gather(*(service.post_student_assessment(edfi, admin, StudentAssessment.model_validate(body))
                                      for body in [*bodies, *twins]))

    assert [u.created for u in upserted] == [True] * len(bodies) + [False] * 3
    assert {u.id for u in upserted[len(bodies):]} == {upserted[0].id}
    after = await footprint(zone_stack, zone_id)
    assert after["student_results"] - before["student_results"] == len(bodies)
    assert after["audit_log"] - before["audit_log"] == len(bodies)
    batches = await scalar(zone_stack, "SELECT count(DISTINCT batch_id) FROM results.student_results WHERE zone_id = :z "
                                       "AND student_id <> '99'", z=zone_id)
    assert batches == 1
    events = [e for e in await posted_events(zone_stack, zone_id) if e not in events_before]
    assert sorted((e["school_id"], e["school_year"], e["subject"], e["rows_inserted"], e["rows_updated"]) for e in events) == sorted([
        (grand_bend[MIDDLE], "2021-22", "MATH", 3, 0), (grand_bend[MIDDLE], "2021-22", "ELA", 2, 0),
        (grand_bend[HIGH], "2021-22", "MATH", 2, 0)])
    assert {e["source"] for e in events} == {"edfi"} and len({e["batch_id"] for e in events}) == 1
    assert sorted(e["assessment_identifiers"] for e in events) == [
        ["SA-2011-ELA-Eighth grade"], ["SA-2011-Mathematics-Eighth grade"], ["SA-2011-Mathematics-Eighth grade"]]



async def test_when_a_groups_transaction_fails_each_of_its_records_is_written_on_its_own(zone_stack, zone_id, grand_bend,
                                                                                          monkeypatch):
    edfi = service.EdFi(zone_stack.kits["results"])
    admin = Principal(subject="district-sis", role="district", zone=zone_id, schools=frozenset())
    await service.post_student_assessment(edfi, admin, StudentAssessment.model_validate(a_students_result(99)))  # codes cached
    monkeypatch.setattr(service, "_WRITE_GROUP", service.text("SELECT 1 / 0"))  # the group's statement fails

    upserted = await asyncio.gather(*(service.post_student_assessment(edfi, admin, StudentAssessment.model_validate(body))
                                      for body in [a_students_result(1), a_students_result(2), a_students_result(1)]))

    # Student 1's twins race in the locking path: one creates the row, the other finds it unchanged.
    assert upserted[1].created and sorted([upserted[0].created, upserted[2].created]) == [False, True]
    assert upserted[2].id == upserted[0].id
    assert await scalar(zone_stack, "SELECT count(DISTINCT batch_id) FROM results.student_results WHERE zone_id = :z "
                                    "AND student_id IN ('1', '2')", z=zone_id) == 2
    assert len([e for e in await posted_events(zone_stack, zone_id) if e["rows_inserted"] == 1]) == 3  # 99's, 1's and 2's

# --- the group writer itself --------------------------------------------------------------------------------------

async def test_the_group_writer_answers_each_item_with_its_own_outcome_and_takes_at_most_max_group():
    written: list[list[int]] = []

    async def write(group):  # noqa: ANN001, ANN202
        written.append(list(group))
        return [ValueError(f"{item} is bad") if item == 3 else item * 10 for item in group]

    writer = GroupCommit(write, max_group=4)
    outcomes = await asyncio.gather(*(writer.submit(item) for item in range(6)), return_exceptions=True)

    assert [str(o) if isinstance(o, ValueError) else o for o in outcomes] == [0, 10, 20, "3 is bad", 40, 50]
    assert written == [[0, 1, 2, 3], [4, 5]]


async def test_a_writer_that_fails_as_a_whole_fails_every_item_of_that_group_and_the_next_group_is_written():
    calls = 0

    async def write(group):  # noqa: ANN001, ANN202
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the database went away")
        return list(group)

    writer = GroupCommit(write, max_group=10)
    first = await asyncio.gather(*(writer.submit(item) for item in range(3)), return_exceptions=True)
    second = await asyncio.gather(*(writer.submit(item) for item in range(3)))

    assert [type(o) for o in first] == [RuntimeError] * 3
    assert second == [0, 1, 2]


async def test_items_that_find_no_write_in_flight_are_written_without_lingering():
    async def write(group):  # noqa: ANN001, ANN202
        return list(group)

    writer = GroupCommit(write, max_group=10, linger_s=3600)  # a linger this test would never outlast

    assert await asyncio.wait_for(writer.submit(1), timeout=30) == 1
    assert await asyncio.wait_for(asyncio.gather(writer.submit(2), writer.submit(3)), timeout=30) == [2, 3]
