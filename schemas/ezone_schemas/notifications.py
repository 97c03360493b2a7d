"""Events produced by the notifications service (topic ezone.notifications.v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from . import topics
from .base import Event

Severity = Literal["critical", "warning", "info"]


class AlertRaised(Event):
    ce_type = "org.ezone.notifications.alert.raised.v1"
    topic = topics.NOTIFICATIONS
    summary = "An alert was raised for one recipient from one source event (exactly once per recipient and event)."

    alert_id: UUID = Field(description="Derived from the source event id and the recipient.")
    zone_id: str
    recipient: str = Field(description="The member's token subject.")
    audience: Literal["board", "school_team"]
    severity: Severity
    title: str
    school_id: UUID | None = None
    source_event_id: UUID
    source_type: str = Field(description="The source event's short type, e.g. `review.completed`.")
    rule_names: list[str] = Field(description="The zone's rules that matched the source event for this recipient.")
    raised_at: datetime


class AlertDelivered(Event):
    ce_type = "org.ezone.notifications.alert.delivered.v1"
    topic = topics.NOTIFICATIONS
    summary = "An alert (or a daily digest of alerts) reached a push channel: an email was accepted, a webhook answered 2xx."

    delivery_id: UUID = Field(description="Receivers de-duplicate by it; it is the webhook's `Ezone-Delivery` header.")
    zone_id: str
    recipient: str | None = Field(None, description="Null for a delivery to the zone's own webhook endpoint.")
    channel: Literal["email", "webhook"]
    alert_ids: list[UUID] = Field(description="One alert, or every alert summarised by a digest.")
    school_id: UUID | None = None
    attempts: int = Field(ge=1)
    delivered_at: datetime
