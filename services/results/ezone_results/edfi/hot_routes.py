"""The Ed-Fi POST of an item, answered before FastAPI's layers (ezone_kit.hot_path): an Ed-Fi loader sends one
record a request, tens of thousands in a sync. The same endpoint as through the router, errors in Ed-Fi's shape."""

from __future__ import annotations

from ezone_kit.hot_path import HotRoute
from starlette.requests import Request
from starlette.responses import Response

from .problems import call_edfi
from .router import DATA, LEGACY_DATA, post_item


async def _post(request: Request, name: str) -> Response:
    return await call_edfi(post_item, name=name, request=request)


HOT_ROUTES = [HotRoute("POST", prefix, "name", _post) for prefix in (DATA, LEGACY_DATA)]
