"""The board page's backend: the plans, results and catalog APIs, called server-side with the signed-in person's token.

The page has one origin (this service) and one session (its cookie). Rather than a token in the browser or a gateway
path per service, this service forwards the person's own token, so each service still decides what that person may
read or do: a school leader's token reads only their school, and a vote is cast by the member who signed in.
"""

from __future__ import annotations

from typing import Any

import httpx
from ezone_kit.problems import Problem

from ..config import Settings

TIMEOUT_S = 10.0
SERVICE_NAMES = {"plans": "plans", "results": "results", "catalog": "services catalog"}


class Services:
    """One request's calls to the other services, as the person signed in to the page."""

    def __init__(self, settings: Settings, token: str) -> None:
        self._bases = {"plans": settings.ezone_plans_url, "results": settings.ezone_results_url,
                       "catalog": settings.ezone_catalog_url}
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    async def get(self, service: str, path: str, **params: Any) -> Any:
        return await self._call(service, "GET", path, params={k: v for k, v in params.items() if v is not None})

    async def post(self, service: str, path: str, body: dict[str, Any]) -> Any:
        return await self._call(service, "POST", path, json=body)

    async def _call(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        base = self._bases[service].rstrip("/")
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
                response = await client.request(method, base + path, headers=self._headers, **kwargs)
        except httpx.HTTPError as exc:
            raise Problem(502, f"The {SERVICE_NAMES[service]} service at {base} did not answer "
                               f"({exc.__class__.__name__}); try again shortly, or check "
                               f"EZONE_{service.upper()}_URL.") from exc
        if response.is_success:
            return response.json()
        try:
            detail = response.json().get("detail") or response.reason_phrase
        except ValueError:
            detail = response.reason_phrase
        # The owning service's answer as it is: 403 and 404 stay what they are for the person's role and school.
        raise Problem(response.status_code if response.status_code < 500 else 502, str(detail))
