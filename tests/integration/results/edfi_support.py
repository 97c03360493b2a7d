"""What the Ed-Fi, OAuth and MCAS tests share: a zone with schools (through the plans API, seen by results),
SIS clients and their tokens, and the rows a refused request must leave alone."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import httpx

from tests.helpers import register_school, register_zone, scalar, wait_for_count
from tests.stack import Stack

# Grand Bend ISD (the Ed-Fi sample district): its schools' Ed-Fi schoolIds.
GRAND_BEND = {
    "255901001": {"name": "Grand Bend High School", "grade_span": "9-12"},
    "255901044": {"name": "Grand Bend Middle School", "grade_span": "6-8"},
    "255901107": {"name": "Grand Bend Elementary School", "grade_span": "K-5"},
}
EDFI = "/ed-fi/v3/ed-fi"


async def zone_with_schools(stack: Stack, zone_id: str, schools: dict[str, dict] = GRAND_BEND) -> dict[str, str]:
    """Registers the zone and its schools ({code: details}); their ids by code, once results knows them."""
    await register_zone(stack, zone_id)
    ids = {code: (await register_school(stack, zone_id, {"code": code, **details}))["id"] for code, details in schools.items()}
    await wait_for_count(stack, "SELECT count(*) FROM results.schools WHERE zone_id = :z", len(ids), z=zone_id)
    return ids


async def register_client(stack: Stack, zone_id: str, schools: list[str], name: str = "SIS") -> httpx.Response:
    return await stack.clients["results"].post(f"/zones/{zone_id}/oauth-clients", json={"name": name, "schools": schools},
                                               headers=stack.auth("admin", zone_id))


async def token_response(stack: Stack, client_id: str, secret: str, *, basic: bool = True,
                         grant_type: str = "client_credentials") -> httpx.Response:
    form = {"grant_type": grant_type}
    headers = {}
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    else:
        form |= {"client_id": client_id, "client_secret": secret}
    return await stack.clients["results"].post("/oauth/token", data=form, headers=headers)


async def sis_headers(stack: Stack, zone_id: str, schools: list[str], name: str = "SIS") -> dict[str, str]:
    """A bearer token from /oauth/token for a new client acting for `schools`."""
    client = (await register_client(stack, zone_id, schools, name)).json()
    token = (await token_response(stack, client["client_id"], client["client_secret"])).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


async def post_edfi(stack: Stack, resource: str, body: dict, headers: dict[str, str]) -> httpx.Response:
    return await stack.clients["results"].post(f"{EDFI}/{resource}", json=body, headers=headers)


_ZONE_ROWS = {
    "student_results": "SELECT count(*) FROM results.student_results WHERE zone_id = :z",
    "enrollments": "SELECT count(*) FROM results.enrollments WHERE zone_id = :z",
    "oauth_clients": "SELECT count(*) FROM results.oauth_clients WHERE zone_id = :z",
    "outbox": "SELECT count(*) FROM results.outbox WHERE payload->>'zone_id' = :z AND ce_type = 'org.ezone.results.results.posted.v1'",
    "audit_log": "SELECT count(*) FROM results.audit_log WHERE zone_id = :z",
    "contents": """SELECT md5(concat_ws('|',
        (SELECT string_agg(r::text, ',' ORDER BY id) FROM results.student_results r WHERE zone_id = :z),
        (SELECT string_agg(e::text, ',' ORDER BY id) FROM results.enrollments e WHERE zone_id = :z)))""",
}


async def footprint(stack: Stack, zone_id: str) -> dict[str, object]:
    """Every row results keeps about a zone's data in, and a digest of the rows: a refused or repeated request leaves it."""
    return {name: await scalar(stack, sql, z=zone_id) for name, sql in _ZONE_ROWS.items()}


# --- the Ed-Fi sample files (Grand Bend, Data Standard 5.2 XML) as the JSON an Ed-Fi API takes ---------------

_NS = "{http://ed-fi.org/5.2.0}"


def _camel(tag: str) -> str:
    name = tag.removeprefix(_NS)
    return name[0].lower() + name[1:]


def _score_results(element) -> list[dict]:  # noqa: ANN001 - an ElementTree element
    return [{"assessmentReportingMethodDescriptor": s.findtext(f"{_NS}AssessmentReportingMethod"),
             "resultDatatypeTypeDescriptor": s.findtext(f"{_NS}ResultDatatypeType"), "result": s.findtext(f"{_NS}Result")}
            for s in element.findall(f"{_NS}ScoreResult")]


def _performance_levels(element) -> list[dict]:  # noqa: ANN001
    return [{"assessmentReportingMethodDescriptor": p.findtext(f"{_NS}AssessmentReportingMethod"),
             "performanceLevelDescriptor": p.findtext(f"{_NS}PerformanceLevel")}
            for p in element.findall(f"{_NS}PerformanceLevel")]


def _assessment_reference(element) -> dict:  # noqa: ANN001
    identity = element.find(f"{_NS}AssessmentReference/{_NS}AssessmentIdentity")
    return {"assessmentIdentifier": identity.findtext(f"{_NS}AssessmentIdentifier"), "namespace": identity.findtext(f"{_NS}Namespace")}


def student_assessment_json(element) -> dict:  # noqa: ANN001 - a <StudentAssessment>
    """The Ed-Fi API's JSON for an interchange <StudentAssessment>: simple elements in camelCase (descriptors get the
    `Descriptor` suffix, e.g. AdministrationLanguage → administrationLanguageDescriptor), references as objects."""
    body: dict = {}
    for child in element:
        if len(child) == 0 and child.text and child.text.strip():
            name = _camel(child.tag)
            body[name + "Descriptor" if child.text.startswith("uri://") else name] = child.text.strip()
    body.pop("schoolYear", None)
    body |= {
        "assessmentReference": _assessment_reference(element),
        "studentReference": {"studentUniqueId": element.findtext(f"{_NS}StudentReference/{_NS}StudentIdentity/{_NS}StudentUniqueId")},
        # The interchange writes `2021-2022`; the API names a school year by the year it ends.
        "schoolYearTypeReference": {"schoolYear": int(element.findtext(f"{_NS}SchoolYear").split("-")[-1])},
        "scoreResults": _score_results(element),
        "performanceLevels": _performance_levels(element),
        "studentObjectiveAssessments": [
            {"objectiveAssessmentReference": {
                "identificationCode": o.findtext(f"{_NS}ObjectiveAssessmentReference/{_NS}ObjectiveAssessmentIdentity/{_NS}IdentificationCode"),
                **_assessment_reference(o.find(f"{_NS}ObjectiveAssessmentReference/{_NS}ObjectiveAssessmentIdentity"))},
             "scoreResults": _score_results(o), "performanceLevels": _performance_levels(o)}
            for o in element.findall(f"{_NS}StudentObjectiveAssessment")
        ],
    }
    return body


def assessment_subjects(paths) -> dict[tuple[str, str], str]:  # noqa: ANN001 - AssessmentMetadata-*.xml files
    """(assessmentIdentifier, namespace) → its AcademicSubjectDescriptor, from the assessments' metadata."""
    return {(a.findtext(f"{_NS}AssessmentIdentifier"), a.findtext(f"{_NS}Namespace")): a.findtext(f"{_NS}AcademicSubject")
            for path in paths for a in ET.parse(path).getroot().findall(f"{_NS}Assessment")}
