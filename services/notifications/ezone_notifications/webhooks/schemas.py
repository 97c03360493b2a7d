"""Webhook endpoints over the wire."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from ezone_kit.as_read import AsRead
from pydantic import AfterValidator, BaseModel, Field, field_validator

from ..alerts.records import SEVERITIES

Severity = Literal["critical", "warning", "info"]
Scope = Literal["member", "zone"]


def _http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("an absolute http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ValueError("no credentials in the URL: verify deliveries by their signature instead")
    if parts.fragment:
        raise ValueError("no #fragment: it is never sent to the server")
    return url


WebhookUrl = Annotated[str, Field(min_length=1, max_length=2048, examples=["https://hooks.example.org/ezone"]),
                       AfterValidator(_http_url)]


class WebhookIn(AsRead):
    """An endpoint to register; one as a GET returned it (with its `id`) is that endpoint again."""

    url: WebhookUrl
    description: str = Field("", max_length=500)
    severities: list[Severity] = Field(default_factory=lambda: list(SEVERITIES), min_length=1, max_length=3,
                                       description="Which alerts it receives.")
    scope: Scope = Field("member", description="`member`: your alerts. `zone` (district and admin only): one delivery "
                                               "per alerting event in the zone, whoever it alerts.")

    @field_validator("severities")
    @classmethod
    def _each_once(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists each severity once")
        return sorted(value, key=SEVERITIES.index)


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str
    severities: list[Severity]
    scope: Scope
    owner: str | None
    active: bool
    created_by: str
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str | None = Field(description="Verifies the Ezone-Signature of every delivery. Shown only in this answer: "
                                           "keep it. Null when the body was an endpoint as read (its `id` included).")


WebhookIn.read_as = WebhookOut
