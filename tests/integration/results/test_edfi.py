"""The Ed-Fi-compatible API: studentAssessments and studentSchoolAssociations as an Ed-Fi SIS sends them,
upserted on their natural keys, with Ed-Fi-style errors — and the Grand Bend sample files loaded through it."""

from __future__ import annotations

import asyncio
import copy
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from ezone_schemas import ResultsPosted

from ezone.demo import default_data_dir
from tests.events import published_events
from tests.helpers import scalar
from tests.integration.results.edfi_support import (
    EDFI,
    assessment_subjects,
    footprint,
    post_edfi,
    sis_headers,
    student_assessment_json,
    zone_with_schools,
)

HIGH, MIDDLE, ELEMENTARY = "255901001", "255901044", "255901107"
EDFI_DIR = default_data_dir() / "edfi"
VALIDATION = "urn:ed-fi:api:bad-request:data-validation-failed"
# The result's fields an audit entry records (the identity is the entity it names).
AUDITED = ("school_id", "subject", "grade", "school_year", "administration_date", "scale_score", "performance_level", "proficient",
           "growth_percentile", "not_tested_reason")


def a_result(**changes: object) -> dict:
    """A Data Standard 5 studentAssessment: an eighth grader's state math result at Grand Bend Middle."""
    body = {
        "studentAssessmentIdentifier": "SA-604898-MATH-2022",
        "assessmentReference": {"assessmentIdentifier": "SA-2011-Mathematics-Eighth grade",
                                "namespace": "uri://ed-fi.org/Assessment/Assessment.xml"},
        "studentReference": {"studentUniqueId": "604898"},
        "schoolYearTypeReference": {"schoolYear": 2022},
        "administrationDate": "2022-04-01T16:00:00",
        "reportedSchoolReference": {"schoolId": int(MIDDLE)},
        "whenAssessedGradeLevelDescriptor": "uri://ed-fi.org/GradeLevelDescriptor#Eighth grade",
        "scoreResults": [
            {"assessmentReportingMethodDescriptor": "uri://ed-fi.org/AssessmentReportingMethodDescriptor#Scale score",
             "resultDatatypeTypeDescriptor": "uri://ed-fi.org/ResultDatatypeTypeDescriptor#Integer", "result": "497"},
            {"assessmentReportingMethodDescriptor": "uri://ed-fi.org/AssessmentReportingMethodDescriptor#Raw score",
             "resultDatatypeTypeDescriptor": "uri://ed-fi.org/ResultDatatypeTypeDescriptor#Integer", "result": "28"},
        ],
        "performanceLevels": [
            {"assessmentReportingMethodDescriptor": "uri://ed-fi.org/AssessmentReportingMethodDescriptor#Proficiency level",
             "performanceLevelDescriptor": "uri://ed-fi.org/PerformanceLevelDescriptor#Met Standard", "performanceLevelMet": True},
        ],
    }
    body.update(changes)
    return body


def an_enrollment(**changes: object) -> dict:
    body = {"studentReference": {"studentUniqueId": "604898"}, "schoolReference": {"schoolId": int(MIDDLE)},
            "entryDate": "2021-08-23", "entryGradeLevelDescriptor": "uri://ed-fi.org/GradeLevelDescriptor#Eighth grade",
            "schoolYearTypeReference": {"schoolYear": 2022}}
    body.update(changes)
    return body


def assert_edfi_problem(response, status: int, type_: str) -> dict:  # noqa: ANN001
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == type_ and body["status"] == status and body["title"] and body["detail"], body
    assert body["correlationId"] and isinstance(body["validationErrors"], dict) and isinstance(body["errors"], list), body
    return body


async def stored_result(stack, zone_id: str, student: str = "604898") -> dict:  # noqa: ANN001
    return await scalar(stack, """SELECT to_jsonb(r) - 'id' - 'batch_id' - 'updated_at' FROM results.student_results r
                                  WHERE zone_id = :z AND student_id = :s""", z=zone_id, s=student)


@pytest.fixture
async def grand_bend(zone_stack, zone_id) -> dict[str, str]:
    return await zone_with_schools(zone_stack, zone_id)


async def test_a_new_result_is_201_with_location_and_stored_in_ezone_terms(zone_stack, zone_id, grand_bend):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])

    response = await post_edfi(zone_stack, "studentAssessments", a_result(), headers)

    assert response.status_code == 201, response.text
    assert response.headers["location"].startswith(f"{EDFI}/studentAssessments/")
    assert await stored_result(zone_stack, zone_id) == {
        "zone_id": zone_id, "school_id": grand_bend[MIDDLE], "student_id": "604898",
        "assessment_namespace": "uri://ed-fi.org/Assessment/Assessment.xml",
        "assessment_identifier": "SA-2011-Mathematics-Eighth grade", "subject": "MATH", "grade": "8", "school_year": "2021-22",
        "administration_date": "2022-04-01", "scale_score": 497.00, "performance_level": "Met Standard", "proficient": True,
        "growth_percentile": None, "not_tested_reason": None, "subgroups": [], "edfi_identifier": "SA-604898-MATH-2022",
    }
    events = await published_events(zone_stack, "ezone.results.v1", ResultsPosted.ce_type, key=grand_bend[MIDDLE])
    assert [(e["school_year"], e["subject"], e["source"], e["rows_inserted"], e["rows_updated"]) for e in events] == [
        ("2021-22", "MATH", "edfi", 1, 0)]


async def test_the_same_result_twice_is_200_the_second_time_with_no_second_effect(zone_stack, zone_id, grand_bend):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])
    assert (await post_edfi(zone_stack, "studentAssessments", a_result(), headers)).status_code == 201
    after_first = await footprint(zone_stack, zone_id)

    again = await post_edfi(zone_stack, "studentAssessments", a_result(), headers)

    assert again.status_code == 200, again.text
    assert "location" not in again.headers
    assert await footprint(zone_stack, zone_id) == after_first


async def test_the_same_new_result_sent_concurrently_is_created_once_with_one_event_and_one_audit_entry(zone_stack, zone_id,
                                                                                                         grand_bend):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])

    answers = await asyncio.gather(*(post_edfi(zone_stack, "studentAssessments", a_result(), headers) for _ in range(6)))

    assert sorted(response.status_code for response in answers) == [200] * 5 + [201], [r.text for r in answers]
    counts = await footprint(zone_stack, zone_id)
    assert (counts["student_results"], counts["outbox"]) == (1, 1)
    created = await scalar(zone_stack, """SELECT jsonb_agg(jsonb_build_object('action', action, 'entity_id', entity_id,
        'school', school_id, 'after', after, 'traced', trace_id IS NOT NULL)) FROM results.audit_log
        WHERE zone_id = :z AND entity = 'student_result'""", z=zone_id)
    result_id = await scalar(zone_stack, "SELECT id::text FROM results.student_results WHERE zone_id = :z", z=zone_id)
    assert created == [{"action": "student_result.created", "entity_id": result_id, "school": grand_bend[MIDDLE], "traced": True,
                        "after": {**{k: v for k, v in (await stored_result(zone_stack, zone_id)).items() if k in AUDITED},
                                  "scale_score": "497"}}]
    assert next(r for r in answers if r.status_code == 201).headers["location"].endswith(f"/{result_id}")


async def test_a_corrected_score_is_200_updates_the_row_and_announces_one_update(zone_stack, zone_id, grand_bend):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])
    await post_edfi(zone_stack, "studentAssessments", a_result(), headers)
    corrected = a_result()
    corrected["scoreResults"][0]["result"] = "512"

    response = await post_edfi(zone_stack, "studentAssessments", corrected, headers)

    assert response.status_code == 200, response.text
    assert (await stored_result(zone_stack, zone_id))["scale_score"] == 512.00
    assert await scalar(zone_stack, "SELECT count(*) FROM results.student_results WHERE zone_id = :z", z=zone_id) == 1
    assert await scalar(zone_stack, "SELECT count(*) FROM results.audit_log WHERE zone_id = :z AND action = 'student_result.updated' "
                                    "AND (before->>'scale_score')::numeric = 497 AND (after->>'scale_score')::numeric = 512", z=zone_id) == 1
    events = await published_events(zone_stack, "ezone.results.v1", ResultsPosted.ce_type, key=grand_bend[MIDDLE], expected=2)
    assert sorted((e["rows_inserted"], e["rows_updated"]) for e in events) == [(0, 1), (1, 0)]


async def test_a_result_moved_to_another_school_announces_both_schools(zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    await post_edfi(zone_stack, "studentAssessments", a_result(), admin)

    moved = await post_edfi(zone_stack, "studentAssessments", a_result(reportedSchoolReference={"schoolId": int(HIGH)}), admin)

    assert moved.status_code == 200, moved.text
    assert (await stored_result(zone_stack, zone_id))["school_id"] == grand_bend[HIGH]
    for school in (grand_bend[HIGH], grand_bend[MIDDLE]):
        updates = await published_events(zone_stack, "ezone.results.v1", ResultsPosted.ce_type, key=school, where={"rows_updated": 1})
        assert len(updates) == 1, school


@pytest.mark.parametrize("body, paths", [
    ({}, {"$.studentAssessmentIdentifier", "$.assessmentReference", "$.studentReference", "$.administrationDate"}),
    (a_result(studentAssessmentIdentifier="", administrationDate="yesterday", reportedSchoolReference={"schoolId": "GB"},
              scoreResults=[{"result": "1"}]),
     {"$.studentAssessmentIdentifier", "$.administrationDate", "$.reportedSchoolReference.schoolId",
      "$.scoreResults[0].assessmentReportingMethodDescriptor", "$.scoreResults[0].resultDatatypeTypeDescriptor"}),
    (a_result(whenAssessedGradeLevelDescriptor="uri://ed-fi.org/GradeLevelDescriptor#Adult Education",
              assessmentReference={"assessmentIdentifier": "ACT Composite", "namespace": "uri://ed-fi.org/Assessment"}),
     {"$.whenAssessedGradeLevelDescriptor", "$._ext.ezone.academicSubjectDescriptor"}),
    (a_result(scoreResults=[{"assessmentReportingMethodDescriptor": "uri://ed-fi.org/AssessmentReportingMethodDescriptor#Scale score",
                             "resultDatatypeTypeDescriptor": "uri://ed-fi.org/ResultDatatypeTypeDescriptor#Integer", "result": "high"}]),
     {"$.scoreResults[0].result"}),
    (a_result(scoreResults=[], performanceLevels=[]), {"$.scoreResults"}),
    (a_result(reasonNotTestedDescriptor="uri://ed-fi.org/ReasonNotTestedDescriptor#Absent"), {"$.reasonNotTestedDescriptor"}),
    (a_result(_ext={"ezone": {"academicSubjectDescriptor": "uri://ed-fi.org/AcademicSubjectDescriptor#Social Studies"}}),
     {"$._ext.ezone.academicSubjectDescriptor"}),
], ids=["empty", "malformed-fields", "unknown-grade-and-subject", "score-not-a-number", "nothing-ezone-uses",
        "not-tested-with-scores", "subject-not-reviewed"])
async def test_a_bad_result_is_400_data_validation_failed_by_json_path_and_stores_nothing(zone_stack, zone_id, grand_bend, body, paths):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])
    before = await footprint(zone_stack, zone_id)

    problem = assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments", body, headers), 400, VALIDATION)

    assert set(problem["validationErrors"]) == paths, problem
    assert all(messages for messages in problem["validationErrors"].values())
    assert await footprint(zone_stack, zone_id) == before


@pytest.mark.parametrize("raw", [b"", b'{"studentAssessmentIdentifier": ', b"[1, 2]"], ids=["empty", "truncated", "not-an-object"])
async def test_a_body_that_is_not_a_json_object_is_400_in_the_edfi_shape(zone_stack, zone_id, grand_bend, raw):
    response = await zone_stack.clients["results"].post(f"{EDFI}/studentAssessments", content=raw, headers={
        **zone_stack.auth("admin", zone_id), "Content-Type": "application/json"})
    assert "$" in assert_edfi_problem(response, 400, VALIDATION)["validationErrors"]
    assert (await footprint(zone_stack, zone_id))["student_results"] == 0


async def test_a_body_sent_as_another_content_type_is_400_and_the_token_is_checked_before_the_body(zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    as_text = await zone_stack.clients["results"].post(f"{EDFI}/studentAssessments", content=b'{"a": 1}', headers={
        **admin, "Content-Type": "text/plain"})
    assert "$" in assert_edfi_problem(as_text, 400, VALIDATION)["validationErrors"]

    no_token = await zone_stack.clients["results"].post(f"{EDFI}/studentAssessments", content=b"{not json",
                                                        headers={"Content-Type": "application/json"})
    assert_edfi_problem(no_token, 401, "urn:ed-fi:api:security:authentication")
    assert (await footprint(zone_stack, zone_id))["student_results"] == 0


async def test_an_unknown_school_or_one_of_another_zone_is_409_unresolved_reference(zone_stack, zone_id, grand_bend):
    other_zone = f"{zone_id}-b"
    await zone_with_schools(zone_stack, other_zone, {"255902001": {"name": "Other Bend High", "grade_span": "9-12"}})
    admin = zone_stack.auth("admin", zone_id)

    for school_id in (999999999, 255902001):
        body = assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments",
                                                   a_result(reportedSchoolReference={"schoolId": school_id}), admin),
                                   409, "urn:ed-fi:api:data-conflict:unresolved-reference")
        assert str(school_id) in body["errors"][0]
    assert (await footprint(zone_stack, zone_id))["student_results"] == 0
    assert (await footprint(zone_stack, other_zone))["student_results"] == 0


async def test_a_sis_token_for_one_school_posting_another_is_403_and_stores_nothing(zone_stack, zone_id, grand_bend):
    high_sis = await sis_headers(zone_stack, zone_id, [grand_bend[HIGH]], name="High SIS")
    before = await footprint(zone_stack, zone_id)

    assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments", a_result(), high_sis), 403,
                        "urn:ed-fi:api:security:authorization")
    assert_edfi_problem(await post_edfi(zone_stack, "studentSchoolAssociations", an_enrollment(), high_sis), 403,
                        "urn:ed-fi:api:security:authorization")
    assert await footprint(zone_stack, zone_id) == before


async def test_a_sis_token_cannot_take_over_another_schools_result_by_naming_its_own_school(zone_stack, zone_id, grand_bend):
    await post_edfi(zone_stack, "studentAssessments", a_result(), zone_stack.auth("admin", zone_id))
    high_sis = await sis_headers(zone_stack, zone_id, [grand_bend[HIGH]], name="High SIS")
    before = await footprint(zone_stack, zone_id)

    response = await post_edfi(zone_stack, "studentAssessments", a_result(reportedSchoolReference={"schoolId": int(HIGH)}), high_sis)

    assert_edfi_problem(response, 403, "urn:ed-fi:api:security:authorization")
    assert await footprint(zone_stack, zone_id) == before


@pytest.mark.parametrize("role", ["school", "board"])
async def test_roles_other_than_sis_admin_and_district_are_403_and_no_token_is_401(zone_stack, zone_id, grand_bend, role):
    headers = zone_stack.auth(role, zone_id, [grand_bend[MIDDLE]] if role == "school" else None)
    assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments", a_result(), headers), 403,
                        "urn:ed-fi:api:security:authorization")
    assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments", a_result(), {}), 401,
                        "urn:ed-fi:api:security:authentication")
    assert (await footprint(zone_stack, zone_id))["student_results"] == 0


async def test_another_studentassessmentidentifier_for_the_same_administration_is_409_identity_conflict(zone_stack, zone_id, grand_bend):
    district = zone_stack.auth("district", zone_id)
    await post_edfi(zone_stack, "studentAssessments", a_result(), district)
    before = await footprint(zone_stack, zone_id)

    response = await post_edfi(zone_stack, "studentAssessments", a_result(studentAssessmentIdentifier="SA-OTHER"), district)

    assert_edfi_problem(response, 409, "urn:ed-fi:api:identity-conflict")
    assert await footprint(zone_stack, zone_id) == before


async def test_without_a_reported_school_the_result_goes_to_the_school_the_student_was_enrolled_in(zone_stack, zone_id, grand_bend):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])
    body = a_result()
    del body["reportedSchoolReference"]
    problem = assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments", body, headers), 400, VALIDATION)
    assert set(problem["validationErrors"]) == {"$.reportedSchoolReference"}

    assert (await post_edfi(zone_stack, "studentSchoolAssociations", an_enrollment(), headers)).status_code == 201
    assert (await post_edfi(zone_stack, "studentAssessments", body, headers)).status_code == 201
    assert (await stored_result(zone_stack, zone_id))["school_id"] == grand_bend[MIDDLE]


async def test_an_enrollment_is_upserted_on_its_natural_key(zone_stack, zone_id, grand_bend):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])

    created = await post_edfi(zone_stack, "studentSchoolAssociations", an_enrollment(), headers)
    after_first = await footprint(zone_stack, zone_id)
    again = await post_edfi(zone_stack, "studentSchoolAssociations", an_enrollment(), headers)
    assert await footprint(zone_stack, zone_id) == after_first
    withdrawn = await post_edfi(zone_stack, "studentSchoolAssociations", an_enrollment(exitWithdrawDate="2022-01-31"), headers)

    assert (created.status_code, again.status_code, withdrawn.status_code) == (201, 200, 200)
    assert created.headers["location"].startswith(f"{EDFI}/studentSchoolAssociations/")
    stored = await scalar(zone_stack, "SELECT to_jsonb(e) - 'id' - 'batch_id' - 'updated_at' FROM results.enrollments e WHERE zone_id = :z",
                          z=zone_id)
    assert stored == {"zone_id": zone_id, "school_id": grand_bend[MIDDLE], "student_id": "604898", "school_year": "2021-22",
                      "grade": "8", "entry_date": "2021-08-23", "exit_date": "2022-01-31", "subgroups": []}
    assert await scalar(zone_stack, "SELECT count(*) FROM results.audit_log WHERE zone_id = :z AND entity = 'enrollment'", z=zone_id) == 2


@pytest.mark.parametrize("body, paths", [
    (an_enrollment(entryDate="2021-13-01", exitWithdrawDate=None), {"$.entryDate"}),
    (an_enrollment(exitWithdrawDate="2021-08-01"), {"$.exitWithdrawDate"}),
    (an_enrollment(entryGradeLevelDescriptor="uri://ed-fi.org/GradeLevelDescriptor#Postsecondary"), {"$.entryGradeLevelDescriptor"}),
    ({"studentReference": {}}, {"$.studentReference.studentUniqueId", "$.schoolReference", "$.entryDate", "$.entryGradeLevelDescriptor"}),
], ids=["bad-date", "exit-before-entry", "unknown-grade", "missing-fields"])
async def test_a_bad_enrollment_is_400_and_stores_nothing(zone_stack, zone_id, grand_bend, body, paths):
    problem = assert_edfi_problem(await post_edfi(zone_stack, "studentSchoolAssociations", body, zone_stack.auth("admin", zone_id)),
                                  400, VALIDATION)
    assert set(problem["validationErrors"]) == paths, problem
    assert (await footprint(zone_stack, zone_id))["enrollments"] == 0


# --- the Grand Bend sample files ------------------------------------------------------------------------------

# The files name no school: each result goes to the Grand Bend school of the grade it was taken in.
SCHOOL_BY_GRADE = {"Third grade": ELEMENTARY, "Fifth grade": ELEMENTARY, "Eighth grade": MIDDLE, "Eleventh grade": HIGH}


def grand_bend_results() -> list[tuple[str, dict]]:
    """(file, studentAssessment JSON) for every record of the sample files, with the school by grade and the
    subject from the assessments' metadata files (as `_ext.ezone.academicSubjectDescriptor`) when they give it."""
    subjects = assessment_subjects(sorted(EDFI_DIR.glob("AssessmentMetadata-*.xml")))
    records = []
    for path in [*sorted(EDFI_DIR.glob("StudentAssessment-*.xml")), EDFI_DIR / "StudentAssessmentSample.xml"]:
        for element in ET.parse(path).getroot().findall("{http://ed-fi.org/5.2.0}StudentAssessment"):
            body = student_assessment_json(element)
            grade = body["whenAssessedGradeLevelDescriptor"].rsplit("#", 1)[-1]
            body["reportedSchoolReference"] = {"schoolId": int(SCHOOL_BY_GRADE[grade])}
            reference = body["assessmentReference"]
            if subject := subjects.get((reference["assessmentIdentifier"], reference["namespace"])):
                body["_ext"] = {"ezone": {"academicSubjectDescriptor": subject}}
            records.append((Path(path).name, body))
    return records


async def test_the_grand_bend_sample_files_load_one_record_at_a_time_and_load_again_without_effect(zone_stack, zone_id, grand_bend):
    headers = await sis_headers(zone_stack, zone_id, list(grand_bend.values()), name="Grand Bend SIS")
    records = grand_bend_results()

    answers = [(name, body, await post_edfi(zone_stack, "studentAssessments", body, headers)) for name, body in records]

    outcome = Counter((name, response.status_code, *(sorted(response.json()["validationErrors"]) if response.status_code == 400 else ()))
                      for name, _, response in answers)
    assert outcome == {
        # English, Reading, Science and Writing scale scores. The Composite is no subject ezone reviews (and 60
        # of the 67 have nothing but the composite score either).
        ("StudentAssessment-ACT.xml", 201): 268,
        ("StudentAssessment-ACT.xml", 400, "$._ext.ezone.academicSubjectDescriptor", "$.scoreResults"): 60,
        ("StudentAssessment-ACT.xml", 400, "$._ext.ezone.academicSubjectDescriptor"): 7,
        # Raw scores only: nothing the review engine could use (stored, they would read as students not tested).
        ("StudentAssessment-Benchmarks-3rdGradeMath.xml", 400, "$.scoreResults"): 160,
        # Performance levels (2 students absent, with their reason); the files' dates precede their school year.
        ("StudentAssessment-StateAssessment.xml", 201): 34,
        # ACT-ABW has no metadata and its name tells no subject; the first has only a composite score.
        ("StudentAssessmentSample.xml", 400, "$._ext.ezone.academicSubjectDescriptor", "$.scoreResults"): 1,
        ("StudentAssessmentSample.xml", 400, "$._ext.ezone.academicSubjectDescriptor"): 1,
    }, outcome
    assert all(r.headers["location"] for _, _, r in answers if r.status_code == 201)
    loaded = await footprint(zone_stack, zone_id)
    assert (loaded["student_results"], loaded["outbox"]) == (302, 302)
    by_school = await scalar(zone_stack, """SELECT jsonb_object_agg(k, n) FROM (SELECT s.code || ' ' || r.subject AS k, count(*) AS n
        FROM results.student_results r JOIN results.schools s ON s.id = r.school_id WHERE r.zone_id = :z GROUP BY 1) c""", z=zone_id)
    assert by_school == {f"{HIGH} ELA": 201, f"{HIGH} SCI": 67, f"{MIDDLE} MATH": 8, f"{MIDDLE} ELA": 8,
                         f"{ELEMENTARY} MATH": 9, f"{ELEMENTARY} ELA": 9}
    absent = await scalar(zone_stack, "SELECT count(*) FROM results.student_results WHERE zone_id = :z AND not_tested_reason = 'absent'",
                          z=zone_id)
    assert absent == 2

    again = [await post_edfi(zone_stack, "studentAssessments", body, headers) for _, body, _ in answers]
    assert [r.status_code for r in again] == [200 if first.status_code == 201 else first.status_code for _, _, first in answers]
    assert await footprint(zone_stack, zone_id) == loaded

    # The sample's ACT-ABW, told its subject: the second record is the same student, test and day under
    # another studentAssessmentIdentifier — one result per administration in ezone, so a conflict.
    sample = [copy.deepcopy(body) for name, body, _ in answers if name == "StudentAssessmentSample.xml"]
    for body in sample:
        body["_ext"] = {"ezone": {"academicSubjectDescriptor": "uri://ed-fi.org/AcademicSubjectDescriptor#English"}}
    assert [(await post_edfi(zone_stack, "studentAssessments", body, headers)).status_code for body in sample] == [400, 201]
    sample[0]["performanceLevels"] = sample[1]["performanceLevels"]
    assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments", sample[0], headers), 409, "urn:ed-fi:api:identity-conflict")

    # A corrected score: the row changes, one update is announced.
    name, body, _ = next(a for a in answers if a[0] == "StudentAssessment-ACT.xml" and a[2].status_code == 201)
    corrected = copy.deepcopy(body)
    corrected["scoreResults"][0]["result"] = str(int(corrected["scoreResults"][0]["result"]) + 1)
    assert (await post_edfi(zone_stack, "studentAssessments", corrected, headers)).status_code == 200
    student = body["studentReference"]["studentUniqueId"]
    updated = await published_events(zone_stack, "ezone.results.v1", ResultsPosted.ce_type, key=grand_bend[HIGH],
                                     where={"zone_id": zone_id, "rows_updated": 1})
    assert len(updated) == 1 and updated[0]["source"] == "edfi"
    assert await scalar(zone_stack, """SELECT scale_score FROM results.student_results WHERE zone_id = :z AND student_id = :s
                                       AND assessment_identifier = :a""", z=zone_id, s=student,
                        a=body["assessmentReference"]["assessmentIdentifier"]) == int(corrected["scoreResults"][0]["result"])
