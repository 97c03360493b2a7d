"""What the catalog tests share: a zone with schools the catalog knows, services and partners made through its
API, and the events other services would publish (plan.approved, school.tier_changed, review.completed)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
from ezone_schemas import PlanApproved, ReviewCompleted, SchoolTierChanged, topics
from ezone_schemas.plans import BudgetEnvelope, PlannedService
from ezone_schemas.results import GoalFinding, IntegrityFlag, SubgroupMetrics

from tests.helpers import register_school, register_zone, scalar, school_code, wait_for_count
from tests.integration.plans.plan_helpers import assert_invalid as assert_invalid_fields  # dotted fields, every pointer
from tests.integration.test_registry_api import assert_problem
from tests.events import publish_as
from tests.stack import Stack

__all__ = ["assert_invalid_fields", "assert_problem", "CatalogZone", "catalog_zone", "YEAR", "CATALOG_TOPIC"]

YEAR = "2025-26"
CATALOG_TOPIC = topics.CATALOG
# Each zone registers them under codes of its own (a state school code belongs to one zone at a time).
SCHOOLS = [
    {"name": "John J Duggan Academy", "grade_span": "6-12", "enrollment": 980},
    {"name": "Forest Park Middle", "grade_span": "6-8", "enrollment": 560},
    {"name": "John F Kennedy Middle", "grade_span": "6-8", "enrollment": 480},
    {"name": "Kiley Academy", "grade_span": "6-8", "enrollment": 350},
    {"name": "Kiley Prep", "grade_span": "6-8", "enrollment": 330},
    {"name": "Rise Academy at Van Sickle", "grade_span": "6-8", "enrollment": 400},
]


def service_body(**changes: object) -> dict:
    """A valid optional district service: interim assessments, priced per pupil."""
    return {
        "name": "Interim assessments", "provider": "district", "category": "assessment",
        "description": "Three interim assessments a year in math and ELA, with item-level reports.",
        "unit": "per_pupil", "price": "10.00", "needs": ["assessment", "math", "ela"], "levers": ["curriculum"], **changes,
    }


def partner_body(name: str = "Pioneer Valley Math Collaborative", **changes: object) -> dict:
    return {"name": name, "description": "Instructional coaching for middle-school math teams.",
            "website": "https://math-collaborative.example.org", "contact_email": "hello@math-collaborative.example.org",
            **changes}


def vetting_body(status: str = "vetted", **changes: object) -> dict:
    body: dict[str, object] = {"status": status}
    if status in ("vetted", "provisional"):
        body |= {"criteria_met": ["results in comparable schools", "references from two districts"],
                 "evidence": [{"title": "Outcomes report 2024", "url": "https://evidence.example.org/report-2024.pdf"}],
                 "expires_on": (date.today() + timedelta(days=365)).isoformat()}
    return body | changes


async def consumed_by_catalog(stack: Stack, ids: list[uuid.UUID]) -> None:
    await wait_for_count(stack, "SELECT count(*) FROM catalog.inbox WHERE event_id = ANY(:ids)", len(set(ids)), ids=ids)


def review(zone_id: str, school_id: str, year: str, subject: str, status: str, *, proficiency: float | None,
           growth: float | None = None, version: int = 1, goals: list[GoalFinding] | None = None,
           flags: list[IntegrityFlag] | None = None) -> ReviewCompleted:
    metrics = [SubgroupMetrics(subgroup="all_students", n_tested=300, proficiency_rate=proficiency,
                               median_growth_percentile=growth, suppressed=proficiency is None)]
    return ReviewCompleted(
        review_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{school_id}/{year}/{subject}"), zone_id=zone_id, school_id=school_id,
        school_year=year, subject=subject, version=version, status=status, goals=goals or [], metrics=metrics,
        flags=flags or [], completed_at=datetime.now(UTC),
    )


@dataclass
class CatalogZone:
    """A registered zone whose schools the catalog has projected, and the requests each role makes of the catalog."""

    stack: Stack
    zone_id: str
    school_ids: list[str]
    plan_versions: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def school_id(self) -> str:
        return self.school_ids[0]

    def staff(self, role: str = "district") -> dict[str, str]:
        return self.stack.auth(role, self.zone_id)

    def team(self, school_id: str | None = None) -> dict[str, str]:
        return self.stack.auth("school", self.zone_id, [school_id or self.school_id])

    def partner(self, partner_id: str, zone_id: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.stack.token('partner', zone_id or self.zone_id, partner_id=partner_id)}"}

    async def request(self, method: str, path: str, headers: dict[str, str], **kwargs: object) -> httpx.Response:
        return await self.stack.clients["services-catalog"].request(method, f"/zones/{self.zone_id}{path}", headers=headers, **kwargs)

    async def scalar(self, sql: str, **params: object):
        return await scalar(self.stack, sql, **params)

    async def footprint(self) -> dict[str, int]:
        """Every row the catalog keeps about the zone: a refused request leaves it as it was."""
        tables = ("services", "partners", "orders", "envelopes", "outbox", "audit_log")
        counts = {t: await self.scalar(f"SELECT count(*) FROM catalog.{t} WHERE zone_id = :z", z=self.zone_id)
                  for t in tables if t != "outbox"}
        counts["outbox"] = await self.scalar("SELECT count(*) FROM catalog.outbox WHERE payload->>'zone_id' = :z", z=self.zone_id)
        counts["vettings"] = await self.scalar("SELECT count(*) FROM catalog.partner_vettings v JOIN catalog.partners p "
                                               "ON p.id = v.partner_id WHERE p.zone_id = :z", z=self.zone_id)
        counts["idempotency_keys"] = await self.scalar("SELECT count(*) FROM catalog.idempotency_keys WHERE scope LIKE :s",
                                                       s=f"%/{self.zone_id}/%")
        return counts

    async def outbox(self, ce_type: str, **payload: str) -> int:
        where = "".join(f" AND payload->>'{k}' = :{k}" for k in payload)
        return await self.scalar(f"SELECT count(*) FROM catalog.outbox WHERE ce_type = :t{where}", t=ce_type, **payload)

    # --- the catalog, as district staff ------------------------------------------------------

    async def add_partner(self, name: str = "Pioneer Valley Math Collaborative", vetting: str | None = "vetted") -> str:
        response = await self.request("POST", "/partners", self.staff(), json=partner_body(name))
        assert response.status_code in (200, 201), response.text
        partner_id = response.json()["id"]
        if vetting is not None:
            vetted = await self.request("POST", f"/partners/{partner_id}/vettings", self.staff(), json=vetting_body(vetting))
            assert vetted.status_code in (200, 201), vetted.text
        return partner_id

    async def add_service(self, publish: bool = True, **changes: object) -> dict:
        created = await self.request("POST", "/services", self.staff(), json=service_body(**changes))
        assert created.status_code in (200, 201), created.text
        service = created.json()
        if publish:
            published = await self.request("POST", f"/services/{service['id']}/publish", self.staff())
            assert published.status_code == 200, published.text
            service = published.json()
        return service

    async def partner_service(self, partner_id: str, **changes: object) -> dict:
        return await self.add_service(**{"name": "Math coaching", "provider": "partner", "partner_id": partner_id,
                                         "category": "professional_development", "unit": "per_unit", "unit_label": "coaching day",
                                         "price": "1000.00", "needs": ["math", "curriculum", "staffing"], **changes})

    # --- what other services announce ----------------------------------------------------------

    def plan_approved(self, amount: str, school_id: str | None = None, year: str = YEAR,
                      planned: list[PlannedService] | None = None) -> PlanApproved:
        """plan.approved as the plans service publishes it; each one for a school and year is the next version.
        `planned`: the purchases the plan budgets for (their amounts add up to `amount`)."""
        school_id = school_id or self.school_id
        version = self.plan_versions.get((school_id, year), 0) + 1
        self.plan_versions[(school_id, year)] = version
        return PlanApproved(
            zone_id=self.zone_id, school_id=school_id, plan_id=uuid.uuid5(uuid.NAMESPACE_URL, f"plan/{school_id}/{year}"),
            school_year=year, version=version, goals=[], approvals=4, returns=0, approved_at=datetime.now(UTC),
            budget=BudgetEnvelope(per_pupil_allocation=Decimal("9800"), total=Decimal("5000000"),
                                  purchased_services_total=Decimal(amount), planned_services=planned or []),
        )

    async def approve_plan(self, amount: str, school_id: str | None = None, year: str = YEAR,
                           planned: list[PlannedService] | None = None) -> None:
        """Approve (or, the second time, amend) the school's plan and wait until the catalog has the envelope."""
        event = self.plan_approved(amount, school_id, year, planned)
        await consumed_by_catalog(self.stack, await publish_as(self.stack, event, source="/ezone/plans"))

    async def set_tier(self, tier: str, school_id: str | None = None) -> None:
        event = SchoolTierChanged(zone_id=self.zone_id, school_id=school_id or self.school_id, previous_tier="standard", tier=tier,
                                  reason="test", rule="test", policy_version=1, changed_at=datetime.now(UTC))
        await consumed_by_catalog(self.stack, await publish_as(self.stack, event, source="/ezone/plans"))

    async def post_reviews(self, *reviews: ReviewCompleted) -> None:
        await consumed_by_catalog(self.stack, await publish_as(self.stack, *reviews, source="/ezone/results"))

    # --- orders --------------------------------------------------------------------------------

    async def order(self, service_id: str, quantity: int = 1, *, school_id: str | None = None, year: str = YEAR,
                    key: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        school_id = school_id or self.school_id
        return await self.request(
            "POST", f"/schools/{school_id}/orders", {**(headers or self.team(school_id)), "Idempotency-Key": key or str(uuid.uuid4())},
            json={"service_id": service_id, "school_year": year, "quantity": quantity})

    async def placed(self, service_id: str, quantity: int = 1, **kwargs: object) -> dict:
        response = await self.order(service_id, quantity, **kwargs)
        assert response.status_code == 201, response.text
        return response.json()

    async def act(self, order_id: str, action: str, headers: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
        return await self.request("POST", f"/orders/{order_id}/{action}", headers or self.staff(), **kwargs)

    async def cancel(self, order: dict, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.request("POST", f"/schools/{order['school_id']}/orders/{order['id']}/cancel",
                                  headers or self.team(order["school_id"]))

    async def budget(self, school_id: str | None = None, year: str = YEAR) -> dict:
        response = await self.request("GET", f"/schools/{school_id or self.school_id}/budget/{year}", self.staff())
        assert response.status_code == 200, response.text
        return response.json()


async def catalog_zone(stack: Stack, zone_id: str, schools: int = 1) -> CatalogZone:
    """A fresh zone with `schools` schools registered in plans and projected by the catalog."""
    await register_zone(stack, zone_id)
    school_ids = [(await register_school(stack, zone_id, {"code": school_code(), **school}))["id"]
                  for school in SCHOOLS[:schools]]
    await wait_for_count(stack, "SELECT count(*) FROM catalog.schools WHERE zone_id = :z", schools, z=zone_id)
    return CatalogZone(stack, zone_id, school_ids)
