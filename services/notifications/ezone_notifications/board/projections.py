"""What the board page knows of reviews and plans, projected from the results and plans services' events.

Every handler is an upsert that an older or repeated event cannot roll back: a redelivered event changes
nothing, and one replayed out of order (e.g. from a dead-letter topic) leaves the newer state in place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ezone_kit.consumer import HandlerContext
from ezone_schemas import PlanApproved, PlanReturned, PlanSubmitted, PlanVoteCast, ReviewCompleted
from ezone_schemas.vocabulary import Subgroup
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ..models import open_plans, plan_goals, plan_votes, school_reviews

DECIDED_APPROVED = "approved"
DECIDED_RETURNED = "returned"


async def record_review(ctx: HandlerContext) -> None:
    """review.completed → the school's newest review for its year and subject."""
    review: ReviewCompleted = ctx.event
    everyone = next((m for m in review.metrics if m.subgroup == Subgroup.ALL_STUDENTS), None)
    reported = everyone is not None and not everyone.suppressed
    values = {
        "school_id": review.school_id, "school_year": review.school_year, "subject": review.subject.value,
        "zone_id": review.zone_id, "review_id": review.review_id, "version": review.version,
        "status": review.status.value,
        "proficiency_rate": everyone.proficiency_rate if reported else None,
        "participation_rate": everyone.participation_rate if reported else None,
        "flags": [flag.model_dump(mode="json", include={"kind", "subgroup", "summary"}) for flag in review.flags],
        "completed_at": review.completed_at,
        "reasons": review_sentences(review),
    }
    await ctx.session.execute(_UPSERT_REVIEW, values)


def review_sentences(review: ReviewCompleted) -> list[str]:
    """The review's reason for its overall status, then each goal's that says something more, in order."""
    found = [review.reason] if review.reason is not None else []
    found += [goal.reason for goal in review.goals if goal.reason is not None]
    return list(dict.fromkeys(reason.sentence for reason in found))


def _upsert_review() -> Any:
    # Built once: `excluded` makes a new alias of the table, with every column, each time it is asked for.
    statement = pg_insert(school_reviews)
    return statement.on_conflict_do_update(
        index_elements=[school_reviews.c.school_id, school_reviews.c.school_year, school_reviews.c.subject],
        set_={key: statement.excluded[key] for key in _REVIEW_COLUMNS if key not in ("school_id", "school_year", "subject")},
        where=school_reviews.c.version < statement.excluded.version,
    )


_REVIEW_COLUMNS = ("school_id", "school_year", "subject", "zone_id", "review_id", "version", "status", "proficiency_rate",
                   "participation_rate", "flags", "completed_at", "reasons")
_UPSERT_REVIEW = _upsert_review()


async def record_plan_submitted(ctx: HandlerContext) -> None:
    """plan.submitted → a plan version awaiting the board's decision."""
    event: PlanSubmitted = ctx.event
    values = {
        "plan_id": event.plan_id, "version": event.version, "zone_id": event.zone_id, "school_id": event.school_id,
        "school_year": event.school_year, "amendment": event.amendment, "submitted_at": event.submitted_at,
    }
    statement = pg_insert(open_plans).values(values)
    # A decision replayed before its submission already made the row: keep its `decided`, correct the rest.
    await ctx.session.execute(statement.on_conflict_do_update(
        index_elements=[open_plans.c.plan_id, open_plans.c.version],
        set_={key: statement.excluded[key] for key in ("amendment", "submitted_at")},
    ))


async def record_plan_approved(ctx: HandlerContext) -> None:
    """plan.approved → the goals that now hold for the school year, and the version is no longer awaiting votes."""
    event: PlanApproved = ctx.event
    values = {
        "school_id": event.school_id, "school_year": event.school_year, "zone_id": event.zone_id,
        "plan_id": event.plan_id, "version": event.version,
        "goals": [goal.model_dump(mode="json") for goal in event.goals],
    }
    statement = pg_insert(plan_goals).values(values)
    # An amendment's approval (a newer version) replaces the goals; an older approval replayed later does not.
    await ctx.session.execute(statement.on_conflict_do_update(
        index_elements=[plan_goals.c.school_id, plan_goals.c.school_year],
        set_={key: statement.excluded[key] for key in ("zone_id", "plan_id", "version", "goals")},
        where=plan_goals.c.version < statement.excluded.version,
    ))
    await _decide(ctx, event, DECIDED_APPROVED, event.approved_at)


async def record_plan_returned(ctx: HandlerContext) -> None:
    """plan.returned → the version is no longer awaiting votes."""
    event: PlanReturned = ctx.event
    await _decide(ctx, event, DECIDED_RETURNED, event.returned_at)


async def _decide(ctx: HandlerContext, event: PlanApproved | PlanReturned, decided: str, decided_at: datetime) -> None:
    # Until its plan.submitted arrives (only if that event is replayed late), the decision time stands in for
    # the submission's facts; nothing shows them for a decided version.
    statement = pg_insert(open_plans).values(
        plan_id=event.plan_id, version=event.version, zone_id=event.zone_id, school_id=event.school_id,
        school_year=event.school_year, amendment=False, submitted_at=decided_at, decided=decided,
    )
    await ctx.session.execute(statement.on_conflict_do_update(
        index_elements=[open_plans.c.plan_id, open_plans.c.version], set_={"decided": decided},
    ))


async def record_vote(ctx: HandlerContext) -> None:
    """plan.vote_cast → the member's vote on a version; a changed vote replaces it, an older one replayed does not."""
    event: PlanVoteCast = ctx.event
    statement = pg_insert(plan_votes).values(
        plan_id=event.plan_id, version=event.version, subject=event.subject, decision=event.decision,
        cast_at=event.cast_at,
    )
    await ctx.session.execute(statement.on_conflict_do_update(
        index_elements=[plan_votes.c.plan_id, plan_votes.c.version, plan_votes.c.subject],
        set_={"decision": statement.excluded.decision, "cast_at": statement.excluded.cast_at},
        where=plan_votes.c.cast_at < statement.excluded.cast_at,
    ))
