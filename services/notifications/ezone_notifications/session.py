"""Who is calling: a bearer token, or the board page's session cookie holding the same token.

A browser's EventSource cannot send an Authorization header, so the board page signs in once and the
token travels in an HttpOnly, SameSite=Strict cookie. Only this service reads the cookie.
"""

from __future__ import annotations

from typing import Annotated

from ezone_kit.auth import Principal, current_principal
from fastapi import Depends, Request

BOARD_COOKIE = "ezone_board_session"


async def member_principal(request: Request) -> Principal:
    token = request.cookies.get(BOARD_COOKIE)
    if token and not request.headers.get("authorization"):
        principal = await request.app.state.kit.verifier.verify(token)
        request.state.principal = principal
        return principal
    return await current_principal(request)


MemberPrincipal = Annotated[Principal, Depends(member_principal)]
