"""Events produced by the plans service (topic ezone.plans.v1)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from . import topics
from .base import Event


class ZoneRegistered(Event):
    ce_type = "org.ezone.plans.zone.registered.v1"
    topic = topics.PLANS
    summary = "A zone was registered."

    zone_id: str = Field(description="The zone's slug, e.g. `springfield`.")
    name: str
    district: str
    registered_at: datetime


class SchoolRegistered(Event):
    ce_type = "org.ezone.plans.school.registered.v1"
    topic = topics.PLANS
    summary = "A school joined a zone; other services start their projection of it."

    zone_id: str
    school_id: UUID
    code: str = Field(description="The state's school code, e.g. the MCAS `school_code`.")
    name: str
    grade_span: str = Field(description="Lowest and highest grade, e.g. `6-8`.")
    enrollment: int | None = Field(None, ge=0)
    registered_at: datetime


class SchoolUpdated(Event):
    ce_type = "org.ezone.plans.school.updated.v1"
    topic = topics.PLANS
    summary = "A school's registry facts changed; carries the full new state."

    zone_id: str
    school_id: UUID
    code: str
    name: str
    grade_span: str
    enrollment: int | None = Field(None, ge=0)
    updated_at: datetime
