"""Partners and their vetting over the wire."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from ezone_schemas.vocabulary import VettingStatus
from pydantic import AnyHttpUrl, BaseModel, Field, ValidationInfo, field_validator

from ..types import Input, LongText, Name, ShortText

Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]


class PartnerIn(Input):
    id: uuid.UUID | None = Field(None, description="The partner's id, when the zone already uses one (e.g. in plans' line items); "
                                                   "left out, a new one is made.")
    name: Name
    description: LongText
    website: AnyHttpUrl | None = None
    contact_email: Email | None = None


class EvidenceDocument(Input):
    """A document the vetting relied on, by reference: ezone keeps the link, not the file."""

    title: ShortText
    url: AnyHttpUrl


class VettingIn(Input):
    status: VettingStatus  # declared first: the checks below read it
    criteria_met: Annotated[list[ShortText], Field(max_length=50, validate_default=True,
                                                   description="The zone's vetting criteria the partner meets.")] = \
        Field(default_factory=list)
    evidence: Annotated[list[EvidenceDocument], Field(max_length=50, validate_default=True)] = Field(default_factory=list)
    expires_on: Annotated[date | None, Field(validate_default=True,
                                             description="When a `vetted` or `provisional` status lapses; required for them.")] = None
    notes: Annotated[str, Field(max_length=5000)] | None = None

    @field_validator("criteria_met", "evidence")
    @classmethod
    def _vetted_on_evidence(cls, value: list, info: ValidationInfo) -> list:
        if info.data.get("status") == VettingStatus.VETTED and not value:
            what = "the criteria it meets" if info.field_name == "criteria_met" else "at least one evidence document"
            raise ValueError(f"vetting a partner needs {what}")
        return value

    @field_validator("expires_on")
    @classmethod
    def _expiry_when_granted(cls, expires_on: date | None, info: ValidationInfo) -> date | None:
        status = info.data.get("status")
        granted = status in (VettingStatus.VETTED, VettingStatus.PROVISIONAL)
        if granted and expires_on is None:
            raise ValueError(f"a {status} status needs expires_on: vetting is reviewed periodically")
        if status is not None and not granted and expires_on is not None:
            raise ValueError(f"a {status} status has no expiry; leave expires_on out")
        return expires_on


class VettingView(BaseModel):
    id: uuid.UUID
    partner_id: uuid.UUID
    status: VettingStatus
    vetted_by: str
    vetted_at: datetime
    criteria_met: list[str]
    evidence: list[dict[str, str]]
    expires_on: date | None
    notes: str | None
    created: bool = Field(False, description="True when this request recorded it; false when it already was the current vetting.")


class PartnerView(BaseModel):
    id: uuid.UUID
    zone_id: str
    name: str
    description: str
    website: str | None
    contact_email: str | None
    vetting: VettingView | None = Field(description="The current vetting (the newest record); null: never vetted.")
    vetted: bool = Field(description="Vetted and not expired today: what intensive-support schools may order from.")
    created_at: datetime
    created: bool = Field(False, description="True when this request onboarded it; false when it already existed.")


PartnerIn.read_as = PartnerView
