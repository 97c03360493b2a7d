"""Evidence of impact computed from review.completed events, and recommendations for an off-track school."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from ezone_schemas import SchoolRegistered
from ezone_schemas.results import GoalFinding, IntegrityFlag

from tests.events import publish_as
from tests.integration.catalog.support import CatalogZone, assert_problem, catalog_zone, consumed_by_catalog, review

BEFORE, ENGAGED, LATEST = "2023-24", "2024-25", "2025-26"


async def engage(zone: CatalogZone, service_id: str, school_id: str, *steps: str) -> dict:
    """An order of the service for ENGAGED, taken through `steps` (confirm, fulfil, cancel)."""
    order = await zone.placed(service_id, 1, school_id=school_id, year=ENGAGED)
    for step in steps:
        response = await (zone.cancel(order) if step == "cancel" else zone.act(order["id"], step))
        assert response.status_code == 200, response.text
    return order


async def math_history(zone: CatalogZone, figures: dict[int, tuple[float | None, float | None, float | None, float | None]]) -> None:
    """MATH reviews for BEFORE and ENGAGED: school index → (proficiency before, after, growth before, after)."""
    reviews = []
    for index, (p0, p1, g0, g1) in figures.items():
        school_id = zone.school_ids[index]
        reviews += [review(zone.zone_id, school_id, BEFORE, "MATH", "approaching", proficiency=p0, growth=g0),
                    review(zone.zone_id, school_id, ENGAGED, "MATH", "approaching", proficiency=p1, growth=g1)]
    await zone.post_reviews(*reviews)


async def test_a_partners_evidence_is_the_change_in_its_schools_results_with_a_plain_caveat_for_few_schools(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id, schools=6)
    for school_id in zone.school_ids[:4]:
        await zone.approve_plan("100000.00", school_id, year=ENGAGED)
    partner_id = await zone.add_partner()
    coaching = await zone.partner_service(partner_id)
    await engage(zone, coaching["id"], zone.school_ids[0], "confirm")
    await engage(zone, coaching["id"], zone.school_ids[1], "confirm", "fulfil")
    await engage(zone, coaching["id"], zone.school_ids[2])  # only requested: no engagement
    await engage(zone, coaching["id"], zone.school_ids[3], "confirm", "cancel")  # cancelled: no engagement
    await math_history(zone, {0: (20.0, 30.0, 40.0, 55.0), 1: (30.0, 36.0, 45.0, 50.0), 2: (25.0, 26.0, None, None),
                              3: (22.0, 21.0, None, None), 4: (40.0, 42.0, None, None), 5: (35.0, None, None, None)})
    await zone.post_reviews(review(zone_id, zone.school_ids[0], BEFORE, "ELA", "meeting", proficiency=30.0),
                            review(zone_id, zone.school_ids[0], ENGAGED, "ELA", "meeting", proficiency=33.0))

    response = await zone.request("GET", f"/partners/{partner_id}/evidence", zone.staff("board"))
    assert response.status_code == 200, response.text
    evidence = response.json()
    assert (evidence["partner_name"], evidence["vetting_status"], evidence["vetted"]) == ("Pioneer Valley Math Collaborative", "vetted", True)
    assert (evidence["schools_engaged"], evidence["schools_with_outcomes"]) == (2, 2)
    assert evidence["caveat"] == ("Based on 2 schools — too few to distinguish the partner's effect from chance "
                                  "(at least 5 are needed).")
    ela, math = sorted(evidence["subjects"], key=lambda s: s["subject"])
    assert (math["subject"], math["schools"], math["proficiency_change"], math["growth_change"]) == ("MATH", 2, 8.0, 10.0)
    # The zone's other schools over the same years (the one whose figure was suppressed has none).
    assert (math["comparison_schools"], math["comparison_proficiency_change"], math["comparison_growth_change"]) == (3, 0.7, None)
    assert sorted((o["school_name"], o["proficiency_before"], o["proficiency_after"], o["growth_change"]) for o in math["outcomes"]) == [
        ("Forest Park Middle", 30.0, 36.0, 5.0),
        ("John J Duggan Academy", 20.0, 30.0, 15.0)]
    assert (ela["schools"], ela["proficiency_change"], ela["comparison_schools"]) == (1, 3.0, 0)
    assert ela["caveat"].startswith("Based on 1 school — too few")

    # A school sees the figures, not which other schools bought what.
    as_school = (await zone.request("GET", f"/partners/{partner_id}/evidence", zone.team(zone.school_ids[5]))).json()
    assert all(subject["outcomes"] is None for subject in as_school["subjects"])
    assert {k: v for k, v in as_school.items() if k != "subjects"} == {k: v for k, v in evidence.items() if k != "subjects"}
    listed = (await zone.request("GET", "/evidence", zone.partner(partner_id))).json()
    assert [e["partner_id"] for e in listed] == [partner_id] and listed[0]["subjects"][1]["outcomes"] is None


async def test_evidence_follows_the_newest_review_version_and_ignores_repeats_and_late_older_versions(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("100000.00", year=ENGAGED)
    partner_id = await zone.add_partner()
    await engage(zone, (await zone.partner_service(partner_id))["id"], zone.school_id, "confirm", "fulfil")
    await math_history(zone, {0: (20.0, 25.0, None, None)})

    async def math_change() -> float:
        evidence = (await zone.request("GET", f"/partners/{partner_id}/evidence", zone.staff())).json()
        return next(s["proficiency_change"] for s in evidence["subjects"] if s["subject"] == "MATH")

    assert await math_change() == 5.0
    corrected = review(zone_id, zone.school_id, ENGAGED, "MATH", "meeting", proficiency=31.0, version=2)
    await zone.post_reviews(corrected, corrected)
    assert await math_change() == 11.0
    await zone.post_reviews(review(zone_id, zone.school_id, ENGAGED, "MATH", "approaching", proficiency=25.0, version=1))
    assert await math_change() == 11.0
    assert await zone.scalar("SELECT review_version FROM catalog.review_facts WHERE school_id = :s AND school_year = :y",
                             s=zone.school_id, y=ENGAGED) == 2


async def test_a_review_naming_another_zones_school_is_ignored(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.post_reviews(review(f"{zone_id}-x", zone.school_id, ENGAGED, "MATH", "meeting", proficiency=50.0))
    assert await zone.scalar("SELECT count(*) FROM catalog.review_facts WHERE zone_id LIKE :z", z=f"{zone_id}%") == 0


async def test_a_review_that_arrives_before_its_school_counts_once_the_school_is_known(zone_stack, zone_id):
    # Schools come on the plans topic, reviews on the results topic: a consumer catching up can see the review first.
    zone = await catalog_zone(zone_stack, zone_id)
    early = str(uuid.uuid4())
    await zone.post_reviews(*off_track_in_math(zone_id, early))
    assert_problem(await zone.request("GET", f"/schools/{early}/recommendations", zone.staff()), 404)

    registered = SchoolRegistered(zone_id=zone_id, school_id=early, code="09999001", name="Early Middle", grade_span="6-8",
                                  enrollment=300, registered_at=datetime.now(UTC))
    await consumed_by_catalog(zone_stack, await publish_as(zone_stack, registered, source="/ezone/plans"))

    shown = (await zone.request("GET", f"/schools/{early}/recommendations", zone.staff())).json()
    assert (shown["school_year"], shown["status"]) == (LATEST, "off_track")


def off_track_in_math(zone_id: str, school_id: str) -> list:
    goals = [
        GoalFinding(goal_id=uuid.uuid4(), metric="proficiency_rate", subject="MATH", subgroup="all_students", target=34.0,
                    actual=22.0, status="off_track"),
        GoalFinding(goal_id=uuid.uuid4(), metric="median_growth_percentile", subject="MATH", subgroup="all_students",
                    target=50.0, actual=38.0, status="off_track"),
    ]
    flags = [IntegrityFlag(kind="low_participation", subgroup="all_students", summary="Participation 91% (below 95%).")]
    return [review(zone_id, school_id, LATEST, "MATH", "off_track", proficiency=22.0, growth=38.0, goals=goals, flags=flags),
            review(zone_id, school_id, LATEST, "ELA", "meeting", proficiency=41.0)]


async def recommendation_zone(zone_stack, zone_id) -> tuple[CatalogZone, dict[str, dict]]:
    """School 0 is off track in math; schools 1-3 engaged two math partners in ENGAGED, with different results."""
    zone = await catalog_zone(zone_stack, zone_id, schools=4)
    for school_id in zone.school_ids[1:]:
        await zone.approve_plan("100000.00", school_id, year=ENGAGED)
    services = {
        "strong": await zone.partner_service(await zone.add_partner("Pioneer Valley Math Collaborative")),
        "weak": await zone.partner_service(await zone.add_partner("Numeracy Now"), name="Numeracy coaching"),
        "provisional": await zone.partner_service(await zone.add_partner("Extended Day Partners", vetting="provisional"),
                                                  name="Extended learning time", category="extended_learning_time",
                                                  needs=["time", "math"]),
        "climate": await zone.partner_service(await zone.add_partner("Climate Partners"), name="Restorative practices",
                                              category="climate_sel", needs=["climate", "attendance"]),
        "revoked": await zone.partner_service(await zone.add_partner("Revoked Tutors", vetting="revoked"), name="Tutoring"),
        "district": await zone.add_service(name="Curriculum coaching", category="curriculum", needs=["curriculum", "math"]),
        "unmatched": await zone.add_service(needs=["assessment"]),
        "facilities": await zone.add_service(name="Facilities", category="facilities", non_optional=True, needs=["operations"]),
    }
    await engage(zone, services["strong"]["id"], zone.school_ids[1], "confirm", "fulfil")
    await engage(zone, services["strong"]["id"], zone.school_ids[2], "confirm")
    await engage(zone, services["weak"]["id"], zone.school_ids[3], "confirm", "fulfil")
    await math_history(zone, {1: (20.0, 30.0, None, None), 2: (30.0, 36.0, None, None), 3: (25.0, 27.0, None, None)})
    await zone.post_reviews(*off_track_in_math(zone_id, zone.school_id))
    return zone, services


async def test_an_off_track_school_is_recommended_what_meets_its_needs_ranked_by_evidence(zone_stack, zone_id):
    zone, services = await recommendation_zone(zone_stack, zone_id)

    response = await zone.request("GET", f"/schools/{zone.school_id}/recommendations", zone.team())
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["school_year"], body["status"], body["tier"], body["note"]) == (LATEST, "off_track", "standard", None)
    needs = {need["need"]: need["because"] for need in body["needs"]}
    assert list(needs) == ["math", "curriculum", "staffing", "time", "climate", "attendance"]
    assert "MATH proficiency_rate for all_students is off_track (22 against a target of 34)" in needs["curriculum"]
    assert needs["staffing"] == ["MATH median_growth_percentile for all_students is off_track (38 against a target of 50)"]
    assert needs["climate"] == ["MATH integrity flag low_participation: Participation 91% (below 95%)."]

    ranked = [(r["rank"], r["service"]["id"], r["evidence_score"]) for r in body["recommendations"]]
    assert ranked == [
        (1, services["strong"]["id"], 8.0),
        (2, services["weak"]["id"], 2.0),
        (3, services["district"]["id"], None),  # no evidence yet: by needs met, then name
        (4, services["provisional"]["id"], None),
        (5, services["climate"]["id"], None),
    ]
    top = body["recommendations"][0]
    assert (top["partner_name"], top["vetting_status"], top["matched_needs"]) == (
        "Pioneer Valley Math Collaborative", "vetted", ["math", "curriculum", "staffing"])
    assert (top["evidence"]["schools_with_outcomes"], top["evidence"]["caveat"][:19]) == (2, "Based on 2 schools ")
    assert top["evidence"]["subjects"][0]["outcomes"] is None  # a school does not see other schools' orders


async def test_an_intensive_support_school_is_recommended_vetted_partners_only(zone_stack, zone_id):
    zone, services = await recommendation_zone(zone_stack, zone_id)
    await zone.set_tier("intensive_support")
    body = (await zone.request("GET", f"/schools/{zone.school_id}/recommendations", zone.staff())).json()
    assert body["tier"] == "intensive_support"
    assert [r["service"]["id"] for r in body["recommendations"]] == [
        services["strong"]["id"], services["weak"]["id"], services["district"]["id"], services["climate"]["id"]]


async def test_a_school_meeting_its_goals_or_without_a_review_gets_no_recommendations_and_is_told_why(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id, schools=2)
    await zone.add_service(name="Curriculum coaching", category="curriculum", needs=["curriculum", "math"])
    first, second = zone.school_ids
    await zone.post_reviews(review(zone_id, first, "2024-25", "MATH", "off_track", proficiency=20.0),
                            review(zone_id, first, LATEST, "MATH", "meeting", proficiency=40.0))

    meeting = (await zone.request("GET", f"/schools/{first}/recommendations", zone.team(first))).json()
    assert (meeting["status"], meeting["recommendations"], meeting["needs"]) == ("meeting", [], [])
    assert meeting["note"] == f"The {LATEST} review is meeting: recommendations are for schools off track or approaching."
    unreviewed = (await zone.request("GET", f"/schools/{second}/recommendations", zone.team(second))).json()
    assert (unreviewed["status"], unreviewed["school_year"], unreviewed["recommendations"]) == (None, None, [])
    assert unreviewed["note"].startswith("No review yet")


async def test_recommendations_are_for_the_schools_team_and_the_zones_overseers_only(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id, schools=2)
    partner_id = await zone.add_partner()
    await zone.post_reviews(*off_track_in_math(zone_id, zone.school_id))
    path = f"/schools/{zone.school_id}/recommendations"

    for role in ("board", "district", "admin"):
        assert (await zone.request("GET", path, zone.staff(role))).status_code == 200
    assert_problem(await zone.request("GET", path, zone.team(zone.school_ids[1])), 403)
    assert_problem(await zone.request("GET", path, zone.partner(partner_id)), 403)
    assert_problem(await zone.request("GET", path, zone.stack.auth("sis", zone_id, [zone.school_id])), 403)
    assert_problem(await zone.request("GET", path, zone.stack.auth("district", f"{zone_id}-x")), 404)
    assert_problem(await zone.request("GET", f"/schools/{uuid.uuid4()}/recommendations", zone.staff()), 404)
