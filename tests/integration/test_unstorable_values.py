"""Values the database cannot store — a NUL character in a text, an integer beyond 64 bits — are the request's fault:
422 problem details, nothing stored, never a 500. So is a JSON body that is not UTF-8 text."""

from __future__ import annotations

from tests.helpers import duggan, register_zone, scalar

UNSTORABLE = "https://ezone.dev/problems/unstorable-value"


async def test_a_nul_character_in_a_text_is_422_and_nothing_is_stored(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)

    response = await zone_stack.clients["plans"].post(
        f"/zones/{zone_id}/schools", json={**duggan(), "name": "Duggan\u0000Academy"}, headers=zone_stack.auth("admin", zone_id))

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == UNSTORABLE and "NUL" in response.json()["detail"]
    assert await scalar(zone_stack, "SELECT count(*) FROM plans.schools WHERE zone_id = :z", z=zone_id) == 0


async def test_an_integer_beyond_64_bits_in_a_query_is_422(zone_stack, zone_id):
    board = zone_stack.auth("board", zone_id)

    response = await zone_stack.clients["notifications"].get(f"/zones/{zone_id}/alerts", params={"after_seq": 2**70},
                                                            headers=board)

    assert response.status_code == 422, response.text
    assert response.json()["type"] == UNSTORABLE


async def test_a_json_body_that_is_not_utf8_is_422_invalid_json_and_nothing_is_stored(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)

    response = await zone_stack.clients["plans"].post(
        f"/zones/{zone_id}/schools", content=b'{"name": "Duggan \xe9cole"}',
        headers={**zone_stack.auth("admin", zone_id), "Content-Type": "application/json"})

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert (error["pointer"], error["code"]) == ("/body", "json_unreadable") and "UTF-8" in error["reason"]
    assert await scalar(zone_stack, "SELECT count(*) FROM plans.schools WHERE zone_id = :z", z=zone_id) == 0
