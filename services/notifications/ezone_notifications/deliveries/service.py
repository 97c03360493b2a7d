"""An alert's deliveries and their attempts, for the alert's API."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from .planning import delivery_id

_COLUMNS = """d.id, d.channel, d.endpoint_id, d.address, d.status, d.attempts, d.next_attempt_at, d.last_status_code,
               d.last_error, d.created_at, d.sent_at, d.digest_id, d.recipient IS NULL AS zone_endpoint"""

# The alert's own deliveries, then the digest emails it went out in (found by their derived ids: no index needed).
_DELIVERIES = text(f"""
    SELECT {_COLUMNS} FROM notifications.deliveries d WHERE d.alert_id = :alert ORDER BY d.created_at, d.id
""")
_BY_ID = text(f"SELECT {_COLUMNS} FROM notifications.deliveries d WHERE d.id = ANY(:ids) ORDER BY d.created_at, d.id"
              ).bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))

_ATTEMPTS = text("""
    SELECT delivery_id, attempt, started_at, duration_ms, outcome, status_code, error
    FROM notifications.delivery_attempts WHERE delivery_id = ANY(:ids) ORDER BY delivery_id, attempt, id
""").bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))


async def deliveries_of(session: AsyncSession, alert_id: uuid.UUID, *, include_zone_endpoints: bool = False) -> list[dict[str, Any]]:
    """Each delivery of the alert (a `digested` email row, then the digest email itself), with every recorded attempt.
    A zone endpoint's delivery carries one alert of the event for the whole zone; it is listed only when asked
    (for staff who may see zone endpoints)."""
    rows = [row for row in await session.execute(_DELIVERIES, {"alert": alert_id})
            if include_zone_endpoints or not row.zone_endpoint]
    digest_emails = [delivery_id(row.digest_id, "email") for row in rows if row.digest_id is not None]
    if digest_emails:
        rows += list(await session.execute(_BY_ID, {"ids": digest_emails}))
    attempts: dict[uuid.UUID, list[dict[str, Any]]] = {row.id: [] for row in rows}
    if rows:
        for attempt in await session.execute(_ATTEMPTS, {"ids": list(attempts)}):
            attempts[attempt.delivery_id].append({
                "attempt": attempt.attempt, "started_at": attempt.started_at, "duration_ms": attempt.duration_ms,
                "outcome": attempt.outcome, "status_code": attempt.status_code, "error": attempt.error,
            })
    return [{
        "id": row.id, "channel": row.channel, "scope": "zone" if row.zone_endpoint else "member",
        "endpoint_id": row.endpoint_id, "address": row.address, "status": row.status, "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at if row.status == "pending" else None,
        "last_status_code": row.last_status_code, "last_error": row.last_error, "created_at": row.created_at,
        "sent_at": row.sent_at, "digest_id": row.digest_id, "attempt_log": attempts[row.id],
    } for row in rows]
