from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from ezone_kit.as_read import AsRead
from ezone_schemas.vocabulary import AutonomyTier
from pydantic import BaseModel, ConfigDict, Field, field_validator

ZoneId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="A slug, e.g. `springfield`.")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Month = Annotated[int, Field(ge=1, le=12)]
Enrollment = Annotated[int | None, Field(ge=0, le=20_000)]
GradeSpan = Annotated[str, Field(examples=["6-8", "K-8", "9-12"])]
GRADES = ["PK", "K", *[str(g) for g in range(1, 13)]]
_SPAN = re.compile(r"(PK|K|[1-9]|1[0-2])-(PK|K|[1-9]|1[0-2])")


def _ordered_span(value: str) -> str:
    match = _SPAN.fullmatch(value)
    if not match or GRADES.index(match[1]) > GRADES.index(match[2]):
        raise ValueError("grade_span must be `low-high` with grades PK, K, 1..12 and low <= high, e.g. `6-8`")
    return value


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("cannot be null; leave the field out to keep it as it is")
    return value


def not_null(*fields: str) -> Any:
    """For a partial update: these fields may be left out, but not set to null."""
    return field_validator(*fields)(_refuse_null)


class Patch(AsRead):
    """A partial update: a field left out stays as it is. The resource as read may be sent back whole."""

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class ZoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: ZoneId
    name: Name
    district: Name
    fiscal_year_start_month: Annotated[Month, Field(description="The month a fiscal year starts (7: July).")] = 7
    school_year_start_month: Annotated[Month, Field(description="The month a school year starts (9: September).")] = 9


class ZoneUpdate(Patch):
    name: Name | None = None
    district: Name | None = None
    fiscal_year_start_month: Month | None = None
    school_year_start_month: Month | None = None

    _present = not_null("name", "district", "fiscal_year_start_month", "school_year_start_month")


class ZoneOut(BaseModel):
    id: str
    name: str
    district: str
    fiscal_year_start_month: int
    school_year_start_month: int
    created_at: datetime


ZoneUpdate.read_as = ZoneOut


class SchoolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(pattern=r"^[0-9A-Za-z-]{1,20}$", description="The state's school code (MCAS `school_code`).")]
    name: Name
    grade_span: GradeSpan
    enrollment: Enrollment = None

    _span_is_ordered = field_validator("grade_span")(_ordered_span)


class SchoolUpdate(Patch):
    """The school code identifies the school and cannot change; the autonomy tier follows from reviews."""

    name: Name | None = None
    grade_span: GradeSpan | None = None
    enrollment: Enrollment = None

    _present = not_null("name", "grade_span")
    _span_is_ordered = field_validator("grade_span")(_ordered_span)


class SchoolOut(BaseModel):
    id: uuid.UUID
    zone_id: str
    code: str
    name: str
    grade_span: str
    enrollment: int | None
    tier: AutonomyTier = Field(description="The school's earned-autonomy tier; it follows from its reviews and cannot be set here.")
    created: bool = Field(False, description="True when this request registered it; false when it already existed.")


SchoolUpdate.read_as = SchoolOut
