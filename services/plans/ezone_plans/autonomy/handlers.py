"""Events that move a school's autonomy: reviews from the results service, partner vetting from the catalog."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from ezone_kit.auth import Principal
from ezone_kit.consumer import HandlerContext
from ezone_kit.uow import AuditLog
from ezone_schemas import PartnerVettingChanged, ReviewCompleted, SchoolTierChanged
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ..models import Base, PartnerRecord, ReviewRecord, School
from ..policy.service import current_policy
from .rules import decide_tier

_log = logging.getLogger("ezone.plans.autonomy")
_audit = AuditLog(Base.metadata)
REVIEW_ENGINE = Principal(subject="system:review-engine", role="admin", zone="*", schools=frozenset())


def _upsert_review_record() -> Any:
    # Built once: `excluded` makes a new alias of the table, with every column, each time it is asked for.
    table = ReviewRecord.__table__
    statement = pg_insert(table)
    # Only a newer version of a review replaces the one held: redelivery or reordering cannot roll it back.
    return statement.on_conflict_do_update(
        index_elements=[table.c.school_id, table.c.school_year, table.c.subject],
        set_={k: statement.excluded[k] for k in ("review_id", "review_version", "status", "completed_at", "reason")},
        where=table.c.review_version < statement.excluded.review_version,
    )


_UPSERT_REVIEW_RECORD = _upsert_review_record()


async def on_review_completed(ctx: HandlerContext) -> None:
    review: ReviewCompleted = ctx.event
    session = ctx.session
    school = await session.get(School, review.school_id, with_for_update=True)
    if school is None or school.zone_id != review.zone_id:
        _log.warning("review %s names school %s, unknown in zone %s; ignored", review.review_id, review.school_id, review.zone_id)
        return
    values = {
        "school_id": review.school_id, "school_year": review.school_year, "subject": review.subject.value,
        "review_id": review.review_id, "review_version": review.version, "status": review.status.value,
        "completed_at": review.completed_at, "reason": review.reason.sentence if review.reason is not None else None,
    }
    await session.execute(_UPSERT_REVIEW_RECORD, values)
    history: dict[str, dict[str, str]] = defaultdict(dict)
    reasons: dict[str, dict[str, str]] = defaultdict(dict)
    for record in (await session.execute(select(ReviewRecord).where(ReviewRecord.school_id == school.id))).scalars():
        history[record.school_year][record.subject] = record.status
        if record.reason is not None:
            reasons[record.school_year][record.subject] = record.reason
    policy_version, policy = await current_policy(session, school.zone_id)
    decision = decide_tier(history, policy, reasons)
    if decision.tier.value == school.tier:
        return
    before = {"tier": school.tier, "tier_reason": school.tier_reason}
    now = datetime.now(UTC)
    previous_tier = school.tier
    school.tier, school.tier_reason, school.tier_since = decision.tier.value, decision.reason, now
    ctx.emit(
        SchoolTierChanged(
            zone_id=school.zone_id, school_id=school.id, previous_tier=previous_tier, tier=decision.tier,
            reason=decision.reason, rule=decision.rule, policy_version=policy_version, changed_at=now,
            current=review.current,
        )
    )
    await _audit.record(
        session, actor=REVIEW_ENGINE, action="school.tier_changed", entity="school", entity_id=str(school.id),
        zone_id=school.zone_id, school_id=str(school.id), before=before,
        after={"tier": decision.tier.value, "tier_reason": decision.reason, "rule": decision.rule,
               "review_id": str(review.review_id), "policy_version": policy_version},
    )


async def on_partner_vetting_changed(ctx: HandlerContext) -> None:
    event: PartnerVettingChanged = ctx.event
    values = {"id": event.partner_id, "zone_id": event.zone_id, "name": event.name, "status": event.status.value,
              "expires_on": event.expires_on, "changed_at": event.changed_at}
    statement = pg_insert(PartnerRecord).values(values)
    await ctx.session.execute(
        statement.on_conflict_do_update(
            index_elements=[PartnerRecord.id],
            set_={k: statement.excluded[k] for k in values if k != "id"},
            where=PartnerRecord.changed_at < statement.excluded.changed_at,
        )
    )
