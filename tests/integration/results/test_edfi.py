"""The Ed-Fi API (ODS/API 7 conventions) under `{results}/ed-fi`: discovery and metadata, assessments and
descriptors as data, studentAssessments and studentSchoolAssociations upserted on their natural keys and made into
ezone's rows, GET/PUT/DELETE by id with `_etag`s, paging, change queries, who may see and change what, and errors
in Ed-Fi's problem shape. (The Grand Bend sample files are loaded by lightbeam in test_edfi_lightbeam.py.)"""

from __future__ import annotations

import asyncio
import copy
import secrets
import uuid

import pytest
from ezone_kit.telemetry import receive_spans
from ezone_schemas import ResultsPosted, ResultsPostedV2
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.events import published_events
from tests.helpers import scalar
from tests.integration.results.edfi_support import (
    ASSESSMENT_NAMESPACE,
    BASE,
    DATA,
    DATATYPE,
    GRADE,
    LEGACY_DATA,
    LEVEL,
    METHOD,
    OTHER_BEND,
    STATE_MATH,
    act_assessment,
    benchmark_assessment,
    delete_edfi,
    footprint,
    get_edfi,
    item_path,
    post_assessment,
    post_edfi,
    posted_events,
    put_edfi,
    register_client,
    schools_of_their_own,  # noqa: F401 - the fixture, used by pytestmark
    sis_headers,
    state_math_assessment,
    token_response,
    zone_with_schools,
)

pytestmark = pytest.mark.usefixtures("schools_of_their_own")

HIGH, MIDDLE, ELEMENTARY = "255901001", "255901044", "255901107"
OTHER_HIGH, OTHER_MIDDLE = "255902001", "255902044"
VALIDATION = "urn:ed-fi:api:bad-request:data-validation-failed"
BAD_REQUEST = "urn:ed-fi:api:bad-request"
UNRESOLVED = "urn:ed-fi:api:data-conflict:unresolved-reference"
FORBIDDEN = "urn:ed-fi:api:security:authorization"
UNAUTHENTICATED = "urn:ed-fi:api:security:authentication"
NOT_FOUND = "urn:ed-fi:api:not-found"
STALE = "urn:ed-fi:api:optimistic-lock-failed"


def a_result(**changes: object) -> dict:
    """A Data Standard 5 studentAssessment: an eighth grader's state math result at Grand Bend Middle."""
    body = {
        "studentAssessmentIdentifier": "SA-604898-MATH-2022",
        "assessmentReference": {"assessmentIdentifier": STATE_MATH, "namespace": ASSESSMENT_NAMESPACE},
        "studentReference": {"studentUniqueId": "604898"},
        "schoolYearTypeReference": {"schoolYear": 2022},
        "administrationDate": "2022-04-01T16:00:00",
        "reportedSchoolReference": {"schoolId": int(MIDDLE)},
        "whenAssessedGradeLevelDescriptor": f"{GRADE}Eighth grade",
        "scoreResults": [
            {"assessmentReportingMethodDescriptor": f"{METHOD}Scale score", "resultDatatypeTypeDescriptor": f"{DATATYPE}Integer",
             "result": "497"},
            {"assessmentReportingMethodDescriptor": f"{METHOD}Raw score", "resultDatatypeTypeDescriptor": f"{DATATYPE}Integer",
             "result": "28"},
        ],
        "performanceLevels": [
            {"assessmentReportingMethodDescriptor": f"{METHOD}Proficiency level",
             "performanceLevelDescriptor": f"{LEVEL}Met Standard", "performanceLevelMet": True},
        ],
    }
    body.update(changes)
    return body


def a_students_result(student: int, *, school: str | None = None, grade: str = "Eighth grade",
                      **changes: object) -> dict:
    """At Grand Bend Middle unless `school` (a code) says otherwise."""
    return a_result(**{"studentAssessmentIdentifier": f"SA-{student}-MATH-2022", "studentReference": {"studentUniqueId": str(student)},
                       "reportedSchoolReference": {"schoolId": int(school or MIDDLE)},
                       "whenAssessedGradeLevelDescriptor": f"{GRADE}{grade}",
                       **changes})


def a_score(score: str, level: str = "Met Standard") -> dict:
    """The scores and level of a result with this Scale score."""
    return {"scoreResults": [{"assessmentReportingMethodDescriptor": f"{METHOD}Scale score",
                              "resultDatatypeTypeDescriptor": f"{DATATYPE}Integer", "result": score}],
            "performanceLevels": [{"assessmentReportingMethodDescriptor": f"{METHOD}Proficiency level",
                                   "performanceLevelDescriptor": f"{LEVEL}{level}"}]}


def an_enrollment(**changes: object) -> dict:
    body = {"studentReference": {"studentUniqueId": "604898"}, "schoolReference": {"schoolId": int(MIDDLE)},
            "entryDate": "2021-08-23", "entryGradeLevelDescriptor": f"{GRADE}Eighth grade",
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


async def stored_result(stack, zone_id: str, student: str = "604898") -> dict | None:  # noqa: ANN001
    return await scalar(stack, """SELECT to_jsonb(r) - 'id' - 'batch_id' - 'updated_at' FROM results.student_results r
                                  WHERE zone_id = :z AND student_id = :s""", z=zone_id, s=student)


async def events_since(stack, zone_id: str, before: list[dict]) -> list[tuple]:  # noqa: ANN001
    """(school, school year, subject, inserted, updated) of the results.posted committed since `before` was read."""
    return [(e["school_id"], e["school_year"], e["subject"], e["rows_inserted"], e["rows_updated"])
            for e in (await posted_events(stack, zone_id))[len(before):]]


async def audited(stack, zone_id: str, action: str) -> list[str]:  # noqa: ANN001
    """The entity ids of the zone's audit entries with this action."""
    return await scalar(stack, "SELECT coalesce(jsonb_agg(entity_id ORDER BY id), '[]') FROM results.audit_log "
                               "WHERE zone_id = :z AND action = :a", z=zone_id, a=action)


async def newest_change_version(stack, headers: dict[str, str]) -> int:  # noqa: ANN001
    response = await stack.clients["results"].get(f"{BASE}/changeQueries/v1/availableChangeVersions", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["oldestChangeVersion"] == 0
    return response.json()["newestChangeVersion"]


@pytest.fixture
async def grand_bend(zone_stack, zone_id) -> dict[str, str]:
    """The zone's Grand Bend schools, and its state math assessment (a result must name one of the zone's)."""
    schools = await zone_with_schools(zone_stack, zone_id)
    await post_assessment(zone_stack, zone_id)
    return schools


# --- discovery and metadata ------------------------------------------------------------------------------------

async def test_the_discovery_documents_urls_are_built_from_the_called_base_url_and_lead_to_the_rest(zone_stack, zone_id):
    schools = await zone_with_schools(zone_stack, zone_id)
    client = (await register_client(zone_stack, zone_id, [schools[MIDDLE]])).json()
    results = zone_stack.clients["results"]
    base = "https://sis-gateway.example.org:8443/ed-fi"

    discovery = await results.get(base)

    assert discovery.status_code == 200, discovery.text
    document = discovery.json()
    assert document["dataModels"][0]["name"] == "Ed-Fi" and document["version"]
    assert document["urls"] == {
        "dependencies": f"{base}/metadata/data/v3/dependencies", "openApiMetadata": f"{base}/metadata/",
        "oauth": f"{base}/oauth/token", "dataManagementApi": f"{base}/data/v3/", "changeQueries": f"{base}/changeQueries/v1/"}
    assert (await results.get("/ed-fi")).json()["urls"]["oauth"] == "http://results/ed-fi/oauth/token"

    # A client given only the base URL gets its token and reaches the data from the URLs it was given.
    granted = await token_response(zone_stack, client["client_id"], client["client_secret"], url=document["urls"]["oauth"])
    assert granted.status_code == 200, granted.text
    listed = await results.get(f"{document['urls']['dataManagementApi']}ed-fi/studentAssessments",
                               headers={"Authorization": f"Bearer {granted.json()['access_token']}"})
    assert (listed.status_code, listed.json()) == (200, [])

    metadata = (await results.get(document["urls"]["openApiMetadata"])).json()
    assert {entry["name"]: entry["endpointUri"] for entry in metadata} == {
        "Resources": f"{base}/metadata/data/v3/resources/swagger.json",
        "Descriptors": f"{base}/metadata/data/v3/descriptors/swagger.json"}


async def test_dependencies_list_the_resources_in_load_order(zone_stack):
    response = await zone_stack.clients["results"].get(f"{BASE}/metadata/data/v3/dependencies")

    assert response.status_code == 200, response.text
    dependencies = response.json()
    orders = [entry["order"] for entry in dependencies]
    assert orders == sorted(orders)
    position = {entry["resource"]: n for n, entry in enumerate(dependencies)}
    load = ["/ed-fi/academicSubjectDescriptors", "/ed-fi/schools", "/ed-fi/assessments", "/ed-fi/objectiveAssessments",
            "/ed-fi/studentSchoolAssociations", "/ed-fi/studentAssessments"]
    assert [position[name] for name in load] == sorted(position[name] for name in load), dependencies
    by_name = {entry["resource"]: entry for entry in dependencies}
    assert by_name["/ed-fi/schools"]["operations"] == ["Read"]
    assert "Create" in by_name["/ed-fi/studentAssessments"]["operations"]
    assert all(position[name] < position["/ed-fi/assessments"] for name in position if name.endswith("Descriptors"))


async def test_the_resources_and_descriptors_openapi_are_served_with_their_identities(zone_stack):
    results = zone_stack.clients["results"]
    base = "http://results/ed-fi"

    resources = (await results.get(f"{BASE}/metadata/data/v3/resources/swagger.json")).json()
    descriptors = (await results.get(f"{BASE}/metadata/data/v3/descriptors/swagger.json")).json()

    assert resources["openapi"].startswith("3.") and resources["servers"] == [{"url": f"{base}/data/v3"}]
    assert {"get", "post"} <= set(resources["paths"]["/ed-fi/studentAssessments"])
    assert {"get", "put", "delete"} <= set(resources["paths"]["/ed-fi/studentAssessments/{id}"])
    schemas = resources["components"]["schemas"]
    student_assessment = schemas["edFi_studentAssessment"]["properties"]
    assert student_assessment["studentAssessmentIdentifier"]["x-Ed-Fi-isIdentity"] is True
    assert student_assessment["assessmentReference"] == {"$ref": "#/components/schemas/edFi_assessmentReference"}
    assert schemas["edFi_assessmentReference"]["properties"]["namespace"]["x-Ed-Fi-isIdentity"] is True
    assert schemas["edFi_assessment"]["properties"]["assessmentIdentifier"]["x-Ed-Fi-isIdentity"] is True
    assert "/ed-fi/academicSubjectDescriptors" not in resources["paths"]

    assert "/ed-fi/academicSubjectDescriptors" in descriptors["paths"]
    descriptor = descriptors["components"]["schemas"]["edFi_academicSubjectDescriptor"]["properties"]
    assert descriptor["codeValue"]["x-Ed-Fi-isIdentity"] is True and descriptor["namespace"]["x-Ed-Fi-isIdentity"] is True
    assert (await results.get(f"{BASE}/metadata/data/v3/students/swagger.json")).status_code == 404


# --- descriptors and assessments -------------------------------------------------------------------------------

async def test_descriptors_are_seeded_per_zone_and_a_new_one_is_201_then_200_and_seen_only_in_its_zone(zone_stack, zone_id):
    await zone_with_schools(zone_stack, zone_id)
    other_zone = f"{zone_id}-b"
    await zone_with_schools(zone_stack, other_zone, OTHER_BEND)
    mine, theirs = zone_stack.auth("district", zone_id), zone_stack.auth("district", other_zone)
    seeded = await get_edfi(zone_stack, "academicSubjectDescriptors", mine, codeValue="Mathematics")
    assert [(d["namespace"], d["codeValue"]) for d in seeded.json()] == [("uri://ed-fi.org/AcademicSubjectDescriptor", "Mathematics")]
    computer_science = {"namespace": "uri://ezone.org/AcademicSubjectDescriptor", "codeValue": "Computer Science",
                        "shortDescription": "Computer Science", "description": "Computer Science"}

    created = await post_edfi(zone_stack, "academicSubjectDescriptors", computer_science, mine)
    again = await post_edfi(zone_stack, "academicSubjectDescriptors", computer_science, mine)

    assert (created.status_code, again.status_code) == (201, 200), again.text
    found = await get_edfi(zone_stack, "academicSubjectDescriptors", mine, codeValue="Computer Science")
    assert [{k: d[k] for k in computer_science} for d in found.json()] == [computer_science]
    assert found.json()[0]["id"] == item_path(created).rsplit("/", 1)[1]
    # The new value is one of the zone's now: an assessment may name it; the other zone has its own descriptors.
    programming = state_math_assessment(assessmentIdentifier="CS-1", assessmentTitle="Programming", academicSubjects=[
        {"academicSubjectDescriptor": "uri://ezone.org/AcademicSubjectDescriptor#Computer Science"}])
    assert (await post_edfi(zone_stack, "assessments", programming, mine)).status_code == 201
    assert (await get_edfi(zone_stack, "academicSubjectDescriptors", theirs, codeValue="Computer Science")).json() == []
    assert len((await get_edfi(zone_stack, "academicSubjectDescriptors", theirs, codeValue="Mathematics")).json()) == 1
    problem = assert_edfi_problem(await post_edfi(zone_stack, "assessments", programming, theirs), 400, VALIDATION)
    assert set(problem["validationErrors"]) == {"$.academicSubjects[0].academicSubjectDescriptor"}


async def test_an_act_composite_and_a_raw_score_benchmark_are_kept_readable_and_announced_v1_only_for_reviewed_subjects(
        zone_stack, zone_id, grand_bend):
    await post_assessment(zone_stack, zone_id, act_assessment())
    await post_assessment(zone_stack, zone_id, benchmark_assessment())
    admin = zone_stack.auth("admin", zone_id)
    before = await posted_events(zone_stack, zone_id)
    act = {"studentAssessmentIdentifier": "ACT-700001-2022",
           "assessmentReference": {"assessmentIdentifier": "ACT Composite", "namespace": "uri://ed-fi.org/Assessment"},
           "studentReference": {"studentUniqueId": "700001"}, "schoolYearTypeReference": {"schoolYear": 2022},
           "administrationDate": "2022-04-09T08:30:00", "reportedSchoolReference": {"schoolId": int(HIGH)},
           "whenAssessedGradeLevelDescriptor": f"{GRADE}Eleventh grade",
           "scoreResults": [{"assessmentReportingMethodDescriptor": f"{METHOD}Composite Score",
                             "resultDatatypeTypeDescriptor": f"{DATATYPE}Integer", "result": "24"}]}
    benchmark = {"studentAssessmentIdentifier": "BM-300001-2022",
                 "assessmentReference": {"assessmentIdentifier": "BM-Math-Third grade-Fall",
                                         "namespace": "uri://ed-fi.org/Assessment/Benchmark.xml"},
                 "studentReference": {"studentUniqueId": "300001"}, "schoolYearTypeReference": {"schoolYear": 2022},
                 "administrationDate": "2021-10-04T09:00:00", "reportedSchoolReference": {"schoolId": int(ELEMENTARY)},
                 "scoreResults": [{"assessmentReportingMethodDescriptor": f"{METHOD}Raw score",
                                   "resultDatatypeTypeDescriptor": f"{DATATYPE}Integer", "result": "31"}]}

    answers = [await post_edfi(zone_stack, "studentAssessments", body, admin) for body in (act, benchmark)]

    assert [r.status_code for r in answers] == [201, 201], [r.text for r in answers]
    for body, response in zip((act, benchmark), answers, strict=True):
        read = (await get_edfi(zone_stack, item_path(response), admin)).json()
        assert {k: v for k, v in read.items() if k not in ("id", "_etag", "_lastModifiedDate")} == body
    rows = {r["student_id"]: r for r in await scalar(zone_stack, """SELECT jsonb_agg(jsonb_build_object('student_id', student_id,
        'subject', subject, 'category', assessment_category, 'grade', grade, 'scale_score', scale_score,
        'performance_level', performance_level, 'school_year', school_year)) FROM results.student_results WHERE zone_id = :z""",
                                                     z=zone_id)}
    assert rows == {
        "700001": {"student_id": "700001", "subject": "Composite", "category": "College entrance exam", "grade": "11",
                   "scale_score": None, "performance_level": None, "school_year": "2021-22"},
        # The benchmark declares one grade: the result is of that grade.
        "300001": {"student_id": "300001", "subject": "MATH", "category": "Benchmark test", "grade": "3",
                   "scale_score": None, "performance_level": None, "school_year": "2021-22"},
    }
    # The Composite is no subject ezone reviews: v1 (which the review queue reads) announces only the benchmark's MATH
    # (whether it counts is the zone's policy, which the review applies); v2 announces both.
    assert await events_since(zone_stack, zone_id, before) == [(grand_bend[ELEMENTARY], "2021-22", "MATH", 1, 0)]
    assert (await posted_events(zone_stack, zone_id))[-1]["assessment_identifiers"] == ["BM-Math-Third grade-Fall"]
    announced = {(event["school_id"], event["subject"], tuple(event["assessment_identifiers"]), event["rows_inserted"])
                 for event in await posted_events(zone_stack, zone_id, ResultsPostedV2)}
    assert announced == {(grand_bend[HIGH], "Composite", ("ACT Composite",), 1),
                         (grand_bend[ELEMENTARY], "MATH", ("BM-Math-Third grade-Fall",), 1)}


# --- studentAssessments ---------------------------------------------------------------------------------------

async def test_a_new_result_is_201_with_location_and_stored_in_ezone_terms(zone_stack, zone_id, grand_bend):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])

    response = await post_edfi(zone_stack, "studentAssessments", a_result(), headers)

    assert response.status_code == 201, response.text
    assert response.headers["location"].startswith(f"http://results{DATA}/studentAssessments/")
    document_id = response.headers["location"].rsplit("/", 1)[1]
    assert await stored_result(zone_stack, zone_id) == {
        "zone_id": zone_id, "school_id": grand_bend[MIDDLE], "student_id": "604898",
        "assessment_namespace": ASSESSMENT_NAMESPACE, "assessment_identifier": STATE_MATH, "subject": "MATH",
        "assessment_category": "State summative assessment 3-8 general", "grade": "8", "school_year": "2021-22",
        "administration_date": "2022-04-01", "scale_score": 497.00, "performance_level": "Met Standard", "proficient": True,
        "growth_percentile": None, "not_tested_reason": None, "subgroups": [], "edfi_identifier": "SA-604898-MATH-2022",
        "edfi_document_id": str(uuid.UUID(document_id)),
    }
    assert await audited(zone_stack, zone_id, "edfi.studentAssessments.created") == [document_id]
    events = await published_events(zone_stack, "ezone.results.v1", ResultsPosted.ce_type, key=grand_bend[MIDDLE])
    assert [(e["school_year"], e["subject"], e["source"], e["rows_inserted"], e["rows_updated"], e["assessment_identifiers"])
            for e in events] == [("2021-22", "MATH", "edfi", 1, 0, [STATE_MATH])]


async def test_the_legacy_data_path_still_takes_and_serves_results(zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    results = zone_stack.clients["results"]

    created = await post_edfi(zone_stack, "studentAssessments", a_result(), admin, base=LEGACY_DATA)

    assert created.status_code == 201, created.text
    path = item_path(created)  # the Location is the standard path
    legacy = await results.get(f"{LEGACY_DATA}/{path}", headers=admin)
    standard = await get_edfi(zone_stack, path, admin)
    assert legacy.status_code == 200 and legacy.json() == standard.json()
    assert [item["id"] for item in (await results.get(f"{LEGACY_DATA}/studentAssessments", headers=admin)).json()] == [
        path.rsplit("/", 1)[1]]
    assert (await post_edfi(zone_stack, "studentAssessments", a_result(), admin)).status_code == 200
    assert (await stored_result(zone_stack, zone_id))["scale_score"] == 497
    assert "/ed-fi/v3/ed-fi/{name}" not in (await results.get("/openapi.json")).json()["paths"]


async def test_a_post_answered_before_the_router_keeps_its_server_span_named_by_the_route_with_its_sql_inside(
        zone_stack, zone_id, grand_bend):
    exporter = InMemorySpanExporter()
    receive_spans(SimpleSpanProcessor(exporter))
    trace_id = secrets.token_hex(16)
    headers = {**zone_stack.auth("admin", zone_id), "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    try:
        assert (await post_edfi(zone_stack, "studentAssessments", a_result(), headers)).status_code == 201
        assert (await post_edfi(zone_stack, "studentAssessments", a_result(), headers, base=LEGACY_DATA)).status_code == 200
    finally:
        exporter.shutdown()
    ours = [span for span in exporter.get_finished_spans() if format(span.context.trace_id, "032x") == trace_id]
    servers = [span for span in ours if span.kind == SpanKind.SERVER]
    assert sorted(span.name for span in servers) == ["POST /ed-fi/data/v3/ed-fi/{name}", "POST /ed-fi/v3/ed-fi/{name}"]
    assert {span.attributes["http.response.status_code"] for span in servers} == {200, 201}
    inserts = [span for span in ours if span.kind == SpanKind.CLIENT and "INSERT" in span.name]
    assert inserts and all(span.parent is not None for span in inserts)


async def test_the_same_result_twice_is_200_the_second_time_with_no_second_effect(zone_stack, zone_id, grand_bend):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])
    first = await post_edfi(zone_stack, "studentAssessments", a_result(), headers)
    assert first.status_code == 201
    after_first = await footprint(zone_stack, zone_id)

    again = await post_edfi(zone_stack, "studentAssessments", a_result(), headers)

    assert again.status_code == 200, again.text
    assert again.headers["location"] == first.headers["location"] and again.headers["etag"] == first.headers["etag"]
    assert await footprint(zone_stack, zone_id) == after_first


async def test_the_same_new_result_sent_concurrently_is_created_once_with_one_event_and_one_audit_entry(zone_stack, zone_id,
                                                                                                         grand_bend):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])
    before = await footprint(zone_stack, zone_id)

    answers = await asyncio.gather(*(post_edfi(zone_stack, "studentAssessments", a_result(), headers) for _ in range(6)))

    assert sorted(response.status_code for response in answers) == [200] * 5 + [201], [r.text for r in answers]
    assert len({response.headers["location"] for response in answers}) == 1
    after = await footprint(zone_stack, zone_id)
    assert {name: after[name] - before[name] for name in ("edfi_documents", "student_results", "outbox", "audit_log")} == {
        "edfi_documents": 1, "student_results": 1, "outbox": 1, "audit_log": 1}
    document_id = answers[0].headers["location"].rsplit("/", 1)[1]
    assert await audited(zone_stack, zone_id, "edfi.studentAssessments.created") == [document_id]
    assert await audited(zone_stack, zone_id, "edfi.studentAssessments.updated") == []
    assert await scalar(zone_stack, "SELECT bool_and(trace_id IS NOT NULL) FROM results.audit_log WHERE zone_id = :z "
                                    "AND action LIKE 'edfi.studentAssessments.%'", z=zone_id)


async def test_concurrent_requests_with_bad_ones_among_them_fail_only_the_bad_ones(zone_stack, zone_id, grand_bend):
    middle_sis = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])
    high_sis = await sis_headers(zone_stack, zone_id, [grand_bend[HIGH]], name="High SIS")
    assert (await post_edfi(zone_stack, "studentAssessments", a_students_result(1), middle_sis)).status_code == 201
    events = await posted_events(zone_stack, zone_id)
    good = [(a_students_result(student), middle_sis) for student in range(100, 130)]
    bad = [
        (a_students_result(900, grade="Adult Education"), middle_sis),  # a descriptor value, but no grade
        (a_students_result(901, school=HIGH, grade="Ninth grade"), middle_sis),  # the Middle School's SIS for the High School
        (a_students_result(902, assessmentReference={"assessmentIdentifier": "SA-2011-History",
                                                     "namespace": ASSESSMENT_NAMESPACE}), middle_sis),
        (a_students_result(903, **a_score("600", "Commended Performance")), middle_sis),  # out of the assessment's range
        # The High School's SIS taking over student 1's Middle School result: refused while it is written.
        (a_students_result(1, school=HIGH, grade="Ninth grade"), high_sis),
    ]
    # Student 1's administration again under another studentAssessmentIdentifier: kept too.
    second_record = (a_students_result(1, studentAssessmentIdentifier="SA-1-MATH-2022-RETAKE", **a_score("520")), middle_sis)
    requests = [*good[:15], *bad, second_record, *good[15:]]

    answers = await asyncio.gather(*(post_edfi(zone_stack, "studentAssessments", body, headers) for body, headers in requests))

    statuses = [response.status_code for response in answers]
    assert statuses == [201] * 15 + [400, 403, 409, 400, 403, 201] + [201] * 15, [r.text for r in answers]
    assert set(assert_edfi_problem(answers[15], 400, VALIDATION)["validationErrors"]) == {"$.whenAssessedGradeLevelDescriptor"}
    assert_edfi_problem(answers[16], 403, FORBIDDEN)
    assert_edfi_problem(answers[17], 409, UNRESOLVED)
    assert set(assert_edfi_problem(answers[18], 400, VALIDATION)["validationErrors"]) == {"$.scoreResults[0].result"}
    assert_edfi_problem(answers[19], 403, FORBIDDEN)
    stored = await scalar(zone_stack, """SELECT jsonb_build_object(
        'documents', (SELECT count(*) FROM results.edfi_documents WHERE zone_id = :z AND resource = 'studentAssessments'),
        'results', (SELECT count(*) FROM results.student_results WHERE zone_id = :z),
        'refused', (SELECT count(*) FROM results.edfi_documents WHERE zone_id = :z
                    AND identity->>'studentUniqueId' IN ('900', '901', '902', '903')),
        'created', (SELECT count(*) FROM results.audit_log WHERE zone_id = :z AND action = 'edfi.studentAssessments.created'),
        'updated', (SELECT count(*) FROM results.audit_log WHERE zone_id = :z AND action = 'edfi.studentAssessments.updated'))""",
                          z=zone_id)
    assert stored == {"documents": 32, "results": 31, "refused": 0, "created": 32, "updated": 0}, stored
    # Student 1's row is still its school's, made from its first record (the lower studentAssessmentIdentifier).
    first = await stored_result(zone_stack, zone_id, "1")
    assert (first["school_id"], first["edfi_identifier"], first["scale_score"]) == (grand_bend[MIDDLE], "SA-1-MATH-2022", 497)
    # Written in groups: fewer results.posted than results, announcing each of the 30 once.
    announced = await events_since(zone_stack, zone_id, events)
    assert {(school, year, subject) for school, year, subject, _, _ in announced} == {(grand_bend[MIDDLE], "2021-22", "MATH")}
    assert sum(inserted for *_, inserted, _ in announced) == 30 and len(announced) < 30, announced
    assert sum(updated for *_, updated in announced) == 0


async def test_a_corrected_score_is_200_updates_the_row_and_announces_one_update(zone_stack, zone_id, grand_bend):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])
    created = await post_edfi(zone_stack, "studentAssessments", a_result(), headers)
    corrected = a_result()
    corrected["scoreResults"][0]["result"] = "512"

    response = await post_edfi(zone_stack, "studentAssessments", corrected, headers)

    assert response.status_code == 200, response.text
    assert int(response.headers["etag"].strip('"')) > int(created.headers["etag"].strip('"'))
    assert (await stored_result(zone_stack, zone_id))["scale_score"] == 512
    assert await audited(zone_stack, zone_id, "edfi.studentAssessments.updated") == [item_path(created).rsplit("/", 1)[1]]
    assert await events_since(zone_stack, zone_id, []) == [(grand_bend[MIDDLE], "2021-22", "MATH", 1, 0),
                                                           (grand_bend[MIDDLE], "2021-22", "MATH", 0, 1)]


async def test_a_result_moved_to_another_school_announces_both_schools(zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    await post_edfi(zone_stack, "studentAssessments", a_result(), admin)
    before = await posted_events(zone_stack, zone_id)

    moved = await post_edfi(zone_stack, "studentAssessments", a_result(reportedSchoolReference={"schoolId": int(HIGH)},
                                                                       whenAssessedGradeLevelDescriptor=f"{GRADE}Ninth grade"), admin)

    assert moved.status_code == 200, moved.text
    assert ((await stored_result(zone_stack, zone_id))["school_id"], (await stored_result(zone_stack, zone_id))["grade"]) == (
        grand_bend[HIGH], "9")
    assert sorted(await events_since(zone_stack, zone_id, before)) == sorted([
        (grand_bend[HIGH], "2021-22", "MATH", 0, 1), (grand_bend[MIDDLE], "2021-22", "MATH", 0, 1)])


# Built when the test runs: its zone's schools have codes of their own (schools_of_their_own).
@pytest.mark.parametrize("build, paths", [
    (lambda: {}, {"$.studentAssessmentIdentifier", "$.assessmentReference", "$.studentReference"}),
    (lambda: a_result(administrationDate="yesterday", reportedSchoolReference={"schoolId": "GB"},
                      scoreResults=[{"result": "1"}]),
     {"$.administrationDate", "$.reportedSchoolReference.schoolId",
      "$.scoreResults[0].assessmentReportingMethodDescriptor", "$.scoreResults[0].resultDatatypeTypeDescriptor"}),
    (lambda: a_result(whenAssessedGradeLevelDescriptor=f"{GRADE}Adult Education"),
     {"$.whenAssessedGradeLevelDescriptor"}),
    (lambda: a_result(scoreResults=[{"assessmentReportingMethodDescriptor": f"{METHOD}Scale score",
                                     "resultDatatypeTypeDescriptor": f"{DATATYPE}Integer", "result": "high"}]),
     {"$.scoreResults[0].result"}),
    (lambda: a_result(reasonNotTestedDescriptor="uri://ed-fi.org/ReasonNotTestedDescriptor#Absent"),
     {"$.reasonNotTestedDescriptor"}),
    (lambda: a_result(administrationDate="2022-02-30T09:00:00"), {"$.administrationDate"}),
], ids=["empty", "malformed-fields", "no-grade", "score-not-a-number", "not-tested-with-scores", "no-such-day"])
async def test_a_bad_result_is_400_data_validation_failed_by_json_path_and_stores_nothing(zone_stack, zone_id, grand_bend,
                                                                                          build, paths):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])
    before = await footprint(zone_stack, zone_id)

    problem = assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments", build(), headers), 400, VALIDATION)

    assert set(problem["validationErrors"]) == paths, problem
    assert all(messages for messages in problem["validationErrors"].values())
    assert await footprint(zone_stack, zone_id) == before


async def test_an_out_of_range_score_is_400_naming_the_assessments_range_and_stores_nothing(zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    before = await footprint(zone_stack, zone_id)

    for score in ("561", "439.5", "-1"):
        problem = assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments", a_result(**a_score(score)), admin),
                                      400, VALIDATION)
        [message] = problem["validationErrors"]["$.scoreResults[0].result"]
        assert "Scale score" in message and "440" in message and "560" in message and STATE_MATH in message, message

    assert await footprint(zone_stack, zone_id) == before
    assert (await post_edfi(zone_stack, "studentAssessments", a_result(**a_score("560", "Commended Performance")),
                            admin)).status_code == 201


async def test_a_performance_level_the_assessment_does_not_declare_is_400(zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    before = await footprint(zone_stack, zone_id)

    problem = assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments", a_result(**a_score("497", "Advanced")), admin),
                                  400, VALIDATION)

    [message] = problem["validationErrors"]["$.performanceLevels[0].performanceLevelDescriptor"]
    assert "Advanced" in message and "Met Standard" in message, message
    assert set(problem["validationErrors"]) == {"$.performanceLevels[0].performanceLevelDescriptor"}
    assert await footprint(zone_stack, zone_id) == before


async def test_a_result_of_an_assessment_the_zone_does_not_have_is_409_unresolved_reference_and_stores_nothing(
        zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    other_zone = f"{zone_id}-b"
    await zone_with_schools(zone_stack, other_zone, OTHER_BEND)
    await post_assessment(zone_stack, other_zone, state_math_assessment(assessmentIdentifier="SA-2011-ELA-Eighth grade"))
    before = await footprint(zone_stack, zone_id)

    for identifier in ("SA-2011-Mathematics-Ninth grade", "SA-2011-ELA-Eighth grade"):  # none, another zone's
        body = a_result(assessmentReference={"assessmentIdentifier": identifier, "namespace": ASSESSMENT_NAMESPACE})
        problem = assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments", body, admin), 409, UNRESOLVED)
        assert identifier in problem["errors"][0] and "assessments" in problem["errors"][0], problem

    assert await footprint(zone_stack, zone_id) == before


@pytest.mark.parametrize("changes, path", [
    ({"whenAssessedGradeLevelDescriptor": f"{GRADE}Grade Eight"}, "$.whenAssessedGradeLevelDescriptor"),
    ({"administrationLanguageDescriptor": "uri://example.org/LanguageDescriptor#eng"}, "$.administrationLanguageDescriptor"),
    ({"scoreResults": [{"assessmentReportingMethodDescriptor": f"{METHOD}Scale score",
                        "resultDatatypeTypeDescriptor": f"{DATATYPE}Whole number", "result": "497"}]},
     "$.scoreResults[0].resultDatatypeTypeDescriptor"),
], ids=["code-value", "namespace", "in-a-collection"])
async def test_a_descriptor_value_the_zone_does_not_have_is_400(zone_stack, zone_id, grand_bend, changes, path):
    admin = zone_stack.auth("admin", zone_id)
    before = await footprint(zone_stack, zone_id)

    problem = assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments", a_result(**changes), admin), 400, VALIDATION)

    assert set(problem["validationErrors"]) == {path}, problem
    assert await footprint(zone_stack, zone_id) == before


@pytest.mark.parametrize("year, date, counts_in", [
    (2022, "2022-04-01T16:00:00", "2021-22"),
    (2023, "2022-04-01T16:00:00", "2021-22"),  # last spring's test, filed under the year the SIS loaded it in
    (2022, "2022-08-15T09:00:00", "2022-23"),  # a summer retest, filed under the year it closes
], ids=["as-filed", "filed-under-the-next-year", "taken-after-the-year-filed"])
async def test_a_result_counts_in_the_school_year_of_its_date_whatever_year_it_is_filed_under(zone_stack, zone_id, grand_bend,
                                                                                                year, date, counts_in):
    admin = zone_stack.auth("admin", zone_id)
    body = a_result(schoolYearTypeReference={"schoolYear": year}, administrationDate=date)

    response = await post_edfi(zone_stack, "studentAssessments", body, admin)

    assert response.status_code == 201, response.text
    read = (await get_edfi(zone_stack, item_path(response), admin)).json()
    assert (read["schoolYearTypeReference"], read["administrationDate"]) == ({"schoolYear": year}, date)  # kept as sent
    stored = await stored_result(zone_stack, zone_id)
    assert (stored["school_year"], stored["administration_date"]) == (counts_in, date[:10])
    assert [(e["school_year"], e["rows_inserted"]) for e in await posted_events(zone_stack, zone_id)] == [(counts_in, 1)]


async def test_a_record_without_an_administration_date_is_kept_without_a_result_if_it_names_its_school(zone_stack, zone_id,
                                                                                                       grand_bend):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])
    absent = a_result(reasonNotTestedDescriptor="uri://ed-fi.org/ReasonNotTestedDescriptor#Absent")
    del absent["administrationDate"], absent["scoreResults"], absent["performanceLevels"]
    unplaced = {k: v for k, v in absent.items() if k != "reportedSchoolReference"}
    before = await footprint(zone_stack, zone_id)

    problem = assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments", unplaced, headers), 400, VALIDATION)
    assert set(problem["validationErrors"]) == {"$.administrationDate"}, problem
    assert await footprint(zone_stack, zone_id) == before

    created = await post_edfi(zone_stack, "studentAssessments", absent, headers)
    assert created.status_code == 201, created.text
    assert (await get_edfi(zone_stack, item_path(created), headers)).json()["reasonNotTestedDescriptor"].endswith("#Absent")
    after = await footprint(zone_stack, zone_id)
    assert (after["edfi_documents"] - before["edfi_documents"], after["student_results"], after["outbox"]) == (1, 0, 0)
    # It belongs to its school: another school's client neither sees nor changes it.
    high_sis = await sis_headers(zone_stack, zone_id, [grand_bend[HIGH]], name="High SIS")
    assert_edfi_problem(await get_edfi(zone_stack, item_path(created), high_sis), 403, FORBIDDEN)
    assert (await get_edfi(zone_stack, "studentAssessments", high_sis)).json() == []


async def test_a_grade_not_taught_at_the_school_is_400(zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    before = await footprint(zone_stack, zone_id)

    eleventh = a_result(whenAssessedGradeLevelDescriptor=f"{GRADE}Eleventh grade")
    problem = assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments", eleventh, admin), 400, VALIDATION)
    [message] = problem["validationErrors"]["$.whenAssessedGradeLevelDescriptor"]
    assert "11" in message and "6-8" in message, message
    # Without a grade, the assessment's only grade (8) is the result's: at the High School (9-12), not taught.
    at_high = a_result(reportedSchoolReference={"schoolId": int(HIGH)})
    del at_high["whenAssessedGradeLevelDescriptor"]
    assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments", at_high, admin), 400, VALIDATION)

    assert await footprint(zone_stack, zone_id) == before


@pytest.mark.parametrize("raw", [b"", b'{"studentAssessmentIdentifier": ', b"[1, 2]"], ids=["empty", "truncated", "not-an-object"])
async def test_a_body_that_is_not_a_json_object_is_400_in_the_edfi_shape(zone_stack, zone_id, grand_bend, raw):
    before = await footprint(zone_stack, zone_id)
    response = await zone_stack.clients["results"].post(f"{DATA}/studentAssessments", content=raw, headers={
        **zone_stack.auth("admin", zone_id), "Content-Type": "application/json"})
    assert "$" in assert_edfi_problem(response, 400, VALIDATION)["validationErrors"]
    assert await footprint(zone_stack, zone_id) == before


async def test_a_body_sent_as_another_content_type_is_400_and_the_token_is_checked_before_the_body(zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    before = await footprint(zone_stack, zone_id)
    as_text = await zone_stack.clients["results"].post(f"{DATA}/studentAssessments", content=b'{"a": 1}', headers={
        **admin, "Content-Type": "text/plain"})
    assert "$" in assert_edfi_problem(as_text, 400, VALIDATION)["validationErrors"]

    no_token = await zone_stack.clients["results"].post(f"{DATA}/studentAssessments", content=b"{not json",
                                                        headers={"Content-Type": "application/json"})
    assert_edfi_problem(no_token, 401, UNAUTHENTICATED)
    assert await footprint(zone_stack, zone_id) == before


async def test_an_unknown_school_or_one_of_another_zone_is_409_unresolved_reference(zone_stack, zone_id, grand_bend):
    other_zone = f"{zone_id}-b"
    await zone_with_schools(zone_stack, other_zone, {OTHER_HIGH: OTHER_BEND[OTHER_HIGH]})
    admin = zone_stack.auth("admin", zone_id)
    before = await footprint(zone_stack, zone_id)

    for school_id in (999999999, int(OTHER_HIGH)):
        body = assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments",
                                                   a_result(reportedSchoolReference={"schoolId": school_id},
                                                            whenAssessedGradeLevelDescriptor=f"{GRADE}Ninth grade"), admin),
                                   409, UNRESOLVED)
        assert str(school_id) in body["errors"][0]
    assert await footprint(zone_stack, zone_id) == before
    assert (await footprint(zone_stack, other_zone))["student_results"] == 0


async def test_a_sis_token_for_one_school_posting_another_is_403_and_stores_nothing(zone_stack, zone_id, grand_bend):
    high_sis = await sis_headers(zone_stack, zone_id, [grand_bend[HIGH]], name="High SIS")
    before = await footprint(zone_stack, zone_id)

    assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments", a_result(), high_sis), 403, FORBIDDEN)
    assert_edfi_problem(await post_edfi(zone_stack, "studentSchoolAssociations", an_enrollment(), high_sis), 403, FORBIDDEN)
    assert await footprint(zone_stack, zone_id) == before


async def test_a_sis_token_cannot_take_over_another_schools_result_by_naming_its_own_school(zone_stack, zone_id, grand_bend):
    await post_edfi(zone_stack, "studentAssessments", a_result(), zone_stack.auth("admin", zone_id))
    high_sis = await sis_headers(zone_stack, zone_id, [grand_bend[HIGH]], name="High SIS")
    before = await footprint(zone_stack, zone_id)

    response = await post_edfi(zone_stack, "studentAssessments", a_result(reportedSchoolReference={"schoolId": int(HIGH)},
                                                                          whenAssessedGradeLevelDescriptor=f"{GRADE}Ninth grade"),
                               high_sis)

    assert_edfi_problem(response, 403, FORBIDDEN)
    assert await footprint(zone_stack, zone_id) == before


@pytest.mark.parametrize("role", ["school", "board"])
async def test_roles_other_than_sis_admin_and_district_are_403_and_no_token_is_401(zone_stack, zone_id, grand_bend, role):
    headers = zone_stack.auth(role, zone_id, [grand_bend[MIDDLE]] if role == "school" else None)
    before = await footprint(zone_stack, zone_id)
    for response in (await post_edfi(zone_stack, "studentAssessments", a_result(), headers),
                     await get_edfi(zone_stack, "studentAssessments", headers)):
        assert_edfi_problem(response, 403, FORBIDDEN)
    for response in (await post_edfi(zone_stack, "studentAssessments", a_result(), {}),
                     await get_edfi(zone_stack, "studentAssessments", {})):
        assert_edfi_problem(response, 401, UNAUTHENTICATED)
    assert await footprint(zone_stack, zone_id) == before


async def test_without_a_reported_school_the_result_goes_to_the_school_the_student_was_enrolled_in(zone_stack, zone_id, grand_bend):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])
    body = a_result()
    del body["reportedSchoolReference"]
    problem = assert_edfi_problem(await post_edfi(zone_stack, "studentAssessments", body, headers), 400, VALIDATION)
    assert set(problem["validationErrors"]) == {"$.reportedSchoolReference"}

    assert (await post_edfi(zone_stack, "studentSchoolAssociations", an_enrollment(), headers)).status_code == 201
    created = await post_edfi(zone_stack, "studentAssessments", body, headers)
    assert created.status_code == 201, created.text
    assert (await stored_result(zone_stack, zone_id))["school_id"] == grand_bend[MIDDLE]
    # The document stays as it was sent; a school-bound client reads it as its school's.
    read = await get_edfi(zone_stack, item_path(created), headers)
    assert read.status_code == 200 and "reportedSchoolReference" not in read.json()


# --- studentSchoolAssociations ---------------------------------------------------------------------------------

async def test_an_enrollment_is_upserted_on_its_natural_key(zone_stack, zone_id, grand_bend):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])

    created = await post_edfi(zone_stack, "studentSchoolAssociations", an_enrollment(), headers)
    after_first = await footprint(zone_stack, zone_id)
    again = await post_edfi(zone_stack, "studentSchoolAssociations", an_enrollment(), headers)
    assert await footprint(zone_stack, zone_id) == after_first
    withdrawn = await post_edfi(zone_stack, "studentSchoolAssociations", an_enrollment(exitWithdrawDate="2022-01-31"), headers)

    assert (created.status_code, again.status_code, withdrawn.status_code) == (201, 200, 200)
    assert created.headers["location"].startswith(f"http://results{DATA}/studentSchoolAssociations/")
    document_id = created.headers["location"].rsplit("/", 1)[1]
    stored = await scalar(zone_stack, "SELECT to_jsonb(e) - 'id' - 'batch_id' - 'updated_at' FROM results.enrollments e WHERE zone_id = :z",
                          z=zone_id)
    assert stored == {"zone_id": zone_id, "school_id": grand_bend[MIDDLE], "student_id": "604898", "school_year": "2021-22",
                      "grade": "8", "entry_date": "2021-08-23", "exit_date": "2022-01-31", "subgroups": [],
                      "edfi_document_id": str(uuid.UUID(document_id))}
    assert await audited(zone_stack, zone_id, "edfi.studentSchoolAssociations.created") == [document_id]
    assert await audited(zone_stack, zone_id, "edfi.studentSchoolAssociations.updated") == [document_id]
    listed = await get_edfi(zone_stack, "studentSchoolAssociations", headers, schoolId=MIDDLE, studentUniqueId="604898")
    assert [item["exitWithdrawDate"] for item in listed.json()] == ["2022-01-31"]


async def test_a_deleted_enrollment_takes_its_enrollment_row_with_it(zone_stack, zone_id, grand_bend):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])
    created = await post_edfi(zone_stack, "studentSchoolAssociations", an_enrollment(), headers)

    assert (await delete_edfi(zone_stack, item_path(created), headers)).status_code == 204

    assert (await footprint(zone_stack, zone_id))["enrollments"] == 0
    deleted = (await get_edfi(zone_stack, "studentSchoolAssociations/deletes", headers)).json()
    assert [d["keyValues"] for d in deleted] == [{"entryDate": "2021-08-23", "schoolId": int(MIDDLE), "studentUniqueId": "604898"}]


# Built when the test runs: its zone's schools have codes of their own (schools_of_their_own).
@pytest.mark.parametrize("build, paths", [
    (lambda: an_enrollment(entryDate="2021-13-01"), {"$.entryDate"}),
    (lambda: an_enrollment(exitWithdrawDate="2021-08-01"), {"$.exitWithdrawDate"}),
    (lambda: an_enrollment(entryGradeLevelDescriptor=f"{GRADE}Postsecondary"), {"$.entryGradeLevelDescriptor"}),
    (lambda: an_enrollment(entryGradeLevelDescriptor=f"{GRADE}Eleventh grade"), {"$.entryGradeLevelDescriptor"}),
    (lambda: {"studentReference": {}},
     {"$.studentReference.studentUniqueId", "$.schoolReference", "$.entryDate", "$.entryGradeLevelDescriptor"}),
], ids=["bad-date", "exit-before-entry", "no-grade", "grade-not-taught", "missing-fields"])
async def test_a_bad_enrollment_is_400_and_stores_nothing(zone_stack, zone_id, grand_bend, build, paths):
    before = await footprint(zone_stack, zone_id)
    response = await post_edfi(zone_stack, "studentSchoolAssociations", build(), zone_stack.auth("admin", zone_id))
    problem = assert_edfi_problem(response, 400, VALIDATION)
    assert set(problem["validationErrors"]) == paths, problem
    assert await footprint(zone_stack, zone_id) == before


# --- GET, PUT and DELETE by id ----------------------------------------------------------------------------------

async def test_a_document_read_and_put_back_as_it_was_read_is_204_and_changes_nothing(zone_stack, zone_id, grand_bend):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])
    path = item_path(await post_edfi(zone_stack, "studentAssessments", a_result(), headers))
    read = await get_edfi(zone_stack, path, headers)
    assert read.status_code == 200, read.text
    document = read.json()
    assert read.headers["etag"] == f'"{document["_etag"]}"'
    assert {k: v for k, v in document.items() if k not in ("id", "_etag", "_lastModifiedDate")} == a_result()
    before = await footprint(zone_stack, zone_id)

    answers = [await put_edfi(zone_stack, path, document, {**headers, "If-Match": read.headers["etag"]}) for _ in range(2)]

    assert [a.status_code for a in answers] == [204, 204], [a.text for a in answers]
    assert [a.headers["etag"] for a in answers] == [read.headers["etag"]] * 2
    assert (await get_edfi(zone_stack, path, headers)).json() == document
    assert await footprint(zone_stack, zone_id) == before


async def test_a_put_with_a_change_is_204_with_a_new_etag_and_updates_the_result(zone_stack, zone_id, grand_bend):
    headers = await sis_headers(zone_stack, zone_id, [grand_bend[MIDDLE]])
    path = item_path(await post_edfi(zone_stack, "studentAssessments", a_result(), headers))
    document = (await get_edfi(zone_stack, path, headers)).json()
    events = await posted_events(zone_stack, zone_id)

    changed = {**document, **a_score("531", "Commended Performance")}
    response = await put_edfi(zone_stack, path, changed, {**headers, "If-Match": f'"{document["_etag"]}"'})

    assert response.status_code == 204, response.text
    read = (await get_edfi(zone_stack, path, headers)).json()
    assert response.headers["etag"] == f'"{read["_etag"]}"' and read["_etag"] != document["_etag"]
    assert read["scoreResults"] == changed["scoreResults"] and read["_lastModifiedDate"] >= document["_lastModifiedDate"]
    stored = await stored_result(zone_stack, zone_id)
    assert (stored["scale_score"], stored["performance_level"]) == (531, "Commended Performance")
    assert await events_since(zone_stack, zone_id, events) == [(grand_bend[MIDDLE], "2021-22", "MATH", 0, 1)]
    assert await audited(zone_stack, zone_id, "edfi.studentAssessments.updated") == [path.rsplit("/", 1)[1]]


async def test_if_match_with_a_stale_etag_is_412_on_put_and_delete_and_changes_nothing(zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    path = item_path(await post_edfi(zone_stack, "studentAssessments", a_result(), admin))
    stale = (await get_edfi(zone_stack, path, admin)).json()
    assert (await post_edfi(zone_stack, "studentAssessments", a_result(**a_score("512")), admin)).status_code == 200
    before = await footprint(zone_stack, zone_id)
    current = (await get_edfi(zone_stack, path, admin)).json()

    put = await put_edfi(zone_stack, path, {**stale, **a_score("540", "Commended Performance")},
                         {**admin, "If-Match": f'"{stale["_etag"]}"'})
    delete = await zone_stack.clients["results"].delete(f"{DATA}/{path}", headers={**admin, "If-Match": f'"{stale["_etag"]}"'})

    assert_edfi_problem(put, 412, STALE)
    assert_edfi_problem(delete, 412, STALE)
    assert await footprint(zone_stack, zone_id) == before
    assert (await get_edfi(zone_stack, path, admin)).json() == current
    # The current _etag is taken.
    assert (await zone_stack.clients["results"].delete(f"{DATA}/{path}", headers={
        **admin, "If-Match": f'"{current["_etag"]}"'})).status_code == 204


@pytest.mark.parametrize("changes", [
    {"studentAssessmentIdentifier": "SA-604898-MATH-2022-B"},
    {"studentReference": {"studentUniqueId": "604899"}},
], ids=["identifier", "student"])
async def test_a_put_that_changes_the_natural_key_is_400_and_changes_nothing(zone_stack, zone_id, grand_bend, changes):
    admin = zone_stack.auth("admin", zone_id)
    path = item_path(await post_edfi(zone_stack, "studentAssessments", a_result(), admin))
    document = (await get_edfi(zone_stack, path, admin)).json()
    before = await footprint(zone_stack, zone_id)

    problem = assert_edfi_problem(await put_edfi(zone_stack, path, {**document, **changes}, admin), 400, VALIDATION)

    assert "natural key" in problem["validationErrors"]["$"][0], problem
    assert await footprint(zone_stack, zone_id) == before
    assert (await get_edfi(zone_stack, path, admin)).json() == document


async def test_an_unknown_id_is_404_on_get_put_and_delete(zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    for item in (uuid.uuid4().hex, "not-an-id"):
        path = f"studentAssessments/{item}"
        assert_edfi_problem(await get_edfi(zone_stack, path, admin), 404, NOT_FOUND)
        assert_edfi_problem(await put_edfi(zone_stack, path, a_result(), admin), 404, NOT_FOUND)
        assert_edfi_problem(await delete_edfi(zone_stack, path, admin), 404, NOT_FOUND)
    assert_edfi_problem(await get_edfi(zone_stack, "students", admin), 404, NOT_FOUND)
    assert (await footprint(zone_stack, zone_id))["student_results"] == 0


async def test_delete_removes_the_document_and_its_result_announces_the_update_and_shows_in_change_queries(
        zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    path = item_path(await post_edfi(zone_stack, "studentAssessments", a_result(), admin))
    item_id = path.rsplit("/", 1)[1]
    version = await newest_change_version(zone_stack, admin)
    later = item_path(await post_edfi(zone_stack, "studentAssessments", a_students_result(2), admin))
    events = await posted_events(zone_stack, zone_id)

    response = await delete_edfi(zone_stack, path, admin)

    assert response.status_code == 204, response.text
    assert_edfi_problem(await get_edfi(zone_stack, path, admin), 404, NOT_FOUND)
    assert_edfi_problem(await delete_edfi(zone_stack, path, admin), 404, NOT_FOUND)
    assert await stored_result(zone_stack, zone_id) is None
    assert await stored_result(zone_stack, zone_id, "2") is not None
    # The review of the school and subject runs again without the result.
    assert await events_since(zone_stack, zone_id, events) == [(grand_bend[MIDDLE], "2021-22", "MATH", 0, 1)]
    assert await audited(zone_stack, zone_id, "edfi.studentAssessments.deleted") == [item_id]
    deleted = (await get_edfi(zone_stack, "studentAssessments/deletes", admin)).json()
    newest = await newest_change_version(zone_stack, admin)
    assert deleted == [{"id": item_id, "changeVersion": newest, "keyValues": {
        "studentAssessmentIdentifier": "SA-604898-MATH-2022", "assessmentIdentifier": STATE_MATH,
        "namespace": ASSESSMENT_NAMESPACE, "studentUniqueId": "604898"}}]
    assert newest > version
    changed = (await get_edfi(zone_stack, "studentAssessments", admin, minChangeVersion=version + 1)).json()
    assert [item["id"] for item in changed] == [later.rsplit("/", 1)[1]]
    assert (await get_edfi(zone_stack, "studentAssessments/deletes", admin, minChangeVersion=newest + 1)).json() == []
    assert [item["id"] for item in (await get_edfi(zone_stack, "studentAssessments", admin, maxChangeVersion=version)).json()] == []


# --- lists --------------------------------------------------------------------------------------------------------

async def test_lists_page_with_offset_and_limit_count_with_total_count_and_filter_by_natural_key_and_property(zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    ids = [item_path(await post_edfi(zone_stack, "studentAssessments", a_students_result(
        student, grade="Seventh grade" if student == 5 else "Eighth grade"), admin)).rsplit("/", 1)[1] for student in range(1, 6)]

    pages = [await get_edfi(zone_stack, "studentAssessments", admin, offset=offset, limit=2, totalCount="true")
             for offset in (0, 2, 4)]

    assert [[item["id"] for item in page.json()] for page in pages] == [ids[:2], ids[2:4], ids[4:]]
    assert {page.headers["total-count"] for page in pages} == {"5"}
    assert "total-count" not in (await get_edfi(zone_stack, "studentAssessments", admin)).headers
    assert (await get_edfi(zone_stack, "studentAssessments", admin, offset=5)).json() == []
    assert (await get_edfi(zone_stack, "studentAssessments", admin, limit=0, totalCount="true")).headers["total-count"] == "5"
    by_student = await get_edfi(zone_stack, "studentAssessments", admin, studentUniqueId="3", totalCount="true")
    assert [item["id"] for item in by_student.json()] == [ids[2]] and by_student.headers["total-count"] == "1"
    by_assessment = await get_edfi(zone_stack, "studentAssessments", admin, assessmentIdentifier=STATE_MATH,
                                   namespace=ASSESSMENT_NAMESPACE)
    assert [item["id"] for item in by_assessment.json()] == ids
    assert (await get_edfi(zone_stack, "studentAssessments", admin, assessmentIdentifier="ACT Composite")).json() == []
    # Other top-level properties filter too.
    seventh = await get_edfi(zone_stack, "studentAssessments", admin, whenAssessedGradeLevelDescriptor=f"{GRADE}Seventh grade")
    assert [item["id"] for item in seventh.json()] == [ids[4]]
    assessments = await get_edfi(zone_stack, "assessments", admin, assessmentIdentifier=STATE_MATH)
    assert [a["assessmentTitle"] for a in assessments.json()] == [state_math_assessment()["assessmentTitle"]]


@pytest.mark.parametrize("params, names", [
    ({"schoolYear": "2022"}, {"schoolYear"}),
    ({"studentUniqueId": "1", "q": "x", "orderBy": "id"}, {"q", "orderBy"}),
    ({"limit": "many"}, {"limit"}),
    ({"limit": "501"}, {"limit"}),
    ({"offset": "-1"}, {"offset"}),
    ({"minChangeVersion": "new"}, {"minChangeVersion"}),
], ids=["not-a-key", "unknown", "limit-not-a-number", "limit-too-large", "negative-offset", "change-version-not-a-number"])
async def test_an_unknown_or_malformed_query_parameter_is_400(zone_stack, zone_id, grand_bend, params, names):
    problem = assert_edfi_problem(await get_edfi(zone_stack, "studentAssessments", zone_stack.auth("admin", zone_id), **params),
                                  400, BAD_REQUEST)
    assert set(problem["validationErrors"]) == names, problem


# --- who sees and changes what ---------------------------------------------------------------------------------

async def test_a_school_bound_client_cannot_read_change_or_delete_another_schools_result_nor_see_it_listed_or_deleted(
        zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    high_sis = await sis_headers(zone_stack, zone_id, [grand_bend[HIGH]], name="High SIS")
    middle = item_path(await post_edfi(zone_stack, "studentAssessments", a_students_result(1), admin))
    middle_gone = item_path(await post_edfi(zone_stack, "studentAssessments", a_students_result(2), admin))
    high = item_path(await post_edfi(zone_stack, "studentAssessments", a_students_result(3, school=HIGH, grade="Ninth grade"),
                                     admin))
    assert (await delete_edfi(zone_stack, middle_gone, admin)).status_code == 204
    middle_document = (await get_edfi(zone_stack, middle, admin)).json()
    before = await footprint(zone_stack, zone_id)

    assert_edfi_problem(await get_edfi(zone_stack, middle, high_sis), 403, FORBIDDEN)
    assert_edfi_problem(await put_edfi(zone_stack, middle, middle_document, high_sis), 403, FORBIDDEN)
    assert_edfi_problem(await delete_edfi(zone_stack, middle, high_sis), 403, FORBIDDEN)
    assert await footprint(zone_stack, zone_id) == before
    assert (await get_edfi(zone_stack, middle, admin)).json() == middle_document

    listed = await get_edfi(zone_stack, "studentAssessments", high_sis, totalCount="true")
    assert [item["id"] for item in listed.json()] == [high.rsplit("/", 1)[1]] and listed.headers["total-count"] == "1"
    assert (await get_edfi(zone_stack, "studentAssessments/deletes", high_sis)).json() == []
    assert (await get_edfi(zone_stack, high, high_sis)).status_code == 200
    assert (await delete_edfi(zone_stack, high, high_sis)).status_code == 204
    assert [d["id"] for d in (await get_edfi(zone_stack, "studentAssessments/deletes", high_sis)).json()] == [high.rsplit("/", 1)[1]]
    assert len((await get_edfi(zone_stack, "studentAssessments/deletes", admin)).json()) == 2
    assert [s["schoolId"] for s in (await get_edfi(zone_stack, "schools", high_sis)).json()] == [int(HIGH)]


async def test_a_client_of_another_zone_gets_404_by_id_an_empty_list_and_none_of_this_zones_changes(zone_stack, zone_id, grand_bend):
    other_zone = f"{zone_id}-b"
    await zone_with_schools(zone_stack, other_zone, OTHER_BEND)
    theirs = zone_stack.auth("district", other_zone)
    mine = zone_stack.auth("district", zone_id)
    assert (await get_edfi(zone_stack, "studentAssessments", theirs)).json() == []  # (their descriptors are seeded)
    their_version = await newest_change_version(zone_stack, theirs)

    path = item_path(await post_edfi(zone_stack, "studentAssessments", a_result(), mine))
    kept = item_path(await post_edfi(zone_stack, "studentAssessments", a_students_result(2), mine))
    assert (await delete_edfi(zone_stack, path, mine)).status_code == 204

    assert_edfi_problem(await get_edfi(zone_stack, kept, theirs), 404, NOT_FOUND)
    assert_edfi_problem(await delete_edfi(zone_stack, kept, theirs), 404, NOT_FOUND)
    assert (await get_edfi(zone_stack, kept, mine)).status_code == 200
    assert (await get_edfi(zone_stack, "studentAssessments", theirs, minChangeVersion=0)).json() == []
    assert (await get_edfi(zone_stack, "studentAssessments/deletes", theirs)).json() == []
    assert (await get_edfi(zone_stack, "assessments", theirs)).json() == []
    assert await newest_change_version(zone_stack, theirs) == their_version
    assert await newest_change_version(zone_stack, mine) > their_version
    assert {s["schoolId"] for s in (await get_edfi(zone_stack, "schools", theirs)).json()} == set(map(int, OTHER_BEND))


# --- two records of one administration -------------------------------------------------------------------------

def one_administrations_records(school: str) -> dict[str, dict]:
    """Three records of student 604898's one state math administration: absent (no result), 497 and 531."""
    absent = a_result(studentAssessmentIdentifier="SA-0", reportedSchoolReference={"schoolId": int(school)},
                      reasonNotTestedDescriptor="uri://ed-fi.org/ReasonNotTestedDescriptor#Absent")
    del absent["scoreResults"], absent["performanceLevels"]
    return {
        "SA-0": absent,
        "SA-A": a_result(studentAssessmentIdentifier="SA-A", reportedSchoolReference={"schoolId": int(school)}),
        "SA-B": a_result(studentAssessmentIdentifier="SA-B", reportedSchoolReference={"schoolId": int(school)},
                         **a_score("531", "Commended Performance")),
    }


async def test_records_of_one_administration_are_all_kept_and_make_the_same_row_whatever_order_they_arrive_in(
        zone_stack, zone_id, grand_bend):
    other_zone = f"{zone_id}-b"
    await zone_with_schools(zone_stack, other_zone, OTHER_BEND)
    await post_assessment(zone_stack, other_zone)
    rows = {}

    for zone, school, order in ((zone_id, MIDDLE, ["SA-0", "SA-B", "SA-A"]), (other_zone, OTHER_MIDDLE, ["SA-A", "SA-B", "SA-0"])):
        admin = zone_stack.auth("admin", zone)
        records = one_administrations_records(school)
        answers = [await post_edfi(zone_stack, "studentAssessments", records[name], admin) for name in order]
        assert [a.status_code for a in answers] == [201, 201, 201], [a.text for a in answers]
        chosen = dict(zip(order, answers, strict=True))["SA-A"].headers["location"].rsplit("/", 1)[1]
        listed = await get_edfi(zone_stack, "studentAssessments", admin, studentUniqueId="604898")
        assert sorted(item["studentAssessmentIdentifier"] for item in listed.json()) == ["SA-0", "SA-A", "SA-B"]
        row = await stored_result(zone_stack, zone)
        assert row["edfi_document_id"] == str(uuid.UUID(chosen))
        rows[zone] = {k: v for k, v in row.items() if k not in ("zone_id", "school_id", "edfi_document_id")}

    assert rows[zone_id] == rows[other_zone]
    assert (rows[zone_id]["edfi_identifier"], rows[zone_id]["scale_score"], rows[zone_id]["not_tested_reason"]) == ("SA-A", 497, None)
    assert await scalar(zone_stack, "SELECT count(*) FROM results.student_results WHERE zone_id IN (:a, :b)",
                        a=zone_id, b=other_zone) == 2


async def test_records_of_one_administration_sent_at_once_are_all_kept_and_the_row_is_made_from_the_chosen_one(
        zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    bodies = []
    for student in range(12):
        for record in one_administrations_records(MIDDLE).values():
            bodies.append({**record, "studentReference": {"studentUniqueId": f"S{student}"}})

    answers = await asyncio.gather(*(post_edfi(zone_stack, "studentAssessments", body, admin) for body in bodies))

    assert [a.status_code for a in answers] == [201] * len(bodies), [a.text for a in answers if a.status_code != 201]
    rows = await scalar(zone_stack, """SELECT jsonb_object_agg(r.student_id, r.edfi_identifier) FROM results.student_results r
        JOIN results.edfi_documents d ON d.id = r.edfi_document_id WHERE r.zone_id = :z
        AND d.document->>'studentAssessmentIdentifier' = r.edfi_identifier""", z=zone_id)
    assert rows == {f"S{student}": "SA-A" for student in range(12)}


async def test_deleting_the_record_a_result_is_made_from_makes_it_from_the_next_one(zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    records = one_administrations_records(MIDDLE)
    paths = {name: item_path(await post_edfi(zone_stack, "studentAssessments", body, admin)) for name, body in records.items()}
    events = await posted_events(zone_stack, zone_id)

    seen = []
    for name in ("SA-A", "SA-B", "SA-0"):
        assert (await delete_edfi(zone_stack, paths[name], admin)).status_code == 204
        row = await stored_result(zone_stack, zone_id)
        seen.append(row and (row["edfi_identifier"], row["scale_score"], row["not_tested_reason"]))

    assert seen == [("SA-B", 531, None), ("SA-0", None, "absent"), None]
    assert await events_since(zone_stack, zone_id, events) == [(grand_bend[MIDDLE], "2021-22", "MATH", 0, 1)] * 3


# --- bad input on every write route ----------------------------------------------------------------------------

def _bad_bodies(resource: str, valid: dict) -> list[tuple[str, bytes | dict | list]]:
    """(what is wrong, body) for a resource whose valid document is `valid`."""
    wrong_types = {**valid, **{key: {"value": value} for key, value in list(valid.items())[:2]}}
    bad: list[tuple[str, bytes | dict | list]] = [("not-json", b"{"), ("a-list", [valid]), ("wrong-types", wrong_types),
                                                  ("missing-all", {"_etag": "1"})]
    for name in ("whenAssessedGradeLevelDescriptor", "entryGradeLevelDescriptor", "assessmentCategoryDescriptor"):
        if name in valid:
            bad.append(("unknown-descriptor", {**copy.deepcopy(valid), name: valid[name] + " (not one)"}))
    return bad


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_bad_input_on_each_write_route_is_an_edfi_problem_and_stores_nothing(zone_stack, zone_id, grand_bend, method):
    admin = zone_stack.auth("admin", zone_id)
    computer_science = {"namespace": "uri://ezone.org/AcademicSubjectDescriptor", "codeValue": "Computer Science",
                        "shortDescription": "Computer Science"}
    valid = {"studentAssessments": a_result(), "studentSchoolAssociations": an_enrollment(),
             "assessments": state_math_assessment(), "academicSubjectDescriptors": computer_science}
    paths = {resource: item_path(await post_edfi(zone_stack, resource, body, admin)) for resource, body in valid.items()}
    before = await footprint(zone_stack, zone_id)
    documents = {resource: (await get_edfi(zone_stack, path, admin)).json() for resource, path in paths.items()}
    results = zone_stack.clients["results"]

    for resource, body in valid.items():
        url = f"{DATA}/{resource}" if method == "POST" else f"{DATA}/{paths[resource]}"
        for wrong, bad in _bad_bodies(resource, body):
            content = bad if isinstance(bad, bytes) else None
            response = await results.request(method, url, content=content, json=None if content else bad,
                                             headers={**admin, "Content-Type": "application/json"})
            problem = assert_edfi_problem(response, 400, VALIDATION)
            assert problem["type"].startswith("urn:ed-fi:api:") and problem["validationErrors"], (resource, wrong, problem)
            assert all(path.startswith("$") for path in problem["validationErrors"]), (resource, wrong, problem)

    assert await footprint(zone_stack, zone_id) == before
    assert {resource: (await get_edfi(zone_stack, path, admin)).json() for resource, path in paths.items()} == documents


# --- references kept whole, nulls ---------------------------------------------------------------------------------

async def test_an_assessment_that_results_refer_to_is_409_on_delete_until_they_are_deleted(zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    result = item_path(await post_edfi(zone_stack, "studentAssessments", a_result(), admin))
    [assessment] = (await get_edfi(zone_stack, "assessments", admin, assessmentIdentifier=STATE_MATH)).json()
    path = f"assessments/{assessment['id']}"
    before = await footprint(zone_stack, zone_id)

    refused = await delete_edfi(zone_stack, path, admin)

    body = assert_edfi_problem(refused, 409, "urn:ed-fi:api:conflict:dependent-item-exists")
    assert "1 studentAssessments" in body["errors"][0], body
    assert await footprint(zone_stack, zone_id) == before
    assert (await delete_edfi(zone_stack, result, admin)).status_code == 204
    assert (await delete_edfi(zone_stack, path, admin)).status_code == 204


async def test_a_descriptor_a_document_uses_is_409_on_delete_and_an_unused_one_is_deleted(zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)
    result = item_path(await post_edfi(zone_stack, "studentAssessments", a_result(), admin))
    [eighth] = (await get_edfi(zone_stack, "gradeLevelDescriptors", admin, codeValue="Eighth grade")).json()
    [twelfth] = (await get_edfi(zone_stack, "gradeLevelDescriptors", admin, codeValue="Twelfth grade")).json()
    before = await footprint(zone_stack, zone_id)

    refused = await delete_edfi(zone_stack, f"gradeLevelDescriptors/{eighth['id']}", admin)

    body = assert_edfi_problem(refused, 409, "urn:ed-fi:api:conflict:dependent-item-exists")
    assert "1 studentAssessments" in body["errors"][0] and f"{GRADE}Eighth grade" in body["errors"][0], body
    assert await footprint(zone_stack, zone_id) == before
    assert (await delete_edfi(zone_stack, f"gradeLevelDescriptors/{twelfth['id']}", admin)).status_code == 204
    assert (await delete_edfi(zone_stack, result, admin)).status_code == 204
    # Still the grade of an assessment: named, as the one use left.
    again = await delete_edfi(zone_stack, f"gradeLevelDescriptors/{eighth['id']}", admin)
    assert "studentAssessments" not in assert_edfi_problem(again, 409, "urn:ed-fi:api:conflict:dependent-item-exists")[
        "errors"][0]


async def test_a_null_optional_value_is_read_as_absent(zone_stack, zone_id, grand_bend):
    admin = zone_stack.auth("admin", zone_id)

    response = await post_edfi(zone_stack, "studentSchoolAssociations", an_enrollment(exitWithdrawDate=None), admin)

    assert response.status_code == 201, response.text
    stored = (await get_edfi(zone_stack, item_path(response), admin)).json()
    assert "exitWithdrawDate" not in stored
    assert await scalar(zone_stack, "SELECT count(*) FROM results.enrollments WHERE zone_id = :z AND exit_date IS NULL",
                        z=zone_id) == 1
