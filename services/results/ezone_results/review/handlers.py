"""Events that ask for a review: a newly approved plan, a new zone policy.

Each handler only records what it learned and queues review requests (coalesced per school, year and
subject); the review worker does the reviewing, woken when the handler's transaction commits. New results
queue their own requests: the outbox row of each `results.posted` does, by a trigger, in the transaction that
stores the results (migration 0006), so a review never waits for this service's own event to come back from
the broker.
"""

from __future__ import annotations

from ezone_kit.consumer import HandlerContext
from ezone_schemas import PlanApproved, ZonePolicyChanged
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ..models import ApprovedPlan, ZonePolicyRecord
from . import queries


async def on_plan_approved(ctx: HandlerContext) -> None:
    event: PlanApproved = ctx.event
    values = {
        "school_id": event.school_id, "school_year": event.school_year, "zone_id": event.zone_id, "plan_id": event.plan_id,
        "version": event.version, "goals": [goal.model_dump(mode="json") for goal in event.goals],
        "approved_at": event.approved_at,
    }
    statement = pg_insert(ApprovedPlan).values(values)
    # The newest approved version wins: a late or redelivered older approval changes nothing and asks for nothing.
    stored = await ctx.session.execute(
        statement.on_conflict_do_update(
            index_elements=[ApprovedPlan.school_id, ApprovedPlan.school_year],
            set_={k: statement.excluded[k] for k in values if k not in ("school_id", "school_year")},
            where=ApprovedPlan.version < statement.excluded.version,
        ).returning(ApprovedPlan.version)
    )
    if stored.first() is None:
        return
    subjects = sorted({goal.subject.value for goal in event.goals})
    await queries.enqueue(ctx.session, event.zone_id, [(event.school_id, event.school_year, s) for s in subjects], "plan")


async def on_zone_policy_changed(ctx: HandlerContext) -> None:
    event: ZonePolicyChanged = ctx.event
    statement = pg_insert(ZonePolicyRecord).values(
        zone_id=event.zone_id, version=event.version, document=event.policy, changed_at=event.changed_at)
    await ctx.session.execute(statement.on_conflict_do_nothing())
    await queries.enqueue_zone(ctx.session, event.zone_id, "policy")


handlers = {PlanApproved: on_plan_approved, ZonePolicyChanged: on_zone_policy_changed}
