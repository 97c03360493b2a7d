from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

ZoneId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="A slug, e.g. `springfield`.")]
GRADES = ["PK", "K", *[str(g) for g in range(1, 13)]]
_SPAN = re.compile(r"(PK|K|[1-9]|1[0-2])-(PK|K|[1-9]|1[0-2])")


class ZoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: ZoneId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    district: Annotated[str, Field(min_length=1, max_length=200)]


class ZoneOut(BaseModel):
    id: str
    name: str
    district: str
    created_at: datetime


class SchoolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(pattern=r"^[0-9A-Za-z-]{1,20}$", description="The state's school code (MCAS `school_code`).")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    grade_span: Annotated[str, Field(examples=["6-8", "K-8", "9-12"])]
    enrollment: Annotated[int | None, Field(ge=0, le=20_000)] = None

    @field_validator("grade_span")
    @classmethod
    def _span_is_ordered(cls, value: str) -> str:
        match = _SPAN.fullmatch(value)
        if not match or GRADES.index(match[1]) > GRADES.index(match[2]):
            raise ValueError("grade_span must be `low-high` with grades PK, K, 1..12 and low <= high, e.g. `6-8`")
        return value


class SchoolOut(BaseModel):
    id: uuid.UUID
    zone_id: str
    code: str
    name: str
    grade_span: str
    enrollment: int | None
    created: bool = Field(False, description="True when this request registered it; false when it already existed.")
