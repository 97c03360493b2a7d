"""Earned autonomy on the real broker: review.completed events (as the results service publishes
them) move a school's tier, once, and the plans service announces it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from ezone_schemas import PartnerVettingChanged, ReviewCompleted, SchoolTierChanged

from ezone.stack import wait_for
from tests.events import publish_as, published_events
from tests.helpers import register_school, register_zone, scalar, wait_for_count


async def publish(stack, *events, event_ids: list[uuid.UUID] | None = None, source: str = "/ezone/results") -> list[uuid.UUID]:
    return await publish_as(stack, *events, source=source, event_ids=event_ids)


async def wait_until_consumed(stack, ids: list[uuid.UUID]) -> None:
    await wait_for_count(stack, "SELECT count(*) FROM plans.inbox WHERE event_id = ANY(:ids)", len(set(ids)), ids=ids)


def review(zone_id: str, school_id: str, year: str, subject: str, status: str, version: int = 1) -> ReviewCompleted:
    return ReviewCompleted(
        review_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{school_id}/{year}/{subject}"), zone_id=zone_id, school_id=school_id,
        school_year=year, subject=subject, version=version, status=status, completed_at=datetime.now(UTC),
    )


async def tier_of(stack, school_id: str) -> str:
    return await scalar(stack, "SELECT tier FROM plans.schools WHERE id = :id", id=school_id)


async def zone_with_school(stack, zone_id: str) -> str:
    await register_zone(stack, zone_id)
    return (await register_school(stack, zone_id))["id"]


async def test_two_years_meeting_goals_earn_full_autonomy_announced_once_on_the_broker(zone_stack, zone_id):
    school_id = await zone_with_school(zone_stack, zone_id)
    reviews = [review(zone_id, school_id, year, subject, "meeting")
               for year in ("2023-24", "2024-25") for subject in ("ELA", "MATH")]
    await publish(zone_stack, *reviews)

    async def is_full() -> bool:
        return await tier_of(zone_stack, school_id) == "full"

    await wait_for(is_full, 20, what="the tier to become full")
    [event] = await published_events(zone_stack, SchoolTierChanged.topic, SchoolTierChanged.ce_type, key=school_id)
    assert (event["previous_tier"], event["tier"]) == ("standard", "full")
    assert event["reason"] == ("meeting its goals in 2023-24 and 2024-25; the zone policy gives full autonomy after 2 "
                               "school years meeting in a row")
    assert event["policy_version"] == 1
    audit = await scalar(zone_stack, "SELECT after->>'rule' FROM plans.audit_log WHERE action = 'school.tier_changed' AND school_id = :s",
                         s=school_id)
    assert audit == "tiers.full_after_years_meeting = 2"


async def test_redelivered_reviews_change_the_tier_once(zone_stack, zone_id):
    school_id = await zone_with_school(zone_stack, zone_id)
    reviews = [review(zone_id, school_id, year, subject, "off_track")
               for year in ("2023-24", "2024-25") for subject in ("ELA", "MATH")]
    ids = [uuid.uuid4() for _ in reviews]
    await publish(zone_stack, *reviews, event_ids=ids)
    await publish(zone_stack, *reviews, event_ids=ids)  # the same events again

    await wait_until_consumed(zone_stack, ids)
    assert await tier_of(zone_stack, school_id) == "intensive_support"
    assert await scalar(zone_stack, "SELECT count(*) FROM plans.outbox WHERE ce_type = :t AND key = :k",
                        t=SchoolTierChanged.ce_type, k=school_id) == 1


async def test_an_older_review_version_arriving_late_does_not_roll_back_the_newer_one(zone_stack, zone_id):
    school_id = await zone_with_school(zone_stack, zone_id)
    newer = review(zone_id, school_id, "2024-25", "MATH", "meeting", version=2)
    older = review(zone_id, school_id, "2024-25", "MATH", "off_track", version=1)
    await wait_until_consumed(zone_stack, await publish(zone_stack, newer, older))
    status = await scalar(zone_stack, "SELECT status || '/' || review_version FROM plans.review_records WHERE school_id = :s",
                          s=school_id)
    assert status == "meeting/2"


async def test_a_review_for_a_school_of_another_zone_changes_nothing_there(zone_stack, zone_id):
    school_id = await zone_with_school(zone_stack, zone_id)
    foreign = [review("some-other-zone", school_id, year, "MATH", "meeting") for year in ("2023-24", "2024-25")]
    await wait_until_consumed(zone_stack, await publish(zone_stack, *foreign))
    assert await scalar(zone_stack, "SELECT count(*) FROM plans.review_records WHERE school_id = :s", s=school_id) == 0
    assert await tier_of(zone_stack, school_id) == "standard"


async def test_partner_vetting_changes_are_kept_newest_first(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    partner_id = uuid.uuid4()

    def vetting(status: str, at: datetime) -> PartnerVettingChanged:
        return PartnerVettingChanged(zone_id=zone_id, partner_id=partner_id, name="Empower Schools", status=status,
                                     expires_on=date(2027, 6, 30), changed_at=at)

    ids = await publish(zone_stack, vetting("vetted", datetime(2026, 3, 1, tzinfo=UTC)),
                        vetting("provisional", datetime(2026, 1, 1, tzinfo=UTC)), source="/ezone/catalog")
    await wait_until_consumed(zone_stack, ids)
    assert await scalar(zone_stack, "SELECT status FROM plans.partners WHERE id = :p", p=partner_id) == "vetted"
