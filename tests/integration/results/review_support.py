"""What the review tests share: a zone and its schools (through the plans API), student rows written straight
into the results tables, and events published on the broker as the other services would publish them.

The rows go in with SQL, not through the ingest API, on purpose: the ingest endpoints are developed
alongside, and the review engine only reads the tables.
"""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from ezone_schemas import Event, ResultsPosted
from sqlalchemy import text

from ezone.stack import wait_for
from tests.helpers import register_school, register_zone, scalar, school_code
from tests.results_data import NAMESPACE
from tests.events import publish_as
from tests.stack import Stack

_first_years = itertools.count(random.randrange(2900, 3300), 3)  # far from any real school year


def fresh_years() -> tuple[str, str]:
    """A (previous, current) pair of school years no other test of this session uses: the statewide comparison
    groups (school_aggregates) are shared by every zone, so each test compares schools in years of its own."""
    start = next(_first_years)
    return f"{start - 1}-{start % 100:02d}", f"{start}-{(start + 1) % 100:02d}"


@dataclass
class Student:
    id: str
    score: float | None = None
    proficient: bool | None = None
    sgp: float | None = None
    reason: str | None = None  # not_tested_reason
    subgroups: tuple[str, ...] = ()
    grade: str | None = "5"
    level: str | None = None  # performance_level


@dataclass
class ReviewZone:
    stack: Stack
    zone_id: str
    schools: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)

    async def execute(self, sql: str, rows: list[dict] | dict) -> None:
        async with self.stack.kits["results"].engine.begin() as conn:
            await conn.execute(text(sql), rows)

    async def results(self, school: str, year: str, subject: str, students: list[Student],
                      batch_id: uuid.UUID | None = None, day: date = date(2000, 5, 10), *, namespace: str = NAMESPACE,
                      assessment: str | None = None, category: str | None = None) -> uuid.UUID:
        """Rows of one assessment: MCAS (`MCAS-G<grade>-<subject>`, which every zone's default policy counts) unless
        another is named."""
        batch_id = batch_id or uuid.uuid4()
        await self.execute(
            """INSERT INTO results.student_results (zone_id, school_id, student_id, assessment_namespace,
                   assessment_identifier, assessment_category, subject, grade, school_year, administration_date,
                   scale_score, performance_level, proficient, growth_percentile, not_tested_reason, subgroups, batch_id)
               VALUES (:zone, :school, :student, :namespace, :assessment, :category, :subject, :grade, :year, :day,
                       :score, :level, :proficient, :sgp, :reason, :subgroups, :batch)""",
            [{"zone": self.zone_id, "school": school, "student": s.id, "namespace": namespace,
              "assessment": assessment or f"MCAS-G{s.grade}-{subject}", "category": category,
              "subject": subject, "grade": s.grade, "year": year, "day": day, "score": s.score, "level": s.level,
              "proficient": s.proficient, "sgp": s.sgp, "reason": s.reason, "subgroups": list(s.subgroups),
              "batch": batch_id} for s in students],
        )
        return batch_id

    async def enrollments(self, school: str, year: str, students: list[Student], entry: date = date(1999, 9, 1),
                          exit: date | None = None) -> None:
        await self.execute(
            """INSERT INTO results.enrollments (zone_id, school_id, student_id, school_year, grade, entry_date, exit_date,
                   subgroups, batch_id)
               VALUES (:zone, :school, :student, :year, :grade, :entry, :exit, :subgroups, :batch)""",
            [{"zone": self.zone_id, "school": school, "student": s.id, "year": year, "grade": s.grade, "entry": entry,
              "exit": exit, "subgroups": list(s.subgroups), "batch": uuid.uuid4()} for s in students],
        )

    async def post(self, school: str, year: str, subject: str, *batch_ids: uuid.UUID) -> None:
        """`results.posted` of each batch (one if none is named), emitted in one unit of work as the ingest API
        emits them with the rows it stored."""
        kit = self.stack.kits["results"]
        async with kit.unit_of_work() as uow:
            uow.emit(*(results_posted(self.zone_id, school, year, subject, batch_id)
                       for batch_id in batch_ids or (uuid.uuid4(),)))
            await uow.commit()

    async def change_policy(self, **changes: object) -> None:
        """Adopt the next policy version through the plans API, as the zone's admin."""
        plans, admin = self.stack.clients["plans"], self.stack.auth("admin", self.zone_id)
        current = await plans.get(f"/zones/{self.zone_id}/policy", headers=admin)
        changed = await plans.put(f"/zones/{self.zone_id}/policy", json={**current.json()["document"], **changes},
                                  headers={**admin, "If-Match": current.headers["etag"]})
        assert changed.status_code == 201, changed.text

    async def reviews(self, school: str, year: str, subject: str) -> list[dict]:
        async with self.stack.kits["results"].engine.connect() as conn:
            rows = await conn.execute(text(
                "SELECT * FROM results.reviews WHERE school_id = :s AND school_year = :y AND subject = :j ORDER BY version"),
                {"s": school, "y": year, "j": subject})
            return [dict(row) for row in rows.mappings()]

    async def wait_for_review(self, school: str, year: str, subject: str, version: int = 1) -> dict:
        async def reviewed() -> bool:
            return await scalar(self.stack, "SELECT max(version) FROM results.reviews WHERE school_id = :s AND "
                                            "school_year = :y AND subject = :j", s=school, y=year, j=subject) == version

        await wait_for(reviewed, 20, what=f"review v{version} of {school} {year} {subject}")
        return (await self.reviews(school, year, subject))[-1]

    async def review_of(self, school: str, year: str, subject: str, version: int = 1,
                        batch_id: uuid.UUID | None = None) -> dict:
        """Post the results and wait for the review."""
        await self.post(school, year, subject, *([batch_id] if batch_id else []))
        return await self.wait_for_review(school, year, subject, version)


def results_posted(zone_id: str, school: str, year: str, subject: str, batch_id: uuid.UUID) -> ResultsPosted:
    return ResultsPosted(zone_id=zone_id, school_id=school, school_year=year, subject=subject,
                         assessment_identifiers=[f"{subject}-5"], batch_id=batch_id, source="json", rows_inserted=1,
                         rows_updated=0, posted_at=datetime.now(UTC))


async def publish(stack: Stack, *events: Event, event_ids: list[uuid.UUID] | None = None,
                  source: str = "/ezone/results") -> list[uuid.UUID]:
    return await publish_as(stack, *events, source=source, event_ids=event_ids)


async def review_zone(stack: Stack, zone_id: str, schools: int = 1, codes: list[str] | None = None) -> ReviewZone:
    """A zone with `schools` schools (unique state codes unless given), once the results service knows them and the
    zone's policy."""
    await register_zone(stack, zone_id)
    zone = ReviewZone(stack, zone_id)
    codes = codes or [school_code() for _ in range(schools)]
    for i, code in enumerate(codes):
        school = await register_school(stack, zone_id, {"code": code, "name": f"School {i} {code}", "grade_span": "3-8",
                                                        "enrollment": 400})
        zone.schools.append(school["id"])
        zone.codes.append(code)

    async def projected() -> bool:
        known = await scalar(stack, "SELECT count(*) FROM results.schools WHERE zone_id = :z", z=zone_id)
        policy = await scalar(stack, "SELECT count(*) FROM results.zone_policies WHERE zone_id = :z", z=zone_id)
        return known == len(codes) and policy == 1

    await wait_for(projected, 20, what=f"results to know zone {zone_id}")
    return zone


def cohort(prefix: str, scores: list[float], *, cut: float = 500.0, **fields: object) -> list[Student]:
    """Tested students with the given scores; proficient at or above `cut`."""
    return [Student(f"{prefix}-{i}", score=s, proficient=s >= cut, **fields) for i, s in enumerate(scores)]
