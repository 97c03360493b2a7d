"""A limit on the size of every request body, answered with 413 problem details before the body is read.

Pure ASGI, in front of routing: a request whose `Content-Length` is over the limit is answered at once (no
authentication, no database, not a byte of its body read); a body sent without a length (chunked) is counted as
it arrives and cut off at the limit. The check on the hot path is one header lookup and a comparison.

A route that streams its body by design (the CSV upload of any size) says so with `@streamed_body`; the limit
does not apply to it. Which route a request is for is looked up only for a request over the limit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import PROBLEM_MEDIA_TYPE, TYPE_BASE

try:  # FastAPI ≥ 0.16x keeps included routers whole; this lists their routes as the router matches them
    from fastapi.routing import iter_route_contexts
except ImportError:  # pragma: no cover - older FastAPI copies included routes into the app's own list
    iter_route_contexts = None

_STREAMED = "__ezone_streamed_body__"
F = TypeVar("F", bound=Callable[..., Any])


def streamed_body(endpoint: F) -> F:
    """Marks an endpoint that reads its request body as a stream, of any size: the request body limit does not
    apply to its route. Put it under the route decorator: `@router.post(...)` then `@streamed_body`."""
    setattr(endpoint, _STREAMED, True)
    return endpoint


def streams_its_body(endpoint: Any) -> bool:
    """Whether the endpoint is marked `@streamed_body`."""
    return bool(getattr(endpoint, _STREAMED, False))


def _routes(app: Any) -> list[Any]:
    """The app's routes in the order the router tries them, those of included routers in place (FastAPI keeps an
    included router as one route and matches inside it as it routes)."""
    routes = list(getattr(getattr(app, "router", None), "routes", ()))
    return list(iter_route_contexts(routes)) if iter_route_contexts is not None else routes


def is_streamed(scope: Scope) -> bool:
    """Whether the route this request is for is marked `@streamed_body`: the first route that matches it in full,
    as the router picks it."""
    for route in _routes(scope.get("app")):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return streams_its_body(getattr(getattr(route, "original_route", route), "endpoint", None))
    return False


def _size(limit: int) -> str:
    if limit >= 2**20 and limit % 2**20 == 0:
        return f"{limit // 2**20} MiB ({limit:,} bytes)"
    return f"{limit:,} bytes"


class BodyTooLarge(HTTPException):
    """Raised into the app when a body sent without a length grows past the limit (the middleware answers)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {_size(limit)}.")


class RequestBodyLimit:
    """413 problem details for a request body over `max_bytes`, except on routes marked `@streamed_body`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = None
                break
            if name == b"transfer-encoding":
                chunked = True
        if length is not None:
            # The server never passes more than Content-Length bytes on: an announced length within the limit is
            # all there is to check.
            if length > self.max_bytes and not is_streamed(scope):
                await self._refuse(scope, send, f"it announces {length:,} bytes (Content-Length); none of it was read")
                return
            await self.app(scope, receive, send)
            return
        if not chunked:  # HTTP/1.1: no length and no transfer coding is no body
            await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A body without a length: counted as the app reads it; past the limit the app's read fails, whatever it
        then answers is dropped, and the 413 is sent instead (unless the app had started answering already)."""
        received = 0
        refused = False
        unlimited = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, refused, unlimited
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if unlimited or message["type"] != "http.request":
                return message
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                if is_streamed(scope):
                    unlimited = True
                    return message
                refused = True
                raise BodyTooLarge(self.max_bytes)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused and not started:
                return  # the app's own answer to the failed read: the 413 goes instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused or started:
                raise
        if refused and not started:
            await self._refuse(scope, send, "it came without a Content-Length (chunked) and was cut off there")

    async def _refuse(self, scope: Scope, send: Send, what: str) -> None:
        body = {
            "type": f"{TYPE_BASE}content-too-large",
            "title": "Content too large",
            "status": 413,
            "detail": (f"The request body is larger than the {_size(self.max_bytes)} this service accepts in one "
                       f"request: {what}. Nothing was stored. Send the rows in smaller batches, or upload student "
                       "results of any size as a streamed CSV file (POST /zones/{zone}/results/csv)."),
            "instance": scope.get("path", ""),
            "max_body_bytes": self.max_bytes,
        }
        payload = orjson.dumps(body)
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
