"""The plans service's tables (schema `plans`)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from ezone_kit.db import service_metadata
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = service_metadata("plans")
    type_annotation_map = {dict[str, Any]: JSONB}


class Zone(Base):
    __tablename__ = "zones"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    district: Mapped[str] = mapped_column(Text)
    # Conventions: the month a fiscal year and a school year start (Massachusetts: July and September).
    fiscal_year_start_month: Mapped[int] = mapped_column(Integer, server_default=text("7"))
    school_year_start_month: Mapped[int] = mapped_column(Integer, server_default=text("9"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ZonePolicy(Base):
    """Versioned, never updated in place: a change is a new version; reviews record the one they used."""

    __tablename__ = "zone_policies"

    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]]
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def state_code(code: ColumnElement[str]) -> ColumnElement[str]:
    """A school code as a state's file is matched to schools: without leading zeros (DESE writes its codes as eight
    digits, zero-padded; a registration may leave the zeros out and still be the same school)."""
    return func.ltrim(code, "0")


class School(Base):
    """A state school code belongs to one zone at a time: one school per code across zones (uq_schools_state_code)."""

    __tablename__ = "schools"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    code: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    grade_span: Mapped[str] = mapped_column(Text)
    enrollment: Mapped[int | None] = mapped_column(Integer)
    tier: Mapped[str] = mapped_column(Text, server_default=text("'standard'"))
    tier_reason: Mapped[str | None] = mapped_column(Text)
    tier_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now())


Index("uq_schools_state_code", state_code(School.code), unique=True)


class BoardMember(Base):
    """A seat on the Zone Board; `subject` is the identity provider's `sub` for the member's tokens."""

    __tablename__ = "board_members"
    __table_args__ = (UniqueConstraint("zone_id", "subject"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    subject: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    seat: Mapped[int] = mapped_column(Integer)
    appointed_by: Mapped[str] = mapped_column(Text)  # district | state
    active_from: Mapped[date] = mapped_column(Date)
    active_to: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LeadershipMember(Base):
    """A member of a school's leadership team: the principal and elected teacher leaders."""

    __tablename__ = "leadership_members"
    __table_args__ = (UniqueConstraint("school_id", "subject"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    school_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("schools.id"), index=True)
    subject: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)  # principal | teacher_leader
    elected_on: Mapped[date | None] = mapped_column(Date)
    term_ends: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class Plan(Base):
    """One operating plan per school per school year; its content lives in versions."""

    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("school_id", "school_year"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    school_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("schools.id"), index=True)
    school_year: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PlanVersion(Base):
    """draft → submitted → approved | returned → (edited) → submitted …; an amendment is a new version.

    `revision` counts edits of this version; the ETag is built from version and revision.
    """

    __tablename__ = "plan_versions"
    __table_args__ = (UniqueConstraint("plan_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("plans.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text)  # draft | submitted | approved | returned | superseded
    revision: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    content: Mapped[dict[str, Any]]
    amendment: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    automatic: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    policy_version: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now())
    submitted_by: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Vote(Base):
    """A board member's vote on one submitted plan version; voting again replaces it (and is audited)."""

    __tablename__ = "votes"

    plan_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("plan_versions.id"), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("board_members.id"), primary_key=True)
    decision: Mapped[str] = mapped_column(Text)  # approve | return
    comments: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    cast_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReviewRecord(Base):
    """The latest review version per school, year and subject, from review.completed: the tier rules' input."""

    __tablename__ = "review_records"

    school_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("schools.id"), primary_key=True)
    school_year: Mapped[str] = mapped_column(Text, primary_key=True)
    subject: Mapped[str] = mapped_column(Text, primary_key=True)
    review_id: Mapped[uuid.UUID]
    review_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text)
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The review's reason for its status in a sentence; none from reviews made before reviews gave reasons.
    reason: Mapped[str | None] = mapped_column(Text)


class PartnerRecord(Base):
    """Partners' vetting status, from the catalog's partner.vetting_changed events."""

    __tablename__ = "partners"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    zone_id: Mapped[str] = mapped_column(Text, index=True)
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    expires_on: Mapped[date | None] = mapped_column(Date)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
