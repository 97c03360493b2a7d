"""Every answer an operation can give, in the service's OpenAPI document, its problems (RFC 9457) included: each
as `application/problem+json` with the one shared `ProblemDetails` schema.

The kit answers some problems on any route; `document_problems` adds them to each operation from what its route
depends on: 401 and 403 where it needs a token (and 503 when the token keys cannot be read), 404 where its path
names something, 413 where it takes a body (unless streamed), 422 where it takes input (invalid, or a value that
cannot be stored), 400 where it takes an `Idempotency-Key` (an empty one), 503 where it reaches the database, 500
everywhere. What only the route answers (409, 412, 428...) it declares with `responses=problem_responses(...)`; a
route's own description of a status is kept.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field

from .auth import Principal
from .body_limit import streams_its_body
from .problems import PROBLEM_MEDIA_TYPE

PROBLEM_SCHEMA = "ProblemDetails"
_PROBLEM_REF = f"#/components/schemas/{PROBLEM_SCHEMA}"


class ProblemDetails(BaseModel):
    """RFC 9457 problem details; a problem may carry more members (e.g. `max_body_bytes`)."""

    model_config = ConfigDict(extra="allow", title=PROBLEM_SCHEMA)

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str = Field(description="What is wrong and what to do.")
    instance: str | None = Field(None, description="The path the request was for.")
    errors: list[dict[str, Any] | str] | None = Field(
        None, description="Every invalid part of the request, e.g. `pointer`, `field`, `reason` (or `row`).")


_DESCRIPTIONS = {
    400: "A malformed request; nothing was changed.",
    401: "No valid bearer token; `WWW-Authenticate` says why.",
    403: "The token's role or schools do not allow this.",
    404: "Not found, or not this token's to see (another zone's).",
    409: "In conflict with the current state; nothing was changed.",
    412: "`If-Match` names a version that is no longer the current one: read it again.",
    413: "The request body is over this service's limit; nothing was stored.",
    415: "The body's `Content-Type` is not one this operation reads.",
    422: "Invalid input, every problem listed, or a value that cannot be stored; nothing was changed.",
    428: "This change needs an `If-Match` header with the `ETag` last read.",
    500: "An unexpected failure of the service; it is logged. Try again later.",
    503: "The database or the token keys cannot be reached right now; try again (after `Retry-After` seconds).",
}
_HEADERS = {
    401: {"WWW-Authenticate": {"description": "The bearer challenge.", "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "Seconds to wait, when the database is down.", "schema": {"type": "integer"}}},
}


def problem_responses(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` of problem details, for a route's `responses=`: a status, or a status and what it means
    for this route."""
    responses: dict[int | str, dict[str, Any]] = {}
    for entry in statuses:
        status, description = entry if isinstance(entry, tuple) else (entry, _DESCRIPTIONS.get(entry, "A problem."))
        responses[status] = {"description": description,
                             "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _PROBLEM_REF}}}}
        if status in _HEADERS:
            responses[status]["headers"] = _HEADERS[status]
    return responses


def replayed(model: Any, description: str = "Sent before: what it made then, unchanged.",
             ) -> dict[int | str, dict[str, Any]]:
    """The 200 of a create (201) that finds what it would make already made: for a route's `responses=`."""
    return {200: {"model": model, "description": description}}


def document_problems(app: FastAPI, database: Callable[..., Any]) -> None:
    """Make the app's OpenAPI document list the problems the kit answers on each route; `database` is the
    dependency through which a route reaches the database."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _add_problems(generate(), app, database)
        return app.openapi_schema  # type: ignore[return-value] - set by `generate`

    app.openapi = openapi  # type: ignore[method-assign] - FastAPI's documented way to change the document


def _add_problems(document: dict[str, Any], app: FastAPI, database: Callable[..., Any]) -> None:
    paths = document.get("paths", {})
    for context in iter_route_contexts(app.router.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in context.methods or ():
            operation = paths.get(context.path_format, {}).get(method.lower())
            if operation is None:
                continue
            declared = {str(status) for status in route.responses}
            for status, response in problem_responses(*_kit_problems(route, context.path_format, database)).items():
                if str(status) not in declared:
                    operation.setdefault("responses", {})[str(status)] = response
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas[PROBLEM_SCHEMA] = ProblemDetails.model_json_schema()
    # FastAPI's own 422 (a JSON list of pydantic errors) is never answered: the kit answers problem details instead.
    if "HTTPValidationError" not in str(paths):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)


def _kit_problems(route: APIRoute, path: str, database: Callable[..., Any]) -> list[int]:
    calls = set(_calls(route.dependant))
    statuses = [500]
    if any(_identifies_the_caller(call) for call in calls):
        statuses += [401, 403, 503]
    elif database in calls:
        statuses.append(503)
    if "{" in path:
        statuses.append(404)
    takes_body = route.body_field is not None or "requestBody" in (route.openapi_extra or {})
    if takes_body and not streams_its_body(route.endpoint):
        statuses.append(413)
    if takes_body or _takes_input(route.dependant):
        statuses.append(422)
    if any(param.alias.lower() == "idempotency-key" for param in route.dependant.header_params):
        statuses.append(400)
    return statuses


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _identifies_the_caller(call: Callable[..., Any]) -> bool:
    """A dependency that answers who calls (a Principal): it reads the token."""
    try:
        return typing.get_type_hints(call).get("return") is Principal
    except (NameError, TypeError):  # hints that do not resolve are not a Principal's
        return False


def _takes_input(dependant: Dependant) -> bool:
    return bool(dependant.path_params or dependant.query_params or dependant.header_params or dependant.cookie_params
                or dependant.body_params) or any(_takes_input(sub) for sub in dependant.dependencies)
