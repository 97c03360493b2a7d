"""Every event the catalog service consumes, and what it does with it."""

from __future__ import annotations

import logging
from typing import Any

from ezone_kit.consumer import ConsumerSpec, HandlerContext
from ezone_kit.directory import school_directory_handlers
from ezone_kit.zones import ProjectedZones
from ezone_schemas import PlanApproved, ReviewCompleted, SchoolTierChanged, ZonePolicyChanged, topics
from ezone_schemas.vocabulary import Subgroup
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from .models import Base, Envelope, ReviewFact, SchoolTier, ZonePolicy, schools
from .orders.assignments import assign, assigner, lock_zone_assignments, published_non_optional

_log = logging.getLogger("ezone.catalog.handlers")


async def _known(ctx: HandlerContext, zone_id: str, school_id: object, what: str) -> bool:
    """Events about a school the zone does not have (or another zone's) change nothing here."""
    zone = await ctx.session.scalar(select(schools.c.zone_id).where(schools.c.id == school_id))
    if zone != zone_id:
        _log.warning("%s names school %s, unknown in zone %s; ignored", what, school_id, zone_id)
    return zone == zone_id


async def on_plan_approved(ctx: HandlerContext) -> None:
    """The approved plan's purchased-services total is the school-year's envelope (an amendment's newer version
    replaces it); every published non-optional service is then assigned to the school for that year."""
    event: PlanApproved = ctx.event
    if not await _known(ctx, event.zone_id, event.school_id, f"plan.approved {event.plan_id}"):
        return
    session = ctx.session
    await lock_zone_assignments(session, event.zone_id)
    values = {"school_id": event.school_id, "school_year": event.school_year, "zone_id": event.zone_id, "plan_id": event.plan_id,
              "plan_version": event.version, "amount": event.budget.purchased_services_total, "approved_at": event.approved_at,
              "planned_services": [item.model_dump(mode="json") for item in event.budget.planned_services]}
    statement = pg_insert(Envelope).values(values)
    await session.execute(statement.on_conflict_do_update(
        index_elements=[Envelope.school_id, Envelope.school_year],
        set_={k: statement.excluded[k] for k in ("plan_id", "plan_version", "amount", "approved_at", "planned_services")},
        where=Envelope.plan_version < statement.excluded.plan_version,
    ))
    envelope = (await session.execute(select(Envelope).where(
        Envelope.school_id == event.school_id, Envelope.school_year == event.school_year).with_for_update())).scalar_one()
    ctx.emit(*await assign(session, assigner(event.zone_id), await published_non_optional(session, event.zone_id),
                           [envelope]))


async def on_review_completed(ctx: HandlerContext) -> None:
    """Kept per school, year and subject (the newest version wins): partner evidence and recommendations read it.
    Kept too for a school not projected yet — schools and reviews come on different topics, so a consumer catching
    up can see the review first; readers show it once the school is known. One naming another zone's school
    changes nothing."""
    review: ReviewCompleted = ctx.event
    zone = await ctx.session.scalar(select(schools.c.zone_id).where(schools.c.id == review.school_id))
    if zone is not None and zone != review.zone_id:
        _log.warning("review %s names school %s of zone %s as zone %s's; ignored", review.review_id, review.school_id,
                     zone, review.zone_id)
        return
    everyone = next((m for m in review.metrics if m.subgroup == Subgroup.ALL_STUDENTS and not m.suppressed), None)
    values = {
        "school_id": review.school_id, "school_year": review.school_year, "subject": review.subject.value,
        "zone_id": review.zone_id, "review_id": review.review_id, "review_version": review.version,
        "status": review.status.value,
        "proficiency_rate": everyone.proficiency_rate if everyone else None,
        "median_growth_percentile": everyone.median_growth_percentile if everyone else None,
        "participation_rate": everyone.participation_rate if everyone else None,
        "goals": [goal.model_dump(mode="json") for goal in review.goals],
        "flags": [flag.model_dump(mode="json") for flag in review.flags],
        "state": review.state.model_dump(mode="json") if review.state is not None else None,
        "completed_at": review.completed_at,
    }
    await ctx.session.execute(_UPSERT_REVIEW_FACT, values)


def _newer_version_wins(table: Any, key: tuple[str, ...], version: str) -> Any:
    """An upsert on `key` that only a newer `version` changes: redelivery or reordering cannot roll a row back.
    Built once per table: `excluded` makes a new alias of the table, with every column, each time it is asked for."""
    statement = pg_insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c[column] for column in key],
        set_={column.name: statement.excluded[column.name] for column in table.c if column.name not in key},
        where=table.c[version] < statement.excluded[version],
    )


_UPSERT_REVIEW_FACT = _newer_version_wins(ReviewFact.__table__, ("school_id", "school_year", "subject"), "review_version")
_UPSERT_ZONE_POLICY = _newer_version_wins(ZonePolicy.__table__, ("zone_id",), "version")


async def on_zone_policy_changed(ctx: HandlerContext) -> None:
    """The zone's newest policy version (an older one arriving late changes nothing): evidence and budgets read it."""
    event: ZonePolicyChanged = ctx.event
    await ctx.session.execute(_UPSERT_ZONE_POLICY, {"zone_id": event.zone_id, "version": event.version,
                                                    "document": event.policy, "changed_at": event.changed_at})


async def on_tier_changed(ctx: HandlerContext) -> None:
    event: SchoolTierChanged = ctx.event
    if not await _known(ctx, event.zone_id, event.school_id, f"tier change of {event.school_id}"):
        return
    values = {"school_id": event.school_id, "zone_id": event.zone_id, "tier": event.tier.value, "changed_at": event.changed_at}
    statement = pg_insert(SchoolTier).values(values)
    await ctx.session.execute(statement.on_conflict_do_update(
        index_elements=[SchoolTier.school_id], set_={"tier": statement.excluded.tier, "changed_at": statement.excluded.changed_at},
        where=SchoolTier.changed_at < statement.excluded.changed_at,
    ))


consumers = [
    ConsumerSpec(
        name="events",
        topics=(topics.PLANS, topics.RESULTS),
        background=True,
        zones=ProjectedZones.of(Base.metadata),
        handlers={
            **school_directory_handlers(schools),
            PlanApproved: on_plan_approved,
            SchoolTierChanged: on_tier_changed,
            ReviewCompleted: on_review_completed,
            ZonePolicyChanged: on_zone_policy_changed,
        },
    ),
]
