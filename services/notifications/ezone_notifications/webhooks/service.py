"""Registering, listing and deleting webhook endpoints."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from ezone_kit.auth import Principal
from ezone_kit.idempotency import request_digest
from ezone_kit.problems import TYPE_BASE, Problem, validation_problem
from ezone_kit.uow import UnitOfWork
from sqlalchemy import delete, func, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import deliveries, webhook_endpoints
from ..preferences.access import ZONE_STAFF_ROLES
from .schemas import WebhookCreated, WebhookIn, WebhookOut

SECRET_PREFIX = "whsec_"


def _out(row: Any) -> WebhookOut:
    return WebhookOut(id=row.id, url=row.url, description=row.description, severities=row.severities,
                      scope="zone" if row.owner is None else "member", owner=row.owner, active=row.active,
                      created_by=row.created_by, created_at=row.created_at)


def _visible(principal: Principal, zone_id: str) -> Any:
    """A member's own endpoints; zone staff also see the zone's."""
    own = webhook_endpoints.c.owner == principal.subject
    mine = or_(own, webhook_endpoints.c.owner.is_(None)) if principal.role in ZONE_STAFF_ROLES else own
    return (webhook_endpoints.c.zone_id == zone_id) & mine


def _not_found(zone_id: str, endpoint_id: uuid.UUID) -> Problem:
    return Problem(404, f"Zone {zone_id!r} has no webhook {endpoint_id} of yours; GET /zones/{zone_id}/webhooks lists them.")


async def create_webhook(uow: UnitOfWork, principal: Principal, zone_id: str, body: WebhookIn,
                         idempotency_key: str | None) -> tuple[WebhookCreated, bool]:
    """The new endpoint with its secret, and True; with the same Idempotency-Key and body again, the endpoint that
    request created (secret included, so a lost answer loses nothing), and False."""
    session = uow.session
    if body.scope == "zone" and principal.role not in ZONE_STAFF_ROLES:
        raise Problem(403, "Only district and admin tokens register the zone's endpoints (`\"scope\": \"zone\"`); "
                           "leave `scope` out to register one for your own alerts.")
    scope = f"webhook.create/{zone_id}/{principal.subject}"
    if idempotency_key is not None:
        replay = await uow.idempotency.claim(session, scope, idempotency_key, request_digest(body.model_dump(mode="json")))
        if replay is not None:
            row = (await session.execute(select(webhook_endpoints).where(
                webhook_endpoints.c.id == uuid.UUID(replay.resource_id)))).first()
            if row is None:
                raise Problem(409, f"The webhook this Idempotency-Key created ({replay.resource_id}) was deleted since; "
                                   "register it again with a new key.", type=f"{TYPE_BASE}webhook-deleted")
            return WebhookCreated(**_out(row).model_dump(), secret=row.secret), False

    if "id" in body.sent_as_read():
        return await _as_registered(session, principal, zone_id, body), False
    owner = None if body.scope == "zone" else principal.subject
    values = {"id": uuid.uuid4(), "zone_id": zone_id, "owner": owner, "url": body.url,
              "secret": SECRET_PREFIX + secrets.token_urlsafe(32), "description": body.description,
              "severities": body.severities, "created_by": principal.subject}
    row = (await session.execute(
        pg_insert(webhook_endpoints).values(values)
        .on_conflict_do_nothing(index_elements=[webhook_endpoints.c.zone_id, literal_column("coalesce(owner, '')"),
                                                webhook_endpoints.c.url])
        .returning(*webhook_endpoints.c)
    )).first()
    if row is None:
        existing = await session.scalar(select(webhook_endpoints.c.id).where(
            webhook_endpoints.c.zone_id == zone_id, func.coalesce(webhook_endpoints.c.owner, "") == (owner or ""),
            webhook_endpoints.c.url == body.url))
        whose = "The zone" if owner is None else "You"
        raise Problem(409, f"{whose} already registered {body.url} as webhook {existing}; delete it first to register it "
                           "again (with a new secret).", type=f"{TYPE_BASE}webhook-exists", existing_id=str(existing))
    created = _out(row)
    await uow.audit(actor=principal, action="webhook.created", entity="webhook_endpoint", entity_id=str(row.id),
                    zone_id=zone_id, after=created.model_dump(mode="json"))
    if idempotency_key is not None:
        await uow.idempotency.record(session, scope, idempotency_key, str(row.id))
    await uow.commit()
    return WebhookCreated(**created.model_dump(), secret=row.secret), True


async def _as_registered(session: AsyncSession, principal: Principal, zone_id: str, body: WebhookIn) -> WebhookCreated:
    """A body carrying an endpoint's id, as read, is that endpoint registered again: unchanged, it answers with it
    (without its secret, shown once when it was registered); endpoints are not edited in place."""
    sent_id = body.sent_as_read()["id"]
    try:
        endpoint_id = uuid.UUID(str(sent_id))
    except ValueError:
        endpoint_id = None
    row = None if endpoint_id is None else (await session.execute(
        select(webhook_endpoints).where(_visible(principal, zone_id), webhook_endpoints.c.id == endpoint_id))).first()
    if row is None:
        raise validation_problem([{"loc": ("body", "id"), "type": "read_only",
                                   "msg": f"names no webhook of yours in zone {zone_id} ({sent_id}); leave id out to "
                                          "register a new endpoint"}])
    registered = _out(row)
    changed = [field for field in ("url", "description", "severities", "scope")
               if getattr(body, field) != getattr(registered, field)]
    if changed:
        raise validation_problem([{"loc": ("body", field), "type": "read_only",
                                   "msg": f"differs from webhook {row.id}'s, and an endpoint is not changed in place: "
                                          "delete it and register the new one (without its id)"} for field in changed])
    return WebhookCreated(**registered.model_dump(), secret=None)


async def list_webhooks(session: AsyncSession, principal: Principal, zone_id: str) -> list[WebhookOut]:
    rows = await session.execute(select(webhook_endpoints).where(_visible(principal, zone_id))
                                 .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id))
    return [_out(row) for row in rows]


async def get_webhook(session: AsyncSession, principal: Principal, zone_id: str, endpoint_id: uuid.UUID) -> WebhookOut:
    row = (await session.execute(select(webhook_endpoints).where(
        _visible(principal, zone_id), webhook_endpoints.c.id == endpoint_id))).first()
    if row is None:
        raise _not_found(zone_id, endpoint_id)
    return _out(row)


async def delete_webhook(uow: UnitOfWork, principal: Principal, zone_id: str, endpoint_id: uuid.UUID) -> None:
    """Its deliveries still waiting are cancelled; those already made stay on record."""
    session = uow.session
    row = (await session.execute(
        delete(webhook_endpoints).where(_visible(principal, zone_id), webhook_endpoints.c.id == endpoint_id)
        .returning(*webhook_endpoints.c)
    )).first()
    if row is None:
        raise _not_found(zone_id, endpoint_id)
    await session.execute(update(deliveries).where(deliveries.c.endpoint_id == endpoint_id, deliveries.c.status == "pending")
                          .values(status="cancelled", last_error="the webhook endpoint was deleted"))
    await uow.audit(actor=principal, action="webhook.deleted", entity="webhook_endpoint", entity_id=str(endpoint_id),
                    zone_id=zone_id, before=_out(row).model_dump(mode="json"))
    await uow.commit()
