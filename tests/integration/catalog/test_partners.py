"""Partners on the real stack: onboarding by zone or district staff, vetting on evidence, the vetting event that
plans consumes, and partner tokens."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from ezone_kit.auth import JwksVerifier, sign_token, token_claims
from ezone_schemas import PartnerVettingChanged

from tests.events import published_events
from tests.helpers import wait_for_count
from tests.integration.test_auth import trusted_jwk, trusted_private_key
from tests.integration.test_cli import ezone
from tests.integration.catalog.support import (
    CATALOG_TOPIC,
    assert_invalid_fields,
    assert_problem,
    catalog_zone,
    partner_body,
    vetting_body,
)


async def test_a_partner_is_onboarded_once_not_vetted_until_a_vetting_is_recorded(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    first = await zone.request("POST", "/partners", zone.staff("admin"), json=partner_body())
    again = await zone.request("POST", "/partners", zone.staff(), json=partner_body())
    assert (first.status_code, again.status_code) == (201, 200), again.text
    partner = first.json()
    assert {**again.json(), "created": True} == partner
    assert (partner["vetting"], partner["vetted"], partner["website"]) == (None, False, "https://math-collaborative.example.org/")
    assert await zone.scalar("SELECT count(*) FROM catalog.audit_log WHERE action = 'partner.onboarded' AND entity_id = :p",
                             p=partner["id"]) == 1
    before = await zone.footprint()

    conflict = assert_problem(await zone.request("POST", "/partners", zone.staff(), json=partner_body(description="Other")), 409)
    assert conflict["partner_id"] == partner["id"]
    assert_problem(await zone.request("POST", "/partners", zone.staff(), json=partner_body(name="Other", id=partner["id"])), 409)
    assert await zone.footprint() == before


async def test_a_partner_can_be_onboarded_with_the_id_the_zones_plans_already_use(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    partner_id = str(uuid.uuid4())
    created = await zone.request("POST", "/partners", zone.staff(), json=partner_body(id=partner_id))
    assert (created.status_code, created.json()["id"]) == (201, partner_id)
    assert (await zone.request("POST", "/partners", zone.staff(), json=partner_body(id=partner_id))).status_code == 200


INVALID_PARTNERS = {
    "everything missing": ({}, {"name", "description"}),
    "not a website": (partner_body(website="math collaborative"), {"website"}),
    "not an email": (partner_body(contact_email="hello at example"), {"contact_email"}),
    "unknown field": (partner_body(rating=5), {"rating"}),
    "id not a uuid": (partner_body(id="pvmc"), {"id"}),
}


@pytest.mark.parametrize("case", INVALID_PARTNERS, ids=list(INVALID_PARTNERS))
async def test_an_invalid_partner_is_422_naming_every_field_and_stores_nothing(zone_stack, zone_id, case):
    zone = await catalog_zone(zone_stack, zone_id)
    body, fields = INVALID_PARTNERS[case]
    before = await zone.footprint()
    assert_invalid_fields(await zone.request("POST", "/partners", zone.staff(), json=body), fields)
    assert await zone.footprint() == before


async def test_a_vetting_records_who_when_criteria_and_evidence_and_plans_hears_of_it(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    partner_id = await zone.add_partner(vetting=None)
    path = f"/partners/{partner_id}/vettings"
    body = vetting_body()

    first = await zone.request("POST", path, zone.staff("admin"), json=body)
    assert first.status_code == 201, first.text
    vetting = first.json()
    assert (vetting["status"], vetting["vetted_by"], vetting["expires_on"]) == ("vetted", "dev-admin", body["expires_on"])
    assert vetting["criteria_met"] == body["criteria_met"] and vetting["evidence"] == body["evidence"]
    again = await zone.request("POST", path, zone.staff(), json=body)
    assert (again.status_code, again.json()["id"]) == (200, vetting["id"])
    partner = (await zone.request("GET", f"/partners/{partner_id}", zone.team())).json()
    assert (partner["vetted"], partner["vetting"]["id"]) == (True, vetting["id"])

    [event] = await published_events(zone_stack, CATALOG_TOPIC, PartnerVettingChanged.ce_type, key=zone_id,
                                     where={"partner_id": partner_id})
    assert (event["status"], event["expires_on"], event["vetted_by"], event["name"]) == (
        "vetted", body["expires_on"], "dev-admin", "Pioneer Valley Math Collaborative")
    # The plans service keeps vetted partners for its intensive-support rule.
    await wait_for_count(zone_stack, "SELECT count(*) FROM plans.partners WHERE id = :p AND status = 'vetted'", 1, p=partner_id)

    revoked = await zone.request("POST", path, zone.staff(), json={"status": "revoked", "notes": "Outcome data did not hold up."})
    assert revoked.status_code == 201, revoked.text
    history = (await zone.request("GET", path, zone.staff("board"))).json()
    assert [v["status"] for v in history] == ["revoked", "vetted"]
    assert (await zone.request("GET", f"/partners/{partner_id}", zone.team())).json()["vetted"] is False
    await wait_for_count(zone_stack, "SELECT count(*) FROM plans.partners WHERE id = :p AND status = 'revoked'", 1, p=partner_id)
    assert await zone.outbox(PartnerVettingChanged.ce_type, partner_id=partner_id) == 2
    assert await zone.scalar("SELECT count(*) FROM catalog.audit_log WHERE action = 'partner.vetted' AND entity_id = :p",
                             p=partner_id) == 2


def _expiring(days: int) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


INVALID_VETTINGS = {
    "vetted without evidence": (vetting_body(evidence=[]), {"evidence"}),
    "vetted without criteria": (vetting_body(criteria_met=[]), {"criteria_met"}),
    "vetted on nothing": (vetting_body(criteria_met=[], evidence=[]), {"criteria_met", "evidence"}),
    "vetted without expiry": (vetting_body(expires_on=None), {"expires_on"}),
    "provisional without expiry": (vetting_body("provisional", expires_on=None), {"expires_on"}),
    "revoked with an expiry": (vetting_body("revoked", expires_on=_expiring(30)), {"expires_on"}),
    "already expired": (vetting_body(expires_on=_expiring(-1)), {"expires_on"}),
    "unknown status": ({"status": "approved"}, {"status"}),
    "evidence without a link": (vetting_body(evidence=[{"title": "Report"}]), {"evidence.0.url"}),
    "unknown field": (vetting_body(score=9), {"score"}),
}


@pytest.mark.parametrize("case", INVALID_VETTINGS, ids=list(INVALID_VETTINGS))
async def test_an_invalid_vetting_is_422_naming_the_field_and_stores_nothing(zone_stack, zone_id, case):
    zone = await catalog_zone(zone_stack, zone_id)
    partner_id = await zone.add_partner(vetting=None)
    body, fields = INVALID_VETTINGS[case]
    before = await zone.footprint()
    assert_invalid_fields(await zone.request("POST", f"/partners/{partner_id}/vettings", zone.staff(), json=body), fields)
    assert await zone.footprint() == before


async def test_only_zone_and_district_staff_onboard_and_vet_partners(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    partner_id = await zone.add_partner(vetting=None)
    before = await zone.footprint()
    vettings = f"/partners/{partner_id}/vettings"

    for headers in (zone.team(), zone.staff("board"), zone.partner(partner_id), zone.stack.auth("sis", zone_id, [zone.school_id])):
        assert_problem(await zone.request("POST", "/partners", headers, json=partner_body("Other")), 403)
        assert_problem(await zone.request("POST", vettings, headers, json=vetting_body()), 403)
    elsewhere = zone.stack.auth("admin", f"{zone_id}-x")
    assert_problem(await zone.request("POST", "/partners", elsewhere, json=partner_body("Other")), 404)
    assert_problem(await zone.request("POST", vettings, elsewhere, json=vetting_body()), 404)
    assert_problem(await zone.request("POST", f"/partners/{uuid.uuid4()}/vettings", zone.staff(), json=vetting_body()), 404)
    assert await zone.footprint() == before


async def test_a_partner_of_another_zone_does_not_exist_here(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    other = await catalog_zone(zone_stack, f"{zone_id}-o")
    foreign = await other.add_partner()
    for path in (f"/partners/{foreign}", f"/partners/{foreign}/vettings", f"/partners/{foreign}/evidence"):
        assert "Pioneer" not in assert_problem(await zone.request("GET", path, zone.staff()), 404)["detail"]
    assert_problem(await zone.request("POST", f"/partners/{foreign}/vettings", zone.staff(), json=vetting_body()), 404)
    assert (await zone.request("GET", "/partners", zone.staff())).json() == []


async def test_a_partner_token_must_name_its_partner(zone_stack, zone_id, key_dir):
    zone = await catalog_zone(zone_stack, zone_id)
    claims = token_claims(role="partner", zone=zone_id, schools=None, subject="p", ttl_seconds=60, audience="ezone",
                          issuer="ezone-dev", partner_id="x")
    del claims["partner_id"]
    token = sign_token(trusted_private_key(key_dir), trusted_jwk(key_dir)["kid"], claims)
    response = await zone.request("GET", "/orders", {"Authorization": f"Bearer {token}"})
    assert "partner_id" in assert_problem(response, 401)["detail"]
    with pytest.raises(ValueError):
        token_claims(role="district", zone=zone_id, schools=None, subject="d", ttl_seconds=60, audience="ezone",
                     issuer="ezone-dev", partner_id=str(uuid.uuid4()))


async def test_ezone_token_mints_partner_tokens_that_name_their_partner(zone_stack, tmp_path):
    partner_id = str(uuid.uuid4())
    code, output = await ezone(zone_stack, tmp_path, "token", "--role", "partner", "--zone", "springfield", "--partner", partner_id)
    assert code == 0, output
    principal = await JwksVerifier(str(tmp_path / "keys" / "jwks.json"), "ezone").verify(output.strip())
    assert (principal.role, principal.partner_id, principal.schools) == ("partner", partner_id, frozenset())
    code, output = await ezone(zone_stack, tmp_path, "token", "--role", "partner", "--zone", "springfield")
    assert code != 0 and "--partner" in output
