"""The member's inbox: `/zones/{zone_id}/alerts` — list, filter, read, acknowledge, and a live stream (SSE).

Every caller sees only their own alerts; another zone's do not exist for them (404).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from ezone_kit.auth import ensure_zone
from ezone_kit.problems import Problem
from ezone_kit.service import KitDep, SessionDep
from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from ..deliveries.service import deliveries_of
from ..session import MemberPrincipal
from . import inbox
from .schemas import AlertOut, AlertPage, AlertState
from .stream import AlertHub

router = APIRouter(prefix="/zones/{zone_id}/alerts", tags=["alerts"])
KEEPALIVE_S = 15
MAX_SEQ = 2**63 - 1  # alerts.seq is a bigint


def _last_seq(last_event_id: str | None) -> int | None:
    """The seq a reconnecting client last received, from the id this stream gave it; anything else (a non-ASCII
    digit, a number no seq reaches) is no id of this stream, and the client catches up on nothing."""
    if last_event_id and last_event_id.isascii() and last_event_id.isdigit() and int(last_event_id) <= MAX_SEQ:
        return int(last_event_id)
    return None


@router.get("", response_model=AlertPage, summary="The caller's alerts, newest first")
async def list_alerts(
    zone_id: str, principal: MemberPrincipal, session: SessionDep,
    state: AlertState = AlertState.ACTIVE,
    severity: Annotated[list[str] | None, Query(description="critical, warning or info; repeat for several")] = None,
    school_id: uuid.UUID | None = None,
    source_type: str | None = Query(None, description="e.g. review.completed"),
    before_seq: int | None = Query(None, description="The page's `next_before_seq`: older alerts than that."),
    after_seq: int | None = Query(None, description="Newer alerts than that: a client polling for new alerts passes the "
                                                    "highest `seq` it holds (with `before_seq` to page through many)."),
    limit: int = Query(50, ge=1, le=500),
) -> AlertPage:
    ensure_zone(principal, zone_id)
    unknown = set(severity or ()) - {"critical", "warning", "info"}
    if unknown:
        raise Problem(422, f"Unknown severity {', '.join(sorted(unknown))}; use critical, warning or info.")
    return await inbox.page(session, zone_id, principal.subject, state=state, severities=severity, school_id=school_id,
                            source_type=source_type, before_seq=before_seq, after_seq=after_seq,
                            limit=limit)


async def _events(request: Request, kit: Any, zone_id: str, recipient: str, last_seq: int | None) -> AsyncIterator[ServerSentEvent]:
    hub: AlertHub = getattr(request.app.state, "alert_hub", None) or AlertHub(kit.settings.database_url)
    request.app.state.alert_hub = hub
    async with hub.subscribe(zone_id, recipient) as queue:
        # Subscribed before catching up, so nothing committed in between is missed; seq de-duplicates.
        sent_up_to = last_seq or 0
        if last_seq is not None:
            async with kit.sessions() as session:
                for alert in await inbox.newer_than(session, zone_id, recipient, last_seq):
                    sent_up_to = max(sent_up_to, alert.seq)
                    yield ServerSentEvent(alert.model_dump_json(), event="alert", id=str(alert.seq))
        yield ServerSentEvent(comment="connected")
        while True:
            try:
                message = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield ServerSentEvent(comment="keep-alive")
                continue
            if message is None:
                return  # the listener was lost: the browser reconnects and catches up
            if message.alert is not None:
                alert = AlertOut.model_validate(message.alert)
            else:
                async with kit.sessions() as session:
                    alert = await inbox.get(session, zone_id, recipient, uuid.UUID(message.alert_id))
                if alert is None:
                    continue
            if message.op == "insert" and alert.seq > sent_up_to:
                sent_up_to = alert.seq
                yield ServerSentEvent(alert.model_dump_json(), event="alert", id=str(alert.seq))
            elif message.op == "update":
                yield ServerSentEvent(alert.model_dump_json(), event="alert-updated")


@router.get("/stream", summary="New and changed alerts as Server-Sent Events", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
            response_description="`text/event-stream`: `alert` events (id = seq) and `alert-updated` events.")
async def stream_alerts(
    zone_id: str, request: Request, principal: MemberPrincipal, kit: KitDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """An `alert` event for each new alert of the caller (data: the alert, id: its seq); an `alert-updated`
    event when one is read, acknowledged or superseded. A reconnecting client sends `Last-Event-ID` and first
    receives every alert it missed."""
    ensure_zone(principal, zone_id)
    return EventSourceResponse(_events(request, kit, zone_id, principal.subject, _last_seq(last_event_id)),
                               ping=KEEPALIVE_S)


@router.get("/{alert_id}", response_model=AlertOut, summary="One of the caller's alerts")
async def get_alert(zone_id: str, alert_id: uuid.UUID, principal: MemberPrincipal, session: SessionDep) -> AlertOut:
    ensure_zone(principal, zone_id)
    alert = await inbox.get(session, zone_id, principal.subject, alert_id)
    if alert is None:
        raise inbox.not_found(zone_id, alert_id)
    return alert


@router.get("/{alert_id}/deliveries", summary="Where one of the caller's alerts was pushed, with every attempt")
async def alert_deliveries(zone_id: str, alert_id: uuid.UUID, principal: MemberPrincipal, session: SessionDep) -> list[dict]:
    ensure_zone(principal, zone_id)
    if await inbox.get(session, zone_id, principal.subject, alert_id) is None:
        raise inbox.not_found(zone_id, alert_id)
    return await deliveries_of(session, alert_id)


@router.post("/{alert_id}/read", response_model=AlertOut, summary="Mark an alert read")
async def mark_read(zone_id: str, alert_id: uuid.UUID, principal: MemberPrincipal, kit: KitDep) -> AlertOut:
    """Idempotent: reading it again keeps the first time it was read."""
    ensure_zone(principal, zone_id)
    return await inbox.mark(kit, zone_id, principal.subject, alert_id, acknowledge=False)


@router.post("/{alert_id}/acknowledge", response_model=AlertOut, summary="Acknowledge an alert (and mark it read)")
async def acknowledge(zone_id: str, alert_id: uuid.UUID, principal: MemberPrincipal, kit: KitDep) -> AlertOut:
    """Acknowledging says the member has taken it in hand. Idempotent: the first acknowledgement is kept."""
    ensure_zone(principal, zone_id)
    return await inbox.mark(kit, zone_id, principal.subject, alert_id, acknowledge=True)
