"""A student group as the API reads and adds it."""

from __future__ import annotations

from typing import Annotated

from ezone_schemas.vocabulary import GroupCode
from pydantic import BaseModel, ConfigDict, Field

Label = Annotated[str, Field(min_length=1, max_length=100, pattern=r"\S", examples=["female"])]


class StudentGroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: GroupCode
    name: Annotated[str, Field(min_length=1, max_length=100, examples=["Female"])]
    labels: Annotated[list[Label], Field(max_length=20, description=(
        "How the state's files name the group in their `student_group` column (compared ignoring case and extra "
        "spaces); a label names one group."))] = []
    accountability: bool = Field(False, description=(
        "Whether a zone's accountability uses the group when the zone's policy names no groups of its own. A "
        "zone's policy (`subgroups`) decides for the zone."))


class StudentGroupOut(BaseModel):
    code: str
    name: str
    labels: list[str] = Field(description="The state files' labels, lower case.")
    accountability: bool
    added_by: str | None = Field(description="Who added the group; null for the groups every deployment starts with.")


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    label: Label
