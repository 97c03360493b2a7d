"""The results service's tables (schema `results`).

Student identifiers are pseudonymous (the SIS's own opaque id); no names are stored.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ezone_kit.db import service_metadata
from ezone_kit.directory import school_directory_table
from ezone_kit.zones import zone_tables
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = service_metadata("results")
    type_annotation_map = {dict[str, Any]: JSONB, list[Any]: JSONB}


metadata = Base.metadata
schools = school_directory_table(metadata)
known_zones, parked_events = zone_tables(metadata)  # which zones exist (see ezone_kit.zones)


class StudentGroup(Base):
    """A student group of the deployment's vocabulary: the code events and rows carry, its name, and whether a zone's
    accountability uses it when the zone's policy names no groups of its own."""

    __tablename__ = "student_groups"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    accountability: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    added_by: Mapped[str | None] = mapped_column(Text)  # null: seeded with the vocabulary
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StudentGroupLabel(Base):
    """How a state's files name a group (lower case, single spaces): one group per label."""

    __tablename__ = "student_group_labels"

    label: Mapped[str] = mapped_column(Text, primary_key=True)
    code: Mapped[str] = mapped_column(ForeignKey(StudentGroup.code), index=True)


class ZonePolicyRecord(Base):
    """Every policy version of every zone, from zone.policy_changed: a review names the one it used."""

    __tablename__ = "zone_policies"

    zone_id: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]]
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApprovedPlan(Base):
    """The approved plan per school and year, from plan.approved: the goals a review checks."""

    __tablename__ = "approved_plans"

    school_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    school_year: Mapped[str] = mapped_column(Text, primary_key=True)
    zone_id: Mapped[str] = mapped_column(Text)
    plan_id: Mapped[uuid.UUID]
    version: Mapped[int] = mapped_column(Integer)
    goals: Mapped[list[Any]]
    approved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IngestBatch(Base):
    """One request or upload: what came in, what it changed, and the rows it refused."""

    __tablename__ = "ingest_batches"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    zone_id: Mapped[str] = mapped_column(Text, index=True)
    source: Mapped[str] = mapped_column(Text)  # json | csv | edfi | mcas
    status: Mapped[str] = mapped_column(Text)  # receiving | processing | completed | failed
    submitted_by: Mapped[str] = mapped_column(Text)
    rows_received: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rows_inserted: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rows_updated: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rows_unchanged: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rows_rejected: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    errors: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StudentResult(Base):
    """One student's result on one administration of one assessment. Natural key: zone, student,
    assessment (namespace + identifier), school year, administration date — a re-send with the same
    key and values changes nothing; with a new score it is a correction."""

    __tablename__ = "student_results"
    __table_args__ = (
        UniqueConstraint("zone_id", "student_id", "assessment_namespace", "assessment_identifier", "school_year",
                         "administration_date", name="uq_student_results_natural_key"),
        Index("ix_student_results_school_year_subject", "school_id", "school_year", "subject"),
        Index("ix_student_results_edfi_document", "edfi_document_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    zone_id: Mapped[str] = mapped_column(Text)
    school_id: Mapped[uuid.UUID]
    student_id: Mapped[str] = mapped_column(Text)
    assessment_namespace: Mapped[str] = mapped_column(Text)
    assessment_identifier: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    grade: Mapped[str | None] = mapped_column(Text)  # an Ed-Fi result need not say its grade
    school_year: Mapped[str] = mapped_column(Text)
    administration_date: Mapped[date] = mapped_column(Date)
    scale_score: Mapped[Decimal | None] = mapped_column(Numeric(7, 2))
    performance_level: Mapped[str | None] = mapped_column(Text)
    proficient: Mapped[bool | None] = mapped_column(Boolean)
    growth_percentile: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    # Why a student enrolled in the tested grade has no score (e.g. `absent`, `medical`, `exempt`): participation and exemption flags.
    not_tested_reason: Mapped[str | None] = mapped_column(Text)
    subgroups: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    edfi_identifier: Mapped[str | None] = mapped_column(Text)
    # The Ed-Fi assessment's category code value (e.g. `State summative assessment`), for Ed-Fi results.
    assessment_category: Mapped[str | None] = mapped_column(Text)
    # The Ed-Fi studentAssessment document this row was made from (edfi_documents.id), if any.
    edfi_document_id: Mapped[uuid.UUID | None]
    batch_id: Mapped[uuid.UUID]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Enrollment(Base):
    """A student's enrollment at a school (entry/exit dates): participation = tested ÷ enrolled."""

    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("zone_id", "student_id", "school_id", "entry_date", name="uq_enrollments_natural_key"),
        Index("ix_enrollments_school_year", "school_id", "school_year"),
        Index("ix_enrollments_edfi_document", "edfi_document_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    zone_id: Mapped[str] = mapped_column(Text)
    school_id: Mapped[uuid.UUID]
    student_id: Mapped[str] = mapped_column(Text)
    school_year: Mapped[str] = mapped_column(Text)
    grade: Mapped[str] = mapped_column(Text)
    entry_date: Mapped[date] = mapped_column(Date)
    exit_date: Mapped[date | None] = mapped_column(Date)
    subgroups: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    # The Ed-Fi studentSchoolAssociation document this row was made from (edfi_documents.id), if any.
    edfi_document_id: Mapped[uuid.UUID | None]
    batch_id: Mapped[uuid.UUID]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SchoolAggregate(Base):
    """School-level results as a state publishes them (e.g. MCAS), for every school in the state: the comparison group
    for achievement percentiles and gains, and the figures of a zone school without student rows. Only a state file
    writes here (`source`: the file's kind); what ezone computes from a zone's student rows is a ComputedAggregate."""

    __tablename__ = "school_aggregates"
    # A review ranks its school among every school of one year and subject (percentiles, gains): read by this index,
    # not by scanning every year and subject of a statewide file; the code lets the counts skip the table.
    __table_args__ = (Index("ix_school_aggregates_year_subject", "school_year", "subject", "subgroup", "average_scaled_score",
                            postgresql_include=["school_code"]),)

    school_code: Mapped[str] = mapped_column(Text, primary_key=True)
    school_year: Mapped[str] = mapped_column(Text, primary_key=True)
    subject: Mapped[str] = mapped_column(Text, primary_key=True)
    subgroup: Mapped[str] = mapped_column(Text, primary_key=True)
    school_name: Mapped[str] = mapped_column(Text)
    n_tested: Mapped[int | None] = mapped_column(Integer)
    proficiency_rate: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    average_scaled_score: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    median_growth_percentile: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    participation_rate: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    source: Mapped[str] = mapped_column(Text)  # mcas
    batch_id: Mapped[uuid.UUID | None]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ComputedAggregate(Base):
    """A zone school's figures as its reviews computed them from the zone's student rows, kept per zone: in that zone's
    comparisons they stand in for the state's row of the school's code; no other zone, and no state row, sees them."""

    __tablename__ = "computed_aggregates"
    # The rows of one zone, year, subject and subgroup: what a percentile count adds to (and takes from) the state's.
    __table_args__ = (Index("ix_computed_aggregates_group", "zone_id", "school_year", "subject", "subgroup",
                            postgresql_include=["school_code", "average_scaled_score"]),)

    zone_id: Mapped[str] = mapped_column(Text, primary_key=True)
    school_code: Mapped[str] = mapped_column(Text, primary_key=True)  # as the state's files write it (state_code)
    school_year: Mapped[str] = mapped_column(Text, primary_key=True)
    subject: Mapped[str] = mapped_column(Text, primary_key=True)
    subgroup: Mapped[str] = mapped_column(Text, primary_key=True)
    school_name: Mapped[str] = mapped_column(Text)
    n_tested: Mapped[int | None] = mapped_column(Integer)
    proficiency_rate: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    average_scaled_score: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    median_growth_percentile: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    participation_rate: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Review(Base):
    """A versioned accountability review of one school, school year and subject, and what it used."""

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("school_id", "school_year", "subject", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    zone_id: Mapped[str] = mapped_column(Text, index=True)
    school_id: Mapped[uuid.UUID]
    school_year: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text)
    metrics: Mapped[list[Any]]
    goals: Mapped[list[Any]]
    flags: Mapped[list[Any]]
    reason: Mapped[dict[str, Any] | None]  # the overall status's StatusReason
    policy_version: Mapped[int | None] = mapped_column(Integer)
    plan_version: Mapped[int | None] = mapped_column(Integer)
    batch_ids: Mapped[list[Any]]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReviewRequest(Base):
    """A pending review: results.posted events for the same school, year and subject coalesce into one row."""

    __tablename__ = "review_requests"

    school_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    school_year: Mapped[str] = mapped_column(Text, primary_key=True)
    subject: Mapped[str] = mapped_column(Text, primary_key=True)
    zone_id: Mapped[str] = mapped_column(Text)
    batch_ids: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    reason: Mapped[str] = mapped_column(Text)  # results | plan | policy | school
    # The `traceparent`/`tracestate` of each cause, first first: the review continues the first and links the others.
    trace_contexts: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
