"""POSTs of Ed-Fi items answered before FastAPI's routing.

An Ed-Fi loader sends one record a request, tens of thousands in a sync. Through FastAPI's routing (every route
matched in turn), its exception middleware and the route's handler, a record cost about twice the CPU of the
write itself (in-process profile, 4,000 studentAssessments: 0.64 against 0.36 ms). This middleware answers
`POST {data}/{resource}` by calling the same endpoint, and its errors go to the app's own exception handlers, so
answers are the same as through the router. It sits inside the kit's body limit and FastAPI's telemetry: the
request keeps its server span and metrics, named by the route's template as the router would name them."""

from __future__ import annotations

from typing import Any

from fastapi.telemetry._api import _route_selected
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from .problems import call_edfi
from .router import DATA, LEGACY_DATA, post_item

_PREFIXES = tuple((f"{prefix}/", f"{prefix}/{{name}}") for prefix in (DATA, LEGACY_DATA))


class EdFiPosts:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            for prefix, template in _PREFIXES:
                if path.startswith(prefix) and "/" not in (name := path[len(prefix):]) and name:
                    await self._post(name, template, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _post(self, name: str, template: str, scope: Scope, receive: Receive, send: Send) -> None:
        # FastAPI's telemetry names the server span and the request metrics by the route the router selected.
        _route_selected(scope=scope, path=template)
        request = Request(scope, receive)
        try:
            response = await call_edfi(post_item, name=name, request=request)
        except Exception as exc:
            handler = _handler_for(scope["app"].exception_handlers, exc)
            if handler is None:
                raise  # as through the router: the server error middleware answers 500
            response = await handler(request, exc)
        await response(scope, receive, send)


def _handler_for(handlers: dict[Any, Any], exc: Exception) -> Any:
    """The app's handler of this exception, looked up by class as Starlette's exception middleware does; the handler
    of any `Exception` is the server error middleware's, as there."""
    return next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers and cls is not Exception), None)
