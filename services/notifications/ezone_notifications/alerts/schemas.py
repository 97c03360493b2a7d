"""What the inbox API returns."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel


class AlertState(StrEnum):
    ACTIVE = "active"  # not superseded: what the inbox shows
    UNREAD = "unread"
    READ = "read"
    ACKNOWLEDGED = "acknowledged"
    SUPERSEDED = "superseded"
    ALL = "all"


class AlertOut(BaseModel):
    id: uuid.UUID
    seq: int
    zone_id: str
    recipient: str
    audience: str
    severity: Literal["critical", "warning", "info"]
    title: str
    body: str
    links: dict[str, str]
    school_id: uuid.UUID | None
    source_event_id: uuid.UUID
    source_type: str
    trace_id: str | None
    created_at: datetime
    read_at: datetime | None
    acknowledged_at: datetime | None
    superseded_at: datetime | None


class AlertPage(BaseModel):
    items: list[AlertOut]
    unread: int
    next_before_seq: int | None
