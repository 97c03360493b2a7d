"""budget.planned_purchases_at_risk from the catalog alerts the school's team and every seated board member."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from ezone_schemas import PlannedPurchasesAtRisk

from tests.events import publish_as

from .support import member_auth, seed_zone, sql, wait_for_sql

ALERTS_OF = "FROM notifications.alerts WHERE source_event_id = :e"


async def test_a_school_budget_left_short_of_its_plans_purchases_alerts_the_team_and_the_board(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    event = PlannedPurchasesAtRisk(
        zone_id=zone_id, school_id=zone.school_id, school_year="2025-26", plan_id=uuid.uuid4(), plan_version=1,
        envelope=Decimal("65513"), committed=Decimal("30000"), remaining=Decimal("35513"),
        planned_outstanding=Decimal("65513"), short_by=Decimal("30000"), cause="assignment", order_id=uuid.uuid4(),
        service_id=uuid.uuid4(), service_name="Curriculum licence", amount=Decimal("30000"),
        raised_at=datetime.now(UTC))
    [event_id] = await publish_as(zone_stack, event, source="/ezone/services-catalog")
    await wait_for_sql(zone_stack, f"SELECT count(*) {ALERTS_OF}", 5, e=event_id)

    rows = await sql(zone_stack, f"SELECT recipient, severity, audience {ALERTS_OF}", e=event_id)
    assert {(r.recipient, r.severity, r.audience) for r in rows} == {
        *((m, "warning", "board") for m in zone.board), *((m, "warning", "school_team") for m in zone.team)}
    response = await zone_stack.clients["notifications"].get(f"/zones/{zone_id}/alerts",
                                                             headers=member_auth(zone_stack, zone_id, zone.board[0]))
    [alert] = response.json()["items"]
    assert alert["title"] == "John J Duggan Academy: 2025-26 plan's purchases no longer fit its services budget"
    assert "$35,513.00 left" in alert["body"] and "$30,000.00 short" in alert["body"]
