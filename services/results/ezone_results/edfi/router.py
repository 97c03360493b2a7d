"""The Ed-Fi API (ODS/API 7 conventions, Data Standard 5.2, the assessment domain) under one base URL,
`{service}/ed-fi`: an Ed-Fi client is given that URL and finds the rest from it.

Every route answers errors in Ed-Fi's problem shape. The data routes take any resource of `resources.py` by
name, so one set of handlers serves them all; their real per-resource documentation is the Ed-Fi OpenAPI
served under `{base}/metadata/` (this service's own /docs shows them generically)."""

from __future__ import annotations

from typing import Any

import orjson
from ezone_kit.auth import Principal, current_principal, require_roles
from ezone_kit.openapi import problem_responses
from fastapi import APIRouter, Request, Response

from . import discovery
from .problems import EdFiRoute, bad_parameters, data_validation_failed, unknown_resource
from .resources import NAMESPACE, Resource, resource as resource_named
from .service import EdFi
from .writes import Stored

BASE = "/ed-fi"
DATA = f"{BASE}/data/v3/{NAMESPACE}"
# The first Ed-Fi paths ezone had; kept for clients configured with them, and left out of the docs.
LEGACY_DATA = f"{BASE}/v3/{NAMESPACE}"

_client = require_roles("sis", "admin", "district")


router = APIRouter(tags=["ed-fi"], route_class=EdFiRoute)

# What the data routes answer besides the kit's own problems (their bodies are in Ed-Fi's problem shape, RFC 9457 too).
_CALLER = problem_responses(401, (403, "The token's role or schools do not allow this item."), 503)
_READ = {**_CALLER, **problem_responses((400, "An unknown or invalid query parameter, each in `validationErrors`."))}
_WRITE = {**_READ, **problem_responses(
    (400, "An invalid item, every problem listed in `validationErrors`; nothing was stored."),
    (409, "A reference to an item that does not exist, or a natural key another item has; nothing was stored."),
    (413, "The request body is over this service's limit; nothing was stored."))}
_STALE = problem_responses((412, "`If-Match` is not the item's current `_etag`; nothing was changed."))
_REFERRED = problem_responses((409, "Other items refer to this one; nothing was deleted."))
_ITEM_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}


def _base(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}{BASE}"


def _edfi(request: Request) -> EdFi:
    """One per running app (its caches). Made on first use: the kit is the app's."""
    state = request.app.state
    if getattr(state, "edfi", None) is None or state.edfi.kit is not state.kit:
        state.edfi = EdFi(state.kit)
    return state.edfi


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), status, headers=headers, media_type="application/json")


async def _caller(request: Request) -> Principal:
    return await _client(await current_principal(request))


def _resource(name: str) -> Resource:
    found = resource_named(name)
    if found is None:
        raise unknown_resource(name)
    return found


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise data_validation_failed({"$": ["A non-empty request body is required."]})
    content_type = request.headers.get("content-type", "application/json").partition(";")[0].strip().lower()
    if not (content_type == "application/json" or content_type.endswith("+json")):
        raise data_validation_failed({"$": [f"Send the body as JSON (Content-Type: application/json), not {content_type}."]})
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise data_validation_failed({"$": ["The request body is not valid JSON."]}) from None


def _etag(stored: Stored) -> dict[str, str]:
    return {"ETag": f'"{stored.etag}"'}


# --- discovery ------------------------------------------------------------------------------------------------

@router.get(BASE, summary="Ed-Fi discovery document: the URLs of everything else")
async def discovery_document(request: Request) -> Response:
    return _json(discovery.discovery(_base(request)))


@router.get(f"{BASE}/metadata", summary="The Ed-Fi OpenAPI documents (Resources, Descriptors)")
@router.get(f"{BASE}/metadata/", include_in_schema=False)
async def metadata_index(request: Request) -> Response:
    return _json(discovery.metadata_index(_base(request)))


@router.get(f"{BASE}/metadata/data/v3/dependencies", summary="The resources in the order to load them")
async def dependencies() -> Response:
    return _json(discovery.dependencies())


@router.get(f"{BASE}/metadata/data/v3/{{kind}}/swagger.json", summary="OpenAPI of the Ed-Fi resources or descriptors")
async def openapi_document(kind: str, request: Request) -> Response:
    if kind not in ("resources", "descriptors"):
        raise unknown_resource(kind)
    return _json(discovery.openapi(kind, _base(request)))


@router.get(f"{BASE}/changeQueries/v1/availableChangeVersions", summary="The change versions a reader can ask for",
            responses=_CALLER)
async def available_change_versions(request: Request) -> Response:
    newest = await _edfi(request).newest_change_version(await _caller(request))
    return _json({"oldestChangeVersion": 0, "newestChangeVersion": newest})


# --- data -----------------------------------------------------------------------------------------------------

def _integer(request: Request, name: str, default: int | None, low: int, high: int | None = None) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise bad_parameters({name: [f"Must be a whole number; got {value!r}."]}) from None
    if number < low or (high is not None and number > high):
        raise bad_parameters({name: [f"Must be from {low}{f' to {high}' if high is not None else ''}; got {number}."]})
    return number


_PAGING = {"offset", "limit", "totalCount", "minChangeVersion", "maxChangeVersion"}


async def list_items(name: str, request: Request) -> Response:
    """A page of the zone's items (`offset`, `limit`), filtered by natural key fields; `totalCount=true` answers the
    number of matching items in `Total-Count`; `minChangeVersion`/`maxChangeVersion` for change queries."""
    resource = _resource(name)
    actor = await _caller(request)
    keys = {key.name for key in resource.keys}
    properties = discovery.filterable_properties(resource) - keys
    unknown = sorted(set(request.query_params) - _PAGING - keys - properties)
    if unknown:
        raise bad_parameters({parameter: [f"Not a parameter of {resource.name}; use "
                                          f"{', '.join(sorted(_PAGING | keys | properties))}."] for parameter in unknown})
    offset = _integer(request, "offset", 0, 0)
    limit = _integer(request, "limit", discovery.PAGE_SIZE, 0, discovery.MAX_PAGE_SIZE)
    min_change = _integer(request, "minChangeVersion", None, 0)
    max_change = _integer(request, "maxChangeVersion", None, 0)
    count = request.query_params.get("totalCount", "false").lower() == "true"
    edfi = _edfi(request)
    if resource.read_only:
        schools = [school for school in await edfi.schools(actor)
                   if all(str(school.get(key)) == value for key, value in request.query_params.items() if key in keys)]
        page = schools[offset:offset + limit] if limit is not None else schools
        return _json(page, headers={"Total-Count": str(len(schools))} if count else None)
    filters = {key: value for key, value in request.query_params.items() if key in keys}
    others = {key: value for key, value in request.query_params.items() if key in properties}
    assert offset is not None and limit is not None
    items, total = await edfi.page(actor, resource, filters, others, offset=offset, limit=limit,
                                   min_change=min_change, max_change=max_change, count=count)
    return _json([item.body() for item in items], headers={"Total-Count": str(total)} if total is not None else None)


async def deleted_items(name: str, request: Request) -> Response:
    resource = _resource(name)
    actor = await _caller(request)
    deleted = await _edfi(request).deletes(
        actor, resource, offset=_integer(request, "offset", 0, 0) or 0,
        limit=_integer(request, "limit", discovery.PAGE_SIZE, 0, discovery.MAX_PAGE_SIZE) or 0,
        min_change=_integer(request, "minChangeVersion", None, 0), max_change=_integer(request, "maxChangeVersion", None, 0))
    return _json(deleted)


async def post_item(name: str, request: Request) -> Response:
    """Upsert on the natural key: 201 with `Location` when new, 200 when updated or already as sent."""
    resource = _resource(name)
    actor = await _caller(request)
    written = await _edfi(request).upsert(actor, resource, await _body(request))
    headers = {**_etag(written.stored), "Location": f"{_base(request)}/data/v3/{NAMESPACE}/{name}/{written.stored.id.hex}"}
    return Response(status_code=201 if written.created else 200, headers=headers)


async def get_item(name: str, item_id: str, request: Request) -> Response:
    resource = _resource(name)
    actor = await _caller(request)
    if resource.read_only:
        for school in await _edfi(request).schools(actor):
            if school["id"] == item_id.replace("-", ""):
                return _json(school)
        raise unknown_resource(f"{name}/{item_id}")
    stored = await _edfi(request).get(actor, resource, item_id)
    return _json(stored.body(), headers=_etag(stored))


async def put_item(name: str, item_id: str, request: Request) -> Response:
    """Replace the item (its natural key cannot change); `If-Match` with its `_etag` guards against lost updates."""
    resource = _resource(name)
    actor = await _caller(request)
    stored = await _edfi(request).replace(actor, resource, item_id, await _body(request), request.headers.get("if-match"))
    return Response(status_code=204, headers=_etag(stored))


async def delete_item(name: str, item_id: str, request: Request) -> Response:
    resource = _resource(name)
    actor = await _caller(request)
    await _edfi(request).delete(actor, resource, item_id, request.headers.get("if-match"))
    return Response(status_code=204)


for prefix, documented in ((DATA, True), (LEGACY_DATA, False)):
    router.add_api_route(f"{prefix}/{{name}}", list_items, methods=["GET"], include_in_schema=documented,
                         summary="A page of the zone's items of an Ed-Fi resource", responses=_READ)
    router.add_api_route(f"{prefix}/{{name}}", post_item, methods=["POST"], include_in_schema=documented,
                         summary="Create or update an item of an Ed-Fi resource", status_code=201,
                         response_class=Response, response_description="Created (`Location` names it)",
                         openapi_extra=_ITEM_BODY,
                         responses={200: {"description": "Updated, or already as sent"}, **_WRITE})
    router.add_api_route(f"{prefix}/{{name}}/deletes", deleted_items, methods=["GET"], include_in_schema=documented,
                         summary="Items deleted (change queries)", responses=_READ)
    router.add_api_route(f"{prefix}/{{name}}/{{item_id}}", get_item, methods=["GET"], include_in_schema=documented,
                         summary="One item", responses=_CALLER)
    router.add_api_route(f"{prefix}/{{name}}/{{item_id}}", put_item, methods=["PUT"], include_in_schema=documented,
                         summary="Replace an item", status_code=204, response_class=Response, openapi_extra=_ITEM_BODY,
                         responses={**_WRITE, **_STALE})
    router.add_api_route(f"{prefix}/{{name}}/{{item_id}}", delete_item, methods=["DELETE"], include_in_schema=documented,
                         summary="Delete an item", status_code=204, response_class=Response,
                         responses={**_CALLER, **_REFERRED, **_STALE})
