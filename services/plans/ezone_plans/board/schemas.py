from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ..policy.document import MAX_BOARD_SIZE
from ..registry.schemas import Name, Patch, not_null

Subject = Annotated[str, Field(min_length=1, max_length=200, description="The identity provider's `sub` of this person's tokens.")]
Seat = Annotated[int, Field(ge=1, le=MAX_BOARD_SIZE, description="1..the policy's `voting.board_size`.")]
Appointer = Literal["district", "state"]
LeaderRole = Literal["principal", "teacher_leader"]


def _not_before(end: date | None, info: ValidationInfo, start_field: str) -> date | None:
    """An end date is not before the start date sent in the same body."""
    start = info.data.get(start_field)
    if end is not None and start is not None and end < start:
        raise ValueError(f"must be on or after {start_field} ({start})")
    return end


class BoardMemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    subject: Subject
    seat: Seat
    appointed_by: Appointer
    active_from: date
    active_to: Annotated[date | None, Field(description="The last day of the term; none while it is open.")] = None

    @field_validator("active_to")
    @classmethod
    def _ends_after_start(cls, active_to: date | None, info: ValidationInfo) -> date | None:
        return _not_before(active_to, info, "active_from")


class BoardMemberUpdate(Patch):
    """E.g. `{"active_to": "2026-06-30"}` ends a term; `null` reopens it."""

    name: Name | None = None
    seat: Seat | None = None
    appointed_by: Appointer | None = None
    active_from: date | None = None
    active_to: date | None = None

    _present = not_null("name", "seat", "appointed_by", "active_from")


class BoardMemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    zone_id: str
    subject: str
    name: str
    seat: int
    appointed_by: Appointer
    active_from: date
    active_to: date | None


BoardMemberUpdate.read_as = BoardMemberOut


class LeaderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    subject: Subject
    role: LeaderRole
    elected_on: date | None = None
    term_ends: date | None = None

    @field_validator("term_ends")
    @classmethod
    def _ends_after_start(cls, term_ends: date | None, info: ValidationInfo) -> date | None:
        return _not_before(term_ends, info, "elected_on")


class LeaderUpdate(Patch):
    """`{"active": false}` takes the member off the team (as DELETE does); `true` puts them back."""

    name: Name | None = None
    role: LeaderRole | None = None
    elected_on: date | None = None
    term_ends: date | None = None
    active: bool | None = None

    _present = not_null("name", "role", "active")


class LeaderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    school_id: uuid.UUID
    subject: str
    name: str
    role: LeaderRole
    elected_on: date | None
    term_ends: date | None
    active: bool


LeaderUpdate.read_as = LeaderOut
