"""What the Ed-Fi, OAuth and MCAS tests share: a zone with schools (through the plans API, seen by results),
SIS clients and their tokens, the Ed-Fi requests and the assessments a result must name, and the rows a refused
request must leave alone."""

from __future__ import annotations

import base64
import copy
import sys

import httpx
import pytest
from ezone_schemas import Event, ResultsPosted

from tests.helpers import register_school, register_zone, scalar, school_code, wait_for_count
from tests.stack import Stack

# Grand Bend ISD (the Ed-Fi sample district): its schools' Ed-Fi schoolIds, as lightbeam's sample files name them.
GRAND_BEND = {
    "255901001": {"name": "Grand Bend High School", "grade_span": "9-12"},
    "255901044": {"name": "Grand Bend Middle School", "grade_span": "6-8"},
    "255901107": {"name": "Grand Bend Elementary School", "grade_span": "K-5"},
}
# Another zone's schools (a state school code belongs to one zone at a time).
OTHER_BEND = {
    "255902001": {"name": "Other Bend High School", "grade_span": "9-12"},
    "255902044": {"name": "Other Bend Middle School", "grade_span": "6-8"},
    "255902107": {"name": "Other Bend Elementary School", "grade_span": "K-5"},
}
BASE = "/ed-fi"
DATA = f"{BASE}/data/v3/ed-fi"  # the Ed-Fi ODS/API 7 data path
LEGACY_DATA = f"{BASE}/v3/ed-fi"  # the path ezone's first Ed-Fi clients were given

ASSESSMENT_NAMESPACE = "uri://ed-fi.org/Assessment/Assessment.xml"
STATE_MATH = "SA-2011-Mathematics-Eighth grade"
METHOD = "uri://ed-fi.org/AssessmentReportingMethodDescriptor#"
LEVEL = "uri://ed-fi.org/PerformanceLevelDescriptor#"
DATATYPE = "uri://ed-fi.org/ResultDatatypeTypeDescriptor#"
SUBJECT = "uri://ed-fi.org/AcademicSubjectDescriptor#"
GRADE = "uri://ed-fi.org/GradeLevelDescriptor#"
CATEGORY = "uri://ed-fi.org/AssessmentCategoryDescriptor#"


@pytest.fixture
def schools_of_their_own(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's Grand Bend (and other zone's) schools under codes of their own, for the modules that ask.

    A state school code belongs to one zone at a time, and the session's tests share one database: Grand Bend's own
    codes can be one zone's only (lightbeam's, whose sample files name them). For the test, GRAND_BEND and OTHER_BEND
    here and every constant of the test module holding one of their codes (HIGH, MIDDLE, ...) hold new codes instead,
    so the documents the module builds name its zone's schools."""
    originals = {"GRAND_BEND": GRAND_BEND, "OTHER_BEND": OTHER_BEND}
    codes = {code: school_code() for schools in originals.values() for code in schools}
    renamed = {name: {codes[code]: school for code, school in schools.items()} for name, schools in originals.items()}
    for name, schools in renamed.items():
        monkeypatch.setattr(sys.modules[__name__], name, schools)
    for name, value in list(vars(request.module).items()):
        if isinstance(value, str) and value in codes:
            monkeypatch.setattr(request.module, name, codes[value])
        for table, schools in originals.items():
            if value is schools:
                monkeypatch.setattr(request.module, name, renamed[table])


async def zone_with_schools(stack: Stack, zone_id: str, schools: dict[str, dict] | None = None) -> dict[str, str]:
    """Registers the zone and its schools ({code: details}; Grand Bend's by default); their ids by code, once results
    knows them."""
    schools = GRAND_BEND if schools is None else schools
    await register_zone(stack, zone_id)
    ids = {code: (await register_school(stack, zone_id, {"code": code, **details}))["id"] for code, details in schools.items()}
    await wait_for_count(stack, "SELECT count(*) FROM results.schools WHERE zone_id = :z", len(ids), z=zone_id)
    return ids


async def register_client(stack: Stack, zone_id: str, schools: list[str], name: str = "SIS") -> httpx.Response:
    return await stack.clients["results"].post(f"/zones/{zone_id}/oauth-clients", json={"name": name, "schools": schools},
                                               headers=stack.auth("admin", zone_id))


async def token_response(stack: Stack, client_id: str, secret: str, *, basic: bool = True,
                         grant_type: str = "client_credentials", url: str = "/oauth/token") -> httpx.Response:
    form = {"grant_type": grant_type}
    headers = {}
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    else:
        form |= {"client_id": client_id, "client_secret": secret}
    return await stack.clients["results"].post(url, data=form, headers=headers)


async def sis_headers(stack: Stack, zone_id: str, schools: list[str], name: str = "SIS") -> dict[str, str]:
    """A bearer token from /oauth/token for a new client acting for `schools`."""
    client = (await register_client(stack, zone_id, schools, name)).json()
    token = (await token_response(stack, client["client_id"], client["client_secret"])).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


# --- Ed-Fi requests --------------------------------------------------------------------------------------------

async def post_edfi(stack: Stack, resource: str, body: dict, headers: dict[str, str], *, base: str = DATA) -> httpx.Response:
    return await stack.clients["results"].post(f"{base}/{resource}", json=body, headers=headers)


async def get_edfi(stack: Stack, path: str, headers: dict[str, str], **params: object) -> httpx.Response:
    """GET `{DATA}/{path}` (a resource, `resource/{id}` or `resource/deletes`) with query parameters."""
    return await stack.clients["results"].get(f"{DATA}/{path}", headers=headers, params=params or None)


async def put_edfi(stack: Stack, path: str, body: object, headers: dict[str, str]) -> httpx.Response:
    return await stack.clients["results"].put(f"{DATA}/{path}", json=body, headers=headers)


async def delete_edfi(stack: Stack, path: str, headers: dict[str, str]) -> httpx.Response:
    return await stack.clients["results"].delete(f"{DATA}/{path}", headers=headers)


def item_path(response: httpx.Response) -> str:
    """`studentAssessments/{id}` from a POST's Location (`{base}/data/v3/ed-fi/studentAssessments/{id}`)."""
    location = response.headers["location"]
    assert f"{DATA}/" in location, location
    return location.split(f"{DATA}/", 1)[1]


# --- assessments: a result must name one of the zone's -------------------------------------------------------

def state_math_assessment(**changes: object) -> dict:
    """The state's grade 8 math test: a Scale score from 440 to 560, a Raw score from 0 to 54, and three
    proficiency levels."""
    body = {
        "assessmentIdentifier": STATE_MATH,
        "namespace": ASSESSMENT_NAMESPACE,
        "assessmentTitle": "State Assessment Mathematics Grade 8",
        "academicSubjects": [{"academicSubjectDescriptor": f"{SUBJECT}Mathematics"}],
        "assessmentCategoryDescriptor": f"{CATEGORY}State summative assessment 3-8 general",
        "assessedGradeLevels": [{"gradeLevelDescriptor": f"{GRADE}Eighth grade"}],
        "scores": [
            {"assessmentReportingMethodDescriptor": f"{METHOD}Scale score", "minimumScore": "440", "maximumScore": "560",
             "resultDatatypeTypeDescriptor": f"{DATATYPE}Integer"},
            {"assessmentReportingMethodDescriptor": f"{METHOD}Raw score", "minimumScore": "0", "maximumScore": "54",
             "resultDatatypeTypeDescriptor": f"{DATATYPE}Integer"},
        ],
        "performanceLevels": [
            {"assessmentReportingMethodDescriptor": f"{METHOD}Proficiency level", "performanceLevelDescriptor": f"{LEVEL}{level}",
             "minimumScore": low, "maximumScore": high, "resultDatatypeTypeDescriptor": f"{DATATYPE}Integer"}
            for level, low, high in (("Did Not Meet Standard", "440", "499"), ("Met Standard", "500", "529"),
                                     ("Commended Performance", "530", "560"))
        ],
    }
    body.update(changes)
    return body


def act_assessment() -> dict:
    """ACT's Composite: no subject ezone reviews, a composite score from 1 to 36."""
    return {
        "assessmentIdentifier": "ACT Composite", "namespace": "uri://ed-fi.org/Assessment",
        "assessmentTitle": "ACT Composite", "assessmentCategoryDescriptor": f"{CATEGORY}College entrance exam",
        "academicSubjects": [{"academicSubjectDescriptor": f"{SUBJECT}Composite"}],
        "assessedGradeLevels": [{"gradeLevelDescriptor": f"{GRADE}Eleventh grade"}],
        "scores": [{"assessmentReportingMethodDescriptor": f"{METHOD}Composite Score", "minimumScore": "1", "maximumScore": "36",
                    "resultDatatypeTypeDescriptor": f"{DATATYPE}Integer"}],
    }


def benchmark_assessment() -> dict:
    """A third grade math benchmark that reports a raw score only."""
    return {
        "assessmentIdentifier": "BM-Math-Third grade-Fall", "namespace": "uri://ed-fi.org/Assessment/Benchmark.xml",
        "assessmentTitle": "Third Grade Math Benchmark (Fall)", "assessmentCategoryDescriptor": f"{CATEGORY}Benchmark test",
        "academicSubjects": [{"academicSubjectDescriptor": f"{SUBJECT}Mathematics"}],
        "assessedGradeLevels": [{"gradeLevelDescriptor": f"{GRADE}Third grade"}],
        "scores": [{"assessmentReportingMethodDescriptor": f"{METHOD}Raw score", "minimumScore": "0", "maximumScore": "40",
                    "resultDatatypeTypeDescriptor": f"{DATATYPE}Integer"}],
    }


async def post_assessment(stack: Stack, zone_id: str, body: dict | None = None) -> httpx.Response:
    """Posts an assessment (the state math one by default) as the zone's district; it must be taken."""
    response = await post_edfi(stack, "assessments", copy.deepcopy(body or state_math_assessment()),
                               stack.auth("district", zone_id))
    assert response.status_code in (200, 201), response.text
    return response


# --- what a request leaves behind ------------------------------------------------------------------------------

_ZONE_ROWS = {
    "edfi_documents": "SELECT count(*) FROM results.edfi_documents WHERE zone_id = :z",
    "edfi_deletes": "SELECT count(*) FROM results.edfi_deletes WHERE zone_id = :z",
    "student_results": "SELECT count(*) FROM results.student_results WHERE zone_id = :z",
    "enrollments": "SELECT count(*) FROM results.enrollments WHERE zone_id = :z",
    "oauth_clients": "SELECT count(*) FROM results.oauth_clients WHERE zone_id = :z",
    "outbox": f"SELECT count(*) FROM results.outbox WHERE payload->>'zone_id' = :z AND ce_type = '{ResultsPosted.ce_type}'",
    "audit_log": "SELECT count(*) FROM results.audit_log WHERE zone_id = :z",
    "contents": """SELECT md5(concat_ws('|',
        (SELECT string_agg(concat_ws(',', d.id, d.identity, d.document, d.school_id, d.result_key, d.change_version,
                                     d.last_modified), ';' ORDER BY d.id) FROM results.edfi_documents d WHERE zone_id = :z),
        (SELECT string_agg(r::text, ',' ORDER BY id) FROM results.student_results r WHERE zone_id = :z),
        (SELECT string_agg(e::text, ',' ORDER BY id) FROM results.enrollments e WHERE zone_id = :z)))""",
}


async def footprint(stack: Stack, zone_id: str) -> dict[str, object]:
    """Every row results keeps about a zone's data in (Ed-Fi documents and deletes, the results and enrollments made
    from them, the results.posted they announced (not review.completed: reviews run in the background), audit entries,
    SIS clients) and a digest of the rows: a refused or repeated request
    leaves it as it was."""
    return {name: await scalar(stack, sql, z=zone_id) for name, sql in _ZONE_ROWS.items()}


async def posted_events(stack: Stack, zone_id: str, version: type[Event] = ResultsPosted) -> list[dict]:
    """The zone's results.posted events (v1 unless asked) as committed to the outbox, oldest first."""
    return await scalar(stack, """SELECT coalesce(jsonb_agg(payload ORDER BY seq), '[]') FROM results.outbox
                                  WHERE ce_type = :t AND payload->>'zone_id' = :z""", t=version.ce_type, z=zone_id)
