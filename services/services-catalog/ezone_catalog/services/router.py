"""The service catalog: district staff create, publish and retire services; every role of the zone reads it."""

from __future__ import annotations

import uuid
from typing import Annotated

from ezone_kit.auth import ensure_zone
from ezone_kit.lenient_body import Received, json_body, lenient_body
from ezone_kit.openapi import problem_responses, replayed
from ezone_kit.service import SessionDep, UnitOfWorkDep
from ezone_schemas.catalog import ServiceCategory
from fastapi import APIRouter, Depends, Query, Response, status

from ..access import CatalogReader, Staff
from . import service
from .schemas import Provider, ServiceIn, ServiceStatus, ServiceView

router = APIRouter(prefix="/zones/{zone_id}/services", tags=["services"])
# Read by the service, not refused on its shape first: one 422 lists the shape's errors and the zone's.
ServiceBody = Annotated[Received[ServiceIn], Depends(lenient_body(ServiceIn))]


@router.post("", response_model=ServiceView, status_code=status.HTTP_201_CREATED,
             summary="Create a service, as a draft", responses={**replayed(ServiceView), **problem_responses(409)},
             openapi_extra=json_body(ServiceIn))
async def create_service(zone_id: str, body: ServiceBody, principal: Staff, uow: UnitOfWorkDep,
                         response: Response) -> ServiceView:
    """A district service, or a partner's (the partner must be onboarded). Idempotent on the provider and name
    (and the id, when given): the same service again answers 200 with `created: false`; other details are 409."""
    ensure_zone(principal, zone_id)
    created = await service.create_service(uow, principal, zone_id, body)
    if not created.created:
        response.status_code = status.HTTP_200_OK
    return created


@router.get("", response_model=list[ServiceView], summary="The catalog")
async def list_services(
    zone_id: str, principal: CatalogReader, session: SessionDep,
    service_status: Annotated[ServiceStatus | None, Query(alias="status", description="Staff only see drafts and retired services.")] = None,
    category: ServiceCategory | None = None, provider: Provider | None = None, partner_id: uuid.UUID | None = None,
    non_optional: bool | None = None,
) -> list[ServiceView]:
    ensure_zone(principal, zone_id)
    filters = {"status": service_status, "category": category, "provider": provider, "partner_id": partner_id,
               "non_optional": non_optional}
    return await service.list_services(session, principal, zone_id, filters)


@router.get("/{service_id}", response_model=ServiceView, summary="A service")
async def get_service(zone_id: str, service_id: uuid.UUID, principal: CatalogReader, session: SessionDep) -> ServiceView:
    ensure_zone(principal, zone_id)
    return await service.get_service(session, principal, zone_id, service_id)


@router.post("/{service_id}/publish", response_model=ServiceView, summary="Publish a draft: schools may order it",
             responses=problem_responses(409))
async def publish_service(zone_id: str, service_id: uuid.UUID, principal: Staff, uow: UnitOfWorkDep) -> ServiceView:
    """Announces `service.published`. A non-optional service is assigned at once to every school with an approved
    plan, for that plan's school year. Publishing a published service changes nothing; a retired one is 409."""
    ensure_zone(principal, zone_id)
    return await service.publish_service(uow, principal, zone_id, service_id)


@router.post("/{service_id}/retire", response_model=ServiceView, summary="Retire a service: no new orders")
async def retire_service(zone_id: str, service_id: uuid.UUID, principal: Staff, uow: UnitOfWorkDep) -> ServiceView:
    """Orders and assignments already made stay as they are. Retiring a retired service changes nothing."""
    ensure_zone(principal, zone_id)
    return await service.retire_service(uow, principal, zone_id, service_id)
