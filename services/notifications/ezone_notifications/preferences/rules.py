"""What a member's preferences mean, without a database: the defaults, and where their email goes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo

from ..alerts.records import SEVERITIES
from ..config import Settings

CHANNELS = ("email", "webhook")


@dataclass(frozen=True)
class Preferences:
    email: str | None  # None: the token subject, when it is an email address
    channels: Mapping[str, frozenset[str]]  # severity → push channels
    timezone: str
    quiet_hours: tuple[time, time] | None  # local start and end
    digest: bool  # info alerts' emails wait for one daily digest
    digest_time: time

    @property
    def time_zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def email_address(self, subject: str) -> str | None:
        return self.email or (subject if "@" in subject else None)

    def pushes(self, severity: str, channel: str) -> bool:
        return channel in self.channels.get(severity, frozenset())

    def held_for_digest(self, severity: str) -> bool:
        return self.digest and severity == "info"


def default_preferences(settings: Settings) -> Preferences:
    """Until a member sets their own: critical and warning by email and webhook at once, info in the daily digest."""
    return Preferences(
        email=None,
        channels={"critical": frozenset(CHANNELS), "warning": frozenset(CHANNELS), "info": frozenset({"email"})},
        timezone=settings.ezone_default_timezone,
        quiet_hours=None,
        digest=True,
        digest_time=settings.ezone_default_digest_time,
    )


def preferences_from_row(row: Any) -> Preferences:
    quiet = (row.quiet_hours_start, row.quiet_hours_end) if row.quiet_hours_start is not None else None
    return Preferences(
        email=row.email,
        channels={severity: frozenset(row.channels.get(severity, ())) for severity in SEVERITIES},
        timezone=row.timezone,
        quiet_hours=quiet,
        digest=row.digest,
        digest_time=row.digest_time,
    )
