"""What the ingest tests share: a zone with schools the results service knows, requests as a role, and the rows,
batches and events a request left behind."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from ezone_schemas import ResultsPosted, topics

from tests.events import published_events
from tests.helpers import register_school, register_zone, scalar, school_code, wait_for_count
from tests.results_data import student_results
from tests.stack import Stack

YEAR = "2024-25"


@dataclass
class IngestZone:
    stack: Stack
    zone_id: str
    schools: list[str]

    def auth(self, role: str = "sis", schools: list[str] | None = None, subject: str | None = None) -> dict[str, str]:
        if role in ("sis", "school") and schools is None:
            schools = self.schools
        claims = {"subject": subject} if subject else {}
        return {"Authorization": f"Bearer {self.stack.token(role, self.zone_id, schools, **claims)}"}

    async def request(self, method: str, path: str, *, role: str = "sis", schools: list[str] | None = None,
                      headers: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
        return await self.stack.clients["results"].request(
            method, f"/zones/{self.zone_id}{path}", headers={**self.auth(role, schools), **(headers or {})}, **kwargs)

    async def post(self, path: str, rows: list[dict], *, partial: bool | None = None, key: str | None = None,
                   **kwargs: object) -> httpx.Response:
        params = {"partial": str(partial).lower()} if partial is not None else None
        headers = {"Idempotency-Key": key} if key else None
        return await self.request("POST", path, json={"rows": rows}, params=params, headers=headers, **kwargs)

    def results(self, school: int = 0, *, students: int = 30, subject: str = "MATH", seed: int = 0) -> list[dict]:
        return student_results([self.schools[school]], students_per_school=students, school_year=YEAR, subject=subject, seed=seed)

    async def stored(self, table: str = "student_results") -> int:
        return await scalar(self.stack, f"SELECT count(*) FROM results.{table} WHERE zone_id = :z", z=self.zone_id)

    async def batches(self) -> int:
        return await scalar(self.stack, "SELECT count(*) FROM results.ingest_batches WHERE zone_id = :z", z=self.zone_id)

    async def outbox_events(self, batch_id: str | None = None) -> int:
        """results.posted rows in the outbox (committed with the rows; what the relay publishes)."""
        sql = "SELECT count(*) FROM results.outbox WHERE ce_type = :t AND payload->>'zone_id' = :z"
        if batch_id is not None:
            sql += " AND payload->>'batch_id' = :b"
        return await scalar(self.stack, sql, t=ResultsPosted.ce_type, z=self.zone_id, b=batch_id)

    async def published(self, batch_id: str, expected: int) -> list[dict]:
        """results.posted of a batch as the broker has it, ordered by school and subject."""
        events = await published_events(self.stack, topics.RESULTS, ResultsPosted.ce_type, where={"batch_id": batch_id},
                                         expected=expected)
        return sorted(events, key=lambda event: (self.schools.index(event["school_id"]), event["subject"]))


async def ingest_zone(stack: Stack, zone_id: str, schools: int = 2) -> IngestZone:
    """A zone with `schools` middle schools, once the results service's directory has them."""
    await register_zone(stack, zone_id)
    ids = []
    for number in range(schools):
        school = await register_school(stack, zone_id, {"code": school_code(), "name": f"Middle School {number}",
                                                        "grade_span": "6-8", "enrollment": 400})
        ids.append(school["id"])
    await wait_for_count(stack, "SELECT count(*) FROM results.schools WHERE zone_id = :z", schools, z=zone_id)
    return IngestZone(stack, zone_id, ids)
