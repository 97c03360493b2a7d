"""Evidence of impact computed from review.completed events, judged against comparable schools by the zone policy,
and recommendations for an off-track school ranked by that verdict."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from ezone_schemas import SchoolRegistered, ZonePolicyChanged
from ezone_schemas.results import GoalFinding, IntegrityFlag, StateFigures

from tests.events import publish_as
from tests.helpers import wait_for_count
from tests.integration.catalog.support import CatalogZone, assert_problem, catalog_zone, consumed_by_catalog, review


def _school_year(start: int) -> str:
    return f"{start}-{(start + 1) % 100:02d}"


# Years relative to today, so the evidence stays inside the zone policy's window whenever the tests run.
_CURRENT = date.today().year if date.today().month >= 7 else date.today().year - 1
BEFORE, ENGAGED, LATEST = (_school_year(_CURRENT - 2), _school_year(_CURRENT - 1), _school_year(_CURRENT))
# Older than the default three-year window, whenever the tests run.
OLD_BEFORE, OLD_ENGAGED = "2014-15", "2015-16"


async def engage(zone: CatalogZone, service_id: str, school_id: str, *steps: str, year: str = ENGAGED) -> dict:
    """An order of the service for `year`, taken through `steps` (confirm, fulfil, cancel)."""
    order = await zone.placed(service_id, 1, school_id=school_id, year=year)
    for step in steps:
        response = await (zone.cancel(order) if step == "cancel" else zone.act(order["id"], step))
        assert response.status_code == 200, response.text
    return order


async def math_history(zone: CatalogZone, figures: dict[int, tuple[float | None, float | None, float | None, float | None]],
                       years: tuple[str, str] = (BEFORE, ENGAGED)) -> None:
    """MATH reviews for the two years: school index → (proficiency before, after, growth before, after)."""
    reviews = []
    for index, (p0, p1, g0, g1) in figures.items():
        school_id = zone.school_ids[index]
        reviews += [review(zone.zone_id, school_id, years[0], "MATH", "approaching", proficiency=p0, growth=g0),
                    review(zone.zone_id, school_id, years[1], "MATH", "approaching", proficiency=p1, growth=g1)]
    await zone.post_reviews(*reviews)


async def adopt_evidence_rules(zone: CatalogZone, **rules: object) -> int:
    """A new zone policy version (through the plans service) with these evidence rules; waits for the catalog."""
    plans = zone.stack.clients["plans"]
    admin = zone.stack.auth("admin", zone.zone_id)
    current = await plans.get(f"/zones/{zone.zone_id}/policy", headers=admin)
    document = current.json()["document"]
    document["evidence"] = {**document["evidence"], **rules}
    adopted = await plans.put(f"/zones/{zone.zone_id}/policy", json=document,
                              headers={**admin, "If-Match": current.headers["ETag"]})
    assert adopted.status_code == 201, adopted.text
    version = adopted.json()["version"]
    await wait_for_count(zone.stack, "SELECT count(*) FROM catalog.zone_policies WHERE zone_id = :z AND version = :v",
                         1, z=zone.zone_id, v=version)
    return version


def measure(evidence: dict, subject: str, name: str) -> dict:
    return next(m for m in evidence["measures"] if (m["subject"], m["measure"]) == (subject, name))


async def test_a_partners_evidence_names_each_outcomes_reviews_and_comparison_schools_with_a_plain_caveat(
        zone_stack, zone_id):
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
    assert (evidence["schools_engaged"], evidence["schools_with_outcomes"], evidence["categories"]) == (
        2, 2, ["professional_development"])
    assert evidence["caveat"] == ("Based on 2 schools — too few to distinguish the partner's effect from chance "
                                  "(the zone's policy needs at least 5).")
    assert (evidence["policy_version"], evidence["oldest_counted_school_year"]) == (1, _school_year(_CURRENT - 2))
    # Comparable: schools that did not use it, with a figure the year before within 10 points (Duggan at 20: Kiley
    # Academy at 22 and John F Kennedy at 25 — Kiley Prep's 40 is too far; Forest Park at 30 adds Kiley Prep).
    math = measure(evidence, "MATH", "proficiency_rate")
    assert (math["verdict"], math["schools"], math["change"], math["comparison_schools"]) == (
        "too_few_to_tell", 1, 6.0, 3)
    outcomes = {o["school_name"]: o for o in math["outcomes"]}
    duggan, forest_park = outcomes["John J Duggan Academy"], outcomes["Forest Park Middle"]
    assert {c["school_name"] for c in duggan["comparison_schools"]} == {"John F Kennedy Middle", "Kiley Academy"}
    assert {c["school_name"] for c in forest_park["comparison_schools"]} == {
        "John F Kennedy Middle", "Kiley Academy", "Kiley Prep"}
    # Duggan has two comparable schools, fewer than the policy's 3: its outcome is shown, not counted.
    assert (duggan["change"], duggan["comparison_change"], duggan["difference"], duggan["counted"]) == (
        10.0, 0.0, None, False)
    assert (forest_park["change"], forest_park["comparison_change"], forest_park["difference"]) == (6.0, 0.7, 5.3)
    assert forest_park["reviews"] == [
        {"review_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{zone.school_ids[1]}/{year}/MATH")), "version": 1,
         "school_year": year} for year in (BEFORE, ENGAGED)]
    assert math["sentence"] == (
        "MATH proficiency rate: too few schools to tell — at 1 school that used it the figure rose 6.0 points on "
        "average, at 3 schools comparable to them it rose 0.7 points: a difference of +5.3 points; the zone's policy "
        "needs at least 5 schools for a verdict; 1 outcome had fewer than 3 comparable schools in the zone and no "
        "state figures to fall back on, and is not counted.")
    growth = measure(evidence, "MATH", "median_growth_percentile")  # nobody else has growth figures: no comparison
    assert (growth["verdict"], growth["schools"], growth["change"]) == ("too_few_to_tell", 0, 10.0)
    ela = measure(evidence, "ELA", "proficiency_rate")
    assert (ela["schools"], ela["change"], ela["comparison_schools"]) == (0, 3.0, 0)

    # A school sees the figures, not which other schools bought what, nor the comparison schools.
    as_school = (await zone.request("GET", f"/partners/{partner_id}/evidence", zone.team(zone.school_ids[5]))).json()
    assert all(m["outcomes"] is None for m in as_school["measures"])
    def aggregates(answer: dict) -> dict:
        return {k: v for k, v in answer.items() if k != "measures"}

    assert aggregates(as_school) == aggregates(evidence)
    listed = (await zone.request("GET", "/evidence", zone.partner(partner_id))).json()
    assert [e["partner_id"] for e in listed] == [partner_id] and listed[0]["measures"][0]["outcomes"] is None


async def test_evidence_follows_the_newest_review_version_and_ignores_repeats_and_late_older_versions(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("100000.00", year=ENGAGED)
    partner_id = await zone.add_partner()
    await engage(zone, (await zone.partner_service(partner_id))["id"], zone.school_id, "confirm", "fulfil")
    await math_history(zone, {0: (20.0, 25.0, None, None)})

    async def math_outcome() -> dict:
        evidence = (await zone.request("GET", f"/partners/{partner_id}/evidence", zone.staff())).json()
        return measure(evidence, "MATH", "proficiency_rate")["outcomes"][0]

    assert (await math_outcome())["change"] == 5.0
    corrected = review(zone_id, zone.school_id, ENGAGED, "MATH", "meeting", proficiency=31.0, version=2)
    await zone.post_reviews(corrected, corrected)
    assert (await math_outcome())["change"] == 11.0
    await zone.post_reviews(review(zone_id, zone.school_id, ENGAGED, "MATH", "approaching", proficiency=25.0, version=1))
    outcome = await math_outcome()
    assert (outcome["change"], [r["version"] for r in outcome["reviews"]]) == (11.0, [1, 2])
    assert await zone.scalar("SELECT review_version FROM catalog.review_facts WHERE school_id = :s AND school_year = :y",
                             s=zone.school_id, y=ENGAGED) == 2


async def test_with_too_few_comparable_schools_in_the_zone_a_school_is_compared_with_the_states_change(
        zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id, schools=3)
    await zone.approve_plan("100000.00", zone.school_ids[0], year=ENGAGED)
    partner_id = await zone.add_partner()
    await engage(zone, (await zone.partner_service(partner_id))["id"], zone.school_ids[0], "confirm")
    # Duggan rose 20 -> 30; Kiley Academy (22) is comparable, John F Kennedy (60) too far: one school, fewer than the
    # policy's 3. The state rose 40 -> 43 in math proficiency (its growth figures are not published).
    state = {BEFORE: StateFigures(proficiency_rate=40.0), ENGAGED: StateFigures(proficiency_rate=43.0)}
    await zone.post_reviews(*(
        review(zone_id, zone.school_ids[index], year, "MATH", "approaching", proficiency=figure, growth=45.0)
        .model_copy(update={"state": state[year]})
        for index, figures in enumerate(((20.0, 30.0), (22.0, 24.0), (60.0, 61.0)))
        for year, figure in zip((BEFORE, ENGAGED), figures, strict=True)))

    evidence = (await zone.request("GET", f"/partners/{partner_id}/evidence", zone.staff("board"))).json()
    math = measure(evidence, "MATH", "proficiency_rate")
    [outcome] = math["outcomes"]
    assert (outcome["comparison"], outcome["state_before"], outcome["state_after"]) == ("state", 40.0, 43.0)
    assert (outcome["comparison_change"], outcome["difference"], outcome["counted"]) == (3.0, 7.0, True)
    assert outcome["comparison_schools"] == []
    assert (math["schools"], math["state_outcomes"], math["comparison_schools"], math["difference"]) == (1, 1, 0, 7.0)
    assert math["sentence"].startswith(
        "MATH proficiency rate: too few schools to tell — at 1 school that used it the figure rose 10.0 points on "
        "average, statewide (the state's figures, as there were fewer than 3 comparable schools in the zone) it rose "
        "3.0 points: a difference of +7.0 points;")
    # No state growth figures: that outcome stays uncompared, and says why.
    growth = measure(evidence, "MATH", "median_growth_percentile")
    assert growth["outcomes"][0]["comparison"] == "zone" and not growth["outcomes"][0]["counted"]


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

    assert body["ranking_rule"].startswith("Services are ranked by their evidence in the subjects the school needs help")
    ranked = [(r["rank"], r["service"]["id"], r["evidence"]["verdict"], r["rank_group"])
              for r in body["recommendations"]]
    # Two schools, one school, none: too few to tell with no decline ranks with no evidence, by needs met, then name.
    assert ranked == [
        (1, services["strong"]["id"], "too_few_to_tell", 3),
        (2, services["weak"]["id"], "too_few_to_tell", 3),
        (3, services["district"]["id"], "no_evidence_yet", 3),
        (4, services["provisional"]["id"], "no_evidence_yet", 3),
        (5, services["climate"]["id"], "no_evidence_yet", 3),
    ]
    top = body["recommendations"][0]
    assert (top["partner_name"], top["vetting_status"], top["matched_needs"]) == (
        "Pioneer Valley Math Collaborative", "vetted", ["math", "curriculum", "staffing"])
    assert top["answers"][:2] == ["the MATH review is off_track",
                                  "MATH proficiency_rate for all_students is off_track (22 against a target of 34)"]
    assert (top["evidence"]["schools_with_outcomes"], top["evidence"]["caveat"][:19]) == (2, "Based on 2 schools ")
    assert top["evidence"]["measures"][0]["outcomes"] is None  # a school does not see other schools' orders
    assert top["reasons"][0].startswith("It meets 3 of the school's 6 needs (math, curriculum, staffing), answering "
                                        "these findings: the MATH review is off_track; ")
    assert top["reasons"][2].startswith("Ranked 1 of 5: its evidence is too few schools to tell (n = 0), group 3 of 5 ")


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


async def two_math_partners(zone: CatalogZone) -> tuple[str, dict, dict]:
    """A math partner schools used (three needs met) and one nobody has used yet (one need met)."""
    used = await zone.add_partner("Numeracy Now")
    coaching = await zone.partner_service(used, name="Numeracy coaching")
    untried = await zone.partner_service(await zone.add_partner("Valley Math Tutors"), name="Math tutoring",
                                         category="staffing_support", needs=["math"])
    return used, coaching, untried


async def test_a_partner_whose_schools_improved_less_than_comparable_schools_is_worse_and_ranks_below_an_untried_one(
        zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id, schools=6)
    assert await adopt_evidence_rules(zone, minimum_schools=3) == 2  # the zone's policy, carried to the catalog
    partner_id, coaching, untried = await two_math_partners(zone)
    for school_id in zone.school_ids[:3]:
        await zone.approve_plan("100000.00", school_id, year=ENGAGED)
        await engage(zone, coaching["id"], school_id, "confirm")
    # Its schools rose 4, 5 and 6 points; comparable schools (within 10 points the year before) rose 9, 10 and 11.
    await math_history(zone, {0: (30.0, 34.0, None, None), 1: (32.0, 37.0, None, None), 2: (34.0, 40.0, None, None),
                              3: (31.0, 40.0, None, None), 4: (33.0, 43.0, None, None), 5: (35.0, 46.0, None, None)})
    school = zone.school_ids[3]
    await zone.post_reviews(*off_track_in_math(zone_id, school))

    evidence = (await zone.request("GET", f"/partners/{partner_id}/evidence", zone.staff("board"))).json()
    math = measure(evidence, "MATH", "proficiency_rate")
    assert (evidence["verdict"], evidence["policy_version"], evidence["caveat"]) == ("worse_than_comparison", 2, None)
    assert (math["schools"], math["change"], math["comparison_change"], math["difference"]) == (3, 5.0, 10.0, -5.0)
    assert (math["spread"], math["interval_low"], math["interval_high"], math["comparison_schools"]) == (
        1.0, -7.5, -2.5, 3)
    assert sorted(o["difference"] for o in math["outcomes"]) == [-6.0, -5.0, -4.0]

    body = (await zone.request("GET", f"/schools/{school}/recommendations", zone.team(school))).json()
    ranked = [(r["service"]["id"], r["evidence"]["verdict"], r["rank_group"]) for r in body["recommendations"]]
    assert ranked == [(untried["id"], "no_evidence_yet", 3), (coaching["id"], "worse_than_comparison", 5)]
    first, worse = body["recommendations"]
    assert worse["reasons"] == [
        "It meets 3 of the school's 6 needs (math, curriculum, staffing), answering these findings: the MATH review is "
        "off_track; MATH proficiency_rate for all_students is off_track (22 against a target of 34); MATH "
        "median_growth_percentile for all_students is off_track (38 against a target of 50).",
        "Evidence: MATH proficiency rate: worse than comparable schools — at 3 schools that used it the figure rose "
        "5.0 points on average, at 3 schools comparable to them it rose 10.0 points: a difference of -5.0 points (95% "
        "interval -7.5 to -2.5, spread 1.0); the zone's policy calls a difference better or worse when its 95% "
        "interval excludes 0 and it is at least 2.0 points.",
        "Ranked 2 of 2: its evidence is worse than comparable schools (n = 3), group 5 of 5 (worse than comparable "
        "schools); within the group, services meeting more of the school's needs come first (3 here), then those "
        "with more schools behind their evidence, then by name.",
    ]
    assert first["reasons"][1] == "Evidence: No evidence yet: no school has used it."
    assert first["evidence"]["caveat"] == ("No school has had a confirmed or fulfilled order of it yet: there is no "
                                           "evidence either way.")


async def test_one_school_is_too_few_to_tell_and_its_decline_ranks_below_a_partner_nobody_has_tried(
        zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id, schools=4)
    partner_id, coaching, untried = await two_math_partners(zone)
    await zone.approve_plan("100000.00", zone.school_id, year=ENGAGED)
    await engage(zone, coaching["id"], zone.school_id, "confirm", "fulfil")
    await math_history(zone, {0: (30.0, 22.5, None, None), 1: (28.0, 29.0, None, None), 2: (32.0, 33.0, None, None),
                              3: (31.0, 32.0, None, None)})
    school = zone.school_ids[3]
    await zone.post_reviews(*off_track_in_math(zone_id, school))

    evidence = (await zone.request("GET", f"/partners/{partner_id}/evidence", zone.staff())).json()
    math = measure(evidence, "MATH", "proficiency_rate")
    assert (evidence["verdict"], evidence["verdict_schools"], evidence["behind_comparison"]) == (
        "too_few_to_tell", 1, True)
    assert (math["change"], math["comparison_change"], math["difference"], math["spread"]) == (-7.5, 1.0, -8.5, None)
    assert evidence["caveat"] == ("Based on 1 school — too few to distinguish the partner's effect from chance (the "
                                  "zone's policy needs at least 5).")

    body = (await zone.request("GET", f"/schools/{school}/recommendations", zone.team(school))).json()
    assert [(r["service"]["id"], r["rank_group"]) for r in body["recommendations"]] == [
        (untried["id"], 3), (coaching["id"], 4)]
    assert body["recommendations"][1]["reasons"][2].startswith(
        "Ranked 2 of 2: its evidence is too few schools to tell (n = 1), group 4 of 5 (too few schools to tell, with "
        "the schools that used it behind comparable schools)")


async def test_evidence_and_findings_older_than_the_policys_window_are_marked_stale(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id, schools=4)
    partner_id = await zone.add_partner("Impact Tutors")
    coaching = await zone.partner_service(partner_id)
    await zone.approve_plan("100000.00", zone.school_id, year=OLD_ENGAGED)
    await engage(zone, coaching["id"], zone.school_id, "confirm", year=OLD_ENGAGED)
    await math_history(zone, {0: (20.0, 30.0, None, None), 1: (22.0, 23.0, None, None), 2: (24.0, 25.0, None, None),
                              3: (26.0, 27.0, None, None)}, years=(OLD_BEFORE, OLD_ENGAGED))

    math = measure((await zone.request("GET", f"/partners/{partner_id}/evidence", zone.staff())).json(), "MATH",
                   "proficiency_rate")
    assert (math["schools"], math["stale_outcomes"], math["outcomes"][0]["stale"], math["outcomes"][0]["counted"]) == (
        0, 1, True, False)
    assert "1 outcome older than the zone's 3-year evidence window is marked stale and not counted" in math["sentence"]

    # A school whose latest review is years old (Impact Prep's 2021-22) is told its findings are stale.
    old = zone.school_ids[1]
    body = (await zone.request("GET", f"/schools/{old}/recommendations", zone.team(old))).json()
    assert (body["school_year"], body["findings_stale"], len(body["recommendations"])) == (OLD_ENGAGED, True, 1)
    assert body["note"] == (f"Stale findings: the school's latest review is of {OLD_ENGAGED}, older than the zone's "
                            f"3-year evidence window (from {BEFORE}); these recommendations answer findings that may "
                            "no longer hold.")


def with_participation(reviewed, rate: float):
    reviewed.metrics[0].participation_rate = rate
    return reviewed


async def test_a_culture_partner_is_judged_on_participation_not_test_scores_and_is_not_measured_without_data(
        zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id, schools=4)
    partner_id = await zone.add_partner("Common Ground Restorative Practices")
    restorative = await zone.partner_service(partner_id, name="Restorative practices and SEL coaching",
                                             category="climate_sel", needs=["climate", "attendance"])
    await zone.approve_plan("100000.00", zone.school_id, year=ENGAGED)
    await engage(zone, restorative["id"], zone.school_id, "confirm")
    figures = {0: (30.0, 22.5, 90.0, 94.0), 1: (28.0, 29.0, 91.0, 92.0), 2: (32.0, 33.0, 92.0, 92.0),
               3: (31.0, 32.0, 93.0, 94.0)}
    await zone.post_reviews(*[with_participation(review(zone_id, zone.school_ids[i], year, "MATH", "approaching",
                                                        proficiency=proficiency), rate)
                              for i, (p0, p1, r0, r1) in figures.items()
                              for year, proficiency, rate in ((BEFORE, p0, r0), (ENGAGED, p1, r1))])

    evidence = (await zone.request("GET", f"/partners/{partner_id}/evidence", zone.staff())).json()
    assert [(m["subject"], m["measure"]) for m in evidence["measures"]] == [("MATH", "participation_rate")]
    participation = evidence["measures"][0]
    assert (participation["verdict"], participation["change"], participation["difference"]) == (
        "too_few_to_tell", 4.0, 3.3)
    assert [(n["measure"], n["reason"]) for n in evidence["not_measured"]] == [
        ("chronic_absence_rate",
         "The zone has no chronic absence rate figures yet: not measured, and not replaced by a test-score verdict."),
        ("discipline_rate",
         "The zone has no discipline rate figures yet: not measured, and not replaced by a test-score verdict.")]

    # A zone that judges culture work only on what it has no figures for: not measured, never a test-score verdict.
    await adopt_evidence_rules(zone, measures={"climate_sel": ["chronic_absence_rate", "discipline_rate"]})
    evidence = (await zone.request("GET", f"/partners/{partner_id}/evidence", zone.staff())).json()
    assert (evidence["verdict"], evidence["measures"]) == ("not_measured", [])
    assert evidence["sentence"] == ("Not measured: the zone's policy judges this work on chronic absence rate, "
                                    "discipline rate, and the zone has no such figures; it is not judged on test "
                                    "scores instead.")


async def test_the_newest_zone_policy_wins_and_an_older_version_arriving_late_or_again_changes_nothing(
        zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    partner_id = await zone.add_partner()

    async def judged_by() -> int | None:
        return (await zone.request("GET", f"/partners/{partner_id}/evidence", zone.staff())).json()["policy_version"]

    assert await judged_by() == 1
    assert await adopt_evidence_rules(zone, minimum_schools=2) == 2
    late = ZonePolicyChanged(zone_id=zone_id, version=1, policy={"evidence": {"minimum_schools": 9}},
                             changed_by="admin", changed_at=datetime.now(UTC))
    await consumed_by_catalog(zone_stack, await publish_as(zone_stack, late, late, source="/ezone/plans"))
    assert await judged_by() == 2
    assert await zone.scalar("SELECT document->'evidence'->>'minimum_schools' FROM catalog.zone_policies "
                             "WHERE zone_id = :z", z=zone_id) == "2"
