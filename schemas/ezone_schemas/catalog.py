"""Events produced by the services-catalog service (topic ezone.catalog.v1)."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from pydantic import Field

from . import topics
from .base import Event
from .vocabulary import VettingStatus


class PartnerVettingChanged(Event):
    ce_type = "org.ezone.catalog.partner.vetting_changed.v1"
    topic = topics.CATALOG
    summary = "A partner organisation's vetting status changed (vetted, provisional, not vetted, revoked)."

    zone_id: str
    partner_id: UUID
    name: str
    status: VettingStatus
    expires_on: date | None = None
    vetted_by: str | None = None
    changed_at: datetime

    def partition_key(self) -> str:
        return self.zone_id  # zone-wide: not about one school
