"""Building a zone the notifications service knows, from the events the plans service would publish."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from ezone.stack import wait_for
from ezone_notifications.rules.engine import DEFAULT_RULES
from ezone_schemas import (
    BoardMemberChanged,
    ReviewCompleted,
    SchoolRegistered,
    SchoolTeamChanged,
    ZoneRegistered,
)
from ezone_schemas.plans import TeamMember
from ezone_schemas.results import GoalFinding, IntegrityFlag, SubgroupMetrics
from ezone_schemas.vocabulary import Metric, ReviewStatus, Subgroup, Subject
from sqlalchemy import text

from tests.events import publish_as
from tests.helpers import school_code
from tests.stack import Stack

PLANS_SOURCE = "/ezone/plans"
RESULTS_SOURCE = "/ezone/results"


@dataclass
class SeededZone:
    zone_id: str
    school_id: uuid.UUID
    school_name: str
    board: list[str]
    team: list[str]
    former_member: str
    extra: dict = field(default_factory=dict)


async def seed_zone(stack: Stack, zone_id: str, board_size: int = 3) -> SeededZone:
    """A zone with `board_size` seated members, one member whose term ended, one school and its two-person team."""
    now = datetime.now(UTC)
    school_id = uuid.uuid4()
    school_name = "John J Duggan Academy"
    board = [f"seat-{n}-{zone_id}@example.org" for n in range(1, board_size + 1)]
    former = f"former-{zone_id}@example.org"
    team = [f"principal-{zone_id}@example.org", f"teacher-{zone_id}@example.org"]
    events = [
        ZoneRegistered(zone_id=zone_id, name=f"Zone {zone_id}", district="Springfield", registered_at=now),
        *(BoardMemberChanged(zone_id=zone_id, member_id=uuid.uuid4(), subject=subject, name=f"Member {n}", seat=n,
                             appointed_by="district", active_from=date(2024, 7, 1), active_to=None, changed_at=now)
          for n, subject in enumerate(board, start=1)),
        BoardMemberChanged(zone_id=zone_id, member_id=uuid.uuid4(), subject=former, name="Former", seat=board_size + 1,
                           appointed_by="state", active_from=date(2020, 7, 1), active_to=date.today() - timedelta(days=1),
                           changed_at=now),
        SchoolRegistered(zone_id=zone_id, school_id=school_id, code=school_code(), name=school_name, grade_span="6-12",
                         enrollment=980, registered_at=now),
        SchoolTeamChanged(zone_id=zone_id, school_id=school_id, changed_at=now, members=[
            TeamMember(member_id=uuid.uuid4(), subject=team[0], name="Principal", role="principal", active=True),
            TeamMember(member_id=uuid.uuid4(), subject=team[1], name="Teacher", role="teacher_leader", active=True),
            TeamMember(member_id=uuid.uuid4(), subject=f"gone-{zone_id}@example.org", name="Gone", role="teacher_leader",
                       active=False),
        ]),
    ]
    await publish_as(stack, *events, source=PLANS_SOURCE)
    seeded = SeededZone(zone_id, school_id, school_name, board, team, former)
    await wait_for_sql(stack, "SELECT count(*) FROM notifications.school_team_members WHERE zone_id = :z", 2, z=zone_id)
    await wait_for_sql(stack, "SELECT count(*) FROM notifications.board_members WHERE zone_id = :z", board_size + 1, z=zone_id)
    await wait_for_sql(stack, "SELECT count(*) FROM notifications.alert_rules WHERE zone_id = :z", len(DEFAULT_RULES),
                       z=zone_id)
    return seeded


def review(zone: SeededZone, *, status: ReviewStatus = ReviewStatus.OFF_TRACK, version: int = 1,
           proficiency: float = 18.0, goal: float = 30.0, participation: float = 91.0, flags: bool = True,
           subject: Subject = Subject.MATH, school_year: str = "2025-26") -> ReviewCompleted:
    flag_list = [IntegrityFlag(
        kind="low_participation", subgroup=Subgroup.ALL_STUDENTS,
        summary=f"{participation:.1f}% of all_students students tested; the policy's minimum is 95%.",
        evidence={"tested": 91, "enrolled": 100, "rate": participation, "minimum": 95.0},
    )] if flags else []
    return ReviewCompleted(
        review_id=uuid.uuid4(), zone_id=zone.zone_id, school_id=zone.school_id, school_year=school_year, subject=subject,
        version=version, status=status,
        goals=[GoalFinding(goal_id=uuid.uuid4(), metric=Metric.PROFICIENCY_RATE, subject=subject,
                           subgroup=Subgroup.ALL_STUDENTS, target=goal, actual=proficiency, status=status)],
        metrics=[SubgroupMetrics(subgroup=Subgroup.ALL_STUDENTS, n_tested=91, n_enrolled=100,
                                 proficiency_rate=proficiency, participation_rate=participation,
                                 average_scaled_score=488.0)],
        flags=flag_list, policy_version=1, plan_version=1, completed_at=datetime.now(UTC),
    )


async def sql(stack: Stack, statement: str, **params: object) -> list:
    async with stack.kits["notifications"].engine.connect() as conn:
        return list((await conn.execute(text(statement), params)).all())


async def wait_for_sql(stack: Stack, statement: str, expected: object, timeout_s: float = 20.0, **params: object) -> None:
    async def reached() -> bool:
        return (await sql(stack, statement, **params))[0][0] == expected

    await wait_for(reached, timeout_s, what=f"{statement} == {expected}")


def member_auth(stack: Stack, zone_id: str, subject: str, role: str = "board",
                schools: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token(role, zone_id, schools, subject=subject)}"}
