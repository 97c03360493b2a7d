"""Field types the catalog's request bodies share."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from ezone_kit.as_read import AsRead
from pydantic import Field

Name = Annotated[str, Field(min_length=1, max_length=200)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(min_length=1, max_length=5000)]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]


class Input(AsRead):
    """A request body: unknown fields are an error, not silently dropped; those of the resource as read (`read_as`)
    are taken back."""
