"""Routes answered before the framework: for a request so small and so frequent that FastAPI's own layers cost as
much as its work.

An Ed-Fi loader sends one record a request, tens of thousands in a sync. Through FastAPI (its telemetry, its error
middleware, its routing, every route matched in turn) a record cost about twice the CPU of checking and writing it
(in-process profile, 4,000 studentAssessments: 0.64 against 0.36 ms). A hot route's requests skip those layers and
keep what they gave: the request body limit (the kit's own middleware), an OpenTelemetry server span named by the
route's template with the HTTP semantic conventions' attributes, the `http.server.request.duration` metric, and the
app's exception handlers, so an answer is the same as through the router.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import SpanKind, StatusCode
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from .body_limit import RequestBodyLimit

_log = logging.getLogger("ezone.kit.http")

Endpoint = Callable[..., Awaitable[Response]]
# FastAPI's buckets for the same metric, so the two kinds of request read alike.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_PROPAGATED = frozenset((b"traceparent", b"tracestate", b"baggage"))


@dataclass(frozen=True)
class HotRoute:
    """`{method} {prefix}/{parameter}`: the path's last segment is the endpoint's one path parameter."""

    method: str
    prefix: str
    parameter: str
    endpoint: Endpoint  # called with `request=` and the parameter, by name

    @property
    def template(self) -> str:
        return f"{self.prefix}/{{{self.parameter}}}"


class ServiceApp(FastAPI):
    """A FastAPI app that answers its hot routes itself."""

    def serve_hot(self, routes: list[HotRoute], max_body_bytes: int) -> None:
        self._hot = {(route.method, route.prefix + "/"): route for route in routes}
        # Inside the request's span, as the kit's body limit is inside FastAPI's: a 413 is traced too.
        self._limited = RequestBodyLimit(self._call_endpoint, max_bytes=max_body_bytes)
        meter = metrics.get_meter("ezone.kit.http")
        self._duration = meter.create_histogram(
            "http.server.request.duration", unit="s", description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and getattr(self, "_hot", None):
            prefix, _, value = scope["path"].rpartition("/")
            route = self._hot.get((scope["method"], prefix + "/"))
            if route is not None and value:
                scope["app"] = self
                await self._answer_hot(route, value, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _answer_hot(self, route: HotRoute, value: str, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        carrier = {name.decode("latin-1"): header.decode("latin-1")
                   for name, header in scope["headers"] if name in _PROPAGATED}
        attributes: dict[str, Any] = {"http.request.method": route.method, "url.scheme": scope.get("scheme", "http"),
                                      "http.route": route.template,
                                      "network.protocol.version": scope.get("http_version", "1.1")}
        span_attributes = {**attributes, "url.path": scope["path"]}
        if server := scope.get("server"):
            span_attributes |= {"server.address": server[0], "server.port": server[1]}
        status = 500
        with trace.get_tracer("ezone.kit.http").start_as_current_span(
                f"{route.method} {route.template}", context=propagate.extract(carrier), kind=SpanKind.SERVER,
                attributes=span_attributes) as span:

            async def sent(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            scope["ezone.hot_route"] = (route, value)
            await self._limited(scope, receive, sent)
            attributes["http.response.status_code"] = status
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                attributes["error.type"] = str(status)
                span.set_status(StatusCode.ERROR)
            self._duration.record(time.perf_counter() - started, attributes)

    async def _call_endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        route, value = scope["ezone.hot_route"]
        request = Request(scope, receive)
        try:
            response = await route.endpoint(request=request, **{route.parameter: value})
        except Exception as exc:  # noqa: BLE001 - answered by the app's handler of it, as through the router
            response = await self._handled(request, exc)
        await response(scope, receive, send)

    async def _handled(self, request: Request, exc: Exception) -> Response:
        handlers = self.exception_handlers
        handler = next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
        if handler is None:
            _log.exception("unhandled error on %s %s", request.method, request.url.path)
            return Response("Internal Server Error", 500)
        return await handler(request, exc)
