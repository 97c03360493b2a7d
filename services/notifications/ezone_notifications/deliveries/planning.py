"""Which deliveries an alert gets, decided in the transaction that raises it.

Set-based, because one event can raise thousands of alerts: the recipients' preferences and webhook endpoints are
read in one statement, the rows are computed here, and one INSERT … SELECT FROM unnest(…) writes them. Delivery ids
are derived from what they deliver, and the insert skips ids it already has, so planning the same alert twice
changes nothing.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, TEXT, TIMESTAMP, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from ..alerts.records import SEVERITIES, RaisedAlert
from ..config import Settings
from ..preferences.rules import Preferences, default_preferences, preferences_from_row
from .timing import quiet_hours_end

_DELIVERY_NAMESPACE = uuid.UUID("0b7f3c52-8e1d-4a6f-9c3b-5d2e7a9f1c48")
PENDING, HELD = "pending", "held_for_digest"


def delivery_id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(_DELIVERY_NAMESPACE, "/".join(map(str, parts)))


@dataclass(frozen=True)
class Endpoint:
    id: uuid.UUID
    zone_id: str
    owner: str | None  # None: the zone's endpoint
    url: str
    severities: frozenset[str]


@dataclass(frozen=True)
class Planned:
    id: uuid.UUID
    zone_id: str
    alert_id: uuid.UUID
    recipient: str | None
    channel: str
    endpoint_id: uuid.UUID | None
    address: str
    status: str
    created_at: datetime  # the alert's: which day's digest it belongs to
    next_attempt_at: datetime | None  # None: at once


def plan(raised: Sequence[RaisedAlert], preferences: Mapping[tuple[str, str], Preferences], defaults: Preferences,
         endpoints: Iterable[Endpoint]) -> list[Planned]:
    """The deliveries of `raised`: each recipient's email and own endpoints per their preferences (quiet hours defer
    all but critical; info emails may wait for the digest), and per source event one delivery to each zone endpoint."""
    own: dict[tuple[str, str], list[Endpoint]] = defaultdict(list)
    zone_wide: dict[str, list[Endpoint]] = defaultdict(list)
    for endpoint in endpoints:
        if endpoint.owner is None:
            zone_wide[endpoint.zone_id].append(endpoint)
        else:
            own[(endpoint.zone_id, endpoint.owner)].append(endpoint)

    planned: list[Planned] = []
    by_event: dict[tuple[str, uuid.UUID], list[RaisedAlert]] = defaultdict(list)
    for alert in raised:
        by_event[(alert.zone_id, alert.source_event_id)].append(alert)
        member = preferences.get((alert.zone_id, alert.recipient), defaults)
        deferred = None
        if alert.severity != "critical" and member.quiet_hours is not None:
            deferred = quiet_hours_end(alert.created_at, member.time_zone, *member.quiet_hours)

        def push(channel: str, endpoint_id: uuid.UUID | None, address: str, status: str = PENDING) -> None:
            planned.append(Planned(
                id=delivery_id(alert.id, channel, endpoint_id or ""), zone_id=alert.zone_id, alert_id=alert.id,
                recipient=alert.recipient, channel=channel, endpoint_id=endpoint_id, address=address, status=status,
                created_at=alert.created_at, next_attempt_at=None if status == HELD else deferred))

        email = member.email_address(alert.recipient)
        if email and member.pushes(alert.severity, "email"):
            push("email", None, email, HELD if member.held_for_digest(alert.severity) else PENDING)
        if member.pushes(alert.severity, "webhook"):
            for endpoint in own[(alert.zone_id, alert.recipient)]:
                if alert.severity in endpoint.severities:
                    push("webhook", endpoint.id, endpoint.url)

    for (zone_id, event_id), alerts in by_event.items():
        for endpoint in zone_wide[zone_id]:
            # One delivery per event, carrying its most urgent alert the endpoint takes (ties: the lowest id, so a
            # repeat picks the same one).
            wanted = [a for a in alerts if a.severity in endpoint.severities]
            if not wanted:
                continue
            alert = min(wanted, key=lambda a: (SEVERITIES.index(a.severity), str(a.id)))
            planned.append(Planned(
                id=delivery_id(event_id, "webhook", endpoint.id), zone_id=zone_id, alert_id=alert.id, recipient=None,
                channel="webhook", endpoint_id=endpoint.id, address=endpoint.url, status=PENDING,
                created_at=alert.created_at, next_attempt_at=None))
    return planned


# The recipients' preferences and the webhook endpoints that may take their alerts, in one statement: a row is one
# or the other (`endpoint_id` null: preferences).
_PREFERENCES_AND_ENDPOINTS = text("""
    SELECT p.zone_id, p.subject, p.email, p.channels, p.timezone, p.quiet_hours_start, p.quiet_hours_end, p.digest,
           p.digest_time, NULL::uuid AS endpoint_id, NULL AS owner, NULL AS url, NULL::jsonb AS severities
    FROM notifications.preferences p
    JOIN unnest(:member_zones, :subjects) AS m(zone_id, subject) ON p.zone_id = m.zone_id AND p.subject = m.subject
    UNION ALL
    SELECT e.zone_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, e.id, e.owner, e.url, e.severities
    FROM notifications.webhook_endpoints e
    WHERE e.active AND e.zone_id = ANY(:zones)
      AND (e.owner IS NULL OR (e.zone_id, e.owner) IN (SELECT * FROM unnest(:member_zones, :subjects)))
""").bindparams(bindparam("zones", type_=ARRAY(TEXT)), bindparam("member_zones", type_=ARRAY(TEXT)),
                bindparam("subjects", type_=ARRAY(TEXT)))

_INSERT = text("""
    INSERT INTO notifications.deliveries
        (id, zone_id, alert_id, recipient, channel, endpoint_id, address, status, created_at, next_attempt_at)
    SELECT id, zone_id, alert_id, recipient, channel, endpoint_id, address, status, created_at, coalesce(due, now())
    FROM unnest(:ids, :zones, :alerts, :recipients, :channels, :endpoints, :addresses, :statuses, :created, :due)
        AS d(id, zone_id, alert_id, recipient, channel, endpoint_id, address, status, created_at, due)
    ON CONFLICT (id) DO NOTHING
""").bindparams(
    bindparam("ids", type_=ARRAY(UUID(as_uuid=True))), bindparam("zones", type_=ARRAY(TEXT)),
    bindparam("alerts", type_=ARRAY(UUID(as_uuid=True))), bindparam("recipients", type_=ARRAY(TEXT)),
    bindparam("channels", type_=ARRAY(TEXT)), bindparam("endpoints", type_=ARRAY(UUID(as_uuid=True))),
    bindparam("addresses", type_=ARRAY(TEXT)), bindparam("statuses", type_=ARRAY(TEXT)),
    bindparam("created", type_=ARRAY(TIMESTAMP(timezone=True))), bindparam("due", type_=ARRAY(TIMESTAMP(timezone=True))),
)


_CANCEL = text("""
    UPDATE notifications.deliveries SET status = 'cancelled'
    WHERE alert_id = ANY(:alerts) AND status IN ('pending', 'held_for_digest')
""").bindparams(bindparam("alerts", type_=ARRAY(UUID(as_uuid=True))))


async def plan_deliveries(session: AsyncSession, settings: Settings, raised: Sequence[RaisedAlert]) -> None:
    """Insert the deliveries of alerts just raised, in the caller's transaction (two statements, whatever the count)."""
    if not raised:
        return
    members = sorted({(alert.zone_id, alert.recipient) for alert in raised})
    zones = sorted({zone for zone, _ in members})
    member_zones, subjects = [zone for zone, _ in members], [subject for _, subject in members]
    preferences: dict[tuple[str, str], Preferences] = {}
    endpoints: list[Endpoint] = []
    for row in await session.execute(_PREFERENCES_AND_ENDPOINTS,
                                     {"zones": zones, "member_zones": member_zones, "subjects": subjects}):
        if row.endpoint_id is None:
            preferences[(row.zone_id, row.subject)] = preferences_from_row(row)
        else:
            endpoints.append(Endpoint(row.endpoint_id, row.zone_id, row.owner, row.url, frozenset(row.severities)))
    rows = plan(raised, preferences, default_preferences(settings), endpoints)
    if rows:
        await session.execute(_INSERT, {
            "ids": [r.id for r in rows], "zones": [r.zone_id for r in rows], "alerts": [r.alert_id for r in rows],
            "recipients": [r.recipient for r in rows], "channels": [r.channel for r in rows],
            "endpoints": [r.endpoint_id for r in rows], "addresses": [r.address for r in rows],
            "statuses": [r.status for r in rows], "created": [r.created_at for r in rows],
            "due": [r.next_attempt_at for r in rows],
        })


async def cancel_deliveries(session: AsyncSession, alert_ids: Sequence[uuid.UUID]) -> None:
    """A superseded alert's deliveries that have not gone out do not go out. One already in flight still arrives,
    and is recorded as sent."""
    if alert_ids:
        await session.execute(_CANCEL, {"alerts": list(alert_ids)})
