"""RFC 9457 problem details for every error a service returns.

Bad input lists every problem at once (`errors`); unexpected failures never show a stack trace.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy.exc

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
import orjson
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://ezone.dev/problems/"

_log = logging.getLogger("ezone.problems")

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    """Raise anywhere in a request to answer with problem details."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = type or f"{TYPE_BASE}{_TITLES.get(status, 'error').lower().replace(' ', '-')}"
        self.title = title or _TITLES.get(status, "Error")
        self.headers = headers
        self.extensions = extensions


def problem_response(problem: Problem, request: Request | None = None) -> Response:
    body: dict[str, Any] = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    body.update(problem.extensions)
    return Response(orjson.dumps(body), status_code=problem.status, headers=problem.headers, media_type=PROBLEM_MEDIA_TYPE)


def _pointer(loc: tuple[Any, ...]) -> str:
    """JSON pointer into the request part that failed, e.g. `/body/schools/0/code`."""
    return "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in loc)


def validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    listed = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            # pydantic puts the character position in `loc`; it is not a field.
            position = loc[1] if len(loc) > 1 else "?"
            listed.append({"pointer": "/body", "field": None, "reason": f"the body is not valid JSON (at character {position})",
                           "code": "json_invalid"})
            continue
        listed.append({"pointer": _pointer(loc), "field": ".".join(str(p) for p in loc[1:]) or None,
                       "reason": err.get("msg", "invalid"), "code": err.get("type")})
    return listed


def validation_problem(errors: list[dict[str, Any]]) -> Problem:
    """422 listing every invalid field, from pydantic-style errors (`loc`, `msg`, `type`): what FastAPI
    finds in a request and what a service's own rules find answer in one format."""
    listed = validation_errors(errors)
    fields = ", ".join(e["pointer"] for e in listed[:5])
    return Problem(
        422,
        f"The request has {len(listed)} invalid field(s): {fields}. Fix them and send it again.",
        type=f"{TYPE_BASE}validation",
        title="Invalid request",
        errors=listed,
    )


def unreadable_body_error(cause: BaseException) -> dict[str, Any]:
    """The pydantic-style error of a body that cannot be read as JSON text at all."""
    if isinstance(cause, UnicodeDecodeError):
        reason = "the body is not UTF-8 text, as JSON must be"
    elif isinstance(cause, RecursionError):
        reason = "the body nests arrays or objects too deeply"
    else:
        reason = f"the body cannot be read as JSON ({type(cause).__name__})"
    return {"type": "json_unreadable", "loc": ("body",), "msg": reason}


def unreadable_body(cause: BaseException) -> Problem:
    """422 for a body that cannot be read as JSON text at all, listed as invalid JSON is."""
    return validation_problem([unreadable_body_error(cause)])


DATABASE_RETRY_AFTER_S = 5
# What asyncpg raises when the server is gone, going or not yet back (SQLSTATE classes 08 and 57).
_GONE = (OSError, asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError,
         asyncpg.exceptions.ConnectionDoesNotExistError,
         sqlalchemy.exc.TimeoutError)


def _from_the_database_driver(exc: BaseException) -> bool:
    # A connection refused while the pool connects comes as a bare OSError; one from elsewhere (a client that went
    # away in the middle of its upload) is not the database's.
    return any(frame.f_code.co_filename.startswith(_DRIVER_DIRS) for frame, _ in traceback.walk_tb(exc.__traceback__))


_DRIVER_DIRS = tuple(str(Path(module.__file__).parent) for module in (asyncpg, sqlalchemy))


# Values PostgreSQL refuses to store, whatever the column: a NUL character, an integer or a date beyond its range.
_UNSTORABLE = {"22P05": "a NUL character (\\u0000) in a text",
               "22021": "a NUL character (\\u0000) or bytes that are not UTF-8",
               "22003": "a number out of range", "22008": "a date or time out of range"}


def unstorable_value(exc: BaseException) -> str | None:
    """Why a value of the request cannot be stored (its fault, then 422), or None for any other error."""
    for cause in _causes(exc):
        # A query argument the driver could not encode (an integer beyond 64 bits): refused before it was sent.
        if isinstance(cause, asyncpg.exceptions.DataError) and isinstance(cause.__cause__, OverflowError | ValueError):
            return str(cause.__cause__) or "a value out of range"
        if isinstance(cause, asyncpg.exceptions.PostgresError) and cause.sqlstate in _UNSTORABLE:
            return _UNSTORABLE[cause.sqlstate]
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The error and what caused it, down the chain (SQLAlchemy keeps the driver's error as `orig`)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__ or current.__context__


def database_unavailable(exc: BaseException) -> bool:
    """Whether the error is the database being unreachable (then 503), not a fault of the request or the code."""
    for cause in _causes(exc):
        if isinstance(cause, _GONE) and (not isinstance(cause, OSError) or _from_the_database_driver(cause)):
            return True
        if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated:
            return True
    return False


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return problem_response(validation_problem(list(exc.errors())), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI could not read the JSON body (bytes that are not UTF-8, nesting too deep): invalid JSON, as any.
            return problem_response(unreadable_body(exc.__cause__), request)
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"There is no resource at {request.url.path}."
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}."
        return problem_response(Problem(exc.status_code, detail, headers=getattr(exc, "headers", None)), request)

    async def _database_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, OSError) and not _from_the_database_driver(exc):
            raise exc  # not the database's: as any other unexpected error
        if (reason := unstorable_value(exc)) is not None:
            detail = f"A value of the request cannot be stored ({reason}); nothing was changed. Correct it and send again."
            return problem_response(Problem(422, detail, type=f"{TYPE_BASE}unstorable-value", title="Invalid request"),
                                    request)
        if database_unavailable(exc):
            _log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
            return problem_response(Problem(
                503, "The database is not reachable right now; nothing was changed. Try again in a few seconds.",
                type=f"{TYPE_BASE}database-unavailable", title="Service unavailable",
                headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)}), request)
        return await _unexpected(request, exc)

    # Handlers of these classes answer without the server-error middleware, which would re-raise the error after its
    # answer (an ASGI test client then sees the error, not the 503).
    for kind in (sqlalchemy.exc.SQLAlchemyError, asyncpg.exceptions.PostgresError, asyncpg.exceptions.InterfaceError,
                 OSError):
        app.add_exception_handler(kind, _database_error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        _log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            Problem(500, "The server failed to handle this request; it has been logged. Try again later."), request
        )
