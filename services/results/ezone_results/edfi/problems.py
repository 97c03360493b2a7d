"""Errors of the Ed-Fi endpoints in the Ed-Fi API's own problem-details shape (RFC 9457 plus
`correlationId`, `validationErrors` keyed by JSON path, and `errors`), so an Ed-Fi client reads them
as it reads an Ed-Fi ODS/API's."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from ezone_kit.problems import Problem
from ezone_kit.telemetry import current_trace_id
from fastapi import Request, Response
from fastapi.routing import APIRoute

EDFI = "urn:ed-fi:api"
VALIDATION_FAILED = f"{EDFI}:bad-request:data-validation-failed"


def _problem(status: int, type_: str, title: str, detail: str, *, validation_errors: dict[str, list[str]] | None = None,
             errors: list[str] | None = None, headers: dict[str, str] | None = None) -> Problem:
    return Problem(status, detail, type=type_, title=title, headers=headers,
                   correlationId=current_trace_id() or uuid.uuid4().hex,
                   validationErrors=validation_errors or {}, errors=errors or [])


def data_validation_failed(validation_errors: dict[str, list[str]]) -> Problem:
    return _problem(400, VALIDATION_FAILED, "Data Validation Failed",
                    "Data validation failed. See 'validationErrors' for details.", validation_errors=validation_errors)


def unresolved_reference(resource: str, error: str) -> Problem:
    return _problem(409, f"{EDFI}:data-conflict:unresolved-reference", "Unresolved Reference",
                    f"The referenced {resource} item(s) do not exist.", errors=[error])


def identity_conflict(error: str) -> Problem:
    return _problem(409, f"{EDFI}:identity-conflict", "Identifying Values Are Not Unique",
                    "The identifying value(s) of the item are the same as another item that already exists.", errors=[error])


def authorization_denied(error: str) -> Problem:
    return _problem(403, f"{EDFI}:security:authorization", "Authorization Denied",
                    "Access to the requested data could not be authorized.", errors=[error])


def not_found(resource: str, item_id: str) -> Problem:
    return _problem(404, f"{EDFI}:not-found", "Resource Not Found",
                    "The specified resource could not be found.", errors=[f"No {resource} item with id {item_id!r}."])


def unknown_resource(name: str) -> Problem:
    return _problem(404, f"{EDFI}:not-found", "Resource Not Found",
                    "The specified resource could not be found.",
                    errors=[f"ezone serves no {name!r} resource; its resources are listed at"
                            " {base}/metadata/data/v3/dependencies."])


def dependent_items_exist(error: str) -> Problem:
    return _problem(409, f"{EDFI}:conflict:dependent-item-exists", "Dependent Item Exists",
                    "The requested action cannot be performed because this item is referenced by existing item(s).",
                    errors=[error])


def precondition_failed(error: str) -> Problem:
    return _problem(412, f"{EDFI}:optimistic-lock-failed", "Optimistic Lock Failed",
                    "The item has been modified by another user.", errors=[error])


def write_conflict(error: str) -> Problem:
    return _problem(409, f"{EDFI}:conflict:write-conflict", "Write Conflict",
                    "The item was changed by other requests while this one was written; send it again.", errors=[error])


def bad_parameters(errors: dict[str, list[str]]) -> Problem:
    return _problem(400, f"{EDFI}:bad-request", "Bad Request",
                    "The request could not be processed. See 'validationErrors' for details.", validation_errors=errors)


def as_edfi(problem: Problem) -> Problem:
    """A problem raised by the kit (authentication, roles) restated in the Ed-Fi shape."""
    if problem.type.startswith(EDFI):
        return problem
    if problem.status == 403:
        return authorization_denied(problem.detail)
    kind = {401: "security:authentication", 404: "not-found"}.get(problem.status, "bad-request")
    return _problem(problem.status, f"{EDFI}:{kind}", problem.title, problem.detail, headers=problem.headers)


class EdFiRoute(APIRoute):
    """Route class of the Ed-Fi endpoints: every error they answer comes in the Ed-Fi shape.

    The endpoint is called with the request and the path's parameters (all text), without FastAPI's dependency
    resolution: an Ed-Fi loader sends one record a request, and that machinery cost a third of a record's CPU. The
    endpoints read their query parameters and body themselves; their signatures still document the path."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint
        takes_request = "request" in inspect.signature(endpoint).parameters

        async def edfi_handler(request: Request) -> Response:
            if takes_request:
                return await call_edfi(endpoint, request=request, **request.path_params)
            return await call_edfi(endpoint, **request.path_params)

        return edfi_handler


async def call_edfi(endpoint: Callable[..., Coroutine[Any, Any, Response]], **arguments: Any) -> Response:
    """An Ed-Fi endpoint's answer; the kit's problems it raises restated in the Ed-Fi shape."""
    try:
        return await endpoint(**arguments)
    except Problem as problem:
        raise as_edfi(problem) from None
