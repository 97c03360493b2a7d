"""Tables of the Ed-Fi API: the SIS clients that may get tokens from `POST /oauth/token`, and the documents
they send."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    DateTime,
    Identity,
    Index,
    Sequence,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..models import Base


class OAuthClient(Base):
    """An SIS registered by a zone admin (OAuth2 client credentials, RFC 6749 §4.4). Only a salted
    scrypt hash of the secret is kept; the secret itself is shown once, when the client is registered."""

    __tablename__ = "oauth_clients"
    __table_args__ = (UniqueConstraint("zone_id", "name", name="uq_oauth_clients_zone_name"),)

    client_id: Mapped[str] = mapped_column(Text, primary_key=True)
    zone_id: Mapped[str] = mapped_column(Text)  # looked up through uq_oauth_clients_zone_name
    name: Mapped[str] = mapped_column(Text)
    schools: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid))
    secret_hash: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


change_version_sequence = Sequence("edfi_change_version", schema="results", metadata=Base.metadata)


class EdFiDocument(Base):
    """One Ed-Fi resource item of a zone, kept as its client sent it (every schema-valid record is kept, whether
    the review uses it or not). `identity` is the resource's natural key by the names the GET list filters on;
    `change_version` grows with every write, for change queries and the `_etag`."""

    __tablename__ = "edfi_documents"
    __table_args__ = (
        UniqueConstraint("referential_id", name="uq_edfi_documents_referential_id"),
        Index("ix_edfi_documents_listing", "zone_id", "resource", "position"),
        Index("ix_edfi_documents_changes", "zone_id", "resource", "change_version"),
        Index("ix_edfi_documents_result_key", "zone_id", "result_key", postgresql_where=text("result_key IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, Identity(always=True))  # the order a list pages in
    # A name-based UUID of (zone, resource, identity): the natural key, in one column (edfi/referential.py).
    referential_id: Mapped[uuid.UUID]
    zone_id: Mapped[str] = mapped_column(Text)
    resource: Mapped[str] = mapped_column(Text)
    identity: Mapped[dict[str, Any]]
    document: Mapped[dict[str, Any]]
    # The school a school-bound client must act for to read or change it (student data only).
    school_id: Mapped[uuid.UUID | None]
    # studentAssessments: ezone's key of the result (student, assessment, year, date) the document is one of.
    result_key: Mapped[str | None] = mapped_column(Text)
    change_version: Mapped[int] = mapped_column(BigInteger, server_default=change_version_sequence.next_value())
    last_modified: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EdFiDelete(Base):
    """A deleted item, for change queries' `/deletes`: its id and natural key as they were."""

    __tablename__ = "edfi_deletes"
    __table_args__ = (Index("ix_edfi_deletes_changes", "zone_id", "resource", "change_version"),)

    change_version: Mapped[int] = mapped_column(BigInteger, primary_key=True,
                                                server_default=change_version_sequence.next_value())
    id: Mapped[uuid.UUID]
    zone_id: Mapped[str] = mapped_column(Text)
    resource: Mapped[str] = mapped_column(Text)
    identity: Mapped[dict[str, Any]]
    school_id: Mapped[uuid.UUID | None]
    deleted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EdFiSeededZone(Base):
    """A zone whose descriptors were seeded with Ed-Fi's defaults (once: a client may delete or change them)."""

    __tablename__ = "edfi_seeded_zones"

    zone_id: Mapped[str] = mapped_column(Text, primary_key=True)
    seeded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
