"""Events that ask for a review: a newly approved plan, a new zone policy, a school this service learns of (or
whose code changes) when the state's files already hold its figures.

Each handler only records what it learned and queues review requests (coalesced per school, year and
subject); the review worker does the reviewing, woken when the handler's transaction commits. New results
queue their own requests: the outbox row of each `results.posted` does, by a trigger, in the transaction that
stores the results (migration 0006), so a review never waits for this service's own event to come back from
the broker.
"""

from __future__ import annotations

from ezone_kit.consumer import HandlerContext
from ezone_kit.directory import school_directory_handlers
from ezone_schemas import PlanApproved, SchoolRegistered, SchoolUpdated, ZonePolicyChanged
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ..models import ApprovedPlan, ZonePolicyRecord, schools
from . import queries
from .engine import state_code

_store_in_directory = school_directory_handlers(schools)[SchoolRegistered]


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


async def on_school_registered_or_updated(ctx: HandlerContext) -> None:
    """A state file loaded before this service heard of the school (or under the code it has now) announced nothing
    for it: its figures on file are reviewed now. A repeat that changes no code asks for nothing."""
    event: SchoolRegistered | SchoolUpdated = ctx.event
    await queries.lock_school_codes(ctx.session, exclusive=True)
    known_code = (await ctx.session.execute(select(schools.c.code).where(schools.c.id == event.school_id))).scalar()
    await _store_in_directory(ctx)
    if known_code is None or state_code(known_code) != state_code(event.code):
        await queries.enqueue_school(ctx.session, event.school_id, "school")


handlers = {PlanApproved: on_plan_approved, ZonePolicyChanged: on_zone_policy_changed,
            SchoolRegistered: on_school_registered_or_updated, SchoolUpdated: on_school_registered_or_updated}
