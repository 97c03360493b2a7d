"""What an Ed-Fi client reads before it sends anything: the discovery document at the base URL, the OpenAPI
documents of the resources and descriptors, and the dependency order to load them in. Every URL in them is
made from the URL the client called, so they are right behind any proxy or port."""

from __future__ import annotations

from functools import cache
from typing import Any

from .openapi_schemas import DESCRIPTOR_COMPONENTS, RESOURCE_COMPONENTS
from .resources import NAMESPACE, RESOURCES, Resource

API_VERSION = "7.3"
DATA_MODEL_VERSION = "5.2.0"
PAGE_SIZE = 25  # Ed-Fi's default `limit`
MAX_PAGE_SIZE = 500  # and its largest


def discovery(base: str) -> dict[str, Any]:
    return {
        "version": API_VERSION,
        "informationalVersion": API_VERSION,
        "suite": "3",
        "build": "ezone",
        "apiMode": "Shared Instance",
        "dataModels": [{"name": "Ed-Fi", "version": DATA_MODEL_VERSION, "informationalVersion": DATA_MODEL_VERSION}],
        "urls": {
            "dependencies": f"{base}/metadata/data/v3/dependencies",
            "openApiMetadata": f"{base}/metadata/",
            "oauth": f"{base}/oauth/token",
            "dataManagementApi": f"{base}/data/v3/",
            "changeQueries": f"{base}/changeQueries/v1/",
        },
    }


def metadata_index(base: str) -> list[dict[str, str]]:
    return [{"name": name, "endpointUri": f"{base}/metadata/data/v3/{name.lower()}/swagger.json", "prefix": ""}
            for name in ("Resources", "Descriptors")]


def dependencies() -> list[dict[str, Any]]:
    return [{"resource": f"/{NAMESPACE}/{resource.name}", "order": resource.order,
             "operations": ["Read"] if resource.read_only else ["Create", "Update"]}
            for resource in sorted(RESOURCES.values(), key=lambda r: (r.order, r.name))]


def _parameter(name: str, description: str, schema: dict[str, Any], where: str = "query") -> dict[str, Any]:
    return {"name": name, "in": where, "description": description, "required": where == "path", "schema": schema}


_PAGING = [
    _parameter("offset", "How many items to skip.", {"type": "integer", "minimum": 0, "default": 0}),
    _parameter("limit", f"How many items to return, at most {MAX_PAGE_SIZE}.",
               {"type": "integer", "minimum": 0, "maximum": MAX_PAGE_SIZE, "default": PAGE_SIZE}),
    _parameter("minChangeVersion", "Only items changed at or after this change version.", {"type": "integer"}),
    _parameter("maxChangeVersion", "Only items changed at or before this change version.", {"type": "integer"}),
]
_TOTAL_COUNT = _parameter("totalCount", "Answer the number of matching items in the `Total-Count` header.",
                          {"type": "boolean", "default": False})
_ID = _parameter("id", "The item's id.", {"type": "string"}, "path")
_IF_MATCH = _parameter("If-Match", "The `_etag` read: the change is refused (412) if the item changed since.",
                       {"type": "string"}, "header")


def _ref(component: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{component}"}


def _answers(*codes: int) -> dict[str, Any]:
    text = {200: "OK", 201: "Created", 204: "Done", 400: "Data validation failed", 401: "No or expired token",
            403: "Not authorized for this data", 404: "Not found", 409: "Unresolved reference or identity conflict",
            412: "The _etag given in If-Match is no longer the item's"}
    return {str(code): {"description": text[code]} for code in codes}


def _paths(resource: Resource, key_schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    item = _ref(resource.component)
    filters = [_parameter(key.name, f"The items whose {key.name} is this.", key_schemas.get(key.name, {"type": "string"}))
               for key in resource.keys]
    filters += [_parameter(name, f"The items whose {name} is this.", {"type": "string"})
                for name in sorted(filterable_properties(resource) - {key.name for key in resource.keys})]
    collection: dict[str, Any] = {"get": {
        "operationId": f"get{resource.name[0].upper()}{resource.name[1:]}", "tags": [resource.name],
        "summary": f"The zone's {resource.name}, by page", "parameters": [*_PAGING, _TOTAL_COUNT, *filters],
        "responses": {**_answers(200, 400, 401, 403),
                      "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "array", "items": item}}}}},
    }}
    single: dict[str, Any] = {"get": {"tags": [resource.name], "parameters": [_ID], "summary": "One item",
                                      "responses": {**_answers(200, 401, 403, 404),
                                                    "200": {"description": "OK", "content": {"application/json": {"schema": item}}}}}}
    if not resource.read_only:
        body = {"required": True, "content": {"application/json": {"schema": item}}}
        collection["post"] = {"tags": [resource.name], "summary": "Create, or update the item with the same natural key",
                              "requestBody": body, "responses": _answers(200, 201, 400, 401, 403, 409)}
        single["put"] = {"tags": [resource.name], "parameters": [_ID, _IF_MATCH], "summary": "Replace the item",
                         "requestBody": body, "responses": _answers(204, 400, 401, 403, 404, 409, 412)}
        single["delete"] = {"tags": [resource.name], "parameters": [_ID, _IF_MATCH], "summary": "Delete the item",
                            "responses": _answers(204, 401, 403, 404, 412)}
    deletes = {"get": {"tags": [resource.name], "summary": "Items deleted, for change queries", "parameters": _PAGING,
                       "responses": _answers(200, 400, 401, 403)}}
    base = f"/{NAMESPACE}/{resource.name}"
    return {base: collection, f"{base}/{{id}}": single, f"{base}/deletes": deletes}


def _key_schemas(components: dict[str, dict[str, Any]], resource: Resource) -> dict[str, dict[str, Any]]:
    """Each key field's schema, from the resource's schema (through its references)."""
    found = {}
    for key in resource.keys:
        schema: dict[str, Any] = components.get(resource.component, {})
        for part in key.path:
            schema = schema.get("properties", {}).get(part, {})
            if "$ref" in schema:
                schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
        if "type" in schema:
            found[key.name] = {name: schema[name] for name in ("type", "format", "maxLength") if name in schema}
    return found


@cache
def filterable_properties(resource: Resource) -> frozenset[str]:
    """The top-level properties a list may be filtered by, besides the natural key: the resource's scalars."""
    components = DESCRIPTOR_COMPONENTS if resource.descriptor else RESOURCE_COMPONENTS
    properties = components.get(resource.component, {}).get("properties", {})
    return frozenset(name for name, schema in properties.items()
                     if schema.get("type") in ("string", "integer", "number", "boolean") and not name.startswith("_")
                     and name != "id")


@cache
def _openapi(kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    descriptors = kind == "descriptors"
    components = DESCRIPTOR_COMPONENTS if descriptors else RESOURCE_COMPONENTS
    paths: dict[str, Any] = {}
    for resource in RESOURCES.values():
        if resource.descriptor == descriptors:
            paths.update(_paths(resource, _key_schemas(components, resource)))
    return paths, components


def openapi(kind: str, base: str) -> dict[str, Any]:
    """The OpenAPI document of the `resources` or the `descriptors`."""
    paths, components = _openapi(kind)
    return {
        "openapi": "3.0.1",
        "info": {"title": f"ezone Ed-Fi {kind.title()}", "version": DATA_MODEL_VERSION,
                 "description": "The assessment domain of Ed-Fi Data Standard 5.2, as ezone serves it."},
        "servers": [{"url": f"{base}/data/v3"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"oauth2_client_credentials": {
                "type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": f"{base}/oauth/token", "scopes": {}}}}},
        },
        "security": [{"oauth2_client_credentials": []}],
    }
