"""Preferences over the wire."""

from __future__ import annotations

from datetime import datetime, time
from functools import cache
from typing import Annotated, Literal
from zoneinfo import available_timezones

from ezone_kit.as_read import AsRead
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

Channel = Literal["email", "webhook"]


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _known_timezone(name: str) -> str:
    if name not in _timezones():
        raise ValueError(f"{name!r} is not an IANA time zone name, e.g. America/New_York or Europe/London")
    return name


def _wall_clock(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a local time without an offset: it is read in your `timezone`")
    return value


TimezoneName = Annotated[str, Field(min_length=1, max_length=64, examples=["America/New_York"]),
                         AfterValidator(_known_timezone)]
# Documented by a pattern: JSON Schema's `format: time` is RFC 3339's, with an offset a wall-clock time has not.
LocalTime = Annotated[time, AfterValidator(_wall_clock), WithJsonSchema({
    "type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?$", "examples": ["22:00"]})]
EmailAddress = Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$", examples=["member@springfield.example"])]


class Input(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ChannelsIn(Input):
    """Push channels per severity; the in-app inbox gets every alert whatever these say."""

    critical: list[Channel] = Field(max_length=2)
    warning: list[Channel] = Field(max_length=2)
    info: list[Channel] = Field(max_length=2)

    @field_validator("critical", "warning", "info")
    @classmethod
    def _each_once(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists each channel once")
        return sorted(value)


class QuietHours(Input):
    """Local times in `timezone`; an end earlier than the start runs overnight (22:00 to 07:00)."""

    start: LocalTime
    end: LocalTime

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours start and end at different times")
        return self


class Digest(Input):
    enabled: bool = Field(True, description="Info alerts' emails wait for one email a day; critical and warning never do.")
    time: LocalTime = Field(time(7, 0), description="When the digest goes out, local time in `timezone`.")


class PreferencesIn(AsRead):
    """Your preferences; as a GET returned them, what you cannot set (`email_to`, `customized`, `updated_at`) is
    ignored."""

    email: EmailAddress | None = Field(None, description="Where alert emails go; null: your token subject, when it is an "
                                                         "email address.")
    timezone: TimezoneName
    channels: ChannelsIn
    quiet_hours: QuietHours | None = Field(None, description="Warning and info pushes wait until they end; critical "
                                                             "alerts do not.")
    digest: Digest = Field(default_factory=Digest)


class PreferencesOut(BaseModel):
    email: str | None
    email_to: str | None = Field(description="Where alert emails go now; null: no email (set `email`).")
    timezone: str
    channels: ChannelsIn
    quiet_hours: QuietHours | None
    digest: Digest
    customized: bool = Field(description="False: the zone's defaults, until you PUT your own.")
    updated_at: datetime | None


PreferencesIn.read_as = PreferencesOut
