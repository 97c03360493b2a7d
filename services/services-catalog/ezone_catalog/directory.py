"""The zone's schools as the catalog knows them (the kit's projection) and their autonomy tier."""

from __future__ import annotations

import uuid

from ezone_kit.problems import Problem
from ezone_schemas.vocabulary import AutonomyTier
from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import SchoolTier, schools


async def school_in_zone(session: AsyncSession, zone_id: str, school_id: uuid.UUID) -> RowMapping:
    school = (await session.execute(select(schools).where(schools.c.id == school_id, schools.c.zone_id == zone_id))).mappings().first()
    if school is None:
        raise Problem(404, f"School {school_id} was not found in zone {zone_id!r}.")
    return school


async def school_tier(session: AsyncSession, school_id: uuid.UUID) -> AutonomyTier:
    """`standard` until plans announces otherwise."""
    tier = await session.scalar(select(SchoolTier.tier).where(SchoolTier.school_id == school_id))
    return AutonomyTier(tier) if tier is not None else AutonomyTier.STANDARD
