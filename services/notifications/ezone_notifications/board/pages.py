"""The board's pages beyond the overview: a plan and its vote, a review and its reasons, a school's history,
alert preferences, the CSV export, and a school leader's page. All server-rendered, all at this one origin.

Each page reads the other services through `backend.Services` with the signed-in person's own token, so what a
page shows is exactly what that person's token may read from the API; a 403 or 404 there is a 403 or 404 page here.
Forms post with the session cookie, which is SameSite=Strict: another site cannot post them as the member.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from ezone_kit.auth import Principal
from ezone_kit.problems import Problem
from ezone_kit.service import Kit, KitDep
from ezone_schemas.vocabulary import Lever
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from ..alerts import inbox
from ..alerts.schemas import AlertState
from ..deliveries.service import deliveries_of
from ..preferences.schemas import PreferencesIn
from ..preferences.service import get_preferences, put_preferences
from ..session import BOARD_COOKIE
from . import links
from .backend import Services
from .rendering import PAGE_HEADERS, render, review_reasons
from .service import SIGN_IN_ROLES, VOTING_ROLE

router = APIRouter(tags=["board"])

SCHOOL_YEAR = r"^\d{4}-\d{2}$"
MAX_FORM_BYTES = 64 * 1024
SCHOOL_ALERTS = 20


@dataclass(frozen=True)
class Visitor:
    """Who is signed in to the page, with the token the page's backend calls the other services with."""

    principal: Principal
    token: str

    @property
    def zone_path(self) -> str:
        return f"/zones/{quote(self.principal.zone)}"


async def _visitor(request: Request, kit: Kit) -> Visitor | None:
    token = request.cookies.get(BOARD_COOKIE)
    if not token:
        return None
    try:
        principal = await kit.verifier.verify(token)
    except Problem:
        return None
    return Visitor(principal, token) if principal.role in SIGN_IN_ROLES else None


async def _page(request: Request, kit: Kit, build: Callable[[Visitor], Awaitable[Response]]) -> Response:
    """A page for whoever is signed in; the sign-in page otherwise, and an error page saying what went wrong."""
    visitor = await _visitor(request, kit)
    if visitor is None:
        return RedirectResponse(f"{links.PAGE}?next={quote(request.url.path)}", status_code=303, headers=PAGE_HEADERS)
    try:
        return await build(visitor)
    except Problem as problem:
        return render("error.html", visitor=visitor, status=problem.status, message=problem.detail,
                      status_code=problem.status)


async def _form(request: Request) -> dict[str, list[str]]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Problem(413, "That form is too large to be one of this page's.")
    return parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)


def _services(kit: Kit, visitor: Visitor) -> Services:
    return Services(kit.settings, visitor.token)  # type: ignore[arg-type]


# ---------- A school: its history, plan, reviews, orders and budget ----------

def _latest_by_year(reviews: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """school year → subject → its newest review (the API lists newest versions first)."""
    latest: dict[str, dict[str, dict[str, Any]]] = {}
    for review in reviews:
        latest.setdefault(review["school_year"], {}).setdefault(review["subject"], review)
    return latest


async def _optional(call: Awaitable[Any]) -> tuple[Any, str | None]:
    """A part of a page that may be missing (no approved budget yet, say): its value, or why it is missing."""
    try:
        return await call, None
    except Problem as problem:
        return None, problem.detail


async def school_view(kit: Kit, visitor: Visitor, school_id: uuid.UUID) -> Response:
    calls, zone = _services(kit, visitor), visitor.zone_path
    school = await calls.get("plans", f"{zone}/schools/{school_id}")  # 403/404 for a school not the visitor's
    reviews = await calls.get("results", f"{zone}/schools/{school_id}/reviews")
    plans, plans_missing = await _optional(calls.get("plans", f"{zone}/schools/{school_id}/plans"))
    tallies = {}
    for plan in plans or []:
        version = plan["open_version"]
        if version and version["status"] == "submitted":
            votes, _ = await _optional(
                calls.get("plans", f"{zone}/schools/{school_id}/plans/{plan['school_year']}/votes"))
            tallies[plan["school_year"]] = votes or []
    orders, orders_missing = await _optional(calls.get("catalog", f"{zone}/schools/{school_id}/orders"))
    budget, budget_missing = None, "No plan has been approved yet, so there is no budget for services."
    approved = next((plan for plan in plans or [] if plan["approved_version"]), None)
    if approved is not None:
        budget, budget_missing = await _optional(
            calls.get("catalog", f"{zone}/schools/{school_id}/budget/{approved['school_year']}"))
    async with kit.sessions() as session:
        alerts = await inbox.page(session, visitor.principal.zone, visitor.principal.subject, state=AlertState.ACTIVE,
                                  severities=None, school_id=school_id, source_type=None, before_seq=None,
                                  after_seq=None, limit=SCHOOL_ALERTS)
    by_year = _latest_by_year(reviews)
    subjects = sorted({subject for year in by_year.values() for subject in year})
    return render("school.html", visitor=visitor, school=school, by_year=by_year, subjects=subjects,
                  plans=plans or [], plans_missing=plans_missing, tallies=tallies, orders=orders or [],
                  orders_missing=orders_missing, budget=budget, budget_missing=budget_missing,
                  alerts=alerts.items, reasons=review_reasons, links=links, settings=kit.settings)


@router.get(links.PAGE + "/schools/{school_id}", include_in_schema=False)
async def school_page(request: Request, kit: KitDep, school_id: uuid.UUID) -> Response:
    return await _page(request, kit, lambda visitor: school_view(kit, visitor, school_id))


async def school_leader_home(kit: Kit, visitor: Visitor) -> Response:
    """A school leader's page: their school's, or a list when their token names several."""
    if len(visitor.principal.schools) == 1:
        return await school_view(kit, visitor, uuid.UUID(next(iter(visitor.principal.schools))))
    schools = await _services(kit, visitor).get("plans", f"{visitor.zone_path}/schools")
    return render("schools.html", visitor=visitor, schools=schools, links=links, settings=kit.settings)


# ---------- A review, with its reasons and trend ----------

@router.get(links.PAGE + "/schools/{school_id}/reviews/{school_year}/{subject}", include_in_schema=False)
async def review_page(request: Request, kit: KitDep, school_id: uuid.UUID, school_year: str, subject: str) -> Response:
    async def build(visitor: Visitor) -> Response:
        calls, zone = _services(kit, visitor), visitor.zone_path
        school = await calls.get("plans", f"{zone}/schools/{school_id}")
        review = await calls.get("results", f"{zone}/schools/{school_id}/reviews/latest",
                                 school_year=school_year, subject=subject)
        history = await calls.get("results", f"{zone}/schools/{school_id}/reviews", subject=subject)
        trend = [years[subject] for year, years in sorted(_latest_by_year(history).items())]
        return render("review.html", visitor=visitor, school=school, review=review, trend=trend,
                      reasons=review_reasons(review), links=links, settings=kit.settings)
    return await _page(request, kit, build)


# ---------- A plan, and the member's vote ----------

def _versions(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [version for version in (plan["open_version"], plan["approved_version"]) if version]
    return sorted({version["version"]: version for version in found}.values(), key=lambda v: -v["version"])


async def plan_view(kit: Kit, visitor: Visitor, school_id: uuid.UUID, school_year: str, *,
                    notice: str | None = None, problem: Problem | None = None) -> Response:
    calls, zone = _services(kit, visitor), visitor.zone_path
    school = await calls.get("plans", f"{zone}/schools/{school_id}")
    plan = await calls.get("plans", f"{zone}/schools/{school_id}/plans/{school_year}")
    versions = _versions(plan)
    votes = {}
    for version in versions:
        if version["submitted_at"]:
            votes[version["version"]] = await calls.get(
                "plans", f"{zone}/schools/{school_id}/plans/{school_year}/votes", version=version["version"])
    open_version = plan["open_version"]
    may_vote = (visitor.principal.role == VOTING_ROLE and open_version is not None
                and open_version["status"] == "submitted")
    return render("plan.html", visitor=visitor, school=school, plan=plan, versions=versions, votes=votes,
                  may_vote=may_vote, levers=list(Lever), notice=notice,
                  problem=problem.detail if problem else None, links=links, settings=kit.settings,
                  status_code=problem.status if problem else 200)


@router.get(links.PAGE + "/schools/{school_id}/plans/{school_year}", include_in_schema=False)
async def plan_page(request: Request, kit: KitDep, school_id: uuid.UUID, school_year: str) -> Response:
    voted = request.query_params.get("voted")
    notice = f"Your vote to {voted} was recorded." if voted in ("approve", "return") else None
    return await _page(request, kit, lambda visitor: plan_view(kit, visitor, school_id, school_year, notice=notice))


@router.post(links.PAGE + "/schools/{school_id}/plans/{school_year}/vote", include_in_schema=False)
async def vote(request: Request, kit: KitDep, school_id: uuid.UUID, school_year: str) -> Response:
    """The plans API decides: it records the vote and applies the zone policy's majority rule."""
    async def build(visitor: Visitor) -> Response:
        form = await _form(request)
        decision = form.get("decision", [""])[0]
        if decision not in ("approve", "return"):
            return await plan_view(kit, visitor, school_id, school_year,
                                   problem=Problem(422, "Choose approve or return before casting your vote."))
        comments = {lever.value: text for lever in Lever
                    if (text := form.get(f"comment-{lever.value}", [""])[0].strip())}
        try:
            await _services(kit, visitor).post(
                "plans", f"{visitor.zone_path}/schools/{school_id}/plans/{school_year}/votes",
                {"decision": decision, "comments": comments})
        except Problem as problem:
            if problem.status in (403, 404):
                raise
            return await plan_view(kit, visitor, school_id, school_year, problem=problem)
        # After a redirect, so that reloading the page does not post the vote again; the page reads the plan anew.
        return RedirectResponse(f"{links.PAGE}/schools/{school_id}/plans/{quote(school_year)}?voted={decision}",
                                status_code=303, headers=PAGE_HEADERS)
    return await _page(request, kit, build)


# ---------- One alert: what it says, where it was sent, and the trace an operator looks it up by ----------

@router.get(links.PAGE + "/alerts/{alert_id}", include_in_schema=False)
async def alert_page(request: Request, kit: KitDep, alert_id: uuid.UUID) -> Response:
    async def build(visitor: Visitor) -> Response:
        zone, recipient = visitor.principal.zone, visitor.principal.subject
        async with kit.sessions() as session:
            alert = await inbox.get(session, zone, recipient, alert_id)  # only the visitor's own alerts
            if alert is None:
                raise inbox.not_found(zone, alert_id)
            deliveries = await deliveries_of(session, alert_id)
        return render("alert.html", visitor=visitor, alert=alert, deliveries=deliveries, links=links,
                      settings=kit.settings)
    return await _page(request, kit, build)


# ---------- Partners' evidence of impact, as the catalog judges it ----------

@router.get(links.PAGE + "/evidence", include_in_schema=False)
async def evidence_page(request: Request, kit: KitDep) -> Response:
    async def build(visitor: Visitor) -> Response:
        partners = await _services(kit, visitor).get("catalog", f"{visitor.zone_path}/evidence")
        return render("evidence.html", visitor=visitor, partners=partners, links=links, settings=kit.settings)
    return await _page(request, kit, build)


@router.get(links.PAGE + "/partners/{partner_id}/evidence", include_in_schema=False)
async def partner_evidence_page(request: Request, kit: KitDep, partner_id: uuid.UUID) -> Response:
    async def build(visitor: Visitor) -> Response:
        evidence = await _services(kit, visitor).get("catalog", f"{visitor.zone_path}/partners/{partner_id}/evidence")
        return render("partner_evidence.html", visitor=visitor, evidence=evidence, links=links, settings=kit.settings)
    return await _page(request, kit, build)


# ---------- Alert preferences ----------

SEVERITIES = ("critical", "warning", "info")
CHANNELS = ("email", "webhook")


def _preferences_body(form: dict[str, list[str]]) -> dict[str, Any]:
    first = lambda name: form.get(name, [""])[0].strip()  # noqa: E731 - a one-line reader of the form
    quiet = {"start": first("quiet-start"), "end": first("quiet-end")}
    return {
        "email": first("email") or None,
        "timezone": first("timezone"),
        "channels": {severity: [c for c in CHANNELS if f"{severity}-{c}" in form] for severity in SEVERITIES},
        "quiet_hours": quiet if any(quiet.values()) else None,
        "digest": {"enabled": "digest-enabled" in form, "time": first("digest-time") or "07:00"},
    }


def _validation_message(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in error.errors())


async def preferences_view(kit: Kit, visitor: Visitor, *, saved: bool = False, problem: str | None = None,
                           status_code: int = 200) -> Response:
    async with kit.sessions() as session:
        current = await get_preferences(session, kit.settings, visitor.principal.zone,  # type: ignore[arg-type]
                                        visitor.principal.subject)
    return render("preferences.html", visitor=visitor, preferences=current, severities=SEVERITIES, channels=CHANNELS,
                  saved=saved, problem=problem, links=links, settings=kit.settings, status_code=status_code)


@router.get(links.PAGE + "/preferences", include_in_schema=False)
async def preferences_page(request: Request, kit: KitDep) -> Response:
    saved = request.query_params.get("saved") == "1"
    return await _page(request, kit, lambda visitor: preferences_view(kit, visitor, saved=saved))


@router.post(links.PAGE + "/preferences", include_in_schema=False)
async def save_preferences(request: Request, kit: KitDep) -> Response:
    async def build(visitor: Visitor) -> Response:
        try:
            body = PreferencesIn.model_validate(_preferences_body(await _form(request)))
        except ValidationError as error:
            return await preferences_view(kit, visitor, problem=_validation_message(error), status_code=422)
        async with kit.unit_of_work() as uow:
            await put_preferences(uow, visitor.principal, visitor.principal.zone, body)
        return RedirectResponse(links.PAGE + "/preferences?saved=1", status_code=303, headers=PAGE_HEADERS)
    return await _page(request, kit, build)


# ---------- The zone's latest statuses and metrics as CSV ----------

EXPORT_COLUMNS = ("school_id", "school_code", "school_name", "school_year", "subject", "status", "reason",
                  "review_version", "subgroup", "n_tested", "suppressed", "proficiency_rate", "participation_rate",
                  "average_scaled_score", "median_growth_percentile", "achievement_percentile")


@router.get(links.PAGE + "/export.csv", include_in_schema=False)
async def export_csv(request: Request, kit: KitDep) -> Response:
    """One row per school, subject and subgroup of each school's newest reviews, as the results API gives them."""
    async def build(visitor: Visitor) -> Response:
        calls, zone = _services(kit, visitor), visitor.zone_path
        reviews = await calls.get("results", f"{zone}/reviews/latest")
        schools = {school["id"]: school for school in await calls.get("plans", f"{zone}/schools")}
        out = io.StringIO()
        writer = csv.DictWriter(out, EXPORT_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
        writer.writeheader()
        for review in sorted(reviews, key=lambda r: (schools.get(r["school_id"], {}).get("name", ""), r["subject"])):
            school = schools.get(review["school_id"], {})
            common = {"school_id": review["school_id"], "school_code": school.get("code"),
                      "school_name": school.get("name"), "school_year": review["school_year"],
                      "subject": review["subject"], "status": review["status"], "review_version": review["version"],
                      "reason": " ".join(review_reasons(review))}
            for metrics in review["metrics"] or [{}]:
                writer.writerow(common | metrics)
        filename = f"{visitor.principal.zone}-latest-reviews.csv"
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})
    return await _page(request, kit, build)
