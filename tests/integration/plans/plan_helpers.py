"""What the operating-plan tests share: a valid plan body, a school with a seated board, and the calls
each role makes on a plan."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from datetime import date

import httpx
from ezone_schemas import topics
from sqlalchemy import text

from tests.helpers import register_school, register_zone, scalar
from tests.integration.plans.support import assert_problem
from tests.stack import Stack

YEAR = "2025-26"
PLANS_TOPIC = topics.PLANS
BOARD_SIZE = 7


def lever(narrative: str, *decisions: dict) -> dict:
    return {"narrative": narrative, "decisions": list(decisions)}


def plan_body(school_year: str | None = YEAR, *, total: str = "9310000.00", line_items: list[dict] | None = None) -> dict:
    """A complete, valid plan: five levers, a budget with a district and an internal line item, two goals."""
    body = {
        "levers": {
            "curriculum": lever("Illustrative Mathematics in grades 6-8.",
                                {"title": "Adopt IM 6-8", "subjects": ["MATH"], "grades": ["6", "7", "8"]}),
            "staffing": lever("Two math coaches.", {"title": "Hire coaches", "position": "Math coach", "fte_change": "2"}),
            "schedule": lever("A longer day.", {"title": "Extended day", "instructional_minutes_per_day": 390}),
            "budget": {
                "narrative": "Weighted per-pupil funding.",
                "per_pupil_allocation": "9500.00",
                "total": total,
                "line_items": line_items if line_items is not None else [
                    {"description": "Teachers", "amount": "7000000", "category": "staffing", "provider": "internal"},
                    {"description": "Assessment platform", "amount": "45000", "category": "services", "provider": "district",
                     "service_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "assessment"))},
                ],
            },
            "culture": lever("Restorative practices.", {"title": "Restorative circles", "practice": "restorative justice"}),
        },
        "goals": [
            {"metric": "proficiency_rate", "subject": "MATH", "subgroup": "all_students", "baseline": 28.0,
             "annual_target": 34.0, "interim_targets": [{"due": "2026-01-31", "target": 31.0}]},
            {"metric": "median_growth_percentile", "subject": "ELA", "subgroup": "high_needs", "baseline": 41.0,
             "annual_target": 50.0},
        ],
    }
    if school_year is not None:
        body["school_year"] = school_year
    return body


def content_of(body: dict) -> dict:
    """The PUT body: the plan's content without its school year."""
    return {k: copy.deepcopy(v) for k, v in body.items() if k != "school_year"}


def assert_invalid(response: httpx.Response, fields: set[str], root: str = "body") -> list[dict]:
    """A 422 in the validation format listing exactly `fields` (dotted), each with its pointer under `root`
    (the request `body`, or the stored `plan` for a submission) and a reason; returns the errors."""
    body = assert_problem(response, 422)
    assert body["type"] == "https://ezone.dev/problems/validation", body
    assert {error["field"] for error in body["errors"]} == fields, body["errors"]
    assert {error["pointer"] for error in body["errors"]} == {f"/{root}/" + f.replace(".", "/") for f in fields}
    assert all(error["reason"] for error in body["errors"]), body["errors"]
    return body["errors"]


async def execute(stack: Stack, sql: str, **params: object) -> None:
    async with stack.kits["plans"].engine.begin() as conn:
        await conn.execute(text(sql), params)


@dataclass
class PlanSchool:
    """A school of a fresh zone, with a seated board of seven, and the requests each role makes about its plan."""

    stack: Stack
    zone_id: str
    school_id: str
    board: list[str]  # the members' token subjects, by seat

    @property
    def plans(self) -> str:
        return f"/zones/{self.zone_id}/schools/{self.school_id}/plans"

    def plan(self, year: str = YEAR) -> str:
        return f"{self.plans}/{year}"

    def team(self) -> dict[str, str]:
        return self.stack.auth("school", self.zone_id, [self.school_id])

    def member(self, subject: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.stack.token('board', self.zone_id, subject=subject)}"}

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
        return await self.stack.clients["plans"].request(method, path, headers=headers or self.team(), **kwargs)

    async def create(self, body: dict | None = None, **headers: str) -> httpx.Response:
        return await self.request("POST", self.plans, {**self.team(), **headers}, json=body or plan_body())

    async def get(self, year: str = YEAR, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.request("GET", self.plan(year), headers)

    async def etag(self, year: str = YEAR) -> str:
        return (await self.get(year)).headers["ETag"]

    async def put(self, content: dict, if_match: str | None, year: str = YEAR) -> httpx.Response:
        headers = {**self.team(), **({"If-Match": if_match} if if_match is not None else {})}
        return await self.request("PUT", self.plan(year), headers, json=content)

    async def submit(self, if_match: str | None = None, year: str = YEAR) -> httpx.Response:
        """With the current ETag unless one is given."""
        etag = if_match if if_match is not None else await self.etag(year)
        return await self.request("POST", f"{self.plan(year)}/submit", {**self.team(), "If-Match": etag})

    async def amend(self, year: str = YEAR) -> httpx.Response:
        return await self.request("POST", f"{self.plan(year)}/amendments")

    async def vote(self, subject: str, decision: str, comments: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.request("POST", f"{self.plan()}/votes", headers or self.member(subject),
                                  json={"decision": decision, "comments": comments or {}})

    async def votes(self, headers: dict[str, str] | None = None, **params: object) -> httpx.Response:
        return await self.request("GET", f"{self.plan()}/votes", headers or self.member(self.board[0]), params=params)

    async def created_and_submitted(self, body: dict | None = None) -> dict:
        created = await self.create(body)
        assert created.status_code == 201, created.text
        submitted = await self.submit()
        assert submitted.status_code == 200, submitted.text
        return submitted.json()

    async def board_votes(self, *decisions: str) -> list[httpx.Response]:
        """One vote per member, seat by seat; each must be accepted."""
        responses = [await self.vote(subject, decision) for subject, decision in zip(self.board, decisions)]
        for response in responses:
            assert response.status_code == 201, response.text
        return responses

    async def set_tier(self, tier: str) -> None:
        # Test setup straight in the database: the tier is computed elsewhere (from reviews) and stored on the school.
        await execute(self.stack, "UPDATE plans.schools SET tier = :tier WHERE id = :id", tier=tier, id=self.school_id)

    async def add_partner(self, status: str = "vetted", expires_on: date | None = None, zone_id: str | None = None) -> str:
        # Test setup straight in the database: partners arrive from the catalog's partner.vetting_changed events.
        partner_id = str(uuid.uuid4())
        await execute(self.stack, "INSERT INTO plans.partners (id, zone_id, name, status, expires_on, changed_at) "
                                  "VALUES (:id, :zone, 'Math Partners Inc', :status, :expires, now())",
                      id=partner_id, zone=zone_id or self.zone_id, status=status, expires=expires_on)
        return partner_id

    async def audit(self, plan_id: str, action: str) -> list[dict]:
        async with self.stack.kits["plans"].engine.connect() as conn:
            rows = await conn.execute(text(
                "SELECT actor, actor_role, school_id, before, after, trace_id FROM plans.audit_log "
                "WHERE entity = 'plan' AND entity_id = :id AND action = :action ORDER BY id"), {"id": plan_id, "action": action})
            return [dict(row) for row in rows.mappings()]

    async def outbox(self, ce_type: str, plan_id: str) -> int:
        return await scalar(self.stack, "SELECT count(*) FROM plans.outbox WHERE ce_type = :t AND payload->>'plan_id' = :p",
                            t=ce_type, p=plan_id)


async def plan_school(stack: Stack, zone_id: str, *, school: dict | None = None) -> PlanSchool:
    """A registered zone and school, and seven members seated today through the board API."""
    await register_zone(stack, zone_id)
    school_id = (await register_school(stack, zone_id, school))["id"]
    board = [f"member-{seat}@{zone_id}" for seat in range(1, BOARD_SIZE + 1)]
    for seat, subject in enumerate(board, start=1):
        response = await stack.clients["plans"].post(
            f"/zones/{zone_id}/board-members", headers=stack.auth("admin", zone_id),
            json={"name": f"Member {seat}", "subject": subject, "seat": seat,
                  "appointed_by": "district" if seat <= 3 else "state", "active_from": "2020-01-01"},
        )
        assert response.status_code == 201, response.text
    return PlanSchool(stack, zone_id, school_id, board)
