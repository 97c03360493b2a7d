"""Reading and adopting zone policy versions."""

from __future__ import annotations

from datetime import UTC, datetime

from ezone_kit.auth import Principal
from ezone_kit.problems import Problem
from ezone_kit.uow import UnitOfWork
from ezone_schemas import ZonePolicyChanged
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import ZonePolicy
from .document import PolicyDocument


async def current_policy(session: AsyncSession, zone_id: str) -> tuple[int, PolicyDocument]:
    row = (
        await session.execute(
            select(ZonePolicy).where(ZonePolicy.zone_id == zone_id).order_by(ZonePolicy.version.desc()).limit(1)
        )
    ).scalar_one_or_none()
    if row is None:
        raise Problem(404, f"Zone {zone_id!r} was not found.")
    return row.version, PolicyDocument.model_validate(row.document)


async def adopt_policy(uow: UnitOfWork, actor: Principal, zone_id: str, document: PolicyDocument) -> ZonePolicy:
    """Store `document` as the zone's next policy version and announce it."""
    latest = (
        await uow.session.execute(
            select(ZonePolicy.version).where(ZonePolicy.zone_id == zone_id).order_by(ZonePolicy.version.desc()).limit(1).with_for_update()
        )
    ).scalar_one_or_none()
    policy = ZonePolicy(zone_id=zone_id, version=(latest or 0) + 1, document=document.model_dump(mode="json"),
                        created_by=actor.subject, created_at=datetime.now(UTC))
    uow.session.add(policy)
    await uow.session.flush()
    uow.emit(ZonePolicyChanged(zone_id=zone_id, version=policy.version, policy=policy.document,
                               changed_by=actor.subject, changed_at=policy.created_at))
    await uow.audit(actor=actor, action="policy.adopted", entity="zone_policy", entity_id=f"{zone_id}/{policy.version}",
                    zone_id=zone_id, after=policy.document)
    return policy
