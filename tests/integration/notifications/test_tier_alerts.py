"""A tier change is explained by the reviews that made it: the plans service keeps each review's reason sentence and
its school.tier_changed gives them after the policy rule, and the board's alert says them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from ezone_schemas import ReviewCompleted
from ezone_schemas.results import StatusReason
from ezone_schemas.vocabulary import ReviewStatus

from tests.events import publish_as
from tests.helpers import scalar
from tests.integration.plans.plan_helpers import plan_school

from .support import RESULTS_SOURCE, member_auth, wait_for_sql

# Published in this order: the third review makes the second year off track, and moves the tier.
SENTENCES = {
    ("2024-25", "ELA"): "Off track: 22% proficient, 8 points below last year's 30%; the zone policy calls a drop of "
                        "more than 5 points off track.",
    ("2024-25", "MATH"): "Off track: 18% proficient, 16 points below the goal of 34%; the zone policy calls more than "
                         "5 points below a goal off track.",
    ("2025-26", "MATH"): "Off track: 12% proficient, 22 points below the goal of 34%; the zone policy calls more than "
                         "5 points below a goal off track.",
}


def off_track(zone_id: str, school_id: str, year: str, subject: str) -> ReviewCompleted:
    because = StatusReason(rule="below_band_of_last_year", status=ReviewStatus.OFF_TRACK,
                           sentence=SENTENCES[year, subject])
    return ReviewCompleted(
        review_id=uuid.uuid4(), zone_id=zone_id, school_id=uuid.UUID(school_id), school_year=year, subject=subject,
        version=1, status=ReviewStatus.OFF_TRACK, reason=because, completed_at=datetime.now(UTC))


async def test_a_tier_change_alert_gives_the_reason_sentences_of_the_reviews_that_moved_the_tier(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    await wait_for_sql(zone_stack, "SELECT count(*) FROM notifications.board_members WHERE zone_id = :z", 7, z=zone_id)
    await publish_as(zone_stack, *(off_track(zone_id, school.school_id, year, subject) for year, subject in SENTENCES),
                     source=RESULTS_SOURCE)
    tier_alerts = ("SELECT count(*) FROM notifications.alerts WHERE zone_id = :z "
                   "AND source_type = 'school.tier_changed' AND recipient = :r")
    await wait_for_sql(zone_stack, tier_alerts, 1, z=zone_id, r=school.board[0])

    # The plans service keeps each review's sentence with its status.
    assert await scalar(zone_stack, "SELECT reason FROM plans.review_records WHERE school_id = :s AND "
                                    "school_year = '2025-26' AND subject = 'MATH'",
                        s=school.school_id) == SENTENCES["2025-26", "MATH"]
    inbox = await zone_stack.clients["notifications"].get(
        f"/zones/{zone_id}/alerts", params={"source_type": "school.tier_changed"},
        headers=member_auth(zone_stack, zone_id, school.board[0]))
    [alert] = inbox.json()["items"]
    rule = ("off track in 2024-25 and 2025-26; the zone policy moves a school to intensive support after 2 school "
            "years off track in a row")
    cited = " ".join(f"{'Math' if subject == 'MATH' else subject} {year}: {sentence}"
                     for (year, subject), sentence in SENTENCES.items())
    assert alert["body"].endswith(f"moved from standard autonomy to intensive support: {rule}. {cited}")
