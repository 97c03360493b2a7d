"""The token matrix: who may call what, proved against real endpoints of plans and of the projecting services."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ezone_kit.devkeys import DEV_ISSUER, JWKS_FILE, PRIVATE_KEY_FILE, ensure_dev_keys, mint_token

from tests.helpers import register_school, register_zone, scalar, school_code, wait_for_count
from tests.stack import Stack

SERVICES = ("plans", "results", "services-catalog", "notifications")
PROJECTION_SCHEMAS = {"results": "results", "services-catalog": "catalog", "notifications": "notifications"}


def new_school() -> dict:
    """Brightwood Elementary, under a code of its own: a state school code belongs to one zone at a time."""
    return {"code": school_code(), "name": "Brightwood Elementary", "grade_span": "K-5", "enrollment": 420}


@dataclass(frozen=True)
class Call:
    service: str
    method: str
    path: str  # `{zone}` and `{school}` are filled in by `send`
    json: Callable[[], dict] | None = None  # a new body for each request

    def __str__(self) -> str:
        return f"{self.method} {self.service}{self.path}"


SCHOOL_READ = Call("plans", "GET", "/zones/{zone}/schools/{school}")
SCHOOL_REGISTRATION = Call("plans", "POST", "/zones/{zone}/schools", new_school)
SCHOOL_LISTS = tuple(Call(service, "GET", "/zones/{zone}/schools") for service in SERVICES)
GUARDED_CALLS = (SCHOOL_READ, SCHOOL_REGISTRATION, *SCHOOL_LISTS)


async def send(stack: Stack, call: Call, school: dict, headers: dict[str, str]) -> httpx.Response:
    path = call.path.format(zone=school["zone_id"], school=school["id"])
    return await stack.clients[call.service].request(call.method, path, json=call.json and call.json(), headers=headers)


async def schools_in(stack: Stack, zone: str) -> int:
    return await scalar(stack, "SELECT count(*) FROM plans.schools WHERE zone_id = :z", z=zone)


async def wait_until_projected(stack: Stack, zone: str, count: int) -> None:
    for schema in PROJECTION_SCHEMAS.values():
        await wait_for_count(stack, f"SELECT count(*) FROM {schema}.schools WHERE zone_id = :z", count, z=zone)


def new_zone_id() -> str:
    return f"z-{uuid.uuid4().hex[:12]}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, where: object = "") -> dict:
    assert response.status_code == status, f"{where}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/problem+json", where
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys(), where
    assert body["status"] == status, where
    return body


def assert_unauthorized(response: httpx.Response, mentioning: str | None, where: object) -> None:
    body = assert_problem(response, 401, where)
    challenge = response.headers["www-authenticate"]
    # RFC 6750 §3.1: an error code only when credentials were sent.
    assert challenge == "Bearer" or challenge.startswith('Bearer error="invalid_token"'), f"{where}: {challenge}"
    if mentioning:
        assert mentioning in body["detail"].lower(), f"{where}: {body['detail']!r} should mention {mentioning!r}"


async def assert_rejected_everywhere(stack: Stack, school: dict, headers: dict[str, str], mentioning: str | None = None) -> None:
    """Every guarded call answers 401, and the rejected registration stored nothing."""
    for call in GUARDED_CALLS:
        assert_unauthorized(await send(stack, call, school, headers), mentioning, where=call)
    assert await schools_in(stack, school["zone_id"]) == 1


def assert_reveals_nothing_about(response: httpx.Response, school: dict, where: object) -> None:
    body = response.json()
    # `instance` echoes the caller's own request path (RFC 9457); nothing else may name the school.
    body.pop("instance", None)
    text = json.dumps(body)
    for secret in (school["name"], school["code"], school["id"]):
        assert secret not in text, f"{where} leaks {secret!r}: {text}"


# Tokens an attacker or a misconfigured client could send, built around the trusted dev key.


def trusted_jwk(key_dir: Path) -> dict:
    return json.loads((key_dir / JWKS_FILE).read_text())["keys"][0]


def trusted_private_key(key_dir: Path) -> ec.EllipticCurvePrivateKey:
    return serialization.load_pem_private_key((key_dir / PRIVATE_KEY_FILE).read_bytes(), password=None)


def claims_for(zone: str, /, *, without: tuple[str, ...] = (), **changes: object) -> dict:
    """The claims `mint_token` would issue to a zone admin, with some changed or left out."""
    now = int(time.time())
    claims = {
        "iss": DEV_ISSUER, "aud": "ezone", "sub": "dev-admin", "iat": now, "nbf": now, "exp": now + 600,
        "jti": uuid.uuid4().hex, "role": "admin", "zone": zone, "schools": [], **changes,
    }
    return {name: value for name, value in claims.items() if name not in without}


def signed_by_trusted_key(key_dir: Path, claims: dict) -> str:
    return jwt.encode(claims, trusted_private_key(key_dir), algorithm="ES256", headers={"kid": trusted_jwk(key_dir)["kid"]})


def b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def hs256_token(claims: dict, secret: bytes, kid: str) -> str:
    """HS256 by hand: PyJWT refuses a PEM public key as an HMAC secret, an attacker does not."""
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    signing_input = b".".join(b64url(json.dumps(part).encode()) for part in (header, claims))
    return (signing_input + b"." + b64url(hmac.new(secret, signing_input, hashlib.sha256).digest())).decode()


@pytest.fixture
async def duggan(zone_stack, zone_id) -> dict:
    """A registered school, already in every projection, for the token tests to aim at."""
    await register_zone(zone_stack, zone_id)
    school = await register_school(zone_stack, zone_id)
    await wait_until_projected(zone_stack, zone_id, 1)
    return school


async def test_admin_token_of_the_zone_reaches_every_guarded_call(zone_stack, duggan):
    """The control for the matrix below: the same calls with a good token succeed."""
    admin = zone_stack.auth("admin", duggan["zone_id"])
    for call in (SCHOOL_READ, *SCHOOL_LISTS):
        response = await send(zone_stack, call, duggan, admin)
        assert response.status_code == 200, f"{call}: {response.text}"
        assert duggan["name"] in response.text, call
    response = await send(zone_stack, SCHOOL_REGISTRATION, duggan, admin)
    assert response.status_code == 201, response.text


async def test_request_without_a_token_is_401_problem_details_with_a_bearer_challenge(zone_stack, duggan):
    await assert_rejected_everywhere(zone_stack, duggan, headers={}, mentioning="bearer token")


async def test_basic_credentials_are_401(zone_stack, duggan):
    basic = base64.b64encode(b"admin:admin").decode()
    await assert_rejected_everywhere(zone_stack, duggan, headers={"Authorization": f"Basic {basic}"}, mentioning="bearer token")


@pytest.mark.parametrize(
    "token",
    ["not-a-jwt", "a.b.c", "W10.e30.", "eyJhbGciOiJFUzI1NiJ9.e30"],
    ids=["no-dots", "not-base64", "header-not-an-object", "two-segments"],
)
async def test_malformed_token_is_401(zone_stack, duggan, token):
    await assert_rejected_everywhere(zone_stack, duggan, headers=bearer(token), mentioning="well-formed")


async def test_token_signed_by_an_untrusted_key_is_401(zone_stack, duggan, tmp_path):
    ensure_dev_keys(tmp_path)
    token = mint_token(tmp_path, role="admin", zone=duggan["zone_id"])
    await assert_rejected_everywhere(zone_stack, duggan, headers=bearer(token), mentioning="does not trust")


async def test_token_naming_the_trusted_key_but_signed_by_another_is_401_naming_the_signature(zone_stack, key_dir, duggan):
    impostor_key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(claims_for(duggan["zone_id"]), impostor_key, algorithm="ES256", headers={"kid": trusted_jwk(key_dir)["kid"]})
    await assert_rejected_everywhere(zone_stack, duggan, headers=bearer(token), mentioning="signature")


async def test_expired_token_is_401_naming_the_expiry(zone_stack, duggan):
    token = zone_stack.token("admin", duggan["zone_id"], ttl_seconds=-300)
    await assert_rejected_everywhere(zone_stack, duggan, headers=bearer(token), mentioning="expired")


async def test_token_for_another_audience_is_401(zone_stack, duggan):
    token = zone_stack.token("admin", duggan["zone_id"], audience="another-api")
    await assert_rejected_everywhere(zone_stack, duggan, headers=bearer(token), mentioning="audience")


@pytest.mark.parametrize(
    ("without", "changes", "mentioning"),
    [
        (("role",), {}, "role"),
        (("zone",), {}, "zone"),
        ((), {"role": "superuser"}, "role"),
        ((), {"zone": ""}, "zone"),
        (("exp",), {}, "exp"),
        (("sub",), {}, "sub"),
    ],
    ids=["no-role", "no-zone", "unknown-role", "empty-zone", "no-expiry", "no-subject"],
)
async def test_validly_signed_token_missing_a_required_claim_is_401(zone_stack, key_dir, duggan, without, changes, mentioning):
    token = signed_by_trusted_key(key_dir, claims_for(duggan["zone_id"], without=without, **changes))
    await assert_rejected_everywhere(zone_stack, duggan, headers=bearer(token), mentioning=mentioning)


async def test_unsigned_alg_none_token_is_401(zone_stack, key_dir, duggan):
    token = jwt.encode(claims_for(duggan["zone_id"]), None, algorithm="none", headers={"kid": trusted_jwk(key_dir)["kid"]})
    await assert_rejected_everywhere(zone_stack, duggan, headers=bearer(token), mentioning="alg")


@pytest.mark.parametrize("secret_form", ["jwk", "pem"])
async def test_hs256_token_keyed_with_the_public_key_is_401(zone_stack, key_dir, duggan, secret_form):
    """Algorithm confusion: a verifier that honoured `alg` would check an HMAC keyed with the public key."""
    jwk = trusted_jwk(key_dir)
    public_pem = trusted_private_key(key_dir).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    secret = json.dumps(jwk).encode() if secret_form == "jwk" else public_pem
    token = hs256_token(claims_for(duggan["zone_id"]), secret, jwk["kid"])
    await assert_rejected_everywhere(zone_stack, duggan, headers=bearer(token), mentioning="alg")


@pytest.mark.parametrize("role", ["school", "sis"])
@pytest.mark.parametrize("without_schools", [False, True], ids=["empty-schools", "no-schools-claim"])
async def test_school_bound_token_without_schools_is_401(zone_stack, key_dir, duggan, role, without_schools):
    claims = claims_for(duggan["zone_id"], role=role, without=("schools",) if without_schools else ())
    await assert_rejected_everywhere(zone_stack, duggan, headers=bearer(signed_by_trusted_key(key_dir, claims)), mentioning="schools")


async def test_board_member_of_another_zone_gets_404_for_the_school_and_every_list_and_learns_nothing(zone_stack, duggan):
    other_zone = new_zone_id()
    await register_zone(zone_stack, other_zone)
    outsider = zone_stack.auth("board", other_zone)
    for call in (SCHOOL_READ, *SCHOOL_LISTS):
        response = await send(zone_stack, call, duggan, outsider)
        assert_problem(response, 404, where=call)
        assert_reveals_nothing_about(response, duggan, where=call)


async def test_admin_of_another_zone_cannot_register_a_school_or_the_zone_itself_there(zone_stack, duggan):
    other_zone = new_zone_id()
    await register_zone(zone_stack, other_zone)
    outsider = zone_stack.auth("admin", other_zone)

    response = await send(zone_stack, SCHOOL_REGISTRATION, duggan, outsider)
    assert_problem(response, 404)
    assert_reveals_nothing_about(response, duggan, where=SCHOOL_REGISTRATION)
    assert await schools_in(zone_stack, duggan["zone_id"]) == 1
    assert await schools_in(zone_stack, other_zone) == 0

    unregistered_zone = new_zone_id()
    response = await zone_stack.clients["plans"].post(
        "/zones", json={"id": unregistered_zone, "name": "Hijacked", "district": "Elsewhere"}, headers=outsider
    )
    assert_problem(response, 404)
    assert await scalar(zone_stack, "SELECT count(*) FROM plans.zones WHERE id = :z", z=unregistered_zone) == 0


@pytest.fixture
async def two_schools(zone_stack, zone_id) -> tuple[dict, dict]:
    """Two schools of one zone, in every projection: a school-bound token acts for the first only."""
    await register_zone(zone_stack, zone_id)
    own = await register_school(zone_stack, zone_id)
    other = await register_school(zone_stack, zone_id, new_school())
    await wait_until_projected(zone_stack, zone_id, 2)
    return own, other


@pytest.mark.parametrize("role", ["school", "sis"])
async def test_school_bound_token_gets_403_for_another_school_of_its_zone_and_learns_nothing(zone_stack, two_schools, role):
    own, other = two_schools
    headers = zone_stack.auth(role, own["zone_id"], [own["id"]])

    response = await send(zone_stack, SCHOOL_READ, other, headers)
    assert_problem(response, 403)
    assert_reveals_nothing_about(response, other, where=SCHOOL_READ)

    response = await send(zone_stack, SCHOOL_READ, own, headers)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == own["name"]


@pytest.mark.parametrize("role", ["school", "sis"])
async def test_school_bound_token_lists_only_its_own_schools_in_plans_and_in_every_projection(zone_stack, two_schools, role):
    own, other = two_schools
    headers = zone_stack.auth(role, own["zone_id"], [own["id"]])
    for call in SCHOOL_LISTS:
        response = await send(zone_stack, call, own, headers)
        assert response.status_code == 200, f"{call}: {response.text}"
        assert [school["id"] for school in response.json()] == [own["id"]], call
        assert other["name"] not in response.text, call


@pytest.mark.parametrize("role", ["board", "school", "sis"])
async def test_role_that_may_not_register_schools_gets_403_naming_the_roles_that_may(zone_stack, duggan, role):
    headers = zone_stack.auth(role, duggan["zone_id"], [duggan["id"]])
    body = assert_problem(await send(zone_stack, SCHOOL_REGISTRATION, duggan, headers), 403)
    assert "admin" in body["detail"] and "district" in body["detail"], body["detail"]
    assert await schools_in(zone_stack, duggan["zone_id"]) == 1


async def test_district_staff_may_register_a_school(zone_stack, duggan):
    response = await send(zone_stack, SCHOOL_REGISTRATION, duggan, zone_stack.auth("district", duggan["zone_id"]))
    assert response.status_code == 201, response.text
    assert await schools_in(zone_stack, duggan["zone_id"]) == 2


@pytest.mark.parametrize("service", SERVICES)
async def test_liveness_and_readiness_answer_without_a_token(zone_stack, service):
    client = zone_stack.clients[service]

    response = await client.get("/healthz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"

    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}
