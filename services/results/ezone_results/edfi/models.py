"""Tables of the Ed-Fi-compatible API: the SIS clients that may get tokens from `POST /oauth/token`."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, DateTime, Text, UniqueConstraint, Uuid, func
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
