"""The zone policy: versioned data; a PUT with If-Match adopts a new version and announces it on the broker."""

from __future__ import annotations

import httpx
import pytest
from ezone_schemas import ZonePolicyChanged
from ezone_schemas.topics import PLANS

from tests.events import published_events
from tests.helpers import register_zone
from tests.integration.plans.support import assert_problem, audit_entries, call, footprint, outbox_count
from tests.integration.test_registry_api import sent_at_once
from tests.stack import Stack


async def current(stack: Stack, zone_id: str) -> httpx.Response:
    response = await call(stack, "GET", f"/zones/{zone_id}/policy")
    assert response.status_code == 200, response.text
    return response


async def put_policy(stack: Stack, zone_id: str, document: dict, etag: str | None, role: str = "admin",
                     zone: str | None = None) -> httpx.Response:
    headers = {"If-Match": etag} if etag is not None else {}
    return await call(stack, "PUT", f"/zones/{zone_id}/policy", role, zone, json=document, headers=headers)


def stricter(document: dict) -> dict:
    return {**document, "minimum_n": 20, "voting": {**document["voting"], "quorum": 5}}


async def test_a_new_zone_has_policy_version_1_with_the_defaults_readable_by_every_role_of_the_zone(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    response = await current(zone_stack, zone_id)
    policy = response.json()

    assert response.headers["etag"] == '"policy-v1"'
    assert (policy["version"], policy["created_by"]) == (1, "dev-admin")
    assert policy["document"]["participation_minimum"] == 95.0
    assert policy["document"]["voting"] == {"board_size": 7, "quorum": 4, "majority": "of_seated"}
    for role in ("board", "district", "school", "sis"):
        seen = await call(zone_stack, "GET", f"/zones/{zone_id}/policy", role, schools=["any"])
        assert seen.json() == policy, role


async def test_put_adopts_the_next_version_announces_it_on_the_broker_and_keeps_the_old_one(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    v1 = await current(zone_stack, zone_id)
    document = stricter(v1.json()["document"])

    response = await put_policy(zone_stack, zone_id, document, v1.headers["etag"])

    assert response.status_code == 201, response.text
    assert response.json()["version"] == 2 and response.json()["document"] == document
    assert response.headers["etag"] == '"policy-v2"'
    assert response.headers["location"] == f"/zones/{zone_id}/policy/versions/2"
    assert (await current(zone_stack, zone_id)).json() == response.json()
    versions = (await call(zone_stack, "GET", f"/zones/{zone_id}/policy/versions", "board")).json()
    assert [v["version"] for v in versions] == [2, 1]
    assert (await call(zone_stack, "GET", f"/zones/{zone_id}/policy/versions/1")).json() == v1.json()
    assert await audit_entries(zone_stack, "policy.adopted", f"{zone_id}/2") == 1

    events = await published_events(zone_stack, PLANS, ZonePolicyChanged.ce_type, key=zone_id, where={"version": 2})
    assert len(events) == 1
    assert events[0]["policy"] == document and events[0]["changed_by"] == "dev-admin"


async def test_put_of_the_current_document_or_its_retry_answers_200_with_the_same_version_and_changes_nothing(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    v1 = await current(zone_stack, zone_id)
    unchanged = await put_policy(zone_stack, zone_id, v1.json()["document"], v1.headers["etag"])
    assert unchanged.status_code == 200, unchanged.text
    assert unchanged.json() == v1.json()
    # Left-out defaults are the same policy as written-out ones.
    assert (await put_policy(zone_stack, zone_id, {}, v1.headers["etag"])).json()["version"] == 1

    document = stricter(v1.json()["document"])
    first = await put_policy(zone_stack, zone_id, document, v1.headers["etag"])
    before = await footprint(zone_stack, zone_id)
    # Its retry: the If-Match is stale now, but the policy already is what it asks for.
    retry = await put_policy(zone_stack, zone_id, document, v1.headers["etag"])

    assert (first.status_code, retry.status_code) == (201, 200), retry.text
    assert retry.json() == first.json()
    assert await footprint(zone_stack, zone_id) == before
    assert await outbox_count(zone_stack, ZonePolicyChanged.ce_type, zone_id) == 2  # versions 1 and 2


async def test_put_without_if_match_is_428_and_with_a_stale_one_412_and_adopts_nothing(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    v1 = await current(zone_stack, zone_id)
    assert (await put_policy(zone_stack, zone_id, stricter(v1.json()["document"]), v1.headers["etag"])).status_code == 201
    before = await footprint(zone_stack, zone_id)

    other = {**v1.json()["document"], "minimum_n": 30}
    assert_problem(await put_policy(zone_stack, zone_id, other, None), 428)
    assert_problem(await put_policy(zone_stack, zone_id, other, v1.headers["etag"]), 412)
    assert await footprint(zone_stack, zone_id) == before
    assert (await current(zone_stack, zone_id)).json()["version"] == 2


async def test_an_invalid_policy_is_422_listing_every_error_and_adopts_nothing(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    v1 = await current(zone_stack, zone_id)
    before = await footprint(zone_stack, zone_id)
    document = {
        **v1.json()["document"],
        "participation_minimum": 120,
        "minimum_n": 0,
        "approaching_band": {"shoe_size": 1},
        "voting": {"quorum": 0, "majority": "loudest"},
        "tiers": {"full_after_years_meeting": 9},
        "weights": {},
    }

    response = await put_policy(zone_stack, zone_id, document, v1.headers["etag"])

    body = assert_problem(response, 422)
    assert {e["pointer"] for e in body["errors"]} == {
        "/body/participation_minimum", "/body/minimum_n", "/body/approaching_band/shoe_size/[key]", "/body/voting/quorum",
        "/body/voting/majority", "/body/tiers/full_after_years_meeting", "/body/weights",
    }, body["errors"]
    assert await footprint(zone_stack, zone_id) == before


async def test_a_quorum_larger_than_the_board_is_422(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    v1 = await current(zone_stack, zone_id)
    document = {**v1.json()["document"], "voting": {"board_size": 5, "quorum": 6, "majority": "of_seated"}}

    body = assert_problem(await put_policy(zone_stack, zone_id, document, v1.headers["etag"]), 422)
    assert [e["pointer"] for e in body["errors"]] == ["/body/voting"]
    assert "board_size" in body["errors"][0]["reason"]


@pytest.mark.parametrize(("role", "elsewhere", "status"), [("admin", True, 404), ("district", False, 403), ("board", False, 403)])
async def test_put_by_a_caller_who_may_not_is_refused_and_adopts_nothing(zone_stack, zone_id, role, elsewhere, status):
    await register_zone(zone_stack, zone_id)
    v1 = await current(zone_stack, zone_id)
    before = await footprint(zone_stack, zone_id)

    response = await put_policy(zone_stack, zone_id, stricter(v1.json()["document"]), v1.headers["etag"], role,
                                f"{zone_id}-other" if elsewhere else None)
    assert_problem(response, status)
    assert await footprint(zone_stack, zone_id) == before


@pytest.mark.parametrize("path", ["/policy", "/policy/versions", "/policy/versions/1"])
async def test_another_zones_policy_is_404_with_nothing_of_it_shown(zone_stack, zone_id, path):
    await register_zone(zone_stack, zone_id)
    response = await call(zone_stack, "GET", f"/zones/{zone_id}{path}", zone=f"{zone_id}-other")
    assert_problem(response, 404)
    assert "participation_minimum" not in response.text and "etag" not in response.headers


async def test_a_version_the_zone_never_adopted_is_404(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    assert_problem(await call(zone_stack, "GET", f"/zones/{zone_id}/policy/versions/2"), 404)
    assert_problem(await call(zone_stack, "GET", f"/zones/{zone_id}/policy/versions/0"), 422)


async def test_two_admins_changing_the_same_version_at_once_adopt_exactly_one_version(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    v1 = await current(zone_stack, zone_id)
    edits = [put_policy(zone_stack, zone_id, {**v1.json()["document"], "minimum_n": n}, v1.headers["etag"]) for n in (15, 20)]

    responses = await sent_at_once(zone_stack, "plans.zone_policies", edits)

    assert sorted(r.status_code for r in responses) == [201, 412], [r.text for r in responses]
    assert [v["version"] for v in (await call(zone_stack, "GET", f"/zones/{zone_id}/policy/versions")).json()] == [2, 1]


async def test_accountability_assessments_are_validated_entry_by_entry_and_a_bad_one_adopts_nothing(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    v1 = await current(zone_stack, zone_id)
    defaults = v1.json()["document"]
    # A new zone counts MCAS and Ed-Fi's state summative categories, by the latest administration.
    assert defaults["accountability_assessments"][0]["namespace"] == "uri://doe.mass.edu/mcas"
    assert "Meeting Expectations" in defaults["accountability_assessments"][0]["proficient_levels"]
    assert {rule["assessment_category"] for rule in defaults["accountability_assessments"][1:]} >= {
        "State summative assessment 3-8 general", "State high school subject assessment"}
    assert defaults["result_choice"] == "latest"
    before = await footprint(zone_stack, zone_id)
    document = {**defaults, "subjects": ["ELA", "MATH"], "result_choice": "best_guess", "accountability_assessments": [
        {"assessment_identifier": "MCAS-G7-MATH"},  # no namespace
        {"namespace": "uri://doe.mass.edu/mcas", "assessment_category": "Benchmark test"},  # both
        {"assessment_category": "Benchmark test", "grades": ["13"], "proficient_levels": [""]},
        {"namespace": "uri://doe.mass.edu/mcas", "subjects": ["SCI"]},  # not a subject the zone tracks
    ]}

    response = await put_policy(zone_stack, zone_id, document, v1.headers["etag"])

    body = assert_problem(response, 422)
    reasons = {e["pointer"]: e["reason"] for e in body["errors"]}
    assert set(reasons) == {
        "/body/result_choice", "/body/accountability_assessments/0", "/body/accountability_assessments/1",
        "/body/accountability_assessments/2/grades/0", "/body/accountability_assessments/2/proficient_levels/0",
    }, body["errors"]
    assert reasons["/body/accountability_assessments/0"] == "assessment_identifier needs the namespace that defines it"
    assert reasons["/body/accountability_assessments/1"] == (
        "name the assessments either by namespace or by assessment_category, not both")
    assert reasons["/body/accountability_assessments/2/grades/0"] == "a grade is PK, K or 1 to 12"
    assert await footprint(zone_stack, zone_id) == before
    assert (await current(zone_stack, zone_id)).json()["version"] == 1

    # Once each entry is well formed, the entries are checked together: against the tracked subjects, each other,
    # and for at least one.
    for rules, reason in [
        ([{"namespace": "uri://doe.mass.edu/mcas", "subjects": ["SCI"]}],
         "accountability_assessments[0].subjects names SCI, which the zone does not track (subjects)"),
        ([{"assessment_category": "Benchmark test"}, {"assessment_category": " Benchmark test "}],
         "accountability_assessments[1] names the same results as accountability_assessments[0]"),
        ([], "name at least one assessment: with none, no student result would count for accountability"),
    ]:
        body = assert_problem(await put_policy(zone_stack, zone_id, {
            **defaults, "subjects": ["ELA", "MATH"], "accountability_assessments": rules}, v1.headers["etag"]), 422)
        assert [(e["pointer"], e["reason"]) for e in body["errors"]] == [("/body/accountability_assessments", reason)]
    assert await footprint(zone_stack, zone_id) == before

    # A valid change is adopted and announced whole.
    mcas_only = [{"namespace": "uri://doe.mass.edu/mcas", "proficient_levels": ["Meeting Expectations", "Exceeding Expectations"],
                  "grades": ["6", "7", "8"]}]
    adopted = await put_policy(zone_stack, zone_id, {**defaults, "accountability_assessments": mcas_only,
                                                     "result_choice": "highest_score"}, v1.headers["etag"])
    assert adopted.status_code == 201, adopted.text
    assert adopted.json()["document"]["accountability_assessments"] == [
        {**mcas_only[0], "assessment_identifier": None, "assessment_category": None, "subjects": None}]
    events = await published_events(zone_stack, PLANS, ZonePolicyChanged.ce_type, key=zone_id, where={"version": 2})
    assert events[0]["policy"]["result_choice"] == "highest_score"


async def test_the_documents_cross_checks_are_listed_with_its_field_errors(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    v1 = await current(zone_stack, zone_id)
    document = {**v1.json()["document"], "minimum_n": 0, "subgroups": ["high_needs"],
                "approaching_band": {**v1.json()["document"]["approaching_band"], "proficiency_rate": 150},
                "district_services": {"categories": ["facilities", "facilities"], "per_pupil_allocation": "-1"}}

    body = assert_problem(await put_policy(zone_stack, zone_id, document, v1.headers["etag"]), 422)
    assert {e["pointer"] for e in body["errors"]} == {
        "/body/minimum_n", "/body/subgroups", "/body/approaching_band", "/body/district_services/categories",
        "/body/district_services/per_pupil_allocation"}, body["errors"]
