"""Webhooks: registering endpoints through the API, and signed deliveries that are retried and recorded."""

from __future__ import annotations

import uuid

import orjson
import pytest
from ezone_notifications.deliveries.signing import verify_signature

from ezone.stack import wait_for
from tests.integration.test_registry_api import assert_problem
from tests.stack import Stack

from .support import member_auth, sql
from .test_delivery_worker import (
    FAST,
    WebhookReceiver,
    attempts_of,
    delivery_stack,
    new_member,
    raise_by_hand,
    raised_alert,
    register_webhook,
    wait_for_delivery,
    wait_for_mail,
)

pytestmark = pytest.mark.usefixtures("metric_reader")


def webhooks(stack: Stack, zone_id: str) -> str:
    return f"/zones/{zone_id}/webhooks"


async def stored_endpoints(stack: Stack, zone_id: str) -> list:
    return await sql(stack, "SELECT id, owner, url FROM notifications.webhook_endpoints WHERE zone_id = :z", z=zone_id)


async def test_a_member_registers_an_endpoint_and_sees_its_secret_once(zone_stack, zone_id):
    client, member = zone_stack.clients["notifications"], new_member()
    auth = member_auth(zone_stack, zone_id, member)
    response = await client.post(webhooks(zone_stack, zone_id), headers=auth, json={
        "url": "https://hooks.example.org/ezone", "description": "my phone", "severities": ["warning", "critical"]})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["severities"] == ["critical", "warning"]  # most urgent first
    assert (created["scope"], created["owner"], created["created_by"]) == ("member", member, member)
    assert response.headers["location"] == f"/zones/{zone_id}/webhooks/{created['id']}"

    listed = (await client.get(webhooks(zone_stack, zone_id), headers=auth)).json()
    assert [e["id"] for e in listed] == [created["id"]]
    one = (await client.get(response.headers["location"], headers=auth)).json()
    assert "secret" not in listed[0] and "secret" not in one
    assert one == {key: value for key, value in created.items() if key != "secret"}


async def test_the_same_url_again_is_a_conflict_naming_the_existing_endpoint(zone_stack, zone_id):
    client, member = zone_stack.clients["notifications"], new_member()
    first = await register_webhook(zone_stack, zone_id, member, "https://hooks.example.org/same")
    again = await client.post(webhooks(zone_stack, zone_id), headers=member_auth(zone_stack, zone_id, member),
                              json={"url": "https://hooks.example.org/same", "severities": ["critical"]})
    body = assert_problem(again, 409)
    assert body["existing_id"] == first["id"] and first["id"] in body["detail"]
    # Another member may register the same URL for their own alerts.
    await register_webhook(zone_stack, zone_id, new_member(), "https://hooks.example.org/same")
    assert len(await stored_endpoints(zone_stack, zone_id)) == 2


async def test_a_retry_with_the_same_idempotency_key_answers_as_the_first_request_and_registers_nothing_more(
    zone_stack, zone_id
):
    client, member = zone_stack.clients["notifications"], new_member()
    headers = {**member_auth(zone_stack, zone_id, member), "Idempotency-Key": str(uuid.uuid4())}
    body = {"url": "https://hooks.example.org/retried"}
    first = await client.post(webhooks(zone_stack, zone_id), headers=headers, json=body)
    again = await client.post(webhooks(zone_stack, zone_id), headers=headers, json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()  # the secret too: the first answer may have been lost
    assert len(await stored_endpoints(zone_stack, zone_id)) == 1
    other_body = await client.post(webhooks(zone_stack, zone_id), headers=headers, json={"url": "https://hooks.example.org/x"})
    assert assert_problem(other_body, 422)["type"] == "https://ezone.dev/problems/idempotency-key-reused"
    assert len(await stored_endpoints(zone_stack, zone_id)) == 1


@pytest.mark.parametrize(("body", "fields"), [
    ({"url": "ftp://hooks.example.org/x"}, {"url"}),
    ({"url": "hooks.example.org/x"}, {"url"}),
    ({"url": "https://user:pw@hooks.example.org/x"}, {"url"}),
    ({"url": "https://hooks.example.org/x", "severities": ["urgent"]}, {"severities.0"}),
    ({"url": "https://hooks.example.org/x", "severities": []}, {"severities"}),
    ({"url": "https://hooks.example.org/x", "severities": ["info", "info"]}, {"severities"}),
    ({"url": "https://hooks.example.org/x", "scope": "everyone"}, {"scope"}),
    ({"url": "https://hooks.example.org/x", "secret": "mine"}, {"secret"}),
    ({}, {"url"}),
])
async def test_bad_input_is_refused_with_problem_details_and_nothing_is_stored(zone_stack, zone_id, body, fields):
    response = await zone_stack.clients["notifications"].post(
        webhooks(zone_stack, zone_id), headers=member_auth(zone_stack, zone_id, new_member()), json=body)
    problem = assert_problem(response, 422)
    assert {error["field"] for error in problem["errors"]} == fields, problem["errors"]
    assert await stored_endpoints(zone_stack, zone_id) == []


async def test_only_district_and_admin_register_and_see_the_zones_endpoints(zone_stack, zone_id):
    client, board_member, staff = zone_stack.clients["notifications"], new_member(), new_member("staff")
    refused = await client.post(webhooks(zone_stack, zone_id), headers=member_auth(zone_stack, zone_id, board_member),
                                json={"url": "https://hooks.example.org/zone", "scope": "zone"})
    assert_problem(refused, 403)
    zone_wide = await register_webhook(zone_stack, zone_id, staff, "https://hooks.example.org/zone", role="district",
                                       scope="zone")
    assert (zone_wide["scope"], zone_wide["owner"]) == ("zone", None)
    own = await register_webhook(zone_stack, zone_id, board_member, "https://hooks.example.org/mine")

    as_board = (await client.get(webhooks(zone_stack, zone_id), headers=member_auth(zone_stack, zone_id, board_member))).json()
    as_staff = (await client.get(webhooks(zone_stack, zone_id),
                                 headers=member_auth(zone_stack, zone_id, staff, role="admin"))).json()
    assert [e["id"] for e in as_board] == [own["id"]]
    assert [e["id"] for e in as_staff] == [zone_wide["id"]]  # the zone's, not another member's own
    assert_problem(await client.get(f"{webhooks(zone_stack, zone_id)}/{zone_wide['id']}",
                                    headers=member_auth(zone_stack, zone_id, board_member)), 404)
    for role in ("sis", "partner"):
        token = zone_stack.token(role, zone_id, ["00000000-0000-0000-0000-000000000001"] if role == "sis" else None,
                                 **({"partner_id": "p-1"} if role == "partner" else {}))
        assert_problem(await client.get(webhooks(zone_stack, zone_id), headers={"Authorization": f"Bearer {token}"}), 403)


async def test_nobody_else_sees_or_deletes_a_members_endpoint_and_another_zone_gets_404(zone_stack, zone_id):
    client, owner, colleague = zone_stack.clients["notifications"], new_member(), new_member()
    endpoint = await register_webhook(zone_stack, zone_id, owner, "https://hooks.example.org/private")
    path = f"{webhooks(zone_stack, zone_id)}/{endpoint['id']}"
    other_zone = f"z-{uuid.uuid4().hex[:12]}"
    outsider = member_auth(zone_stack, other_zone, owner)  # the same subject, in another zone's token
    for headers in (member_auth(zone_stack, zone_id, colleague), member_auth(zone_stack, zone_id, colleague, role="admin"),
                    outsider):
        assert_problem(await client.get(path, headers=headers), 404)
        assert_problem(await client.delete(path, headers=headers), 404)
    assert_problem(await client.get(webhooks(zone_stack, zone_id), headers=outsider), 404)
    assert (await client.get(webhooks(zone_stack, other_zone), headers=outsider)).json() == []
    assert_problem(await client.post(webhooks(zone_stack, zone_id), headers=outsider, json={"url": "https://a.example"}), 404)
    assert [e.id for e in await stored_endpoints(zone_stack, zone_id)] == [uuid.UUID(endpoint["id"])]

    deleted = await client.delete(path, headers=member_auth(zone_stack, zone_id, owner))
    assert deleted.status_code == 204
    assert_problem(await client.delete(path, headers=member_auth(zone_stack, zone_id, owner)), 404)
    assert await stored_endpoints(zone_stack, zone_id) == []


async def test_a_delivery_is_signed_retried_after_failing_twice_and_every_attempt_is_recorded(
    postgres, broker, key_dir, smtp_sink, zone_id
):
    async with WebhookReceiver(500, 502) as receiver, delivery_stack(postgres, broker, key_dir, smtp_sink) as stack:
        kit, member = stack.kits["notifications"], new_member()
        endpoint = await register_webhook(stack, zone_id, member, receiver.url)
        alert = raised_alert(zone_id, member, "critical")
        await raise_by_hand(kit, alert)

        sent = await wait_for_delivery(kit, alert.id, "webhook", "sent")
        assert (sent.attempts, sent.last_status_code, sent.last_error) == (3, 200, None)
        recorded = await attempts_of(kit, sent.id)
        assert [(a.attempt, a.outcome, a.status_code) for a in recorded] == [
            (1, "failed", 500), (2, "failed", 502), (3, "sent", 200)]
        assert recorded[0].error == "HTTP 500: answer!"
        assert all(a.duration_ms >= 0 for a in recorded)
        # Backoff: the second retry waited about twice as long as the first.
        first, second, third = receiver.requests
        assert second.at - first.at >= FAST["ezone_delivery_backoff_s"]
        assert third.at - second.at >= 2 * FAST["ezone_delivery_backoff_s"]

    for request in receiver.requests:
        assert verify_signature(endpoint["secret"], request.headers["ezone-signature"], request.body)
        assert not verify_signature("whsec_someone-else", request.headers["ezone-signature"], request.body)
        assert request.headers["ezone-delivery"] == str(sent.id)
        assert request.headers["ezone-event"] == "alert.raised"
        assert request.headers["content-type"] == "application/json"
    payload = orjson.loads(first.body)
    assert payload["delivery_id"] == str(sent.id) and payload["alert"]["id"] == str(alert.id)
    assert payload["alert"]["recipient"] == member and payload["alert"]["severity"] == "critical"
    assert payload["source_event"] == {"id": str(alert.source_event_id), "type": "review.completed"}
    assert {r.body for r in receiver.requests} == {first.body}  # a repeat is the same document


async def test_a_failing_webhook_does_not_hold_up_the_email_and_deleting_it_cancels_its_retries(zone_stack, smtp_sink, zone_id):
    kit, member = zone_stack.kits["notifications"], new_member()
    async with WebhookReceiver(*[500] * 20) as receiver:
        endpoint = await register_webhook(zone_stack, zone_id, member, receiver.url)
        alert = raised_alert(zone_id, member, "critical")
        await raise_by_hand(kit, alert)
        await wait_for_mail(smtp_sink, member)
        await receiver.wait_for_requests(1)
        webhook = await wait_for_delivery(kit, alert.id, "webhook", "pending")
        assert (await wait_for_delivery(kit, alert.id, "email", "sent")).attempts == 1

        async def failed_once() -> bool:
            return [a.outcome for a in await attempts_of(kit, webhook.id)][:1] == ["failed"]

        await wait_for(failed_once, 10, what="the failed attempt to be recorded")
        response = await zone_stack.clients["notifications"].delete(
            f"{webhooks(zone_stack, zone_id)}/{endpoint['id']}", headers=member_auth(zone_stack, zone_id, member))
        assert response.status_code == 204
        cancelled = await wait_for_delivery(kit, alert.id, "webhook", "cancelled")
        assert cancelled.last_error == "the webhook endpoint was deleted"


async def test_a_zone_endpoint_gets_one_delivery_per_event_not_one_per_recipient(zone_stack, zone_id):
    kit = zone_stack.kits["notifications"]
    async with WebhookReceiver() as receiver:
        endpoint = await register_webhook(zone_stack, zone_id, new_member("staff"), receiver.url, role="district",
                                          scope="zone", severities=["critical"])
        event_id = uuid.uuid4()
        board = [new_member("seat") for _ in range(5)]
        await raise_by_hand(kit, *(raised_alert(zone_id, m, "critical", event_id=event_id) for m in board))
        [request] = await receiver.wait_for_requests(1)
        payload = orjson.loads(request.body)
        assert payload["scope"] == "zone" and "recipient" not in payload["alert"]
        assert verify_signature(endpoint["secret"], request.headers["ezone-signature"], request.body)
        deliveries = await sql(zone_stack, "SELECT id, status FROM notifications.deliveries WHERE endpoint_id = :e",
                               e=endpoint["id"])
        assert len(deliveries) == 1 and str(deliveries[0].id) == request.headers["ezone-delivery"]

