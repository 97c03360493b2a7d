"""What the rest of the service learns of an alert just raised (e.g. to plan its deliveries)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

SEVERITIES = ("critical", "warning", "info")  # most urgent first


@dataclass(frozen=True)
class RaisedAlert:
    id: uuid.UUID
    zone_id: str
    recipient: str  # the member's token subject
    audience: str  # board | school_team
    severity: str  # one of SEVERITIES
    title: str
    body: str
    school_id: uuid.UUID | None
    source_event_id: uuid.UUID
    source_type: str
    trace_id: str | None
    created_at: datetime
    links: dict[str, str] = field(default_factory=dict)  # e.g. {"review": "http://…", "school": "http://…"}
