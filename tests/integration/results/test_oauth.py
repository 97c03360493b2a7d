"""OAuth2 client credentials for SIS clients: registration by a zone admin, `POST /oauth/token`, and the
token every service then accepts."""

from __future__ import annotations

import uuid

import jwt
import pytest

from tests.helpers import scalar
from tests.integration.results.edfi_support import (
    OTHER_BEND,
    footprint,
    register_client,
    schools_of_their_own,  # noqa: F401 - the fixture, used by pytestmark
    token_response,
    zone_with_schools,
)
from tests.integration.test_registry_api import assert_problem

HIGH, MIDDLE = "255901001", "255901044"
pytestmark = pytest.mark.usefixtures("schools_of_their_own")


async def test_an_admin_registers_a_client_whose_secret_is_shown_once_and_stored_only_as_a_hash(zone_stack, zone_id):
    schools = await zone_with_schools(zone_stack, zone_id)

    response = await register_client(zone_stack, zone_id, [schools[HIGH]])

    assert response.status_code == 201, response.text
    client = response.json()
    assert client["created"] is True and client["schools"] == [schools[HIGH]] and client["zone_id"] == zone_id
    secret = client["client_secret"]
    assert len(secret) >= 32
    stored = await scalar(zone_stack, "SELECT secret_hash FROM results.oauth_clients WHERE client_id = :c", c=client["client_id"])
    assert stored.startswith("scrypt$") and secret not in stored
    assert await scalar(zone_stack, "SELECT count(*) FROM results.audit_log WHERE action = 'oauth_client.registered' "
                                    "AND entity_id = :c AND NOT after::text LIKE '%' || :s || '%'", c=client["client_id"], s=secret) == 1
    listed = await zone_stack.clients["results"].get(f"/zones/{zone_id}/oauth-clients", headers=zone_stack.auth("admin", zone_id))
    assert [c["client_id"] for c in listed.json()] == [client["client_id"]]
    assert listed.json()[0]["client_secret"] is None


async def test_registering_the_same_client_twice_answers_200_without_a_secret_and_stores_one(zone_stack, zone_id):
    schools = await zone_with_schools(zone_stack, zone_id)
    first = await register_client(zone_stack, zone_id, [schools[HIGH], schools[MIDDLE]])
    second = await register_client(zone_stack, zone_id, [schools[MIDDLE], schools[HIGH]])

    assert (first.status_code, second.status_code) == (201, 200), second.text
    assert second.json() == {**first.json(), "created": False, "client_secret": None}
    assert (await footprint(zone_stack, zone_id))["oauth_clients"] == 1
    assert await scalar(zone_stack, "SELECT count(*) FROM results.audit_log WHERE zone_id = :z AND action = 'oauth_client.registered'",
                        z=zone_id) == 1


async def test_the_same_client_name_for_other_schools_is_409_and_changes_nothing(zone_stack, zone_id):
    schools = await zone_with_schools(zone_stack, zone_id)
    await register_client(zone_stack, zone_id, [schools[HIGH]])
    before = await footprint(zone_stack, zone_id)

    assert_problem(await register_client(zone_stack, zone_id, [schools[MIDDLE]]), 409)
    assert await footprint(zone_stack, zone_id) == before


@pytest.mark.parametrize("body, fields", [
    ({"name": "SIS", "schools": []}, {"schools"}),
    ({"name": "", "schools": ["not-a-uuid"], "secret": "mine"}, {"name", "schools.0", "secret"}),
    ({"name": "SIS", "schools": [str(uuid.uuid4())]}, {"schools.0"}),
], ids=["no-schools", "every-field-wrong", "unknown-school"])
async def test_a_bad_registration_is_422_listing_the_fields_and_stores_nothing(zone_stack, zone_id, body, fields):
    await zone_with_schools(zone_stack, zone_id)
    before = await footprint(zone_stack, zone_id)

    response = await zone_stack.clients["results"].post(f"/zones/{zone_id}/oauth-clients", json=body,
                                                        headers=zone_stack.auth("admin", zone_id))
    problem = assert_problem(response, 422)
    assert {error["field"] for error in problem["errors"]} == fields
    assert await footprint(zone_stack, zone_id) == before


async def test_a_school_of_another_zone_cannot_be_given_to_a_client(zone_stack, zone_id):
    other_zone = f"{zone_id}-b"
    theirs = await zone_with_schools(zone_stack, other_zone, OTHER_BEND)  # a school code belongs to one zone
    await zone_with_schools(zone_stack, zone_id)

    assert_problem(await register_client(zone_stack, zone_id, list(theirs.values())[:1]), 422)
    assert (await footprint(zone_stack, zone_id))["oauth_clients"] == 0


@pytest.mark.parametrize("role, token_zone, status", [
    ("admin", "another-zone", 404), ("district", None, 403), ("board", None, 403), ("school", None, 403)])
async def test_only_the_zone_admin_registers_clients(zone_stack, zone_id, role, token_zone, status):
    schools = await zone_with_schools(zone_stack, zone_id)
    headers = zone_stack.auth(role, token_zone or zone_id, [schools[HIGH]] if role == "school" else None)

    for response in (
        await zone_stack.clients["results"].post(f"/zones/{zone_id}/oauth-clients", json={"name": "SIS", "schools": [schools[HIGH]]},
                                                 headers=headers),
        await zone_stack.clients["results"].get(f"/zones/{zone_id}/oauth-clients", headers=headers),
    ):
        assert_problem(response, status)
    assert (await footprint(zone_stack, zone_id))["oauth_clients"] == 0


@pytest.mark.parametrize("basic", [True, False], ids=["http-basic", "form-fields"])
async def test_client_credentials_get_a_sis_token_for_the_clients_schools_that_other_services_accept(zone_stack, zone_id, basic):
    schools = await zone_with_schools(zone_stack, zone_id)
    client = (await register_client(zone_stack, zone_id, [schools[HIGH]])).json()

    response = await token_response(zone_stack, client["client_id"], client["client_secret"], basic=basic)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    granted = response.json()
    assert granted["token_type"] == "bearer" and granted["expires_in"] == 3600
    claims = jwt.decode(granted["access_token"], options={"verify_signature": False})
    assert (claims["role"], claims["zone"], claims["schools"], claims["sub"]) == ("sis", zone_id, [schools[HIGH]], client["client_id"])
    headers = {"Authorization": f"Bearer {granted['access_token']}"}
    seen = await zone_stack.clients["results"].get(f"/zones/{zone_id}/schools", headers=headers)
    assert [school["id"] for school in seen.json()] == [schools[HIGH]]
    plans = zone_stack.clients["plans"]
    assert (await plans.get(f"/zones/{zone_id}/schools/{schools[HIGH]}", headers=headers)).status_code == 200
    assert (await plans.get(f"/zones/{zone_id}/schools/{schools[MIDDLE]}", headers=headers)).status_code == 403


async def _client(stack, zone_id) -> dict:  # noqa: ANN001
    schools = await zone_with_schools(stack, zone_id)
    return (await register_client(stack, zone_id, [schools[HIGH]])).json()


def assert_oauth_error(response, status: int, error: str) -> None:  # noqa: ANN001
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == error and response.json()["error_description"]
    assert "access_token" not in response.text


@pytest.mark.parametrize("basic", [True, False], ids=["http-basic", "form-fields"])
async def test_a_wrong_secret_or_unknown_client_is_401_invalid_client(zone_stack, zone_id, basic):
    client = await _client(zone_stack, zone_id)

    for client_id, secret in ((client["client_id"], client["client_secret"] + "x"), ("ezc_unknown", client["client_secret"])):
        response = await token_response(zone_stack, client_id, secret, basic=basic)
        assert_oauth_error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"].startswith("Basic")


async def test_another_grant_type_is_400_unsupported_grant_type(zone_stack, zone_id):
    client = await _client(zone_stack, zone_id)
    response = await token_response(zone_stack, client["client_id"], client["client_secret"], grant_type="password")
    assert_oauth_error(response, 400, "unsupported_grant_type")


async def test_malformed_token_requests_are_400_invalid_request_or_401_without_credentials(zone_stack, zone_id):
    client = await _client(zone_stack, zone_id)
    results = zone_stack.clients["results"]
    credentials = {"client_id": client["client_id"], "client_secret": client["client_secret"]}

    assert_oauth_error(await results.post("/oauth/token", json={"grant_type": "client_credentials", **credentials}),
                       400, "invalid_request")
    assert_oauth_error(await results.post("/oauth/token", data=credentials), 400, "invalid_request")
    assert_oauth_error(await results.post("/oauth/token", content=b"grant_type=client_credentials&grant_type=password",
                                          headers={"Content-Type": "application/x-www-form-urlencoded"}), 400, "invalid_request")
    assert_oauth_error(await results.post("/oauth/token", data={"grant_type": "client_credentials", **credentials},
                                          auth=(client["client_id"], client["client_secret"])), 400, "invalid_request")
    assert_oauth_error(await results.post("/oauth/token", data={"grant_type": "client_credentials"}), 401, "invalid_client")
