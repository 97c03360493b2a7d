"""Accountability reviews over HTTP: every version per school, the latest ones, and their metrics.

Board, district and admin tokens read their whole zone; school and sis tokens only their own schools
(403 for another school of the zone); another zone's schools do not exist for the caller (404).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from ezone_kit.auth import CurrentPrincipal, Principal, ensure_school, ensure_zone
from ezone_kit.problems import Problem
from ezone_kit.service import SessionDep
from ezone_schemas.vocabulary import Subject
from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import Review, schools
from .schemas import MetricsOut, ReviewOut

router = APIRouter(tags=["reviews"])

SchoolYear = Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", examples=["2024-25"])]


async def _school_of_zone(session: AsyncSession, principal: Principal, zone_id: str, school_id: uuid.UUID) -> None:
    ensure_zone(principal, zone_id)
    found = await session.scalar(select(schools.c.id).where(schools.c.id == school_id, schools.c.zone_id == zone_id))
    if found is None:
        raise Problem(404, f"School {school_id} was not found in zone {zone_id!r}.")
    ensure_school(principal, zone_id, school_id)


def _out(review: Review) -> ReviewOut:
    return ReviewOut.model_validate(review, from_attributes=True)


@router.get("/zones/{zone_id}/schools/{school_id}/reviews", response_model=list[ReviewOut],
            summary="Every review version of a school, newest first")
async def list_reviews(zone_id: str, school_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep,
                       school_year: SchoolYear | None = None, subject: Subject | None = None) -> list[ReviewOut]:
    await _school_of_zone(session, principal, zone_id, school_id)
    query = select(Review).where(Review.school_id == school_id)
    if school_year is not None:
        query = query.where(Review.school_year == school_year)
    if subject is not None:
        query = query.where(Review.subject == subject.value)
    query = query.order_by(Review.school_year.desc(), Review.subject, Review.version.desc())
    return [_out(review) for review in (await session.scalars(query))]


@router.get("/zones/{zone_id}/schools/{school_id}/reviews/latest", response_model=ReviewOut,
            summary="The newest review of a school for one school year and subject")
async def latest_review(zone_id: str, school_id: uuid.UUID, school_year: SchoolYear, subject: Subject,
                        principal: CurrentPrincipal, session: SessionDep) -> ReviewOut:
    await _school_of_zone(session, principal, zone_id, school_id)
    review = await session.scalar(
        select(Review)
        .where(Review.school_id == school_id, Review.school_year == school_year, Review.subject == subject.value)
        .order_by(Review.version.desc())
        .limit(1)
    )
    if review is None:
        raise Problem(404, f"School {school_id} has no {subject.value} review for {school_year} yet.")
    return _out(review)


@router.get("/zones/{zone_id}/schools/{school_id}/metrics", response_model=list[MetricsOut],
            summary="The metrics per subgroup of a school's newest reviews, per school year and subject")
async def school_metrics(zone_id: str, school_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep,
                         school_year: SchoolYear | None = None, subject: Subject | None = None) -> list[MetricsOut]:
    await _school_of_zone(session, principal, zone_id, school_id)
    query = select(Review).where(Review.school_id == school_id)
    if school_year is not None:
        query = query.where(Review.school_year == school_year)
    if subject is not None:
        query = query.where(Review.subject == subject.value)
    query = (query.ext(distinct_on(Review.school_year, Review.subject))
             .order_by(Review.school_year.desc(), Review.subject, Review.version.desc()))
    return [
        MetricsOut(school_id=r.school_id, school_year=r.school_year, subject=r.subject, review_id=r.id,
                   review_version=r.version, reviewed_at=r.created_at, metrics=r.metrics)
        for r in await session.scalars(query)
    ]


@router.get("/zones/{zone_id}/reviews/latest", response_model=list[ReviewOut],
            summary="The zone's newest review per school and subject (of the newest school year, unless one is given)")
async def zone_latest_reviews(zone_id: str, principal: CurrentPrincipal, session: SessionDep,
                              school_year: SchoolYear | None = None) -> list[ReviewOut]:
    ensure_zone(principal, zone_id)
    query = select(Review).where(Review.zone_id == zone_id)
    if school_year is not None:
        query = query.where(Review.school_year == school_year)
    query = (query.ext(distinct_on(Review.school_id, Review.subject))
             .order_by(Review.school_id, Review.subject, Review.school_year.desc(), Review.version.desc()))
    return [_out(review) for review in await session.scalars(query) if principal.may_act_for_school(review.school_id)]
