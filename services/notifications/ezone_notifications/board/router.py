"""The board page at /board: sign-in with a board token, the page and its assets, and the overview it reads.

The page keeps the token in an HttpOnly, SameSite=Strict cookie (`session.BOARD_COOKIE`) so that the browser's
EventSource, which cannot send an Authorization header, reaches the alert stream; the page's script never sees it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs

from ezone_kit.auth import ensure_zone
from ezone_kit.problems import Problem
from ezone_kit.service import Kit, KitDep, SessionDep
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from ..session import BOARD_COOKIE, MemberPrincipal
from .pages import Visitor, school_leader_home
from .pages import router as pages_router
from .rendering import PAGE_HEADERS, templates
from .schemas import BoardOverview
from .service import PAGE_ROLES, board_overview, ensure_page_role, verify_sign_in

router = APIRouter(tags=["board"])

PAGE = "/board"
HERE = Path(__file__).parent
STATIC_FILES = {path.name: path for path in (HERE / "static").iterdir() if path.is_file()}
MAX_FORM_BYTES = 64 * 1024  # a JWT is a few kilobytes at most


def _next_page(requested: str | None) -> str:
    """Where to go after signing in: the board page asked for (e.g. from an alert's link), never another site."""
    if requested and requested.startswith(PAGE + "/") and "\\" not in requested:
        return requested
    return PAGE


def _sign_in_page(message: str | None = None, status_code: int = 200, next_page: str | None = None) -> HTMLResponse:
    html = templates.get_template("sign_in.html").render(message=message, next_page=_next_page(next_page))
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def _redirect_to_page(next_page: str | None = None) -> RedirectResponse:
    return RedirectResponse(_next_page(next_page), status_code=303, headers=PAGE_HEADERS)


async def _sign_in(request: Request, kit: Kit, token: str, next_page: str | None = None) -> Response:
    token = token.strip()
    if not token:
        return _sign_in_page("Paste your board token to sign in.", 400, next_page)
    try:
        _, seconds_left = await verify_sign_in(kit.verifier, token)
    except Problem as problem:
        return _sign_in_page(problem.detail, problem.status, next_page)
    response = _redirect_to_page(next_page)
    response.set_cookie(
        BOARD_COOKIE, token, max_age=seconds_left, path="/", httponly=True, samesite="strict",
        # Secure when the page is served over HTTPS, here or at the public URL of a gateway that terminates TLS;
        # a local `ezone up` serves plain HTTP on 127.0.0.1.
        secure=request.url.scheme == "https" or kit.settings.ezone_notifications_url.startswith("https:"),
    )
    return response


@router.get(PAGE, include_in_schema=False)
async def board_page(request: Request, kit: KitDep) -> Response:
    token = request.cookies.get(BOARD_COOKIE)
    next_page = request.query_params.get("next")
    if not token:
        return _sign_in_page(next_page=next_page)
    try:
        principal, _ = await verify_sign_in(kit.verifier, token)
    except Problem as problem:
        response = _sign_in_page(f"Please sign in again. {problem.detail}", problem.status, next_page)
        if problem.status in (401, 403):  # the token itself is no good (not, say, the key set unreachable)
            response.delete_cookie(BOARD_COOKIE, path="/")
        return response
    if principal.role not in PAGE_ROLES:
        return await school_leader_home(kit, Visitor(principal, token))
    html = templates.get_template("board.html").render(principal=principal)
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.post(PAGE + "/sign-in", include_in_schema=False)
async def sign_in_with_form(request: Request, kit: KitDep) -> Response:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return _sign_in_page("That is too long to be a token.", 413)
    form = parse_qs(body.decode("utf-8", errors="replace"))
    return await _sign_in(request, kit, form.get("token", [""])[0], form.get("next", [None])[0])


@router.get(PAGE + "/sign-in", include_in_schema=False)
async def sign_in_with_link(request: Request, kit: KitDep, token: Annotated[str, Query(max_length=MAX_FORM_BYTES)] = "") -> Response:
    """The development sign-in link: the same as the form, then a redirect so the token leaves the address bar."""
    return await _sign_in(request, kit, token)


@router.post(PAGE + "/sign-out", include_in_schema=False)
async def sign_out() -> Response:
    response = _redirect_to_page()
    response.delete_cookie(BOARD_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get(PAGE + "/static/{name}", include_in_schema=False)
async def static_file(name: str) -> Response:
    path = STATIC_FILES.get(name)
    if path is None:
        raise Problem(404, f"There is no board page file {name!r}.")
    # Revalidated on every load (ETag), so a new version of the page's script is never mixed with an old one.
    return FileResponse(path, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


@router.get("/zones/{zone_id}/board/overview", response_model=BoardOverview,
            summary="The board page's overview: schools' status and trends, and plans awaiting the member's vote")
async def overview(zone_id: str, principal: MemberPrincipal, session: SessionDep, kit: KitDep) -> BoardOverview:
    """Board, district and admin tokens (or the board page's session cookie) of the zone. Each school's newest
    review per subject of its latest reviewed school year, with the integrity flags; the all-students proficiency
    by school year against the approved plans' goals; and the submitted plan versions the calling board member
    has not voted on yet (none for district and admin, who do not vote)."""
    ensure_page_role(principal)
    ensure_zone(principal, zone_id)
    return await board_overview(session, kit.settings, principal, zone_id)


router.include_router(pages_router)
