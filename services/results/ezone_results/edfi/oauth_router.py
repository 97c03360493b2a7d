"""SIS client registration and the OAuth2 token endpoint (client credentials)."""

from __future__ import annotations

from typing import Annotated

from ezone_kit.auth import Principal, ensure_zone, require_roles
from ezone_kit.openapi import problem_responses, replayed
from ezone_kit.service import KitDep, SessionDep, UnitOfWorkDep
from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from . import oauth
from .schemas import OAuthClientIn, OAuthClientOut, TokenOut

router = APIRouter(tags=["oauth"])

Admin = Annotated[Principal, Depends(require_roles("admin"))]


def token_issuer(request: Request, kit: KitDep) -> oauth.TokenIssuer:
    """One issuer per running app: it loads the signing key and its key id once."""
    state = request.app.state
    if not hasattr(state, "oauth_issuer"):
        state.oauth_issuer = oauth.TokenIssuer(kit.settings, kit.verifier)
    return state.oauth_issuer


@router.post("/zones/{zone_id}/oauth-clients", response_model=OAuthClientOut, status_code=status.HTTP_201_CREATED,
             summary="Register an SIS client (OAuth2 client credentials)",
             responses={**replayed(OAuthClientOut, "The same name and schools again: the client, without a secret."),
                        **problem_responses(409)})
async def register_client(zone_id: str, body: OAuthClientIn, principal: Admin, uow: UnitOfWorkDep,
                          response: Response) -> OAuthClientOut:
    """201 with `client_id` and `client_secret` — the secret is shown only here. The same name and schools
    again answer 200 without a secret; the same name for other schools, 409."""
    ensure_zone(principal, zone_id)
    client = await oauth.register_client(uow, principal, zone_id, body)
    if not client.created:
        response.status_code = status.HTTP_200_OK
    return client


@router.get("/zones/{zone_id}/oauth-clients", response_model=list[OAuthClientOut], summary="The zone's SIS clients")
async def list_clients(zone_id: str, principal: Admin, session: SessionDep) -> list[OAuthClientOut]:
    ensure_zone(principal, zone_id)
    return await oauth.list_clients(session, zone_id)


_FORM = {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "required": ["grant_type"],
    "properties": {"grant_type": {"const": "client_credentials"}, "client_id": {"type": "string"},
                   "client_secret": {"type": "string"}},
}}}
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthErrorOut(BaseModel):
    """An error of the token endpoint, as RFC 6749 §5.2 shapes it."""

    error: str
    error_description: str


@router.post("/ed-fi/oauth/token", response_model=TokenOut, summary="Get an access token (the Ed-Fi base URL's)",
             openapi_extra={"requestBody": {"required": True, "content": _FORM}}, include_in_schema=False)
@router.post("/oauth/token", response_model=TokenOut, summary="Get an access token (RFC 6749 §4.4)",
             openapi_extra={"requestBody": {"required": True, "content": _FORM}},
             responses={400: {"description": "`invalid_request` or `unsupported_grant_type`", "model": OAuthErrorOut},
                        401: {"description": "`invalid_client`", "model": OAuthErrorOut}})
async def token(request: Request, session: SessionDep, issuer: Annotated[oauth.TokenIssuer, Depends(token_issuer)]) -> Response:
    """Client credentials by HTTP Basic or as `client_id`/`client_secret` form fields. The token is a
    `sis` bearer token for the client's zone and schools."""
    try:
        client_id, secret = oauth.client_credentials(request.headers, await request.body())
        granted = await issuer.issue(await oauth.authenticate(session, client_id, secret))
    except oauth.OAuthError as error:
        headers = {**_NO_STORE, **({"WWW-Authenticate": 'Basic realm="ezone"'} if error.status == 401 else {})}
        return JSONResponse({"error": error.error, "error_description": error.description}, error.status, headers=headers)
    return JSONResponse(granted, headers=_NO_STORE)
