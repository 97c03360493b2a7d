"""Request and response bodies of SIS client registration and its tokens. (Ed-Fi documents are checked against
the Ed-Fi schemas themselves: openapi_schemas.py.)"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class OAuthClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200, description="Who this client is, e.g. `PowerSchool (Duggan)`.")]
    schools: Annotated[list[uuid.UUID], Field(min_length=1, max_length=500, description="The zone's schools it may post results for.")]


class OAuthClientOut(BaseModel):
    client_id: str
    zone_id: str
    name: str
    schools: list[uuid.UUID]
    created_at: datetime
    created: bool = Field(description="True when this request registered the client.")
    client_secret: str | None = Field(
        None, description="Only in the answer that registered the client: store it now, ezone keeps only a hash of it."
    )


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
