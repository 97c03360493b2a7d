"""Zone A's callers, of every role, and forged tokens, against every operation of the four services' OpenAPI
documents, aimed at zone B's resources: nothing of B is read or changed.

The operations come from each service's live /openapi.json (the Ed-Fi data routes are in results' own), so a new
route is probed as soon as it exists. Path parameters name zone B's own resources; a parameter this module does not
know fails the test until it is added to PATH_VALUES. Operations that name no zone are listed, each with its reason,
in ZONELESS: they answer for the token's own zone (or for no zone at all), and must show nothing of B either.

Each request goes with a query and body drawn from its schema, or from BODIES where the schema does not say every
rule: valid, so that it gets past validation to the zone check; their fields naming a zone, school, partner... name
B's. B's own callers must be able to read each of B's resources the probe reads, so that no probe is aimed at nothing.
What counts as a leak: a 2xx or 5xx answer to A (or a forged token) about B's resources, a forged token not answered
401, an answer to A about B's resources other than about resources that do not exist (it would tell that they do),
any answer holding one of B's values that no request sent (its school's name, its plan's text, its students' ids...),
and any change to B's rows.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import hypothesis
import httpx
import jwt
import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric import ec
from ezone_kit.auth import ROLES, sign_token, token_claims
from ezone_kit.devkeys import DEV_ISSUER, JWKS_FILE, mint_token
from ezone_schemas import ReviewCompleted
from ezone_schemas.results import SubgroupMetrics
from schemathesis.generation import GenerationMode
from sqlalchemy import text

from ezone.services import SERVICES
from ezone.stack import wait_for
from tests.events import publish_as
from tests.helpers import register_school, register_zone, school_code, wait_for_count
from tests.integration.catalog.support import CatalogZone, service_body, vetting_body
from tests.integration.plans.plan_helpers import YEAR as PLAN_YEAR, plan_body, plan_school
from tests.integration.results.edfi_support import DATA as EDFI_DATA, state_math_assessment
from tests.results_data import student_id, student_results
from tests.stack import Stack

# Bodies are drawn while the services run on the event loop, whose broker clients use `random`.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")

CONCURRENCY = 8
# A call that has not answered by then is taken for an event stream that was opened: a leak.
CALL_TIMEOUT_S = 10.0
STUDENTS = 6

# Path parameter -> the key of B's value in Tenant.values; "segment/{param}" when the segment before it decides.
PATH_VALUES = {
    "zone_id": "zone_id",
    "school_id": "school_id",
    "school_year": "school_year",
    "plan_id": "plan_id",
    "versions/{version}": "policy_version",
    "board-members/{member_id}": "board_member_id",
    "leadership/{member_id}": "leader_id",
    "batch_id": "batch_id",
    "service_id": "service_id",
    "partner_id": "partner_id",
    "order_id": "order_id",
    "alert-rules/{name}": "rule_name",
    "alert_id": "alert_id",
    "endpoint_id": "endpoint_id",
    "ed-fi/{name}": "edfi_resource",
    "item_id": "edfi_item_id",
    "v3/{kind}": "edfi_kind",
    "student-groups/{code}": "student_group",
}
# Values that name a kind of thing, not one of B's: an operation with only these names no zone.
NOT_B = {"edfi_resource", "edfi_kind", "school_year", "student_group", "subject"}

# (method, path) of the operations that name no zone -> (public: answers without a token, why it names no zone).
ZONELESS: dict[tuple[str, str], tuple[bool, str]] = {
    ("GET", "/healthz"): (True, "liveness: says the process runs, nothing else"),
    ("GET", "/readyz"): (True, "readiness: the state of the database and broker, no zone's data"),
    ("GET", "/ed-fi"): (True, "Ed-Fi discovery: the URLs of the API, public as in the ODS/API"),
    ("GET", "/ed-fi/metadata"): (True, "Ed-Fi metadata index: URLs of the API's documents"),
    ("GET", "/ed-fi/metadata/data/v3/dependencies"): (True, "the order of Ed-Fi resources, the same for every zone"),
    ("GET", "/ed-fi/metadata/data/v3/{kind}/swagger.json"): (True, "the Ed-Fi OpenAPI, the same for every zone"),
    ("POST", "/oauth/token"): (True, "client credentials for a token: the client's secret is the credential"),
    ("GET", "/ed-fi/changeQueries/v1/availableChangeVersions"): (False, "Ed-Fi: the token's zone's change versions"),
    ("GET", "/ed-fi/data/v3/ed-fi/{name}"): (False, "Ed-Fi: lists the token's zone's items"),
    ("POST", "/ed-fi/data/v3/ed-fi/{name}"): (False, "Ed-Fi: writes into the token's zone"),
    ("GET", "/ed-fi/data/v3/ed-fi/{name}/deletes"): (False, "Ed-Fi: the token's zone's deleted items"),
    ("POST", "/zones"): (False, "registers the zone its body names, for an admin token of that zone only"),
    ("POST", "/state-aggregates/mcas"): (False, "deployment-wide: the `state` role loads every school's state figures"),
    ("GET", "/student-groups"): (False, "deployment-wide: the student groups every zone's results may name"),
    ("POST", "/student-groups"): (False, "deployment-wide: the `state` role adds to the student groups"),
    ("POST", "/student-groups/{code}/labels"): (False, "deployment-wide: the `state` role names a group as files do"),
}
# Query parameters and body fields that name a resource get B's (the body of POST /zones names its zone as `id`).
FIELD_VALUES = {"zone_id": "zone_id", "school_id": "school_id", "service_id": "service_id", "partner_id": "partner_id",
                "order_id": "order_id", "plan_id": "plan_id", "school_year": "school_year", "subject": "subject"}
BODY_OVERRIDES = {("POST", "/zones"): {"id": "zone_id"}}
# A zone-less write whose body is not aimed at B is sent empty: valid, it would change what every zone shares.
EMPTY_BODY: dict = {}
# Valid bodies of the writes whose schema does not say all their rules (a drawn body would stop at validation, before
# the zone is looked at); none holds a value of B's.
BODIES = {
    ("POST", "/zones/{zone_id}/schools"): lambda: {"code": school_code(), "name": "Probe Middle", "grade_span": "6-8",
                                                   "enrollment": 300},
    ("POST", "/zones/{zone_id}/services"): service_body,
    ("POST", "/zones/{zone_id}/partners/{partner_id}/vettings"): vetting_body,
    ("POST", "/zones/{zone_id}/webhooks"): lambda: {"url": "https://hooks.example.org/probe", "description": "Probe"},
    ("PUT", "/zones/{zone_id}/alert-rules/{name}"): lambda: {"event_type": "order.rejected", "severity": "info",
                                                             "audiences": ["school_team"]},
    ("PUT", "/zones/{zone_id}/members/me/preferences"): lambda: {
        "timezone": "America/New_York", "channels": {"critical": ["email"], "warning": [], "info": []},
        "email": "probe@example.org"},
    ("PUT", "/ed-fi/data/v3/ed-fi/{name}/{item_id}"): state_math_assessment,
}


@dataclass
class Tenant:
    """Zone B: what names its resources, and its values no request of the probe sends."""

    zone_id: str
    values: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Operation:
    service: str
    method: str
    path: str
    parameters: tuple[str, ...]
    streams: bool
    drawn: schemathesis.Case | None  # a valid request, drawn from its schema

    @property
    def label(self) -> str:
        return f"{self.service} {self.method} {self.path}"


@dataclass(frozen=True)
class Caller:
    name: str
    headers: dict[str, str]
    forged: bool


async def _zone_b(stack: Stack, zone_id: str) -> Tenant:
    """Zone B with one of everything: a school, its leadership, a submitted plan, results and an Ed-Fi item, an
    OAuth client, a partner, a service and an order, an alert, an alert rule, preferences and a webhook."""
    tag = uuid.uuid4().hex[:10]
    b = Tenant(zone_id)
    secrets = {"school": f"Quietwater Academy {tag}", "plan": f"Confidential narrative {tag}",
               "leader": f"Principal {tag}", "client": f"SIS client {tag}", "partner": f"Partner {tag}",
               "service": f"Service {tag}", "webhook": f"https://hooks.example.org/{tag}", "assessment": f"Exam {tag}"}
    school = {"code": school_code(), "name": secrets["school"], "grade_span": "6-8", "enrollment": 400}
    planned = await plan_school(stack, zone_id, school=school)
    school_id = planned.school_id
    district, admin = stack.auth("district", zone_id), stack.auth("admin", zone_id)
    b.values |= {"zone_id": zone_id, "school_id": school_id, "school_year": PLAN_YEAR, "policy_version": "1",
                 "edfi_resource": "assessments", "edfi_kind": "resources", "student_group": "all_students",
                 "subject": "MATH"}

    async def call(service: str, method: str, path: str, headers: dict[str, str], expected: int = 201,
                   **kwargs: object) -> dict:
        response = await stack.clients[service].request(method, path, headers=headers, **kwargs)
        assert response.status_code == expected, (method, path, response.text)
        return response.json()

    z = f"/zones/{zone_id}"
    b.values["board_member_id"] = (await call("plans", "GET", f"{z}/board-members", admin, 200))[0]["id"]
    b.values["leader_id"] = (await call("plans", "POST", f"{z}/schools/{school_id}/leadership", district, json={
        "name": secrets["leader"], "subject": f"principal@{zone_id}", "role": "principal"}))["id"]
    body = plan_body()
    body["levers"]["curriculum"]["narrative"] = secrets["plan"]
    b.values["plan_id"] = (await call("plans", "POST", f"{z}/schools/{school_id}/plans", planned.team(),
                                      json=body))["id"]
    submitted = await planned.submit()
    assert submitted.status_code == 200, submitted.text

    for schema in ("results", "catalog", "notifications"):
        await wait_for_count(stack, f"SELECT count(*) FROM {schema}.schools WHERE zone_id = :z", 1, z=zone_id)
    rows = student_results([school_id], students_per_school=STUDENTS, school_year=PLAN_YEAR, subject="MATH")
    sis = stack.auth("sis", zone_id, [school_id])
    b.values["batch_id"] = (await call("results", "POST", f"{z}/results", {**sis, "Idempotency-Key": tag},
                                       json={"rows": rows}))["batch_id"]
    b.secrets += sorted({student_id(school_id, index) for index in range(STUDENTS)})
    # Its review, for the reads of reviews to find.
    await wait_for_count(stack, "SELECT count(*) > 0 FROM results.reviews WHERE school_id = :s", True, s=school_id)
    b.values["edfi_item_id"] = (await stack.clients["results"].post(
        f"{EDFI_DATA}/assessments", json=state_math_assessment(assessmentTitle=secrets["assessment"]),
        headers=district)).headers["location"].rsplit("/", 1)[1]
    await call("results", "POST", f"{z}/oauth-clients", admin, json={"name": secrets["client"], "schools": [school_id]})

    catalog = CatalogZone(stack, zone_id, [school_id])
    b.values["partner_id"] = await catalog.add_partner(secrets["partner"])
    b.values["service_id"] = (await catalog.add_service(name=secrets["service"]))["id"]
    await catalog.approve_plan("10000.00")
    b.values["order_id"] = (await catalog.placed(b.values["service_id"], 10))["id"]

    review = ReviewCompleted(
        review_id=uuid.uuid4(), zone_id=zone_id, school_id=school_id, school_year=PLAN_YEAR, subject="MATH", version=1,
        status="off_track", metrics=[SubgroupMetrics(subgroup="all_students", n_tested=91, proficiency_rate=18.0)],
        completed_at=datetime.now(UTC))
    [event_id] = await publish_as(stack, review, source="/ezone/results")
    alerts = "SELECT id FROM notifications.alerts WHERE source_event_id = :e AND recipient = :r"
    board_member = planned.board[0]

    async def alerted() -> bool:
        async with stack.kits["notifications"].engine.connect() as conn:
            found = (await conn.execute(text(alerts), {"e": event_id, "r": board_member})).scalar()
        if found is not None:
            b.values["alert_id"] = str(found)
        return found is not None

    await wait_for(alerted, 20, what="zone B's alert")
    b.values["rule_name"] = "orders"
    await call("notifications", "PUT", f"{z}/alert-rules/orders", district,
               json={"event_type": "order.rejected", "severity": "info", "audiences": ["school_team"]})
    await call("notifications", "PUT", f"{z}/members/me/preferences", district, 200, json={
        "timezone": "America/New_York", "channels": {"critical": ["email"], "warning": [], "info": []},
        "email": f"district-{tag}@springfield.example"})
    b.values["endpoint_id"] = (await call("notifications", "POST", f"{z}/webhooks", district,
                                          json={"url": secrets["webhook"], "description": "B's SIS"}))["id"]
    b.values["board_subject"] = board_member
    b.secrets += [*secrets.values(), f"district-{tag}@springfield.example"]
    return b


def _ghost(b: Tenant, zone: bool) -> Tenant:
    """B's values, each of B's own (but its zone id unless `zone`) replaced by one of its shape that names nothing."""
    def nothing(key: str, value: str) -> str:
        if key in NOT_B or (key == "zone_id" and not zone):
            return value
        if key == "zone_id":
            return f"{value}-ghost"
        try:
            uuid.UUID(value)
        except ValueError:
            return "987654" if value.isdigit() else f"ghost-{uuid.uuid4().hex[:8]}"
        return str(uuid.uuid4())

    return Tenant(f"{b.zone_id}-ghost", {key: nothing(key, value) for key, value in b.values.items()})


def _callers(stack: Stack, zone_a: str, school_a: str, b: Tenant) -> list[Caller]:
    """A's tokens of every role (acting for B's school, partner and board seat too, as a careless or hostile
    identity provider of A's could issue them), then tokens for B that B's zone never issued."""
    school_b = b.values["school_id"]
    callers = [Caller(f"A's {role}", {"Authorization": "Bearer " + stack.token(
        role, zone_a, [school_a, school_b], subject=b.values["board_subject"],
        partner_id=b.values["partner_id"] if role == "partner" else None)}, forged=False) for role in ROLES]

    def b_claims(**changes: object) -> dict:
        return token_claims(role="admin", zone=b.zone_id, schools=[school_b], subject="dev-admin", ttl_seconds=3600,
                            audience="ezone", issuer=DEV_ISSUER) | changes

    kid = json.loads((stack.key_dir / JWKS_FILE).read_text())["keys"][0]["kid"]
    stranger = ec.generate_private_key(ec.SECP256R1())
    unsigned = ".".join(base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
                        for part in ({"alg": "none", "typ": "JWT", "kid": kid}, b_claims())) + "."
    head, _, signature = stack.token("admin", zone_a).split(".")
    swapped = base64.urlsafe_b64encode(json.dumps(b_claims()).encode()).rstrip(b"=").decode()
    forged = {
        "no token": None,
        "alg none": unsigned,
        "B's claims under A's signature": f"{head}.{swapped}.{signature}",
        "signed by a stranger under the zone's key id": sign_token(stranger, kid, b_claims()),
        "signed by a key the zone does not know": sign_token(stranger, "stranger", b_claims()),
        "expired": mint_token(stack.key_dir, role="admin", zone=b.zone_id, schools=[school_b], ttl_seconds=-3600),
        "for another audience": mint_token(stack.key_dir, role="admin", zone=b.zone_id, audience="elsewhere"),
        "HS256, a shared-secret algorithm": jwt.encode(b_claims(), kid * 4, algorithm="HS256", headers={"kid": kid}),
    }
    return callers + [Caller(f"forged: {name}", {"Authorization": f"Bearer {token}"} if token else {}, forged=True)
                      for name, token in forged.items()]


def _value_key(path: str, parameter: str) -> str:
    before = re.search(r"([^/{}]+)/\{" + re.escape(parameter) + r"\}", path)
    if before is not None and f"{before.group(1)}/{{{parameter}}}" in PATH_VALUES:
        return PATH_VALUES[f"{before.group(1)}/{{{parameter}}}"]
    if parameter in PATH_VALUES:
        return PATH_VALUES[parameter]
    pytest.fail(f"The path parameter {parameter!r} of {path} is not in PATH_VALUES: add it, naming one of zone B's "
                f"resources (and make B have one in _zone_b), so the probe aims this route at zone B.")


def _drawn(operation: schemathesis.APIOperation) -> schemathesis.Case | None:
    """The first valid request Hypothesis draws (None when the schema gives none): its query and body get past
    validation, to the handler's own checks."""
    drawn: list[schemathesis.Case] = []

    @hypothesis.seed(18)
    @hypothesis.settings(max_examples=1, derandomize=True, database=None, deadline=None,
                         suppress_health_check=list(hypothesis.HealthCheck), phases=[hypothesis.Phase.generate])
    @hypothesis.given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def draw(case: schemathesis.Case) -> None:
        drawn.append(case)

    try:
        draw()
    except hypothesis.errors.Unsatisfiable:
        return None
    return drawn[0] if drawn else None


def _operations(service: str, document: dict) -> list[Operation]:
    operations = []
    for result in schemathesis.openapi.from_dict(document).get_all_operations():
        operation = result.ok()
        raw = operation.definition.raw
        streams = any("text/event-stream" in response.get("content", {})
                      for response in raw.get("responses", {}).values())
        method = operation.method.upper()
        operations.append(Operation(service, method, operation.path,
                                    tuple(parameter.name for parameter in operation.path_parameters), streams,
                                    _drawn(operation)))
    return operations


def _with_b(values: object, names: dict[str, str], b: Tenant) -> object:
    if not isinstance(values, dict):
        return values
    return {key: b.values[names[key]] if key in names else value for key, value in values.items()}


def _request(operation: Operation, b: Tenant, zoneless: bool) -> dict:
    """The method, URL, headers and body of the operation aimed at B."""
    url = operation.path
    for parameter in operation.parameters:
        url = url.replace(f"{{{parameter}}}", b.values[_value_key(operation.path, parameter)])
    request: dict = {"method": operation.method, "url": url, "headers": {}}
    case = operation.drawn
    if case is None:
        return request
    if zoneless and operation.method != "GET" and (operation.method, operation.path) not in BODY_OVERRIDES:
        return request | {"json": EMPTY_BODY}
    request["headers"] = {key: str(value) for key, value in (case.headers or {}).items()}
    request["params"] = _with_b(case.query, FIELD_VALUES, b)
    known = BODIES.get((operation.method, operation.path))
    body = _with_b(known() if known else case.body,
                   FIELD_VALUES | BODY_OVERRIDES.get((operation.method, operation.path), {}), b)
    if case.media_type == "application/x-www-form-urlencoded" and isinstance(body, dict):
        request["data"] = body
    elif case.media_type and "json" in case.media_type:
        request["json"] = body
    elif isinstance(body, (str, bytes)):
        request["content"] = body
        request["headers"]["Content-Type"] = case.media_type
    return request


def _judged(operation: Operation, caller: Caller, response: httpx.Response | None, b: Tenant,
            names_b: bool, ghost: httpx.Response | None) -> str | None:
    """What leaked, or None. `ghost`: the answer to the same call about resources that do not exist."""
    if response is None:
        return f"no answer in {CALL_TIMEOUT_S:.0f} s (an event stream opened?)"
    public, _ = ZONELESS.get((operation.method, operation.path), (False, ""))
    status = response.status_code
    if status >= 500:
        return f"{status}: {response.text[:300]}"
    if caller.forged and not public and status != 401:
        return f"{status} to a forged token (401 expected): {response.text[:300]}"
    if names_b and 200 <= status < 300:
        return f"{status} on zone B's resource: {response.text[:300]}"
    if ghost is not None and ghost.status_code != status:
        return f"{status}, but {ghost.status_code} about resources that do not exist: {response.text[:300]}"
    seen = response.text + " " + " ".join(response.headers.values())
    if leaked := [secret for secret in b.secrets if secret in seen]:
        return f"{status} shows B's {leaked}: {response.text[:300]}"
    return None


async def _footprint(stack: Stack, zone_id: str) -> dict[str, tuple[int, str]]:
    """Every row of every table that holds a zone id, for zone B (count and digest), and B's outbox events."""
    schemas = ["plans", "results", "catalog", "notifications"]
    async with stack.kits["plans"].engine.connect() as conn:
        tables = (await conn.execute(text(
            "SELECT table_schema, table_name FROM information_schema.columns WHERE column_name = 'zone_id' "
            "AND table_schema = ANY(:schemas) ORDER BY 1, 2"), {"schemas": schemas})).all()
        footprint = {}
        for schema, table in tables:
            footprint[f"{schema}.{table}"] = tuple((await conn.execute(text(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                f"FROM {schema}.{table} t WHERE zone_id = :z"), {"z": zone_id})).one())
        for schema in schemas:
            footprint[f"{schema}.outbox"] = ((await conn.execute(text(
                f"SELECT count(*) FROM {schema}.outbox WHERE payload->>'zone_id' = :z"), {"z": zone_id})).scalar(), "")
    return footprint


async def _settled_footprint(stack: Stack, zone_id: str) -> dict[str, tuple[int, str]]:
    """B's footprint once its events have all been handled (the same twice, two seconds apart)."""
    seen = [await _footprint(stack, zone_id)]

    async def steady() -> bool:
        await asyncio.sleep(2.0)
        seen.append(await _footprint(stack, zone_id))
        return seen[-1] == seen[-2]

    await wait_for(steady, 60, what="zone B's rows to settle")
    return seen[-1]


async def _answer(stack: Stack, operation: Operation, request: dict) -> httpx.Response | None:
    try:
        return await asyncio.wait_for(stack.clients[operation.service].request(**request), CALL_TIMEOUT_S)
    except TimeoutError:
        return None


async def _unread_by_b(stack: Stack, operations: list[Operation], b: Tenant, semaphore: asyncio.Semaphore) -> list[str]:
    """The reads of B's resources that none of B's own callers gets a 200 from: a probe of them would prove
    nothing (the value the probe puts in their path names nothing of B's)."""
    school_b = b.values["school_id"]
    own = [{"Authorization": "Bearer " + stack.token(
        role, b.zone_id, [school_b], subject=b.values["board_subject"] if role == "board" else None,
        partner_id=b.values["partner_id"] if role == "partner" else None)} for role in ROLES]

    async def unread(operation: Operation) -> str | None:
        for headers in own:
            request = _request(operation, b, zoneless=False) | {"headers": headers}
            async with semaphore:
                response = await _answer(stack, operation, request)
            if response is not None and response.status_code == 200:
                return None
        return operation.label

    reads = [o for o in operations if o.method == "GET" and not o.streams]
    return [label for label in await asyncio.gather(*map(unread, reads)) if label]


async def test_no_caller_of_another_zone_and_no_forged_token_reads_or_changes_anything_of_a_zone_on_any_route(
    zone_stack, zone_id
):
    zone_a = f"{zone_id}-a"
    await register_zone(zone_stack, zone_a)
    school_a = (await register_school(zone_stack, zone_a))["id"]
    b = await _zone_b(zone_stack, f"{zone_id}-b")
    callers = _callers(zone_stack, zone_a, school_a, b)
    operations = []
    for entry in SERVICES:
        document = (await zone_stack.clients[entry.name].get("/openapi.json")).json()
        operations += await asyncio.to_thread(_operations, entry.name, document)
    zoneless = {(o.method, o.path) for o in operations
                if not {_value_key(o.path, parameter) for parameter in o.parameters} - NOT_B}
    assert zoneless <= set(ZONELESS), (
        f"Operations that name none of a zone's resources: {sorted(zoneless - set(ZONELESS))}. List each in ZONELESS "
        "with the reason it is public or answers for the token's own zone only.")
    semaphore = asyncio.Semaphore(CONCURRENCY)
    aimed = [o for o in operations if (o.method, o.path) not in zoneless]
    assert await _unread_by_b(zone_stack, aimed, b, semaphore) == []
    before = await _settled_footprint(zone_stack, b.zone_id)

    statuses: Counter[int] = Counter()

    # Where a resource of B's is named, one B does not have; where only B is, a zone that does not exist.
    ghosts = {True: _ghost(b, zone=True), False: _ghost(b, zone=False)}

    async def probe(operation: Operation, caller: Caller) -> str | None:
        names_b = (operation.method, operation.path) not in zoneless
        ghost = ghosts[{_value_key(operation.path, parameter) for parameter in operation.parameters} - NOT_B
                       == {"zone_id"}]
        answers = []
        for tenant in (b, ghost) if names_b and not caller.forged else (b,):
            request = _request(operation, tenant, zoneless=not names_b)
            request["headers"] |= caller.headers
            async with semaphore:
                answers.append(await _answer(zone_stack, operation, request))
            statuses[answers[-1].status_code if answers[-1] is not None else 0] += 1
        response, ghostly = answers[0], answers[1] if len(answers) > 1 else None
        if (leak := _judged(operation, caller, response, b, names_b, ghostly)) is not None:
            return f"{operation.label} as {caller.name}: {leak}"
        return None

    leaks = [leak for leak in await asyncio.gather(*(probe(o, c) for o in operations for c in callers)) if leak]
    after = await _settled_footprint(zone_stack, b.zone_id)

    print(f"\ncross-tenant probe: {sum(statuses.values())} requests, {len(operations)} operations x {len(callers)} "
          f"callers; answers {dict(sorted(statuses.items()))}")
    assert not leaks, f"{len(leaks)} leak(s):\n" + "\n".join(sorted(leaks))
    assert {table: rows for table, rows in after.items() if before.get(table) != rows} == {}
