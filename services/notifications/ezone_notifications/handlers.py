"""Every event the notifications service consumes, and what it does with it."""

from __future__ import annotations

from collections.abc import Sequence

from ezone_kit.consumer import ConsumerSpec, Handler, HandlerContext
from ezone_kit.directory import school_directory_handlers
from ezone_kit.zones import ProjectedZones
from ezone_schemas import (
    BoardMemberChanged,
    OrderRejected,
    PlannedPurchasesAtRisk,
    PlanApproved,
    PlanReturned,
    PlanSubmitted,
    PlanVoteCast,
    ReviewCompleted,
    SchoolTeamChanged,
    SchoolTierChanged,
    ZoneRegistered,
    topics,
)

from .alerts.service import raise_alerts
from .board.projections import (
    record_plan_approved,
    record_plan_returned,
    record_plan_submitted,
    record_review,
    record_vote,
)
from .models import metadata, schools
from .recipients.handlers import on_board_member_changed, on_school_team_changed
from .rules.service import seed_default_rules


def all_of(*steps: Handler) -> Handler:
    """One event, several effects, one transaction."""

    async def handler(ctx: HandlerContext) -> None:
        for step in steps:
            await step(ctx)

    return handler


async def on_zone_registered(ctx: HandlerContext) -> None:
    event: ZoneRegistered = ctx.event
    await seed_default_rules(ctx.session, event.zone_id)


async def alert(ctx: HandlerContext) -> None:
    await raise_alerts(ctx)


handlers: dict[type, Handler] = {
    **school_directory_handlers(schools),
    ZoneRegistered: on_zone_registered,
    BoardMemberChanged: on_board_member_changed,
    SchoolTeamChanged: on_school_team_changed,
    ReviewCompleted: all_of(record_review, alert),
    PlanSubmitted: all_of(record_plan_submitted, alert),
    PlanApproved: all_of(record_plan_approved, alert),
    PlanReturned: all_of(record_plan_returned, alert),
    PlanVoteCast: record_vote,
    SchoolTierChanged: alert,
    OrderRejected: alert,
    PlannedPurchasesAtRisk: alert,
}

consumers: Sequence[ConsumerSpec] = [
    ConsumerSpec(name="events", topics=(topics.PLANS, topics.RESULTS, topics.CATALOG), handlers=handlers,
                 zones=ProjectedZones.of(metadata)),
]
