"""The catalog service's tables (schema `catalog`)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ezone_kit.db import service_metadata
from ezone_kit.directory import school_directory_table
from ezone_kit.zones import zone_tables
from sqlalchemy import Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, Numeric, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Money = Numeric(14, 2)


class Base(DeclarativeBase):
    metadata = service_metadata("catalog")
    type_annotation_map = {dict[str, Any]: JSONB, list[Any]: JSONB, Decimal: Money}


# The zone's schools, from school.registered / school.updated (the kit's projection).
schools = school_directory_table(Base.metadata)
known_zones, parked_events = zone_tables(Base.metadata)  # which zones exist (see ezone_kit.zones)


class SchoolTier(Base):
    """Each school's earned-autonomy tier, from school.tier_changed: intensive-support schools buy only from vetted partners."""

    __tablename__ = "school_tiers"

    school_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    zone_id: Mapped[str] = mapped_column(Text, index=True)
    tier: Mapped[str] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Partner(Base):
    """An outside organisation onboarded by zone or district staff; its vetting lives in `partner_vettings`."""

    __tablename__ = "partners"
    __table_args__ = (UniqueConstraint("zone_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    zone_id: Mapped[str] = mapped_column(Text, index=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(Text)
    contact_email: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PartnerVetting(Base):
    """One vetting decision; never changed. A partner's current vetting is its newest record (none: not vetted)."""

    __tablename__ = "partner_vettings"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    status: Mapped[str] = mapped_column(Text)  # vetted | provisional | not_vetted | revoked
    vetted_by: Mapped[str] = mapped_column(Text)
    vetted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    criteria_met: Mapped[list[Any]]
    evidence: Mapped[list[Any]]  # documents by reference: [{title, url}]
    expires_on: Mapped[date | None] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)


class Service(Base):
    """A district or partner service: draft → published → retired."""

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("zone_id", "partner_id", "name", postgresql_nulls_not_distinct=True),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    zone_id: Mapped[str] = mapped_column(Text, index=True)
    provider: Mapped[str] = mapped_column(Text)  # district | partner
    partner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("partners.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text)
    non_optional: Mapped[bool] = mapped_column(Boolean)
    description: Mapped[str] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(Text)  # per_pupil | per_unit | fixed
    unit_label: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal]
    capacity_per_year: Mapped[int | None] = mapped_column(Integer)
    needs: Mapped[list[str]] = mapped_column(ARRAY(Text))
    levers: Mapped[list[str]] = mapped_column(ARRAY(Text))
    status: Mapped[str] = mapped_column(Text)  # draft | published | retired
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Envelope(Base):
    """What a school may commit to services in a school year: its approved plan's purchased-services total.

    Its row is the school-year's budget mutex: placing an order locks it, so concurrent orders are checked one at a time.
    """

    __tablename__ = "envelopes"

    school_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    school_year: Mapped[str] = mapped_column(Text, primary_key=True)
    zone_id: Mapped[str] = mapped_column(Text, index=True)
    plan_id: Mapped[uuid.UUID]
    plan_version: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal]
    approved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The plan's planned purchases (ezone_schemas.plans.PlannedService, as JSON): what the envelope was set aside for.
    planned_services: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))


class Order(Base):
    """A school's order, or a non-optional service's automatic assignment (status `assigned`).

    requested → confirmed → fulfilled; requested → rejected; requested | confirmed → cancelled.
    """

    __tablename__ = "orders"
    __table_args__ = (
        # A non-optional service is assigned once per school and year, whichever event assigns it first.
        Index("uq_orders_assignment", "service_id", "school_id", "school_year", unique=True,
              postgresql_where=text("status = 'assigned'")),
        Index("ix_orders_school_id_school_year", "school_id", "school_year"),
        Index("ix_orders_service_id_school_year", "service_id", "school_year"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    zone_id: Mapped[str] = mapped_column(Text, index=True)
    school_id: Mapped[uuid.UUID]
    school_year: Mapped[str] = mapped_column(Text)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id"))
    partner_id: Mapped[uuid.UUID | None] = mapped_column(index=True)  # the service's, kept for partners' reads
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal]
    amount: Mapped[Decimal]
    # `services`: the envelope of the school's plan; `district_services`: the district's line (zone policy), for a
    # non-optional service of a district category. Kept as charged: a later policy does not move past charges.
    charged_to: Mapped[str] = mapped_column(Text, server_default=text("'services'"))
    status: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)  # why it was rejected
    placed_by: Mapped[str] = mapped_column(Text)
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(Text)  # who confirmed or rejected it
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fulfilled_by: Mapped[str | None] = mapped_column(Text)
    fulfilled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_by: Mapped[str | None] = mapped_column(Text)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now())


class ReviewFact(Base):
    """The newest review version per school, year and subject, from review.completed: partner evidence and
    recommendations read it. The all-students figures are kept as columns; findings and flags as given."""

    __tablename__ = "review_facts"

    school_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    school_year: Mapped[str] = mapped_column(Text, primary_key=True)
    subject: Mapped[str] = mapped_column(Text, primary_key=True)
    zone_id: Mapped[str] = mapped_column(Text, index=True)
    review_id: Mapped[uuid.UUID]
    review_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text)
    proficiency_rate: Mapped[float | None] = mapped_column(Float)
    median_growth_percentile: Mapped[float | None] = mapped_column(Float)
    participation_rate: Mapped[float | None] = mapped_column(Float)
    goals: Mapped[list[Any]]
    flags: Mapped[list[Any]]
    # The state's all-students figures of the year and subject, as the review carried them: the comparison of last
    # resort for evidence.
    state: Mapped[dict[str, Any] | None]
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ZonePolicy(Base):
    """Each zone's newest policy version, from zone.policy_changed: evidence reads its `evidence` rules, budgets its
    `district_services`."""

    __tablename__ = "zone_policies"

    zone_id: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]]
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
