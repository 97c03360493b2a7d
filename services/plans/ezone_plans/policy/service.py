"""Reading and adopting zone policy versions."""

from __future__ import annotations

from datetime import UTC, datetime

from ezone_kit.auth import Principal
from ezone_kit.preconditions import check_if_match
from ezone_kit.problems import Problem
from ezone_kit.uow import UnitOfWork
from ezone_schemas import ZonePolicyChanged
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import ZonePolicy
from ..registry.locks import lock_zone
from .document import PolicyDocument


def policy_etag(version: int) -> str:
    return f'"policy-v{version}"'


async def latest_policy(session: AsyncSession, zone_id: str) -> ZonePolicy:
    """The zone's current version; every registered zone has one (version 1 comes with the zone)."""
    row = (
        await session.execute(
            select(ZonePolicy).where(ZonePolicy.zone_id == zone_id).order_by(ZonePolicy.version.desc()).limit(1)
        )
    ).scalar_one_or_none()
    if row is None:
        raise Problem(404, f"Zone {zone_id!r} was not found.")
    return row


async def current_policy(session: AsyncSession, zone_id: str) -> tuple[int, PolicyDocument]:
    row = await latest_policy(session, zone_id)
    return row.version, PolicyDocument.model_validate(row.document)


async def policy_versions(session: AsyncSession, zone_id: str) -> list[ZonePolicy]:
    rows = (
        await session.execute(select(ZonePolicy).where(ZonePolicy.zone_id == zone_id).order_by(ZonePolicy.version.desc()))
    ).scalars().all()
    if not rows:
        raise Problem(404, f"Zone {zone_id!r} was not found.")
    return list(rows)


async def policy_version(session: AsyncSession, zone_id: str, version: int) -> ZonePolicy:
    row = await session.get(ZonePolicy, (zone_id, version))
    if row is None:
        raise Problem(404, f"Zone {zone_id!r} has no policy version {version}.")
    return row


async def replace_policy(uow: UnitOfWork, actor: Principal, zone_id: str, document: PolicyDocument,
                         if_match: str | None) -> tuple[ZonePolicy, bool]:
    """Adopt `document` as the next version, unless it is the current one: then nothing changes.
    Returns the current version afterwards and whether this call created it.

    The zone stays locked from the ETag check to the commit, so of two admins editing the same version
    only the first wins; the other gets 412 and rereads.
    """
    await lock_zone(uow.session, zone_id)
    latest = await latest_policy(uow.session, zone_id)
    # Compared as documents, so defaults written out or left out, 95 or 95.0, are the same policy.
    unchanged = PolicyDocument.model_validate(latest.document) == document
    check_if_match(if_match, policy_etag(latest.version), already_applied=unchanged)
    if unchanged:
        return latest, False
    policy = await adopt_policy(uow, actor, zone_id, document)
    await uow.commit()
    return policy, True


async def adopt_policy(uow: UnitOfWork, actor: Principal, zone_id: str, document: PolicyDocument) -> ZonePolicy:
    """Store `document` as the zone's next policy version and announce it."""
    await lock_zone(uow.session, zone_id)  # two adoptions at once would both pick the same next version
    latest = (
        await uow.session.execute(
            select(ZonePolicy.version).where(ZonePolicy.zone_id == zone_id).order_by(ZonePolicy.version.desc()).limit(1)
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
