"""The board overview from this service's projections, and who may sign in to the board page."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from typing import Any

import jwt
from ezone_kit.auth import JwksVerifier, Principal
from ezone_kit.problems import Problem
from ezone_schemas.vocabulary import Metric, Subgroup, Subject
from sqlalchemy import and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..config import Settings
from ..models import board_members, open_plans, plan_goals, plan_votes, school_reviews, schools
from . import links
from .schemas import (
    BoardOverview,
    FlagOut,
    LatestReview,
    Member,
    PlanAwaitingVote,
    SchoolOverview,
    SubjectOverview,
    TrendPoint,
)

PAGE_ROLES = ("board", "district", "admin")
SIGN_IN_ROLES = (*PAGE_ROLES, "school")  # a school leader's page shows their school only
VOTING_ROLE = "board"


def ensure_page_role(principal: Principal) -> None:
    if principal.role not in PAGE_ROLES:
        raise Problem(403, f"The zone's overview is for board members and district or admin staff; "
                           f"this token's role is {principal.role}.")


async def verify_sign_in(verifier: JwksVerifier, token: str) -> tuple[Principal, int]:
    """The token's principal and how many seconds it stays valid; a Problem says why it cannot sign in."""
    principal = await verifier.verify(token)
    if principal.role not in SIGN_IN_ROLES:
        raise Problem(403, f"The board page is for board members, school leaders and district or admin staff; "
                           f"this token's role is {principal.role}.")
    # Verified just above, so its expiry can be read without checking the signature again.
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
    return principal, max(0, int(expires_at - time.time()))


def _proficiency_targets(goals: list[dict[str, Any]]) -> dict[str, float]:
    """Subject → the plan's all-students proficiency annual target."""
    return {
        goal["subject"]: goal["annual_target"] for goal in goals
        if goal["metric"] == Metric.PROFICIENCY_RATE and goal["subgroup"] == Subgroup.ALL_STUDENTS
    }


async def board_overview(session: AsyncSession, settings: Settings, principal: Principal, zone_id: str) -> BoardOverview:
    directory = (await session.execute(
        select(schools).where(schools.c.zone_id == zone_id).order_by(schools.c.name)
    )).mappings().all()
    reviews: dict[tuple[uuid.UUID, str], dict[str, Any]] = defaultdict(dict)  # (school, subject) → year → review
    for review in (await session.execute(select(school_reviews).where(school_reviews.c.zone_id == zone_id))).mappings():
        reviews[review["school_id"], review["subject"]][review["school_year"]] = review
    targets: dict[tuple[uuid.UUID, str], dict[str, float]] = defaultdict(dict)  # (school, subject) → year → target
    for plan in (await session.execute(select(plan_goals).where(plan_goals.c.zone_id == zone_id))).mappings():
        for subject, target in _proficiency_targets(plan["goals"]).items():
            targets[plan["school_id"], subject][plan["school_year"]] = target

    present = {subject for _, subject in (*reviews, *targets)}
    subjects = [subject for subject in Subject if subject.value in present]
    return BoardOverview(
        zone_id=zone_id,
        member=await _member(session, principal, zone_id),
        subjects=subjects,
        schools=[
            SchoolOverview(
                id=school["id"], code=school["code"], name=school["name"], grade_span=school["grade_span"],
                enrollment=school["enrollment"],
                subjects=[_subject_overview(subject, reviews[school["id"], subject.value],
                                            targets[school["id"], subject.value]) for subject in subjects],
            )
            for school in directory
        ],
        plans_awaiting_vote=await _awaiting_vote(session, settings, principal, zone_id),
    )


def _subject_overview(subject: Subject, by_year: dict[str, Any], targets: dict[str, float]) -> SubjectOverview:
    trend = [
        TrendPoint(school_year=year, proficiency_rate=by_year[year]["proficiency_rate"] if year in by_year else None,
                   goal=targets.get(year))
        for year in sorted(by_year.keys() | targets.keys())
    ]
    latest = None
    if by_year:
        year = max(by_year)
        review = by_year[year]
        latest = LatestReview(
            school_year=year, status=review["status"], proficiency_rate=review["proficiency_rate"],
            participation_rate=review["participation_rate"], goal=targets.get(year),
            flags=[FlagOut(**flag) for flag in review["flags"]], reasons=review["reasons"], version=review["version"],
            completed_at=review["completed_at"],
        )
    return SubjectOverview(subject=subject, latest=latest, trend=trend)


async def _member(session: AsyncSession, principal: Principal, zone_id: str) -> Member:
    seated = (await session.execute(
        select(board_members.c.name, board_members.c.seat)
        .where(board_members.c.zone_id == zone_id, board_members.c.subject == principal.subject)
        .order_by(board_members.c.active_from.desc())
        .limit(1)
    )).first()
    return Member(subject=principal.subject, role=principal.role,
                  name=seated.name if seated else None, seat=seated.seat if seated else None)


async def _awaiting_vote(session: AsyncSession, settings: Settings, principal: Principal,
                         zone_id: str) -> list[PlanAwaitingVote]:
    if principal.role != VOTING_ROLE:
        return []
    voted = exists().where(and_(
        plan_votes.c.plan_id == open_plans.c.plan_id, plan_votes.c.version == open_plans.c.version,
        plan_votes.c.subject == principal.subject,
    ))
    rows = (await session.execute(
        select(open_plans, schools.c.name.label("school_name"))
        .join(schools, schools.c.id == open_plans.c.school_id)
        .where(open_plans.c.zone_id == zone_id, open_plans.c.decided.is_(None), ~voted)
        .order_by(open_plans.c.submitted_at, schools.c.name)
    )).mappings()
    return [
        PlanAwaitingVote(
            plan_id=row["plan_id"], version=row["version"], school_id=row["school_id"], school_name=row["school_name"],
            school_year=row["school_year"], amendment=row["amendment"], submitted_at=row["submitted_at"],
            link=links.plan_page(settings, row["school_id"], row["school_year"]),
        )
        for row in rows
    ]
