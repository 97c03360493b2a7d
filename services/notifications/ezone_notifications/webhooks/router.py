"""`/zones/{zone_id}/webhooks`: endpoints that receive signed alert deliveries."""

from __future__ import annotations

import uuid
from typing import Annotated

from ezone_kit.auth import ensure_zone
from ezone_kit.openapi import problem_responses, replayed
from ezone_kit.service import SessionDep, UnitOfWorkDep
from fastapi import APIRouter, Header, Response, status

from ..preferences.access import Member
from . import service
from .schemas import WebhookCreated, WebhookIn, WebhookOut

router = APIRouter(prefix="/zones/{zone_id}/webhooks", tags=["webhooks"])

IdempotencyKey = Annotated[str | None, Header(max_length=255, description="Optional: a retry with the same key and body "
                                                                          "answers as the first request did.")]


@router.post("", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED,
             summary="Register a webhook endpoint",
             responses={**replayed(WebhookCreated, "The same body and `Idempotency-Key` again: that endpoint."),
                        **problem_responses(409)})
async def create_webhook(zone_id: str, body: WebhookIn, principal: Member, uow: UnitOfWorkDep, response: Response,
                         idempotency_key: IdempotencyKey = None) -> WebhookCreated:
    """Answers with the endpoint's secret, once: keep it to verify each delivery's `Ezone-Signature`. The same URL
    registered again by the same owner is refused with 409 naming the existing endpoint. Deliveries are POSTs of JSON,
    retried with exponential backoff until the endpoint answers 2xx; see the Webhooks section of docs/notifications.md."""
    ensure_zone(principal, zone_id)
    created, new = await service.create_webhook(uow, principal, zone_id, body, idempotency_key)
    response.headers["Location"] = f"/zones/{zone_id}/webhooks/{created.id}"
    if not new:
        response.status_code = status.HTTP_200_OK
    return created


@router.get("", response_model=list[WebhookOut], summary="Your webhook endpoints (and the zone's, for district and admin)")
async def list_webhooks(zone_id: str, principal: Member, session: SessionDep) -> list[WebhookOut]:
    ensure_zone(principal, zone_id)
    return await service.list_webhooks(session, principal, zone_id)


@router.get("/{endpoint_id}", response_model=WebhookOut, summary="A webhook endpoint (never its secret)")
async def get_webhook(zone_id: str, endpoint_id: uuid.UUID, principal: Member, session: SessionDep) -> WebhookOut:
    ensure_zone(principal, zone_id)
    return await service.get_webhook(session, principal, zone_id, endpoint_id)


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a webhook endpoint")
async def delete_webhook(zone_id: str, endpoint_id: uuid.UUID, principal: Member, uow: UnitOfWorkDep) -> None:
    """Deliveries still waiting for it are cancelled."""
    ensure_zone(principal, zone_id)
    await service.delete_webhook(uow, principal, zone_id, endpoint_id)
