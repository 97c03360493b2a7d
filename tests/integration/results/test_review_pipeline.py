"""What asks for a review and what comes out: new results queue theirs in their own transaction, bursts coalesce,
duplicates have no second effect, approved plans and policy changes re-review with new versions, and several workers
share the queue without reviewing twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from ezone_results.review import queries
from ezone_results.review.worker import review_pending
from ezone_schemas import PlanApproved, ReviewCompleted
from ezone_schemas.plans import BudgetEnvelope
from sqlalchemy import text

from ezone.stack import wait_for
from tests.events import published_events
from tests.helpers import scalar, wait_for_count
from tests.integration.results.review_support import cohort, fresh_years, publish, results_posted, review_zone
from tests.integration.results.test_review_metrics import SCORES

MATH_TWELVE = cohort("s", SCORES)  # 75% proficient, average 514.17


async def review_events(stack, school: str, subject: str) -> int:
    return await scalar(stack, "SELECT count(*) FROM results.outbox WHERE ce_type = :t AND key = :k AND payload->>'subject' = :s",
                        t=ReviewCompleted.ce_type, k=school, s=subject)


async def test_a_burst_of_results_for_one_school_queues_one_review_naming_every_batch(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id)
    [school] = zone.schools
    _, year = fresh_years()
    await zone.results(school, year, "MATH", MATH_TWELVE)
    batches = [uuid.uuid4() for _ in range(20)]

    await zone.post(school, year, "MATH", *batches)

    review = await zone.wait_for_review(school, year, "MATH")
    assert {str(b) for b in batches} <= set(review["batch_ids"])
    await asyncio.sleep(0.5)  # time for a second review, were there one
    assert [r["version"] for r in await zone.reviews(school, year, "MATH")] == [1]
    assert await review_events(zone_stack, school, "MATH") == 1


async def test_results_posted_queues_its_review_only_if_its_transaction_commits(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id)
    [school] = zone.schools
    _, year = fresh_years()
    await zone.results(school, year, "MATH", MATH_TWELVE)
    kit = zone_stack.kits["results"]
    requests = text("SELECT count(*) FROM results.review_requests WHERE school_id = :s")
    async with kit.sessions() as session:
        transaction = await session.begin()
        await kit.outbox.add(session, [results_posted(zone_id, school, year, "MATH", uuid.uuid4())])
        assert (await session.execute(requests, {"s": school})).scalar() == 1  # queued by the event's own insert
        await transaction.rollback()
    assert await scalar(zone_stack, str(requests), s=school) == 0

    await zone.post(school, year, "MATH")
    await zone.wait_for_review(school, year, "MATH")


async def test_a_claim_leaves_queued_the_keys_reviewed_within_the_interval_by_any_worker(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id)
    [school] = zone.schools
    _, year = fresh_years()
    await zone.results(school, year, "MATH", MATH_TWELVE)
    await zone.review_of(school, year, "MATH")  # MATH reviewed just now; ELA never
    kit = zone_stack.kits["results"]
    math, ela = (uuid.UUID(school), year, "MATH"), (uuid.UUID(school), year, "ELA")
    async with kit.sessions() as session:
        transaction = await session.begin()  # rolled back: the running worker never sees these requests
        await queries.enqueue(session, zone_id, [math, ela], "results")
        assert [request.key for request in await queries.claim_requests(session, 10, min_interval_s=3600)] == [ela]
        assert [request.key for request in await queries.claim_requests(session, 10, min_interval_s=0)] == [math]
        await transaction.rollback()


async def test_a_key_reviewed_again_and_again_waits_twice_as_long_per_recent_review_up_to_the_maximum(
        zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id)
    [school] = zone.schools
    _, year = fresh_years()
    await zone.results(school, year, "MATH", MATH_TWELVE)
    await zone.review_of(school, year, "MATH")
    kit = zone_stack.kits["results"]
    math = (uuid.UUID(school), year, "MATH")
    key = {"s": school, "y": year}
    # The review's copies, `seconds` ago (the rows as they are, a later version each): a subject reviewed that often.
    copy = text("""INSERT INTO results.reviews SELECT (jsonb_populate_record(NULL::results.reviews, to_jsonb(r)
                   || jsonb_build_object('id', gen_random_uuid(), 'version', r.version + :n,
                                         'created_at', now() - make_interval(secs => :seconds)))).*
                   FROM results.reviews r WHERE school_id = :s AND school_year = :y AND subject = 'MATH'
                   AND version = 1""")

    async def claimable(session, max_interval_s: float) -> bool:
        await queries.enqueue(session, zone_id, [math], "results")
        claimed = [request.key for request in await queries.claim_requests(session, 10, 1.0, max_interval_s)]
        await session.execute(text("DELETE FROM results.review_requests WHERE school_id = :s"), {"s": school})
        return claimed == [math]

    async with kit.sessions() as session:
        transaction = await session.begin()  # rolled back: the running worker never sees these
        await session.execute(text("UPDATE results.reviews SET created_at = now() - interval '3 seconds'"
                                   " WHERE school_id = :s AND school_year = :y AND subject = 'MATH'"), key)
        assert await claimable(session, 8.0)  # one review in the last 8 s, 3 s ago: the minimum (1 s) has passed
        await session.execute(copy, {**key, "n": 1, "seconds": 5})
        await session.execute(copy, {**key, "n": 2, "seconds": 6})
        assert not await claimable(session, 8.0)  # three: it waits 4 s after the latest, 3 s ago
        assert await claimable(session, 2.0)  # at most 2 s
        await transaction.rollback()


async def test_results_posted_from_the_broker_is_not_reviewed_again(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id)
    [school] = zone.schools
    _, year = fresh_years()
    await zone.results(school, year, "MATH", MATH_TWELVE)
    await zone.post(school, year, "MATH")
    await zone.wait_for_review(school, year, "MATH")

    # The event as the broker delivers it (a replay, another service's copy): the review came with the results.
    await publish(zone_stack, results_posted(zone_id, school, year, "MATH", uuid.uuid4()))
    await zone.results(school, year, "ELA", cohort("e", SCORES))
    await zone.post(school, year, "ELA")
    await zone.wait_for_review(school, year, "ELA")
    await asyncio.sleep(0.5)
    assert [r["version"] for r in await zone.reviews(school, year, "MATH")] == [1]
    assert await review_events(zone_stack, school, "MATH") == 1


async def consumed(stack, ids: list[uuid.UUID]) -> None:
    await wait_for_count(stack, "SELECT count(*) FROM results.inbox WHERE event_id = ANY(:ids)", len(set(ids)), ids=ids)


def approved(zone_id: str, school: str, year: str, version: int, goals: list[dict]) -> PlanApproved:
    return PlanApproved(
        zone_id=zone_id, school_id=school, plan_id=uuid.uuid5(uuid.NAMESPACE_URL, school), school_year=year,
        version=version, goals=[{"goal_id": uuid.uuid4(), "baseline": None, "subgroup": "all_students", **g} for g in goals],
        budget=BudgetEnvelope(per_pupil_allocation=Decimal("9500"), total=Decimal("1000000"),
                              purchased_services_total=Decimal("50000")),
        approvals=4, returns=0, approved_at=datetime.now(UTC),
    )


async def test_an_approved_plan_re_reviews_the_school_against_its_goals(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id)
    [school] = zone.schools
    _, year = fresh_years()
    await zone.results(school, year, "MATH", [*MATH_TWELVE[:6], *cohort("hn", SCORES[6:], subgroups=("high_needs",))])
    first = await zone.review_of(school, year, "MATH")
    assert (first["status"], first["goals"], first["plan_version"]) == ("insufficient_data", [], None)

    goals = [
        {"metric": "proficiency_rate", "subject": "MATH", "annual_target": 70.0},  # 75: meeting
        {"metric": "average_scaled_score", "subject": "MATH", "annual_target": 516.0},  # 514.17, within 3: approaching
        {"metric": "median_growth_percentile", "subject": "MATH", "subgroup": "high_needs", "annual_target": 50.0},
        {"metric": "proficiency_rate", "subject": "ELA", "annual_target": 40.0},  # no ELA results: no ELA review
    ]
    await publish(zone_stack, approved(zone_id, school, year, 1, goals), source="/ezone/plans")
    second = await zone.wait_for_review(school, year, "MATH", version=2)

    assert [(g["metric"], g["subgroup"], g["target"], g["actual"], g["status"]) for g in second["goals"]] == [
        ("proficiency_rate", "all_students", 70.0, 75.0, "meeting"),
        ("average_scaled_score", "all_students", 516.0, 514.17, "approaching"),
        ("median_growth_percentile", "high_needs", 50.0, None, "insufficient_data"),  # 6 students: suppressed
    ]
    assert (second["status"], second["plan_version"]) == ("approaching", 1)
    [event] = await published_events(zone_stack, ReviewCompleted.topic, ReviewCompleted.ce_type, key=school,
                                     where={"version": 2})
    assert event["status"] == "approaching" and len(event["goals"]) == 3

    amendment = [{**goals[1], "annual_target": 514.0}]
    await publish(zone_stack, approved(zone_id, school, year, 2, amendment), source="/ezone/plans")
    third = await zone.wait_for_review(school, year, "MATH", version=3)
    assert (third["status"], third["plan_version"]) == ("meeting", 2)

    [late] = await publish(zone_stack, approved(zone_id, school, year, 1, goals), source="/ezone/plans")
    await consumed(zone_stack, [late])
    assert await scalar(zone_stack, "SELECT version FROM results.approved_plans WHERE school_id = :s", s=school) == 2
    assert await scalar(zone_stack, "SELECT count(*) FROM results.review_requests WHERE school_id = :s", s=school) == 0
    assert [r["version"] for r in await zone.reviews(school, year, "MATH")] == [1, 2, 3]
    assert await zone.reviews(school, year, "ELA") == []


async def test_a_policy_change_re_reviews_every_school_of_the_zone_under_the_new_version(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id, schools=2)
    previous, year = fresh_years()
    for school in zone.schools:
        await zone.results(school, previous, "MATH", cohort(f"{school}-p", [480.0 + i for i in range(12)]))  # 25%
        await zone.results(school, year, "MATH", cohort(f"{school}-c", SCORES))  # 75%: better than last year
    before = [await zone.review_of(school, year, "MATH") for school in zone.schools]
    assert [(r["status"], r["policy_version"]) for r in before] == [("meeting", 1)] * 2

    await zone.change_policy(minimum_n=13)

    for school in zone.schools:
        after = await zone.wait_for_review(school, year, "MATH", version=2)
        # Twelve students are now too few: the same results are insufficient data under policy version 2.
        assert (after["status"], after["policy_version"]) == ("insufficient_data", 2)
        assert after["metrics"][0]["suppressed"] is True
        # Last year had never been reviewed: it is now, under the new version too.
        assert (await zone.wait_for_review(school, previous, "MATH"))["policy_version"] == 2
    assert await scalar(zone_stack, "SELECT max(version) FROM results.zone_policies WHERE zone_id = :z", z=zone_id) == 2


async def test_workers_running_side_by_side_review_each_request_once(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id)
    [school] = zone.schools
    years = [year for _ in range(6) for year in fresh_years()]
    for year in years:
        await zone.results(school, year, "MATH", cohort(f"{year}-", SCORES))
    kit = zone_stack.kits["results"]
    async with kit.sessions() as session, session.begin():
        await queries.enqueue(session, zone_id, [(uuid.UUID(school), year, "MATH") for year in years], "results")

    # The service's own worker is running too: three workers take small batches from the same queue.
    while await asyncio.gather(review_pending(kit, limit=2), review_pending(kit, limit=2)) != [0, 0]:
        pass
    await wait_for_count(zone_stack, "SELECT count(*) FROM results.reviews WHERE school_id = :s", len(years), s=school)

    for year in years:
        assert [r["version"] for r in await zone.reviews(school, year, "MATH")] == [1]
    assert await review_events(zone_stack, school, "MATH") == len(years)


async def test_a_failed_review_leaves_its_requests_queued_and_nothing_half_done(zone_stack, zone_id, monkeypatch):
    zone = await review_zone(zone_stack, zone_id)
    [school] = zone.schools
    _, year = fresh_years()
    await zone.results(school, year, "MATH", MATH_TWELVE)
    kit = zone_stack.kits["results"]

    async def broken(*args, **kwargs):
        raise RuntimeError("the database went away mid-review")

    monkeypatch.setattr(queries, "standings", broken)  # every worker's batch fails after computing the figures
    async with kit.sessions() as session, session.begin():
        await queries.enqueue(session, zone_id, [(uuid.UUID(school), year, "MATH")], "results")

    async def a_batch_failed_here() -> bool:
        # The service's own worker may claim the request first (its batch fails the same way); it backs off after.
        try:
            await review_pending(kit)
        except RuntimeError:
            return True
        return False

    await wait_for(a_batch_failed_here, 10, what="a review batch failing")

    assert await scalar(zone_stack, "SELECT count(*) FROM results.review_requests WHERE school_id = :s", s=school) == 1
    assert await zone.reviews(school, year, "MATH") == []
    assert await scalar(zone_stack, "SELECT count(*) FROM results.computed_aggregates a JOIN results.schools s "
                                    "ON s.code = a.school_code WHERE s.id = :s", s=school) == 0
    monkeypatch.undo()
    assert (await zone.wait_for_review(school, year, "MATH"))["version"] == 1
    assert await review_events(zone_stack, school, "MATH") == 1


async def test_a_review_keeps_and_serves_its_reasons_and_announces_them_with_whether_it_may_alert(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id)
    [school] = zone.schools
    history = "1990-91"  # long before the policy's current school years: reviewed, but alerts no one
    await zone.results(school, history, "MATH", MATH_TWELVE)
    await zone.review_of(school, history, "MATH")
    _, year = fresh_years()
    await zone.results(school, year, "MATH", [*MATH_TWELVE[:6], *cohort("hn", SCORES[6:], subgroups=("high_needs",))])
    await zone.review_of(school, year, "MATH")
    await publish(zone_stack, approved(zone_id, school, year, 1, [
        {"metric": "average_scaled_score", "subject": "MATH", "annual_target": 516.0},  # 514.17: approaching
        {"metric": "proficiency_rate", "subject": "MATH", "subgroup": "high_needs", "annual_target": 50.0},  # 6 tested
    ]), source="/ezone/plans")
    await zone.wait_for_review(school, year, "MATH", version=2)

    board = zone_stack.auth("board", zone_id)
    served = await zone_stack.clients["results"].get(
        f"/zones/{zone_id}/schools/{school}/reviews/latest", params={"school_year": year, "subject": "MATH"}, headers=board)
    assert served.status_code == 200, served.text
    review = served.json()
    approaching = ("Approaching: an average scaled score of 514.2, 1.8 points below the goal of 516; the zone policy "
                   "calls up to 3 points below a goal approaching.")
    assert (review["status"], review["reason"]["rule"], review["reason"]["sentence"]) == (
        "approaching", "worst_goal", approaching)
    assert [(g["reason"]["rule"], g["reason"]["n_tested"], g["reason"]["minimum_n"]) for g in review["goals"]] == [
        ("goal_within_band", None, None), ("too_few_students", 6, 10)]
    [event] = await published_events(zone_stack, ReviewCompleted.topic, ReviewCompleted.ce_type, key=school,
                                     where={"version": 2, "school_year": year})
    assert (event["reason"], event["goals"], event["current"]) == (review["reason"], review["goals"], True)
    [old] = await published_events(zone_stack, ReviewCompleted.topic, ReviewCompleted.ce_type, key=school,
                                   where={"school_year": history})
    assert old["current"] is False
    assert old["reason"]["sentence"] == ("Not enough data: 75% proficient, but no 1989-90 proficiency to compare with "
                                         "and no plan goal with data.")
