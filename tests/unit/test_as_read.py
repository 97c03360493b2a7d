"""Request bodies that take a resource back as a GET returned it (ezone_kit.as_read)."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from ezone_kit.as_read import AsRead, check_as_read
from ezone_kit.problems import Problem
from pydantic import BaseModel, ValidationError


class ThingView(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime


class ThingUpdate(AsRead):
    name: str | None = None


ThingUpdate.read_as = ThingView
THING = uuid.uuid4()
AS_READ = {"id": str(THING), "name": "renamed", "created_at": "2025-09-01T00:00:00Z"}


def test_the_views_read_only_fields_are_set_aside_and_unknown_fields_still_refused():
    body = ThingUpdate.model_validate(AS_READ)
    assert body.model_dump(exclude_unset=True) == {"name": "renamed"}
    assert body.sent_as_read() == {"id": str(THING), "created_at": "2025-09-01T00:00:00Z"}
    assert body == ThingUpdate(name="renamed")  # what was set aside does not make it another request
    with pytest.raises(ValidationError) as refused:
        ThingUpdate.model_validate({**AS_READ, "colour": "red", "name": 5})
    assert {error["loc"][0] for error in refused.value.errors()} == {"colour", "name"}  # both, at once


def test_an_identifying_field_must_match_the_resource_and_the_refusal_says_its_value():
    check_as_read(ThingUpdate.model_validate({**AS_READ, "id": str(THING).upper()}), id=THING)
    other = uuid.uuid4()
    with pytest.raises(Problem) as refused:
        check_as_read(ThingUpdate.model_validate(AS_READ), id=other)
    [error] = refused.value.extensions["errors"]
    assert (error["field"], error["code"]) == ("id", "read_only") and str(other) in error["reason"]
